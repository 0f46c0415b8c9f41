"""Static checks of the Docker Compose deployment (no Docker engine needed).

- ``compose.yaml`` is valid against the Compose Specification (``check-jsonschema``, offline),
  and the validator really rejects a broken file.
- Every service built from our ``Dockerfile`` runs a real ``qcdc`` command with arguments the
  CLI accepts.
- Ports, databases, start order and the NATS durability setting are consistent.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support import patience

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"

# The contract: service name -> HTTP port (and database name = service name).
QCDC_SERVICES = {"plans": 8301, "reports": 8302, "notify": 8303}

Compose = dict[str, Any]
Service = dict[str, Any]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> Compose:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "compose.yaml must be a mapping"
    return data


def services_of(compose: Compose) -> dict[str, Service]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "compose.yaml has no services"
    return services


def built_from_dockerfile(compose: Compose) -> dict[str, Service]:
    """Services that build our image, or reuse the image tag such a service builds."""
    services = services_of(compose)
    built_images = {svc["image"] for svc in services.values() if "build" in svc and "image" in svc}
    return {
        name: svc
        for name, svc in services.items()
        if "build" in svc or svc.get("image") in built_images
    }


def argv_of(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(part) for part in value]


def container_argv(svc: Service) -> list[str]:
    """What the container executes: entrypoint + command (both from compose)."""
    return argv_of(svc.get("entrypoint")) + argv_of(svc.get("command"))


def environment_of(svc: Service) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: (pair[1] if len(pair) == 2 else "") for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def healthcheck_argv(svc: Service) -> list[str]:
    test = (svc.get("healthcheck") or {}).get("test")
    argv = argv_of(test)
    if argv and argv[0] in {"CMD", "CMD-SHELL"}:
        argv = argv[1:]
    return argv


def port_targets(svc: Service) -> set[int]:
    """Container ports published by a service (short or long syntax)."""
    targets: set[int] = set()
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            targets.add(int(entry["target"]))
        else:
            spec = str(entry).split("/", 1)[0]
            targets.add(int(spec.rsplit(":", 1)[-1]))
    return targets


def readyz_port(url: str) -> int:
    match = re.fullmatch(r"https?://[^/:]+:(\d+)/readyz", url)
    assert match, f"no explicit port in {url}"
    return int(match.group(1))


_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolated(value: str, env: dict[str, str] | None = None) -> str:
    """``${VAR:-default}`` as Compose reads it with ``env`` for the environment (none: the
    defaults, as on a host without a ``.env``)."""
    return _DEFAULTED.sub(lambda m: (env or {}).get(m.group(1)) or m.group(2), value)


def bind_mounts(svc: Service, env: dict[str, str] | None = None) -> dict[str, Path]:
    """Container path -> host path, for bind mounts of files relative to compose.yaml."""
    mounts: dict[str, Path] = {}
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                source = interpolated(str(entry["source"]), env)
                mounts[str(entry["target"])] = (ROOT / source).resolve()
            continue
        source, target, *_ = str(entry).split(":")
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def named_volume_targets(svc: Service, compose: Compose) -> set[str]:
    named = set((compose.get("volumes") or {}).keys())
    targets: set[str] = set()
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") == "volume" and entry.get("source") in named:
                targets.add(str(entry["target"]))
            continue
        source, target, *_ = str(entry).split(":")
        if source in named:
            targets.add(target)
    return targets


def check_jsonschema_executable() -> Path:
    candidate = Path(sys.executable).parent / "check-jsonschema"
    if candidate.exists():
        return candidate
    found = shutil.which("check-jsonschema")
    if found is None:
        pytest.fail("check-jsonschema is not installed (it is in the dev extras)")
    return Path(found)


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(check_jsonschema_executable()), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=patience(60),
        check=False,
    )


# --------------------------------------------------------------- NATS config (naive)


def _strip_comment(line: str) -> str:
    """Drop a ``#`` or ``//`` comment that is not inside quotes."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" or line.startswith("//", index):
            return line[:index]
    return line


_BLOCK_OPEN = re.compile(r"([A-Za-z_][\w-]*)\s*[:=]?\s*\{")
_SETTING = re.compile(r"([A-Za-z_][\w-]*)\s*(?:[:=]\s*|\s+)(.*?)\s*[,;]?")


