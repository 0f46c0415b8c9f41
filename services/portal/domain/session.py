"""Who is signed in to the portal: their own credential and what the services say it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Session:
    """Kept in an encrypted, HttpOnly cookie: the portal stores nothing of the user."""

    token: str
    """The user's API token or OIDC access token; every call to a service carries it.
    Empty in the open development mode, where the services ask for none."""
    unit_code: str
    unit_name: str
    role: str
    csrf: str
    via: str = "token"
    """token | oidc | open"""

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Session:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__ if k in data})

    @property
    def submits(self) -> bool:
        return self.role in ("submitter", "administrator")

    @property
    def reviews(self) -> bool:
        return self.role in ("reviewer", "administrator")

    @property
    def administers(self) -> bool:
        return self.role == "administrator"

    @property
    def inspects(self) -> bool:
        """Schedules inspections, and closes or returns the actions they require."""
        return self.role in ("reviewer", "planner", "administrator")

    @property
    def requests_reports(self) -> bool:
        return self.role in ("reviewer", "planner", "administrator")
