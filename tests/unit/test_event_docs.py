"""The event reference in docs/events.md and docs/schemas/ matches the code."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from shared.events import BY_TYPE, CATALOGUE, Event

ROOT = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    """scripts/ is not a package: load the generator from its file (also keeps mypy from
    seeing it under two module names)."""
    name = "gen_event_docs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "gen_event_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
BEGIN: str = gen.BEGIN
END: str = gen.END
EVENTS_MD: Path = gen.EVENTS_MD
SCHEMAS_DIR: Path = gen.SCHEMAS_DIR
examples: Callable[[], dict[type[Event], Event]] = gen.examples
main: Callable[[Sequence[str]], int] = gen.main
out_of_date: Callable[..., list[Path]] = gen.out_of_date
splice: Callable[[str, str], str] = gen.splice
write: Callable[[Path], list[Path]] = gen.write


def _hand_written(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END)
    return text[:start] + text[end + len(END) :]


def test_generated_docs_are_up_to_date() -> None:
    stale = out_of_date()
    assert stale == [], (
        f"out of date: {', '.join(map(str, stale))}; run: python scripts/gen_event_docs.py"
    )


def test_check_mode_passes_on_the_repository() -> None:
    assert main(["--check"]) == 0


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.__name__)
def test_every_event_is_documented(cls: type[Event]) -> None:
    text = (ROOT / EVENTS_MD).read_text(encoding="utf-8")
    assert cls.ce_type() in text
    assert f"### {cls.__name__}\n" in text
    assert f"`{cls.subject_prefix()}.<unit path tokens>`" in text
    # The hand-written status table says whether anything publishes or consumes it yet.
    assert f"`{cls.__name__}`" in _hand_written(text), f"{cls.__name__} missing from the status"
    schema = json.loads((ROOT / SCHEMAS_DIR / f"{cls.ce_type()}.json").read_text("utf-8"))
    assert schema["title"] == cls.__name__


def test_examples_are_valid_events_of_their_type() -> None:
    for cls, event in examples().items():
        assert BY_TYPE[cls.ce_type()] is cls
        assert cls.model_validate_json(event.model_dump_json()) == event


def test_splice_keeps_the_hand_written_text() -> None:
    document = f"# Title\n\nBefore.\n\n{BEGIN}\nold\n{END}\n\nAfter.\n"
    assert splice(document, "new\n") == f"# Title\n\nBefore.\n\n{BEGIN}\nnew\n{END}\n\nAfter.\n"
    assert splice("# Title\n", "new\n") == f"# Title\n\n{BEGIN}\nnew\n{END}\n"


def test_check_mode_notices_an_edit_and_a_stray_schema(tmp_path: Path) -> None:
    (tmp_path / EVENTS_MD).parent.mkdir(parents=True)
    (tmp_path / EVENTS_MD).write_text(f"# Events\n\n{BEGIN}\n{END}\n", encoding="utf-8")
    assert write(tmp_path)
    assert out_of_date(tmp_path) == []

    schema = tmp_path / SCHEMAS_DIR / f"{CATALOGUE[0].ce_type()}.json"
    schema.write_text("{}", encoding="utf-8")
    stray = tmp_path / SCHEMAS_DIR / "qcdc.gone.away.v1.json"
    stray.write_text("{}", encoding="utf-8")
    assert set(out_of_date(tmp_path)) == {schema.relative_to(tmp_path), stray.relative_to(tmp_path)}

    write(tmp_path)
    assert out_of_date(tmp_path) == []
    assert not stray.exists()
    assert (tmp_path / EVENTS_MD).read_text(encoding="utf-8").startswith("# Events\n\n")


def test_the_consumer_table_is_the_services_consumers() -> None:
    """docs/events.md lists every durable the services declare, on its stream."""
    from services.nats_principals import service_durables

    text = (ROOT / EVENTS_MD).read_text(encoding="utf-8")
    section = text.split("## The services' own consumers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:5] for line in section.splitlines() if line.startswith("| `")]
    documented = {(c[1].strip(" `"), c[0].strip(" `"), c[3].strip()) for c in rows}
    everything = {
        (durable.stream, durable.name, service)
        for service, durables in service_durables().items()
        for durable in durables
    }
    # Each consumer's retry durable (dead letters sent back) is described once, not listed.
    retries = {d for d in everything if d[0] == "QCDC_DEADLETTER" and d[1].endswith("-retry")}
    declared = everything - retries
    assert documented == declared
    assert {("QCDC_DEADLETTER", f"{d[1]}-retry", d[2]) for d in declared} == retries
    assert "`<durable>-retry`" in section