def nats_settings(text: str) -> dict[tuple[str, ...], dict[str, str]]:
    """Settings of a NATS config file, per block path: ``{(): {...}, ("jetstream",): {...}}``.

    Handles the subset we ship: one setting per line (``key: value``, ``key = value`` or
    ``key value``), ``name {`` … ``}`` blocks on their own lines, comments.
    """
    blocks: dict[tuple[str, ...], dict[str, str]] = {(): {}}
    path: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line == "}":
            assert path, f"line {number}: '}}' without an open block"
            path.pop()
            continue
        opened = _BLOCK_OPEN.fullmatch(line)
        if opened:
            path.append(opened.group(1))
            blocks.setdefault(tuple(path), {})
            continue
        setting = _SETTING.fullmatch(line)
        assert setting, f"line {number}: cannot read {raw!r}"
        value = setting.group(2).strip("\"'")
        blocks.setdefault(tuple(path), {})[setting.group(1)] = value
    assert not path, f"unclosed block(s): {path}"
    return blocks


def test_nats_config_reader_is_not_fooled() -> None:
    text = "\n".join(
        [
            "sync_interval: always  # top level: not inside jetstream",
            "jetstream {",
            "  # sync_interval: always",
            '  store_dir: "/data/js"',
            "  // sync_interval: always",
            "}",
            "cluster {",
            "  sync_interval = always",
            "}",
        ]
    )
    blocks = nats_settings(text)
    assert blocks[("jetstream",)] == {"store_dir": "/data/js"}
    assert blocks[()]["sync_interval"] == "always"
    assert blocks[("cluster",)]["sync_interval"] == "always"


# ------------------------------------------------------------------------ 1. schema


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = validate_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def _break_ports(doc: Compose) -> None:
    doc["services"]["plans"]["ports"] = 8301


def _break_top_level(doc: Compose) -> None:
    doc["servicez"] = doc["services"]


def _break_depends_on(doc: Compose) -> None:
    doc["services"]["plans"]["depends_on"]["nats"]["condition"] = "service_ready"


@pytest.mark.parametrize("breakage", [_break_ports, _break_top_level, _break_depends_on])
def test_the_validator_rejects_a_broken_compose_file(
    compose: Compose, breakage: Any, tmp_path: Path
) -> None:
    doc = yaml.safe_load(yaml.safe_dump(compose))  # a deep copy, anchors resolved
    breakage(doc)
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    result = validate_compose(broken)
    assert result.returncode != 0, f"{breakage.__name__} was accepted:\n{result.stdout}"


# --------------------------------------------------------------------- 2. commands
#
# typer >= 0.29 builds its commands on a copy of click vendored as ``typer._click`` (older
# releases on click itself), so the command tree is walked by duck typing and both families
# of usage errors are recognised.


def _usage_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [click.UsageError]
    try:
        from typer._click.exceptions import UsageError as TyperUsageError
    except ImportError:  # typer on plain click
        pass
    else:
        errors.append(TyperUsageError)
    return tuple(errors)


def _load_cli_root() -> Any:
    if importlib.util.find_spec("services.cli") is None:
        pytest.skip("services.cli does not exist yet")
    import typer.main

    import services.cli

    return typer.main.get_command(services.cli.app)


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands") and hasattr(command, "get_command")


def _resolve(root: Any, args: list[str]) -> tuple[list[str], Any, list[str]]:
    """Walk groups to the leaf command; return (command path, command, its arguments)."""
    command, path, rest = root, list[str](), list(args)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        with command.context_class(command, info_name=" ".join(["qcdc", *path])) as ctx:
            sub = command.get_command(ctx, rest[0])
            known = sorted(command.list_commands(ctx))
        assert sub is not None, f"'qcdc {' '.join([*path, rest[0]])}' is not a command: {known}"
        path.append(rest.pop(0))
        command = sub
    return path, command, rest


def _parse(command: Any, path: list[str], args: list[str]) -> None:
    """Parse (without running) ``args`` for a leaf command; a bad value raises a usage error."""
    ctx = command.make_context(" ".join(["qcdc", *path]), list(args))
    ctx.close()


def _qcdc_argvs(compose: Compose) -> Iterator[tuple[str, Service, list[str]]]:
    for name, svc in built_from_dockerfile(compose).items():
        yield name, svc, container_argv(svc)


