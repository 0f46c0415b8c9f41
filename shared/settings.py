"""Settings common to every service, read from ``QCDC_``-prefixed environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_NATS_PORT = 14222


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QCDC_", env_file=None, extra="ignore")

    nats_url: str = Field(
        f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}", description="NATS server(s), comma-separated."
    )
    nats_user: str | None = None
    nats_password: str | None = None
    database_url: str = Field("", description="SQLAlchemy async URL; default: var/<service>.db")
    http_host: str = "127.0.0.1"
    http_port: int = 0
    public_url: str = Field("", description="Base URL people use to reach this service.")
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        description="Largest HTTP request body (413 beyond); attachments have their own limit.",
    )
    log_level: str = "INFO"
    auth: Literal["open", "tokens"] = Field(
        "tokens",
        description="tokens (the default): every API call needs a bearer token; open: "
        "development only (qcdc up sets it), every caller is an administrator of everything, "
        "served on the loopback interface only.",
    )
    oidc_issuer: str = Field(
        "",
        description="OpenID Connect issuer whose bearer tokens are accepted beside API tokens "
        "(QCDC_AUTH=tokens); empty: none.",
    )
    oidc_audience: str = Field("qcdc", description="The audience the tokens must name.")
    oidc_jwks_url: str = Field("", description="Empty: from the issuer's discovery document.")
    oidc_unit_claim: str = Field("qcdc_unit", description="Claim holding the unit code.")
    oidc_role_claim: str = Field("qcdc_role", description="Claim holding the role.")
    contacts_key: str = Field(
        "",
        description="Fernet key sealing unit contacts' e-mail addresses on the bus; the plans "
        "and notify services share it (qcdc up makes one). Empty: addresses stay off the bus.",
    )
    clock: str = Field("system", description="system | fixed:<instant> | file:<path> | offset:<s>")
    data_dir: str = Field("var", description="Folder for SQLite files and stored attachments.")
    bus_provision: bool = Field(True, description="Create/update the JetStream streams at start.")
    stream_replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="Servers each stream is kept on: 1 on a single nats-server, 3 on a "
        "3-node cluster (a majority must hold a write before it is acknowledged).",
    )
    consumer_max_deliver: int = Field(8, description="Attempts before a message is dead-lettered.")
    consumer_ack_wait_seconds: float = 30.0
    consumer_batch_size: int = Field(
        64,
        ge=1,
        description="Messages fetched per pull, handled together (one shared transaction "
        "where they arrive at once). 64 rather than 20: a burst's receipts 170-198/s against "
        "151-157/s, notify's CPU per event 3.0-3.4 ms against 3.8-4.0 (bench.pipeline).",
    )
    consumer_linger_seconds: float = Field(
        0.0,
        ge=0,
        description="A message that finds its consumer idle waits this long before its "
        "transaction, so that those arriving meanwhile share it (0.05 measured in "
        "docs/performance.md). Leave at 0: with both lingers at 0.05 a plan amendment was "
        "handled before the issuance it follows (docs/performance.md, ninth round).",
    )
    outbox_retention_days: int = Field(400, description="Published outbox rows kept this long.")
    outbox_poll_seconds: float = 0.5
    outbox_linger_seconds: float = Field(
        0.0,
        ge=0,
        description="Woken from idle by a commit, the outbox relay waits this long for the "
        "next commits before it reads, so that their rows share one batch "
        "(docs/performance.md). Leave at 0, as consumer_linger_seconds.",
    )
    stop_timeout_seconds: float = Field(
        20.0,
        description="After SIGTERM: the most a service takes to drain (HTTP requests in "
        "flight, handlers, the outbox, deliveries) before it exits anyway.",
    )

    def resolved_database_url(self, service: str) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir}/{service}.db"

    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"
