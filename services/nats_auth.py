"""NATS credentials: who may publish and subscribe on which subjects, as nats-server config.

Design: one account (the server's global account, JetStream enabled) with one *user per
principal*, each with publish/subscribe allow lists. Users with subject permissions are
all that our trust model needs (each service, each district instance, each integrator and
the operator get their own user) and work with nats-server's plain config file and
nats-py's ``user``/``password``; NKEY/JWT accounts would add an operator, resolver and
signing keys without giving a district anything it should have.

Principals:

- ``svc-<service>`` publishes on the subjects of the streams its service owns, its own
  dead letters and the JetStream API of its own durable consumers;
- ``district-<CODE>`` (a district's reports instance) publishes only the event names of
  the catalogue that the reports service owns, each spelled out, under its own unit path
  (``qcdc.v1.report.submitted.T89.H801`` and ``….T89.H801.>``; review events only below
  it), its own dead letters and its own consumers' API;
- ``integrator-<name>`` reads events (all, or one subtree's) through consumers it creates,
  and publishes nothing (:mod:`services.nats_integrators`);
- ``admin`` (the operator: ``qcdc bus provision``) may do everything.

A consumer's name is a single subject token, and NATS wildcards match whole tokens only,
so every consumer-scoped JetStream API subject is listed per consumer name. Passwords are
random (``secrets``) and stored in clear in a config file of mode 0600: the ``bcrypt``
package is not a dependency of this project.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.bus.streams import (
    ALL_STREAMS,
    DEAD_LETTER_PREFIX,
    PORTAL_SUBJECTS,
    Durable,
    StreamSpec,
    stream_for_subject,
)
from shared.events import CATALOGUE, Event, ReportAccepted, ReportReturned

JS_API = "$JS.API"
INBOX = "_INBOX.>"
RPC_SUBMIT = "qcdc.v1.rpc.report.submit"
EVENTS = "qcdc.v1.>"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
AUTH_FILE = "auth.conf"
CREDENTIALS_DIR = "credentials"
SECRET_MODE = 0o600


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    subscribe_deny: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()
    allow_responses: bool = False


@dataclass(frozen=True)
class Principal:
    """One NATS user: its permissions, what it is, and settings its env file carries."""

    user: str
    description: str
    permissions: Permissions
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credential:
    principal: Principal
    password: str

    @property
    def user(self) -> str:
        return self.principal.user


@dataclass(frozen=True)
class RegistryUnit:
    """What credentials need of a unit: its code, kind and path from the root."""

    code: str
    kind: str
    path: tuple[str, ...]


class RegistryError(ValueError):
    """The unit registry given cannot produce credentials (unknown parent or unit, a cycle)."""


# --- JetStream API subjects ----------------------------------------------------------------


def consumer_api(durable: Durable) -> list[str]:
    """What nats-py sends to create, find, read and ack one durable pull consumer:
    ``CONSUMER.INFO`` first (pull_subscribe), then ``CONSUMER.CREATE.<s>.<c>.<filter>``
    (servers >= 2.9; without a filter no suffix), ``MSG.NEXT`` to fetch, and acks, naks
    and in-progress on the message's ``$JS.ACK.<s>.<c>.…`` reply subject."""
    stream, name = durable.stream, durable.name
    return [
        f"{JS_API}.CONSUMER.INFO.{stream}.{name}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{name}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{name}.>",
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    ]


def jetstream_read_api(durables: Iterable[Durable]) -> list[str]:
    """Account and stream info (read-only) plus the API of the given consumers only, so a
    principal can never delete, ack or read from another principal's consumer."""
    durables = list(durables)
    streams = sorted({d.stream for d in durables})
    subjects = [f"{JS_API}.INFO", *(f"{JS_API}.STREAM.INFO.{s}" for s in streams)]
    for durable in durables:
        subjects += consumer_api(durable)
    return subjects


# --- principals ----------------------------------------------------------------------------