def test_qcdc_image_services_run_qcdc(compose: Compose) -> None:
    found = {name: argv for name, _, argv in _qcdc_argvs(compose)}
    assert set(QCDC_SERVICES) | {"provision"} <= set(found)
    for name, argv in found.items():
        # Without an explicit command the image would only print `qcdc --help` and exit.
        assert argv, f"{name}: no command (the image default is `qcdc --help`)"
        assert argv[0] == "qcdc", f"{name}: runs {argv!r}, not the qcdc console script"
    for name in QCDC_SERVICES:
        assert found[name] == ["qcdc", "serve", name]
    assert found["provision"] == ["qcdc", "bus", "provision"]


def test_qcdc_commands_exist_and_accept_their_arguments(
    compose: Compose, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _load_cli_root()
    checked = 0
    for name, svc, argv in _qcdc_argvs(compose):
        path, command, rest = _resolve(root, argv[1:])
        assert path, f"{name}: `{shlex.join(argv)}` names no subcommand"
        assert not _is_group(command), f"{name}: 'qcdc {' '.join(path)}' is a group"
        # Parsed in the container's environment, so options bound to environment variables
        # see what compose gives them. `--help` is not used: it is eager and would exit
        # before the argument value is checked.
        with monkeypatch.context() as patch:
            for key, value in environment_of(svc).items():
                patch.setenv(key, value)
            try:
                _parse(command, path, rest)
            except _usage_errors() as error:
                pytest.fail(f"{name}: `{shlex.join(argv)}` is rejected: {error}")
        checked += 1
    assert checked >= len(QCDC_SERVICES) + 1


def test_serve_rejects_an_unknown_service() -> None:
    """Negative control: `serve` checks its argument while parsing, so the test above means
    something (`serve plans|reports|notify` and nothing else)."""
    root = _load_cli_root()
    path, serve, _ = _resolve(root, ["serve"])
    assert not _is_group(serve)
    for name in QCDC_SERVICES:
        _parse(serve, path, [name])
    with pytest.raises(_usage_errors()):
        _parse(serve, path, ["no-such-service"])
    with pytest.raises(_usage_errors()):
        _parse(serve, path, [])


# ------------------------------------------------------------ 3. ports, databases, NATS


def test_each_service_checks_its_own_http_port(compose: Compose) -> None:
    services = services_of(compose)
    for name, port in QCDC_SERVICES.items():
        svc = services[name]
        env = environment_of(svc)
        assert int(env["QCDC_HTTP_PORT"]) == port, name
        assert env.get("QCDC_HTTP_HOST") == "0.0.0.0", f"{name}: must listen on all interfaces"
        health = healthcheck_argv(svc)
        assert health[:2] == ["python", "-c"], f"{name}: healthcheck must use python"
        urls = re.findall(r"https?://[^/'\"\s]+(?::\d+)?/readyz", " ".join(health))
        assert len(urls) == 1, f"{name}: healthcheck must ask one /readyz URL: {health!r}"
        checked = readyz_port(urls[0])
        assert checked == port, f"{name}: healthcheck port {checked} != QCDC_HTTP_PORT {port}"
        assert port in port_targets(svc), f"{name}: port {port} is not published"


def test_each_service_has_its_own_database(compose: Compose) -> None:
    services = services_of(compose)
    seen: dict[str, str] = {}
    hosts: set[str] = set()
    for name in QCDC_SERVICES:
        url = make_url(environment_of(services[name])["QCDC_DATABASE_URL"])
        assert url.drivername == "postgresql+asyncpg", name
        assert url.host in services, f"{name}: database host {url.host} is not a compose service"
        assert url.database == name, f"{name}: uses database {url.database}"
        assert url.database not in seen, f"{name} and {seen.get(url.database)} share a database"
        seen[url.database] = name
        hosts.add(url.host)
    assert len(hosts) == 1, f"expected one PostgreSQL server, found {sorted(hosts)}"

    postgres = services[hosts.pop()]
    scripts = {
        target: source
        for target, source in bind_mounts(postgres).items()
        if PurePosixPath(target).parent == PurePosixPath("/docker-entrypoint-initdb.d")
    }
    assert scripts, "no init script mounted into /docker-entrypoint-initdb.d"
    created: set[str] = set()
    for source in scripts.values():
        sql = source.read_text(encoding="utf-8")
        created |= {m.lower() for m in re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)", sql, re.I)}
    assert set(QCDC_SERVICES) <= created, f"init script creates {sorted(created)}"


def test_start_order(compose: Compose) -> None:
    services = services_of(compose)
    expected = {
        "nats": "service_healthy",
        "postgres": "service_healthy",
        "provision": "service_completed_successfully",
    }
    for name in QCDC_SERVICES:
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on must use the long syntax"
        conditions = {dep: spec.get("condition") for dep, spec in depends.items()}
        for dep, condition in expected.items():
            assert conditions.get(dep) == condition, f"{name} -> {dep}: {conditions.get(dep)}"
    assert services["notify"]["depends_on"]["mailpit"]["condition"] == "service_started"
    assert services["provision"]["depends_on"]["nats"]["condition"] == "service_healthy"
    assert services["provision"].get("restart", "no") == "no"

    # `service_healthy` on a service without a healthcheck never comes true.
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits on {dep}: no healthcheck"


def test_reports_keeps_attachments_on_a_volume(compose: Compose) -> None:
    reports = services_of(compose)["reports"]
    data_dir = PurePosixPath(environment_of(reports)["QCDC_DATA_DIR"])
    volumes = {PurePosixPath(target) for target in named_volume_targets(reports, compose)}
    assert any(data_dir == v or v in data_dir.parents for v in volumes), (
        f"QCDC_DATA_DIR={data_dir} is not on a named volume ({sorted(map(str, volumes))})"
    )


@pytest.mark.parametrize(
    ("service", "env"),
    [
        ("nats", {}),
        # The `cluster` profile: its first node, and the two others.
        ("nats", {"QCDC_NATS_CONFIG": "cluster.conf"}),
        ("nats-2", {}),
        ("nats-3", {}),
    ],
)
def test_nats_config_is_durable_and_monitored(
    compose: Compose, service: str, env: dict[str, str]
) -> None:
    nats = services_of(compose)[service]
    argv = container_argv(nats)
    config_flags = {"-c", "--config"}
    assert any(flag in argv for flag in config_flags), f"nats runs without a config: {argv}"
    config_path = next(argv[i + 1] for i, arg in enumerate(argv) if arg in config_flags)
    mounts = bind_mounts(nats, env)
    assert config_path in mounts, f"{config_path} is not mounted from the repository"
    config_file = mounts[config_path]
    assert config_file.is_relative_to(ROOT) and config_file.is_file(), config_file

    blocks = nats_settings(config_file.read_text(encoding="utf-8"))
    jetstream = blocks.get(("jetstream",))
    assert jetstream is not None, "no jetstream { } block"
    assert jetstream.get("sync_interval") == "always", jetstream

    store_dir = PurePosixPath(jetstream["store_dir"])
    volumes = {PurePosixPath(target) for target in named_volume_targets(nats, compose)}
    assert any(v == store_dir or v in store_dir.parents for v in volumes), (
        f"JetStream store_dir {store_dir} is not on a named volume"
    )

    monitor_port = int(blocks[()]["http_port"])
    health = " ".join(healthcheck_argv(nats))
    assert f":{monitor_port}/healthz?js-enabled-only=true" in health, health


def test_every_long_running_service_has_a_healthcheck(compose: Compose) -> None:
    for name, svc in services_of(compose).items():
        if name in {"provision", "mailpit"}:
            continue
        assert healthcheck_argv(svc), f"{name}: no healthcheck"


def test_no_service_serves_an_open_api_and_only_plans_and_notify_hold_the_contacts_key(
    compose: Compose,
) -> None:
    """Containers listen on every interface, so their APIs require tokens (fail closed);
    the key sealing units' e-mail addresses is plans' and notify's alone, and compose
    refuses to start without it."""
    services = compose["services"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "QCDC_AUTH=tokens" in dockerfile
    for name in QCDC_SERVICES:
        env = environment_of(services[name])
        assert env.get("QCDC_AUTH") == "tokens", name
        holds_key = "QCDC_CONTACTS_KEY" in env
        assert holds_key == (name in ("plans", "notify")), name
        if holds_key:
            assert env["QCDC_CONTACTS_KEY"].startswith("${QCDC_CONTACTS_KEY:?"), name
