"""The session cookie: the :class:`Session` encrypted and authenticated (Fernet: AES-CBC
with an HMAC), so that the user's credential never lies readable in the browser, the
portal keeps no session table, and any replica with the same key reads it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from services.portal.domain.session import Session
from services.portal.settings import PortalSettings

SESSION_COOKIE = "qcdc_session"
CSRF_COOKIE = "qcdc_csrf"
OIDC_COOKIE = "qcdc_oidc"
SECRET_FILE = "portal.secret"


def portal_key(settings: PortalSettings) -> bytes:
    """The configured secret, or one generated once into the data folder (0600)."""
    secret = settings.portal_secret
    if not secret:
        path = Path(settings.data_dir) / SECRET_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
    # Any length of secret becomes the 32 bytes Fernet wants.
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


class SessionCodec:
    def __init__(self, key: bytes, max_age_seconds: int) -> None:
        self.fernet = Fernet(key)
        self.max_age = max_age_seconds

    def dump(self, session: Session) -> str:
        return self.fernet.encrypt(json.dumps(session.dump()).encode()).decode()

    def load(self, value: str | None) -> Session | None:
        """The session, or None when absent, tampered with, from another key or too old."""
        if not value:
            return None
        try:
            data = json.loads(self.fernet.decrypt(value.encode(), ttl=self.max_age))
            return Session.load(data)
        except (InvalidToken, ValueError, TypeError, KeyError):
            return None

    def seal(self, data: dict[str, str]) -> str:
        """Short-lived state of an OIDC sign-in (state, PKCE verifier), same protection."""
        return self.fernet.encrypt(json.dumps(data).encode()).decode()

    def unseal(self, value: str | None, max_age: int = 600) -> dict[str, str] | None:
        if not value:
            return None
        try:
            data = json.loads(self.fernet.decrypt(value.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None