def _dead_letters(instance: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{instance}.>"


def owned_streams(service: str, streams: Sequence[StreamSpec] = ALL_STREAMS) -> list[StreamSpec]:
    return [spec for spec in streams if spec.owner == service]


def service_principal(service: str, durables: Iterable[Durable]) -> Principal:
    """``svc-<service>``: its own streams' subjects, its dead letters, its consumers.

    The reports service also answers submissions over request-reply, so it may subscribe
    to them and publish its answer on the requester's reply subject (``allow_responses``
    allows exactly one reply per request received, nothing else)."""
    publish = [s for spec in owned_streams(service) for s in spec.subjects]
    publish += [_dead_letters(service), *jetstream_read_api(durables)]
    subscribe = [INBOX]
    responds = service == "reports"
    if responds:
        subscribe.append(f"{RPC_SUBMIT}.>")
    return Principal(
        user=f"svc-{service}",
        description=f"the {service} service (province)",
        permissions=Permissions(
            publish=tuple(publish), subscribe=tuple(subscribe), allow_responses=responds
        ),
        env={"QCDC_BUS_PROVISION": "false"},
    )


def district_principal(unit: RegistryUnit, durables: Iterable[Durable]) -> Principal:
    """``district-<CODE>``: the reports service scoped to one subtree publishes only the
    reports service's own event names (:func:`district_event_subjects`) under a path inside
    that subtree, its dead letters and its own consumers' API."""
    path = ".".join(unit.path)
    instance = f"reports-{unit.code}"
    publish = [
        *district_event_subjects(unit.path),
        _dead_letters(instance),
        *jetstream_read_api(durables),
    ]
    subscribe = [INBOX, f"{RPC_SUBMIT}.{path}", f"{RPC_SUBMIT}.{path}.>"]
    return Principal(
        user=f"district-{unit.code}",
        description=f"the reports instance of {unit.code} ({path}) and its subtree",
        permissions=Permissions(
            publish=tuple(publish), subscribe=tuple(subscribe), allow_responses=True
        ),
        env={"QCDC_BUS_PROVISION": "false", "QCDC_SCOPE": unit.code},
    )


REVIEW_EVENTS: tuple[type[Event], ...] = (ReportAccepted, ReportReturned)
"""Spoken by the receiving unit about a report of a unit below it: a unit never reviews its
own report (a district's own goes to Home Affairs), so a district may publish these only
for the units under it, never on its own path."""


def district_event_names(
    catalogue: Sequence[type[Event]] = CATALOGUE, owner: str = "reports"
) -> list[type[Event]]:
    """The catalogue's events that the reports service publishes (those of the streams it
    owns): the only ones a district's instance may say. Listed by name, not ``*``, so an
    event name nobody defined (``qcdc.v1.report.bogus.…``) is refused by the server, and a
    new event of the reports service is granted when it joins the catalogue."""
    return [
        cls for cls in catalogue if stream_for_subject(f"{cls.subject_prefix()}.X").owner == owner
    ]


def district_event_subjects(
    path: Sequence[str], catalogue: Sequence[type[Event]] = CATALOGUE
) -> list[str]:
    """Each owned event name under the district's path: ``<prefix>.<path>`` for the district
    itself (not for review events) and ``<prefix>.<path>.>`` for the units below it."""
    joined = ".".join(path)
    subjects: list[str] = []
    for cls in district_event_names(catalogue):
        prefix = cls.subject_prefix()
        if cls not in REVIEW_EVENTS:
            subjects.append(f"{prefix}.{joined}")
        subjects.append(f"{prefix}.{joined}.>")
    return subjects


def portal_principal() -> Principal:
    """``svc-portal``: the web portal only listens, with a plain subscription, to report,
    consolidation and staff conference events; it publishes nothing (its commands go to the
    services' APIs). ``$JS.API.INFO`` is its one publish permission: it reveals nothing and
    keeps the allow list from being empty."""
    return Principal(
        user="svc-portal",
        description="the web portal: listens to report, consolidation and conference events only",
        permissions=Permissions(publish=(f"{JS_API}.INFO",), subscribe=(*PORTAL_SUBJECTS, INBOX)),
    )


def admin_principal() -> Principal:
    return Principal(
        user="admin",
        description="the operator: provisions streams (qcdc bus provision), full rights",
        permissions=Permissions(publish=(">",), subscribe=(">",)),
    )


def check_name(value: str, what: str) -> str:
    """Names become subject tokens and consumer names: NATS-token-safe only."""
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{what} {value!r}: use 1 to 32 letters, digits, '-' or '_'")
    return value


# --- the unit registry ---------------------------------------------------------------------


def unit_paths(parents: Mapping[str, str | None]) -> dict[str, tuple[str, ...]]:
    """Each unit's path from the root, from ``code -> parent code``."""
    paths: dict[str, tuple[str, ...]] = {}

    def path_of(code: str, child: str, seen: frozenset[str]) -> tuple[str, ...]:
        if code in paths:
            return paths[code]
        if code in seen:
            raise RegistryError(f"unit {code}: its parents form a cycle")
        if code not in parents:
            raise RegistryError(
                f"unit {child}: parent {code} is not in the registry "
                "(export the whole registry, not a subtree)"
            )
        parent = parents[code]
        base = path_of(parent, code, seen | {code}) if parent else ()
        paths[code] = (*base, code)
        return paths[code]

    for code in parents:
        path_of(code, code, frozenset())
    return paths


def districts_of(
    units: Iterable[RegistryUnit], kinds: Iterable[str], named: Iterable[str]
) -> list[RegistryUnit]:
    """Units of the district kind(s) plus explicitly named subtrees (a two-level province
    has no districts, but may delegate any subtree), in registry order."""
    registry = {unit.code: unit for unit in units}
    wanted_kinds = set(kinds)
    named = list(named)
    missing = [code for code in named if code not in registry]
    if missing:
        raise RegistryError(f"no unit {', '.join(missing)} in the registry")
    chosen = {code for code, unit in registry.items() if unit.kind in wanted_kinds}
    chosen.update(named)
    return [unit for code, unit in registry.items() if code in chosen]


# --- rendering -----------------------------------------------------------------------------


def _quote(value: str) -> str:
    # Names, subjects and passwords are token-safe or from token_urlsafe; refuse anything
    # that could break out of a quoted string rather than escape it.
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"cannot quote {value!r} in a NATS config")
    return f'"{value}"'


