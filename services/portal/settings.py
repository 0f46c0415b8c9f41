"""Settings of the portal (``QCDC_`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class PortalSettings(ServiceSettings):
    http_port: int = 8304
    plans_url: str = Field(
        "http://127.0.0.1:8301", description="The plans API, as the portal reaches it."
    )
    reports_url: str = Field(
        "http://127.0.0.1:8302", description="The reports API, as the portal reaches it."
    )
    notify_url: str = Field(
        "http://127.0.0.1:8303", description="The notify API, as the portal reaches it."
    )
    portal_secret: str = Field(
        "",
        description="Key of the session cookies (any long random string; replicas share it); "
        "empty: one is generated into <QCDC_DATA_DIR>/portal.secret on first start.",
    )
    cookie_secure: bool | None = Field(
        None,
        description="Mark cookies Secure (HTTPS only); empty: when QCDC_PUBLIC_URL is https.",
    )
    session_hours: float = Field(12.0, gt=0, description="A sign-in lasts this long.")
    public_token: str = Field(
        "",
        description="A read-only (integrator) API token the public page reads with under "
        "QCDC_AUTH=tokens; empty: the public page reads without one (open mode).",
    )
    public_cache_seconds: int = Field(
        60, ge=0, description="How long browsers and proxies may keep the public page."
    )
    api_timeout_seconds: float = Field(15.0, description="Each call to a service's API, at most.")
    oidc_client_id: str = Field(
        "", description="The portal's client id at the OpenID Connect provider; empty: no OIDC."
    )
    oidc_client_secret: str = Field("", description="Its secret, for a confidential client.")
    oidc_scope: str = Field("openid", description="Scopes asked for at sign-in.")

    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.resolved_public_url().startswith("https://")
