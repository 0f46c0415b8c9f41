"""Settings of the notify service (``QCDC_`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    http_port: int = 8303
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    mail_from: str = "QCDC <khong-tra-loi@qcdc.local>"
    reports_url: str = Field(
        "http://127.0.0.1:8302", description="Public URL of the reports service, for links."
    )
    portal_url: str = Field(
        "",
        description="Public base URL of the portal (services/portal): mails link to its pages; "
        "empty: links lead to the services' APIs.",
    )
    delivery_max_attempts: int = 8
    delivery_poll_seconds: float = 0.3
    delivery_lease_seconds: float = Field(
        60.0, description="How long a send may take before another attempt may take over."
    )
    webhook_allowlist: list[str] = Field(
        default_factory=list,
        description=(
            "Host names (exact, or *.suffix) and networks (CIDR) webhooks may be sent to; "
            "empty: no webhook is sent. JSON list in the environment."
        ),
    )
    webhook_timeout_seconds: float = Field(10.0, description="Whole webhook request, at most.")
    webhook_max_attempts: int = Field(8, description="Webhook attempts before NotificationFailed.")
    delivery_concurrency: int = Field(128, description="Attempts in flight at once, overall.")
    destination_concurrency: int = Field(
        2, description="Webhook attempts in flight at once per receiving host."
    )
    smtp_connections: int = Field(
        16,
        ge=1,
        description="SMTP sessions kept open to the relay, reused for message after message: "
        "also the e-mails sent at once.",
    )
    smtp_idle_seconds: float = Field(
        60.0, description="An SMTP session unused this long is closed rather than reused."
    )
    plans_url: str = Field(
        "http://127.0.0.1:8301", description="Public URL of the plans service, for links."
    )
    rules_path: str | None = Field(
        None,
        description="YAML file of notification rules; replaces the default rules of the "
        "event types it lists (see docs/notifications.md).",
    )
    digest_hour: int = Field(7, ge=0, le=23, description="Hour (ICT) of the daily digest.")
    digest_poll_seconds: float = Field(
        60.0, description="How often the digest job looks whether a digest is due."
    )