def _list(values: Iterable[str], indent: str) -> list[str]:
    """A multi-line array, one quoted value per line."""
    return ["[", *(f"{indent}  {_quote(v)}," for v in values), f"{indent}]"]


def _rule(name: str, values: Iterable[str], indent: str) -> list[str]:
    first, *rest = _list(values, indent)
    return [f"{indent}{name}: {first}", *rest]


def _user_block(credential: Credential) -> list[str]:
    perms = credential.principal.permissions
    pad = " " * 10
    lines = [
        f"    # {credential.principal.description}",
        "    {",
        f"      user: {_quote(credential.user)}",
        f"      password: {_quote(credential.password)}",
        "      permissions: {",
        "        publish: {",
        *_rule("allow", perms.publish, pad),
        *(_rule("deny", perms.publish_deny, pad) if perms.publish_deny else []),
        "        }",
        "        subscribe: {",
        *_rule("allow", perms.subscribe, pad),
    ]
    if perms.subscribe_deny:
        lines += _rule("deny", perms.subscribe_deny, pad)
    lines.append("        }")
    if perms.allow_responses:
        lines.append("        allow_responses: true")
    lines += ["      }", "    }"]
    return lines


def render_authorization(credentials: Sequence[Credential]) -> str:
    """The ``authorization { users = [...] }`` block, to include in nats-server.conf."""
    lines = [
        "# Generated by `qcdc nats config`: users and subject permissions. Keep secret (0600).",
        "authorization {",
        "  users = [",
    ]
    for credential in credentials:
        lines += _user_block(credential)
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def render_env(credential: Credential) -> str:
    lines = [
        f"# NATS credentials of {credential.user}: {credential.principal.description}.",
        "# Generated by `qcdc nats config`; keep secret.",
        f"QCDC_NATS_USER={credential.user}",
        f"QCDC_NATS_PASSWORD={credential.password}",
        *(f"{key}={value}" for key, value in credential.principal.env.items()),
    ]
    return "\n".join(lines) + "\n"


# --- files ---------------------------------------------------------------------------------


def new_password() -> str:
    return secrets.token_urlsafe(32)


def credentials(
    principals: Iterable[Principal], existing: Mapping[str, str], rotate: Iterable[str] = ()
) -> list[Credential]:
    """Keep each principal's current password unless it is to be rotated: regenerating the
    config for a new district must not log every running service out."""
    rotated = set(rotate)
    return [
        Credential(
            p,
            new_password()
            if p.user in rotated or "all" in rotated or p.user not in existing
            else existing[p.user],
        )
        for p in principals
    ]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def existing_passwords(out: Path) -> dict[str, str]:
    """Passwords of a previous run, read back from its env files."""
    found: dict[str, str] = {}
    for path in sorted((out / CREDENTIALS_DIR).glob("*.env")):
        values = read_env_file(path)
        if "QCDC_NATS_USER" in values and "QCDC_NATS_PASSWORD" in values:
            found[values["QCDC_NATS_USER"]] = values["QCDC_NATS_PASSWORD"]
    return found


def write_secret(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, SECRET_MODE)
    tmp.replace(path)


def write_bundle(out: Path, bundle: Sequence[Credential]) -> list[Path]:
    """``out/auth.conf`` and ``out/credentials/<user>.env``; env files of principals no
    longer generated are removed (their users no longer exist on the server)."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    write_secret(out / AUTH_FILE, render_authorization(bundle))
    written = [out / AUTH_FILE]
    keep = {f"{c.user}.env" for c in bundle}
    creds = out / CREDENTIALS_DIR
    for stale in creds.glob("*.env") if creds.exists() else []:
        if stale.name not in keep:
            stale.unlink()
    creds.mkdir(mode=0o700, exist_ok=True)
    os.chmod(creds, 0o700)
    for credential in bundle:
        path = creds / f"{credential.user}.env"
        write_secret(path, render_env(credential))
        written.append(path)
    return written
