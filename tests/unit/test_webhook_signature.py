"""Webhooks without a network: the signature and the documented verification snippet,
Retry-After, the allowlist, how answers are classified, backoff, and the worker's limits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notify.adapters.webhook import (
    Allowlist,
    PermanentFailure,
    RetryableFailure,
    new_standard_secret,
    parse_retry_after,
    raise_for_status,
    resolve_target,
    sign,
    signature_headers,
    standard_key,
)
from services.notify.domain.model import SignatureScheme
from services.notify.entrypoints.worker import Dispatcher, Job, mail_limit
from services.notify.handlers.delivery import RELAY, Due, backoff
from services.notify.settings import NotifySettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
NOW = datetime(2023, 6, 9, 10, 0, tzinfo=UTC)
Verify = Callable[..., bool]


def documented_verify() -> Verify:
    """The ``verify`` function exactly as docs/notifications.md gives it to integrators."""
    text = DOCS.read_text(encoding="utf-8")
    section = re.split(r"^## Webhooks$", text, maxsplit=1, flags=re.M)[1]
    match = re.search(r"```python\n((?:(?!```).)*?def verify\(.*?)```", section, re.S)
    assert match, "no Python snippet defining verify() in the Webhooks section"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    verify: Verify = namespace["verify"]
    return verify


# --- signature --------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = '{"type":"qcdc.report.submitted.v1","data":{"tên":"Sở Tư pháp"}}'.encode()
    expected = hmac.new(b"s3cret", b"1686300000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, 1686300000) == f"t=1686300000,v1={expected}"


def test_documented_snippet_accepts_a_fresh_signature() -> None:
    verify = documented_verify()
    body = b'{"id":"e-1"}'
    header = sign("s3cret", body, 1_686_300_000)
    assert verify("s3cret", body, header, now=1_686_300_000)
    assert verify("s3cret", body, header, now=1_686_300_000 + 300)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("other", b'{"id":"e-1"}', 1_686_300_000),  # wrong secret
        ("s3cret", b'{"id":"e-2"}', 1_686_300_000),  # body changed
        ("s3cret", b'{"id":"e-1"}', 1_686_300_000 + 301),  # older than five minutes
        ("s3cret", b'{"id":"e-1"}', 1_686_300_000 - 301),  # from the future
    ],
)
def test_documented_snippet_rejects(secret: str, body: bytes, now: int) -> None:
    header = sign("s3cret", b'{"id":"e-1"}', 1_686_300_000)
    assert not documented_verify()(secret, body, header, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=x,v1=abc", "t=1686300000", "garbage"])
def test_documented_snippet_rejects_malformed_headers(header: str) -> None:
    assert not documented_verify()("s3cret", b"{}", header, now=1_686_300_000)


def test_documented_snippet_uses_the_clock_by_default() -> None:
    body = b"{}"
    header = sign("k", body, 1_686_300_000)  # years ago
    assert not documented_verify()("k", body, header)


# --- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Fri, 09 Jun 2023 10:00:30 GMT", timedelta(seconds=30)),
        ("Fri, 09 Jun 2023 09:00:00 GMT", timedelta(0)),  # already past
        ("99999999999999999999", timedelta(hours=1)),  # capped
        ("Sat, 10 Jun 2023 10:00:00 GMT", timedelta(hours=1)),  # capped
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# --- allowlist ----------------------------------------------------------------------------

ALLOWLIST = Allowlist.parse(
    ["hooks.example.gov.vn", "*.snv.example.vn", "127.0.0.1/32", "203.0.113.0/24", "2001:db8::/32"]
)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.gov.vn", True),
        ("HOOKS.example.gov.vn.", True),
        ("api.snv.example.vn", True),
        ("a.b.snv.example.vn", True),
        ("snv.example.vn", False),  # *.suffix is for subdomains
        ("evilsnv.example.vn", False),
        ("example.gov.vn", False),
    ],
)
def test_allowlist_names(host: str, allowed: bool) -> None:
    assert ALLOWLIST.allows_name(host) is allowed


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("203.0.113.77", True),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped: checked as IPv4
        ("::ffff:10.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("192.168.1.1", False),
    ],
)
def test_allowlist_addresses(address: str, allowed: bool) -> None:
    assert ALLOWLIST.allows_address(ipaddress.ip_address(address)) is allowed


def _resolver(answers: dict[str, list[str]]) -> Any:
    asked: list[str] = []

    async def resolve(host: str, _port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


async def test_a_named_host_is_resolved_once_and_the_checked_address_is_used() -> None:
    allowlist = Allowlist.parse(["203.0.113.0/24"])
    resolver = _resolver({"hooks.partner.vn": ["203.0.113.5", "203.0.113.6"]})
    target = await resolve_target("https://hooks.partner.vn:8443/in?x=1", allowlist, resolver)
    assert str(target.url) == "https://203.0.113.5:8443/in?x=1"
    assert target.host_header == "hooks.partner.vn:8443"
    assert target.sni_hostname == "hooks.partner.vn"
    assert resolver.asked == ["hooks.partner.vn"]


async def test_a_name_pointing_inside_is_refused() -> None:
    resolver = _resolver({"rebind.evil.vn": ["203.0.113.5", "10.0.0.1"]})
    with pytest.raises(PermanentFailure, match=r"10\.0\.0\.1, not on the allowlist"):
        await resolve_target(
            "http://rebind.evil.vn/", Allowlist.parse(["203.0.113.0/24"]), resolver
        )


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/"]
)
async def test_internal_addresses_are_refused_without_dns(url: str) -> None:
    resolver = _resolver({})
    with pytest.raises(PermanentFailure, match="not on the allowlist"):
        await resolve_target(url, Allowlist.parse(["127.0.0.1/32"]), resolver)
    assert resolver.asked == []


async def test_a_listed_name_is_trusted_and_ipv6_literals_are_bracketed() -> None:
    target = await resolve_target(
        "http://hooks.example.gov.vn/", ALLOWLIST, _resolver({"hooks.example.gov.vn": ["::1"]})
    )
    assert str(target.url) == "http://[::1]/"
    assert target.host_header == "hooks.example.gov.vn"
    assert target.sni_hostname is None
    literal = await resolve_target("http://[2001:db8::7]:9000/x", ALLOWLIST, _resolver({}))
    assert str(literal.url) == "http://[2001:db8::7]:9000/x"


@pytest.mark.parametrize(
    ("url", "entries", "reason"),
    [
        ("http://hooks.example.gov.vn/", [], "webhooks are disabled"),
        ("ftp://hooks.example.gov.vn/", ["hooks.example.gov.vn"], "must be http"),
        ("http://u:p@hooks.example.gov.vn/", ["hooks.example.gov.vn"], "credentials"),
        ("http://other.vn/", ["hooks.example.gov.vn"], "not on the allowlist"),
    ],
)
async def test_refusals(url: str, entries: list[str], reason: str) -> None:
    with pytest.raises(PermanentFailure, match=reason):
        await resolve_target(url, Allowlist.parse(entries), _resolver({}))


async def test_a_dns_failure_is_worth_retrying() -> None:
    with pytest.raises(RetryableFailure, match="cannot resolve"):
        await resolve_target("http://gone.vn/", Allowlist.parse(["0.0.0.0/0"]), _resolver({}))


# --- answers --------------------------------------------------------------------------------


def _answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_answers(status: int) -> None:
    with pytest.raises(RetryableFailure, match=f"HTTP {status}") as caught:
        raise_for_status(_answer(status), "busy", NOW)
    assert caught.value.retry_after is None


def test_retry_after_travels_with_the_failure() -> None:
    with pytest.raises(RetryableFailure) as caught:
        raise_for_status(_answer(429, **{"Retry-After": "7"}), "", NOW)
    assert caught.value.retry_after == timedelta(seconds=7)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_fail_at_once(status: int) -> None:
    with pytest.raises(PermanentFailure, match=f"HTTP {status} .*: no such hook"):
        raise_for_status(_answer(status), "no such hook", NOW)


def test_redirects_are_not_followed() -> None:
    with pytest.raises(PermanentFailure, match="redirects are not followed; Location: http://x"):
        raise_for_status(_answer(302, Location="http://x"), "", NOW)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for attempts in range(1, 12):
        base = min(600, 2**attempts)
        delays = {backoff(attempts) for _ in range(20)}
        assert all(timedelta(seconds=base / 2) <= d <= timedelta(seconds=base) for d in delays)
        assert len(delays) > 1


# --- the worker's limits ----------------------------------------------------------------------


async def test_dispatcher_limits_per_destination_and_overall() -> None:
    release = asyncio.Event()
    started: list[str] = []

    async def attempt(item: Job) -> None:
        started.append(item.key)
        await release.wait()

    dispatcher = Dispatcher(attempt, overall=4, per_destination=2)
    due = [Due(f"slow-{n}", "slow.vn") for n in range(5)] + [Due("mail-1", "mail.vn")]
    assert dispatcher.start(due) == 3
    assert dispatcher.saturated() == {"slow.vn"}
    assert dispatcher.start([Due("slow-1", "slow.vn"), Due("a", "a.vn"), Due("b", "b.vn")]) == 1
    assert dispatcher.free == 0
    await asyncio.sleep(0)
    assert started == ["slow-0", "slow-1", "mail-1", "a"]
    dispatcher.arm()
    release.set()
    await dispatcher.wait(5)
    await asyncio.sleep(0.01)
    assert dispatcher.free == 4
    assert dispatcher.saturated() == set()


async def test_dispatcher_survives_a_failing_attempt() -> None:
    async def attempt(item: Job) -> None:
        raise RuntimeError(item.key)

    dispatcher = Dispatcher(attempt, overall=2, per_destination=1)
    dispatcher.arm()
    assert dispatcher.start([Due("k", "d")]) == 1
    await dispatcher.wait(5)
    await asyncio.sleep(0)
    assert dispatcher.free == 2
    assert dispatcher.start([Due("k", "d")]) == 1
    await dispatcher.close()


async def test_a_destination_at_its_limit_is_refilled_half_at_a_time() -> None:
    done = {f"m{n}": asyncio.Event() for n in range(8)}

    async def attempt(item: Job) -> None:
        await done[item.key].wait()

    dispatcher = Dispatcher(attempt, overall=10, per_destination=2, limits={RELAY: 4})
    mail = [Due(f"m{n}", RELAY) for n in range(8)]
    assert dispatcher.start(mail) == 4
    assert dispatcher.saturated() == {RELAY}

    async def finish(key: str) -> None:
        dispatcher.arm()
        done[key].set()
        await dispatcher.wait(5)

    assert dispatcher.take_news()  # the first look
    await finish("m0")  # three still running: no single claim for the one free slot
    assert dispatcher.saturated() == {RELAY}
    assert dispatcher.choose(mail[4:]) == []
    assert not dispatcher.take_news()  # not even worth a look for other deliveries
    await finish("m1")  # down to half: the other half in one go
    assert dispatcher.saturated() == set()
    assert dispatcher.take_news()
    assert [d.key for d in dispatcher.choose(mail[2:])] == ["m4", "m5"]  # m2, m3 still run
    dispatcher.arm()
    await dispatcher.wait(0.01)  # the poll interval passed: retries may be due
    assert dispatcher.take_news()
    await dispatcher.close()


def test_e_mail_takes_four_attempts_per_session_and_at_most_half_the_slots() -> None:
    assert mail_limit(NotifySettings(smtp_connections=16, delivery_concurrency=128)) == 64
    assert mail_limit(NotifySettings(smtp_connections=16, delivery_concurrency=16)) == 8
    assert mail_limit(NotifySettings(smtp_connections=1, delivery_concurrency=1)) == 1


def test_the_documented_standard_verification_accepts_what_notify_signs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ``accept`` snippet of docs/notifications.md, run on headers the sender makes."""
    secret = new_standard_secret()
    monkeypatch.setenv("QCDC_WEBHOOK_SECRET", secret)
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"```python\n((?:(?!```).)*?def accept\(.*?)```", text, re.S)
    assert match, "no Python snippet defining accept() in docs/notifications.md"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    body = b'{"id":"e-1","type":"qcdc.report.submitted.v1"}'
    now = int(time.time())
    headers = signature_headers(SignatureScheme.STANDARD, secret, "key-1", body, now)
    assert namespace["accept"](body, headers) == json.loads(body)
    assert namespace["accept"](body + b" ", headers) is None
    old = signature_headers(SignatureScheme.STANDARD, secret, "key-1", body, now - 600)
    assert namespace["accept"](body, old) is None  # outside the five minutes


def test_a_secret_that_cannot_sign_is_named() -> None:
    with pytest.raises(ValueError, match="starts with whsec_"):
        standard_key("plain-secret-of-some-length")
    with pytest.raises(ValueError, match="not base64"):
        standard_key("whsec_***")
    assert len(standard_key(new_standard_secret())) == 32
