"""Errors the domain raises and every entrypoint turns into a clear answer (HTTP 4xx, CLI
message, bus reply): what was refused, and which field it concerns."""

from __future__ import annotations


class Refused(Exception):
    """A command the rules refuse. HTTP 422, or 409 for ``Conflict``."""

    status_code = 422

    def __init__(
        self, message: str, field: str | None = None, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors or []
        """Several field-level problems at once: [{"field": …, "message": …}]."""


class Conflict(Refused):
    """The command clashes with what exists (e.g. a unit code already registered)."""

    status_code = 409


class Missing(LookupError):
    """What the command names does not exist. HTTP 404."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
