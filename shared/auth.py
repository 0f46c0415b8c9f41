"""Who is calling, and what they may do: API tokens bound to a unit and a role.

Tokens are random strings shown once; only their SHA-256 is stored. The plans service
issues and revokes them and publishes ``TokenIssued``/``TokenRevoked`` (hash, unit, role,
expiry: never the token), so every service keeps its own table of valid token hashes and
checks a request without asking another service.

The rules (pure):
- a **submitter** acts only for its own unit;
- a **reviewer** reviews only reports sent to its own unit (it is their receiving unit);
- a **planner** issues and changes plans only as its own unit (the issuing unit);
- an **administrator** manages units, tokens and subscriptions within its own subtree;
- a **read-only integrator** reads, never writes;
- a **front** user (Fatherland Front) registers recommendations after supervision for the
  units of its subtree.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.errors import Refused

TOKEN_PREFIX = "qcdc_"


class Role(StrEnum):
    SUBMITTER = "submitter"
    REVIEWER = "reviewer"
    PLANNER = "planner"
    ADMINISTRATOR = "administrator"
    INTEGRATOR = "integrator"
    FRONT = "front"
    """A Fatherland Front (or socio-political organisation) user: registers the
    recommendations it made after supervising the units of its subtree, and reads them."""


class Unauthenticated(Exception):
    """No valid token: HTTP 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Refused):
    """A valid token that may not do this: HTTP 403."""

    status_code = 403


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    token_id: str
    unit_code: str
    unit_path: tuple[str, ...]
    role: Role

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            wanted = " or ".join(r.value for r in roles)
            raise Forbidden(f"this needs the role {wanted}; the token is {self.role.value}")

    def require_unit(self, unit_code: str, doing: str, unit_path: list[str] | None = None) -> None:
        """Act only for one's own unit (an administrator: within its subtree)."""
        if self.unit_code == "*" or unit_code == self.unit_code:
            return
        if self.role is Role.ADMINISTRATOR and unit_path is not None and self.covers(unit_path):
            return
        raise Forbidden(f"a token of unit {self.unit_code} cannot {doing} for unit {unit_code}")

    def covers(self, unit_path: list[str]) -> bool:
        """Within this principal's subtree (the open development principal covers all)."""
        return self.unit_code == "*" or self.unit_code in unit_path

    def may_read(self, unit_path: list[str], addressed_to: str | None = None) -> bool:
        """Read scope: what concerns a unit of this principal's subtree, or what is addressed
        to its own unit (a report sent to it for review, its consolidation)."""
        return self.covers(unit_path) or (
            addressed_to is not None and addressed_to == self.unit_code
        )

    def require_read(self, unit_path: list[str], addressed_to: str | None, what: str) -> None:
        if not self.may_read(unit_path, addressed_to):
            raise Forbidden(
                f"a token of unit {self.unit_code} cannot read {what}: it is neither in its "
                "units nor addressed to it"
            )

    def require_subtree(self, unit_path: list[str], doing: str) -> None:
        if not self.covers(unit_path):
            raise Forbidden(
                f"unit {unit_path[-1]} is outside {self.unit_code}'s units; cannot {doing}"
            )


OPEN = Principal(token_id="open", unit_code="*", unit_path=(), role=Role.ADMINISTRATOR)
"""The caller of every HTTP request when authentication is off (``qcdc up`` only, on the
loopback interface). Never a default: the authentication middleware hands it out, in open
mode only."""

CONSOLE = Principal(token_id="console", unit_code="*", unit_path=(), role=Role.ADMINISTRATOR)
"""The operator at the console (``qcdc …`` commands on the service's own database): whoever
can run them can read the database anyway. Passed explicitly by the CLI."""


@dataclass(frozen=True)
class TokenRecord:
    """An API token as kept: whom it stands for, and until when."""

    principal: Principal
    token_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def check(self, now: datetime) -> Principal:
        if self.revoked_at is not None:
            raise Unauthenticated("this token was revoked")
        if self.expires_at is not None and self.expires_at <= now:
            raise Unauthenticated("this token has expired")
        return self.principal
