"""Who acts for a unit: the one authorization every unit-side command shares."""

from __future__ import annotations

from shared.auth import Principal, Role
from shared.security import authorize


def act_for_unit(caller: Principal, unit_code: str, unit_path: list[str], doing: str) -> None:
    """The unit's own submitter, or an administrator over it, acts for it: it submits,
    answers, reports on what it owes, records its conference and attaches its files.
    Refuses anyone else (``doing`` says what, in the refusal)."""
    authorize(
        caller,
        Role.SUBMITTER,
        Role.ADMINISTRATOR,
        unit=unit_code,
        doing=doing,
        unit_path=unit_path,
    )
