"""The ``qcdc`` command line starts light: ``qcdc --help`` (and every group's help) lists
every command with its help text without importing any service, database, bus or document
library; ``qcdc up`` takes its start timeout from an option or QCDC_START_TIMEOUT."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from services.cli import app
from tests.support import patience

HEAVY_MODULES = (
    # what building the CLI used to import: every service and what they stand on
    "services.plans.bootstrap",
    "services.reports.bootstrap",
    "services.notify.bootstrap",
    "services.nats_principals",
    "services.reports.adapters.documents",
    "shared.runtime",
    "shared.db",
    "shared.events",
    "docx",
    "openpyxl",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "faststream",
    "nats",
    "httpx",
    "holidays",
    "vietnam_provinces",
    "yaml",
)
ALSO_NOT_FOR_QCDC_HELP = ("pydantic", "structlog")
"""Imported for a group's help page (typer's callback machinery, and the logging set up
before any subcommand), but not for ``qcdc --help``."""

# Runs the real entry point (``main``) for each help page, then reports what was imported.
_HELP_SCRIPT = """
import json, runpy, sys
pages, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for args in pages:
    sys.argv = ["qcdc", *args, "--help"]
    try:
        runpy.run_module("services", run_name="__main__")
    except SystemExit:
        pass
heavy = [name for name in watched if name in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


def _tree() -> dict[str, Any]:
    return typer.main.get_command(app).commands  # type: ignore[attr-defined,no-any-return]


def _words(text: str) -> str:
    """Text without rich's box drawing, whitespace collapsed: wrapping does not matter."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _first_paragraph(command: Any) -> str:
    return _words((command.help or "").split("\n\n")[0])


def _help_pages(pages: list[list[str]], watched: tuple[str, ...]) -> tuple[str, list[str]]:
    """The help pages' text, and which of the watched modules they imported."""
    env = {**os.environ, "TERMINAL_WIDTH": "200"}
    done = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT, json.dumps(pages), json.dumps(watched)],
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(60),
        check=True,
    )
    heavy: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return done.stdout, heavy


def test_help_lists_every_command_with_its_help_and_imports_nothing_heavy() -> None:
    tree = _tree()
    groups = [[name] for name, command in tree.items() if hasattr(command, "commands")]
    assert len(groups) >= 6, groups  # bus, outbox, units, plans, reports, tokens, nats
    top, heavy = _help_pages([[]], (*HEAVY_MODULES, *ALSO_NOT_FOR_QCDC_HELP))
    assert heavy == [], f"qcdc --help imported {heavy}"
    for name, command in tree.items():
        assert f"{name} {_first_paragraph(command)}" in _words(top), name

    output, heavy = _help_pages(groups, HEAVY_MODULES)
    assert heavy == [], f"the groups' help pages imported {heavy}"
    pages = _words(output)
    for name, command in tree.items():
        for sub_name, sub in getattr(command, "commands", {}).items():
            assert f"{sub_name} {_first_paragraph(sub)}" in pages, f"{name} {sub_name}"


CLI_MODULES = (
    "services.cli",
    "services.nats_cli",
    "services.plans.entrypoints.cli.console",
    "services.plans.entrypoints.cli.plans",
    "services.plans.entrypoints.cli.units",
    "services.plans.entrypoints.cli.tokens",
    "services.reports.entrypoints.cli",
)


def _imports_inside_functions(module_name: str) -> Iterator[tuple[str, str | None]]:
    """(module, name) of every import statement inside a function of the module."""
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                yield from ((alias.name, None) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield from ((node.module, alias.name) for alias in node.names)


def test_what_commands_import_when_they_run_exists() -> None:
    # A command's own imports run only when it does: check every one resolves.
    checked = 0
    for module_name in CLI_MODULES:
        for target, name in _imports_inside_functions(module_name):
            module = importlib.import_module(target)
            if name is not None and not hasattr(module, name):
                importlib.import_module(f"{target}.{name}")  # a submodule
            checked += 1
    assert checked >= 20


def test_units_export_offers_the_handlers_file_formats() -> None:
    from services.plans.entrypoints.cli.units import ExportFormat
    from services.plans.handlers.unit_import import FileFormat

    assert [f.value for f in ExportFormat] == [f.value for f in FileFormat]


class _Captured:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data_dir: str, ports: object, **options: Any) -> int:
        self.calls.append({"data_dir": data_dir, **options})
        return 0


@pytest.fixture
def captured_up(monkeypatch: pytest.MonkeyPatch) -> _Captured:
    import services.embedded

    captured = _Captured()
    monkeypatch.setattr(services.embedded, "run_embedded", captured)
    monkeypatch.delenv("QCDC_START_TIMEOUT", raising=False)
    return captured


def test_up_takes_its_start_timeout_from_the_option(captured_up: _Captured) -> None:
    result = CliRunner().invoke(app, ["up", "--no-seed", "--start-timeout", "7.5"])
    assert result.exit_code == 0, result.output
    assert captured_up.calls[0]["start_timeout"] == 7.5


def test_up_takes_its_start_timeout_from_the_environment(captured_up: _Captured) -> None:
    result = CliRunner().invoke(app, ["up"], env={"QCDC_START_TIMEOUT": "42"})
    assert result.exit_code == 0, result.output
    assert captured_up.calls[0]["start_timeout"] == 42.0
    default = CliRunner().invoke(app, ["up"])
    assert default.exit_code == 0, default.output
    assert captured_up.calls[1]["start_timeout"] == 120.0


def test_up_refuses_a_start_timeout_below_one_second(captured_up: _Captured) -> None:
    result = CliRunner().invoke(app, ["up", "--start-timeout", "0"])
    assert result.exit_code == 2
    assert captured_up.calls == []


def test_up_takes_the_size_of_its_nats_cluster(captured_up: _Captured) -> None:
    assert CliRunner().invoke(app, ["up", "--cluster", "3"]).exit_code == 0
    assert CliRunner().invoke(app, ["up"]).exit_code == 0
    assert [call["cluster"] for call in captured_up.calls] == [3, 1]
    assert CliRunner().invoke(app, ["up", "--cluster", "0"]).exit_code == 2


def test_a_taken_port_of_a_later_cluster_node_is_named_before_anything_starts() -> None:
    import socket

    from services.embedded import EmbeddedPorts, port_problem
    from services.natsd import free_port

    ports = EmbeddedPorts(nats=free_port(), plans=1, reports=2, notify=3, smtp=4, portal=5)
    assert ports.nats_ports(3) == [ports.nats, ports.nats + 1, ports.nats + 2]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        try:
            taken.bind(("127.0.0.1", ports.nats + 2))
        except OSError:
            pytest.skip(f"port {ports.nats + 2} is taken by something else here")
        taken.listen()
        problem = port_problem(ports, 3) or ""
    assert f"Port {ports.nats + 2} for NATS node 3 is already in use" in problem
    assert "--nats-port" in problem
