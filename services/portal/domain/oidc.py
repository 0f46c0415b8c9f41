"""OpenID Connect sign-in, the pure part: authorization code flow with PKCE (RFC 7636).

The portal sends the browser to the provider with a ``state`` (against forged callbacks),
a ``nonce`` (against a replayed ID token) and the S256 challenge of a random verifier that
only the portal knows, so a stolen authorization code is useless to anyone else. The
access token it gets back is the user's credential for the services' APIs, which check
it themselves (shared/oidc.py)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode


def new_secret() -> str:
    """43 characters of base64url: 256 bits, and a valid PKCE verifier."""
    return secrets.token_urlsafe(32)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Attempt:
    """One sign-in under way, kept sealed in a short-lived cookie until the callback."""

    state: str
    nonce: str
    verifier: str
    next_path: str

    @classmethod
    def new(cls, next_path: str) -> Attempt:
        return cls(new_secret(), new_secret(), new_secret(), next_path)

    def dump(self) -> dict[str, str]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "verifier": self.verifier,
            "next": self.next_path,
        }

    @classmethod
    def load(cls, data: dict[str, str]) -> Attempt:
        return cls(data["state"], data["nonce"], data["verifier"], data["next"])


def authorization_url(
    endpoint: str, *, client_id: str, redirect_uri: str, scope: str, attempt: Attempt
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": s256(attempt.verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
