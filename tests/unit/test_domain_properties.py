"""Properties of the domain rules, checked by hypothesis over generated inputs rather than
a handful of chosen examples: deadlines, assignee expansion, obligation ids, indicator
rules, delivery keys and NFC normalisation."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from services.notify.domain.model import delivery_key
from services.plans.domain.plans import AssigneeRule, PlanRefused, expand_assignees
from services.plans.domain.units import Unit
from services.reports.domain.deadlines import (
    ClockPass,
    ClockRules,
    decide,
    first_step_at,
    schedule,
)
from services.reports.domain.indicators import (
    BY_CODE,
    NOT_MORE_THAN,
    FieldError,
    validate_indicators,
)
from services.reports.domain.model import RECONSIDER, obligation_id
from shared.events import Channel
from shared.units import NfcName, NfcText
from shared.vntime import ICT, is_on_time, last_instant_before

# Pure functions: many examples are cheap. No example database: no .hypothesis folder.
PROPERTIES = settings(max_examples=150, deadline=None, database=None)

days = st.dates(min_value=date(2000, 1, 2), max_value=date(2100, 12, 31))
unit_codes = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
schedule_keys = st.from_regex(r"[a-z0-9_-]{1,64}", fullmatch=True)


# --- "before <day>" deadlines ------------------------------------------------------------


@PROPERTIES
@given(day=days)
def test_the_last_instant_before_a_day_is_the_previous_days_last_microsecond_ict(
    day: date,
) -> None:
    due_at = last_instant_before(day)
    assert due_at.utcoffset() == timedelta(0)
    expected = datetime.combine(day - timedelta(days=1), time(23, 59, 59, 999999), tzinfo=ICT)
    assert due_at.astimezone(ICT).replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert due_at == expected


@PROPERTIES
@given(day=days, offset=st.integers(min_value=-(10**12), max_value=10**12))
def test_on_time_flips_exactly_at_the_last_instant(day: date, offset: int) -> None:
    due_at = last_instant_before(day)
    submitted_at = due_at + timedelta(microseconds=offset)
    assert is_on_time(submitted_at, due_at) is (offset <= 0)
    # The same instant seen in ICT is the same answer: only the instant counts.
    assert is_on_time(submitted_at.astimezone(ICT), due_at) is (offset <= 0)


@PROPERTIES
@given(day=days)
def test_midnight_ict_of_the_day_itself_is_late(day: date) -> None:
    midnight = datetime.combine(day, time(0, 0), tzinfo=ICT)
    assert not is_on_time(midnight, last_instant_before(day))
    assert is_on_time(midnight - timedelta(microseconds=1), last_instant_before(day))


# --- assignees ---------------------------------------------------------------------------

KINDS = ("department", "district", "commune", "public_service")


@dataclass(frozen=True)
class Registry:
    units: dict[str, Unit]
    issuer: Unit
    rule: AssigneeRule


@st.composite
def registries(draw: st.DrawFn) -> Registry:
    """A random hierarchy under a province (any depth, some units dissolved), an issuer
    somewhere in it and a rule naming kinds, subtrees and units, valid or not."""
    size = draw(st.integers(min_value=1, max_value=25))
    units: dict[str, Unit] = {"P": Unit(code="P", name="Tỉnh", kind="province", path=["P"])}
    codes = ["P"]
    for index in range(1, size):
        parent = units[codes[draw(st.integers(min_value=0, max_value=index - 1))]]
        code = f"U{index}"
        units[code] = Unit(
            code=code,
            name=f"Đơn vị {index}",
            kind=draw(st.sampled_from(KINDS)),
            path=[*parent.path, code],
            parent_code=parent.code,
            active=draw(st.sampled_from((True, True, True, False))),
        )
        codes.append(code)
    # Often the province or a unit high up, so that there is a subtree to choose from.
    issuer = units[draw(st.just("P") | st.sampled_from(codes[: 1 + len(codes) // 4]))]
    # Mostly units below the issuer (the rule's normal use), sometimes any unit at all.
    below = [c for c in codes if issuer.code in units[c].path and c != issuer.code]
    candidates = st.sampled_from(below) if below else st.sampled_from(codes)
    named = st.lists(candidates | st.sampled_from(codes), max_size=3, unique=True)
    rule = AssigneeRule(
        kinds=tuple(draw(st.lists(st.sampled_from(KINDS), max_size=3, unique=True))),
        kinds_via_parent=tuple(draw(st.lists(st.sampled_from(KINDS), max_size=2, unique=True))),
        subtrees=tuple(draw(named)),
        units=tuple(draw(named)),
    )
    return Registry(units, issuer, rule)


@PROPERTIES
@given(registry=registries())
def test_expanded_assignees_are_distinct_active_units_below_the_issuer(
    registry: Registry,
) -> None:
    try:
        chosen = expand_assignees(registry.rule, registry.issuer, registry.units)
    except PlanRefused:
        return  # a rule naming a dissolved, unknown or twice-named unit: refused, not guessed
    codes = [unit.code for unit in chosen]
    assert registry.issuer.code not in codes
    assert len(codes) == len(set(codes))
    for unit in chosen:
        assert unit.active
        assert registry.issuer.code in unit.path and unit.code != registry.issuer.code
        assert registry.units[unit.code] is unit


@PROPERTIES
@given(registry=registries())
def test_every_active_unit_of_an_assigned_kind_below_the_issuer_is_assigned(
    registry: Registry,
) -> None:
    rule = AssigneeRule(kinds=registry.rule.kinds)
    chosen = {u.code for u in expand_assignees(rule, registry.issuer, registry.units)}
    expected = {
        u.code
        for u in registry.units.values()
        if u.active
        and u.kind in rule.kinds
        and registry.issuer.code in u.path
        and u.code != registry.issuer.code
    }
    assert chosen == expected


# --- the incremental deadline clock ------------------------------------------------------


@st.composite
def clock_histories(draw: st.DrawFn) -> tuple[ClockRules, datetime, list[datetime], set[int]]:
    """Rules, a deadline, the instants the clock runs at (in order, from before the first
    reminder to well past the deadline) and which of those runs find the report submitted
    (in between, the unit submitted and the report was returned)."""
    rules = ClockRules(
        reminder_offsets_days=tuple(
            draw(st.lists(st.integers(1, 30), max_size=4, unique=True).map(sorted))[::-1]
        ),
        urge_every_working_days=draw(st.integers(1, 5)),
        urge_max_steps=draw(st.integers(0, 8)),
    )
    due_at = last_instant_before(draw(st.dates(date(2023, 1, 1), date(2030, 12, 31))))
    start = due_at - timedelta(days=45)
    gaps = draw(st.lists(st.integers(1, 4 * 24 * 60), min_size=1, max_size=40))
    runs: set[datetime] = {start}
    for gap in gaps:
        runs.add(max(runs) + timedelta(minutes=gap))
    # Runs at, just before and just after planned steps: where an early or late
    # next step would show.
    steps = [s.planned_for for s in islice(schedule(due_at, rules), 12)]
    nudges = [timedelta(microseconds=-1), timedelta(0), timedelta(minutes=5)]
    near = st.tuples(st.sampled_from(steps), st.sampled_from(nudges))
    runs |= {step + nudge for step, nudge in draw(st.lists(near, max_size=30))}
    ordered = sorted(runs - {start})
    submitted = draw(st.sets(st.integers(0, len(ordered) - 1), max_size=len(ordered) // 3))
    return rules, due_at, ordered, submitted


@PROPERTIES
@given(history=clock_histories())
def test_deciding_only_when_the_next_step_comes_fires_what_deciding_every_run_fires(
    history: tuple[ClockRules, datetime, list[datetime], set[int]],
) -> None:
    """The incremental clock (decide only once ``next_step_at`` has come, then move it on;
    a returned report is reconsidered) against the clock that decided at every run; and
    the steps recorded follow from ``next_step_at`` wherever the clock set it."""
    rules, due_at, runs, submitted = history
    every_run: list[str] = []
    recorded_every: set[str] = set()
    incremental: list[str] = []
    recorded: set[str] = set()
    next_step: datetime | None = first_step_at(due_at, rules)
    for index, now in enumerate(runs):
        if index in submitted:
            next_step = None  # off the clock while submitted
            continue
        if next_step is None:
            # Returned for revision, awaited again (or the urgings ended: reconsidering
            # then finds nothing to fire).
            next_step = RECONSIDER
        full = decide(due_at, now, recorded_every, rules)
        every_run += [s.name for s in full.fire]
        recorded_every |= {s.name for s in (*full.fire, *full.skip)}
        this = ClockPass(now, rules)
        if next_step <= now:
            # Where the clock set next_step itself, what is recorded follows from it.
            derived = this.recorded_before(due_at, next_step)
            assert derived is None or derived == recorded
            assert derived is not None or next_step == RECONSIDER
            decision = this.decide(due_at, recorded if derived is None else derived)
            incremental += [s.name for s in decision.fire]
            recorded |= {s.name for s in (*decision.fire, *decision.skip)}
            next_step = this.next_step_at(due_at)
            # None only once the last urging is planned: nothing more for the clock to do.
            assert next_step is None or next_step > now
            if next_step is None:
                last = list(schedule(due_at, rules))[-1]
                assert last.planned_for <= now and last.name in recorded
                assert not ClockPass(now + timedelta(days=400), rules).decide(due_at, recorded)
        else:
            assert not this.decide(due_at, recorded)  # nothing would have fired anyway
    assert incremental == every_run
    assert recorded == recorded_every


# --- obligation ids ----------------------------------------------------------------------


@PROPERTIES
@given(plan_id=st.text(min_size=1, max_size=64), key=schedule_keys, unit=unit_codes)
def test_obligation_ids_are_deterministic(plan_id: str, key: str, unit: str) -> None:
    assert obligation_id(plan_id, key, unit) == obligation_id(plan_id, key, unit)


@PROPERTIES
@given(
    triples=st.lists(
        st.tuples(st.text(min_size=1, max_size=64), schedule_keys, unit_codes),
        min_size=2,
        max_size=20,
        unique=True,
    )
)
def test_obligation_ids_are_distinct_per_plan_entry_and_unit(
    triples: list[tuple[str, str, str]],
) -> None:
    # Keys and unit codes cannot contain the separator, so any plan id stays unambiguous.
    ids = {obligation_id(*triple) for triple in triples}
    assert len(ids) == len(triples)


# --- indicator rules ---------------------------------------------------------------------


@st.composite
def valid_indicators(draw: st.DrawFn) -> dict[str, int]:
    codes = draw(st.lists(st.sampled_from(sorted(BY_CODE)), unique=True))
    values = {
        code: draw(st.integers(min_value=0, max_value=BY_CODE[code].maximum)) for code in codes
    }
    for part, whole in NOT_MORE_THAN:
        if part in values and whole not in values:
            values[whole] = draw(
                st.integers(min_value=values[part], max_value=BY_CODE[whole].maximum)
            )
        if part in values and values[part] > values[whole]:
            values[part] = draw(st.integers(min_value=0, max_value=values[whole]))
    return values


@PROPERTIES
@given(values=valid_indicators())
def test_values_that_keep_the_rules_have_no_error(values: dict[str, int]) -> None:
    assert validate_indicators(values) == []


@PROPERTIES
@given(
    values=valid_indicators(),
    pair=st.sampled_from(NOT_MORE_THAN),
    received=st.integers(min_value=0, max_value=10**6),
    excess=st.integers(min_value=1, max_value=10**6),
)
def test_resolved_above_received_is_exactly_that_fields_error(
    values: dict[str, int], pair: tuple[str, str], received: int, excess: int
) -> None:
    part, whole = pair
    values = {**values, whole: received, part: received + excess}
    errors = validate_indicators(values)
    assert [e.field for e in errors] == [f"indicators.{part}"]
    assert "exceeds" in errors[0].message


@PROPERTIES
@given(
    values=valid_indicators(),
    code=st.sampled_from(sorted(BY_CODE)),
    bad=st.one_of(
        st.integers(max_value=-1),
        st.booleans(),
        st.floats(allow_nan=True),
        st.text(max_size=5),
        st.none(),
    ),
)
def test_a_value_that_is_no_whole_count_is_refused_on_its_field(
    values: dict[str, int], code: str, bad: Any
) -> None:
    errors = validate_indicators({**values, code: bad})
    assert FieldError(f"indicators.{code}", errors[0].message) in errors


@PROPERTIES
@given(
    values=valid_indicators(),
    code=st.sampled_from(sorted(BY_CODE)),
    above=st.integers(min_value=1, max_value=10**30),
)
def test_a_count_above_its_bound_is_refused_on_its_field(
    values: dict[str, int], code: str, above: int
) -> None:
    errors = validate_indicators({**values, code: BY_CODE[code].maximum + above})
    assert f"indicators.{code}" in [e.field for e in errors]
    assert any("at most" in e.message for e in errors if e.field == f"indicators.{code}")


@PROPERTIES
@given(values=valid_indicators(), pair=st.sampled_from(NOT_MORE_THAN))
def test_a_part_without_its_whole_is_refused_naming_the_whole(
    values: dict[str, int], pair: tuple[str, str]
) -> None:
    """Missing is "not reported", never 0: resolved needs received beside it (even 0
    resolved), while received alone claims nothing about resolved."""
    part, whole = pair
    without_whole = {k: v for k, v in values.items() if k != whole}
    errors = validate_indicators({**without_whole, part: values.get(part, 0)})
    assert [e.field for e in errors] == [f"indicators.{whole}"]
    assert "required" in errors[0].message
    only_whole = {k: v for k, v in values.items() if k != part}
    assert validate_indicators({**only_whole, whole: values.get(whole, 0)}) == []


# --- delivery keys -----------------------------------------------------------------------

emails = st.emails()


@PROPERTIES
@given(event_id=st.uuids().map(str), recipient=emails, channel=st.sampled_from(Channel))
def test_delivery_keys_are_deterministic_and_ignore_the_recipients_case(
    event_id: str, recipient: str, channel: Channel
) -> None:
    key = delivery_key(event_id, recipient, channel)
    assert key == delivery_key(event_id, recipient, channel)
    assert key == delivery_key(event_id, recipient.upper(), channel)
    assert key == delivery_key(event_id, recipient.lower(), channel)


@PROPERTIES
@given(
    first=st.tuples(st.uuids().map(str), emails, st.sampled_from(Channel)),
    second=st.tuples(st.uuids().map(str), emails, st.sampled_from(Channel)),
)
def test_delivery_keys_differ_when_event_recipient_or_channel_differ(
    first: tuple[str, str, Channel], second: tuple[str, str, Channel]
) -> None:
    assume((first[0], first[1].lower(), first[2]) != (second[0], second[1].lower(), second[2]))
    assert delivery_key(*first) != delivery_key(*second)


# --- NFC ---------------------------------------------------------------------------------

name = TypeAdapter(NfcName)
free_text = TypeAdapter(NfcText)
# Letters, digits, punctuation and spaces, with Vietnamese marks, composed or not.
printable = st.text(
    st.characters(
        categories=("L", "M", "N", "P", "S", "Zs"), include_characters="ăâđêôơưàảãáạ\u0300\u0309"
    ),
    max_size=60,
)
controls = st.characters(categories=("Cc", "Cf", "Co"), exclude_characters="\n\r\t")


@PROPERTIES
@given(text=printable)
def test_nfc_normalisation_is_idempotent_and_ignores_the_input_form(text: str) -> None:
    once = name.validate_python(text)
    assert unicodedata.is_normalized("NFC", once)
    assert name.validate_python(once) == once
    assert name.validate_python(unicodedata.normalize("NFD", text)) == once
    assert free_text.validate_python(text) == once


@PROPERTIES
@given(before=printable, control=controls, after=printable)
def test_a_control_character_inside_a_name_is_refused(
    before: str, control: str, after: str
) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        name.validate_python(f"x{before}{control}{after}x")
    with pytest.raises(ValidationError, match="control characters"):
        free_text.validate_python(f"x{before}{control}{after}x")


@PROPERTIES
@given(lines=st.lists(printable, min_size=2, max_size=4))
def test_free_text_keeps_line_breaks_that_names_refuse(lines: list[str]) -> None:
    text = "x" + "\n".join(lines) + "x"
    assert "\n" in free_text.validate_python(text)
    with pytest.raises(ValidationError):
        name.validate_python(text)
