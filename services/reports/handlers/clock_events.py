"""The deadline clock's events, encoded from one template per plan entry and decision.

A busy pass fires a hundred thousand events that differ only in the obligation's id, its
unit's code and its unit path: the deadline, the plan entry and the steps are shared by
thousands. Building, validating and dumping a pydantic model for each was most of the
pass's own CPU. So the first obligation of each kind (same plan entry fields, same steps
firing) has its events built by the domain (:func:`~services.reports.domain.deadlines.
messages`) and encoded by pydantic as every event is, with stand-ins for those three
values; the others' bodies are that JSON with their own values put in place of the
stand-ins: the same bytes ``model_dump_json`` writes (the tests compare them).

Only plain values are put in so: an id and unit codes that JSON writes as they are and that
the event's validation accepts. Any other obligation is encoded by the domain's own path
(:meth:`ClockEvents.encode` answers None), and fails there as it always did.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from services.reports.domain.deadlines import ClockRules, Step, WorkingCalendar, messages
from services.reports.domain.model import Obligation
from shared.events import ObligationRef
from shared.units import is_unit_code
from shared.uow import EncodedEvent, UnitOfWork

ID_STAND_IN = "qcdc-clock-template-obligation-id"
CODE_STAND_IN = "QCDCCLOCKTEMPLATEUNITCODE"
PATH_STAND_IN = "QCDCCLOCKTEMPLATEUNITPATH"
_ID, _CODE, _PATH = f'"{ID_STAND_IN}"', f'"{CODE_STAND_IN}"', f'["{PATH_STAND_IN}"]'
_TOKENS = re.compile("(" + "|".join(re.escape(t) for t in (_ID, _CODE, _PATH)) + ")")

_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""Ids JSON writes without escaping anything (obligation ids are UUIDs)."""
MAX_PATH = 12
"""Levels a unit path may have (``shared.units.UnitPath``)."""

_SHARED = tuple(
    name for name in ObligationRef.model_fields if name not in {"obligation_id", "unit_code"}
)
"""The obligation's fields its events carry besides the three put in: the template's key."""
_OBLIGATION_FIELDS = {f.name for f in dataclasses.fields(Obligation)}
assert set(_SHARED) <= _OBLIGATION_FIELDS, "ObligationRef gained a field Obligation lacks"


@dataclasses.dataclass(frozen=True, slots=True)
class _Template:
    """One event of a kind, as JSON pieces around the values put in."""

    ce_type: str
    subject_prefix: str
    pieces: tuple[str, ...]
    """Text, a stand-in token, text, a token, …, text."""
    steps: tuple[Step, ...]


class ClockEvents:
    """The events of a pass, by template (see the module's documentation)."""

    def __init__(self, rules: ClockRules, calendar: WorkingCalendar) -> None:
        self.rules = rules
        self.calendar = calendar
        self._templates: dict[tuple[Any, ...], tuple[_Template, ...] | None] = {}

    def encode(
        self, uow: UnitOfWork, obligation: Obligation, fire: tuple[Step, ...]
    ) -> list[tuple[EncodedEvent, tuple[Step, ...]]] | None:
        """The encoded events for the steps that ``fire`` for ``obligation``, each with the
        steps it covers (as :func:`messages` gives them); None when the obligation's values
        are not plain, or its kind of event cannot be made a template: encode it as
        :func:`messages` and :meth:`UnitOfWork.publish` do."""
        if not _plain(obligation):
            return None
        key = (fire, *(getattr(obligation, name) for name in _SHARED))
        templates = self._templates.get(key, ())
        if templates == ():
            templates = self._templates[key] = self._make(uow, obligation, fire)
        if templates is None:
            return None
        path = obligation.unit_path
        values = {
            _ID: f'"{obligation.id}"',
            _CODE: f'"{obligation.unit_code}"',
            _PATH: '["' + '","'.join(path) + '"]',
        }
        subject_path = ".".join(path)
        found = []
        for template in templates:
            pieces = template.pieces
            body = "".join(piece if i % 2 == 0 else values[piece] for i, piece in enumerate(pieces))
            encoded = EncodedEvent(
                template.ce_type,
                f"{template.subject_prefix}.{subject_path}",
                path,
                body.encode(),
            )
            found.append((encoded, template.steps))
        return found

    def _make(
        self, uow: UnitOfWork, obligation: Obligation, fire: tuple[Step, ...]
    ) -> tuple[_Template, ...] | None:
        stand_in = dataclasses.replace(
            obligation,
            id=ID_STAND_IN,
            unit_code=CODE_STAND_IN,
            unit_path=[PATH_STAND_IN],
            events=[],
        )
        made = []
        for event, steps in messages(fire, stand_in, self.rules, self.calendar):
            event = uow.outgoing(event)
            prefix = event.subject_prefix()
            if event.subject() != f"{prefix}.{PATH_STAND_IN}":
                return None
            body = event.model_dump_json()
            pieces = tuple(_TOKENS.split(body))
            tokens = pieces[1::2]
            # Every stand-in must be a whole JSON value of its own, so that nothing else
            # in the body (a text quoting one) is replaced.
            for stand_in_text, token in (
                (ID_STAND_IN, _ID),
                (CODE_STAND_IN, _CODE),
                (PATH_STAND_IN, _PATH),
            ):
                if body.count(stand_in_text) != tokens.count(token):
                    return None
            made.append(_Template(event.ce_type(), prefix, pieces, steps))
        return tuple(made)


def _plain(obligation: Obligation) -> bool:
    path = obligation.unit_path
    return (
        _PLAIN_ID.fullmatch(obligation.id) is not None
        and is_unit_code(obligation.unit_code)
        and 0 < len(path) <= MAX_PATH
        and all(is_unit_code(code) for code in path)
    )
