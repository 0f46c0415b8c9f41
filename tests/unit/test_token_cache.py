"""The token cache of :mod:`shared.security`: a token looked up is trusted for a few
seconds, never past a revocation handled in this process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Principal, Role, TokenRecord, Unauthenticated
from shared.security import TokenCache

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def record(expires_at: datetime | None = None) -> TokenRecord:
    principal = Principal("t1", "STP", ("T89", "STP"), Role.SUBMITTER)
    return TokenRecord(principal, "hash1", expires_at, None)


def test_a_token_found_is_served_from_the_cache_until_its_time_is_up() -> None:
    cache = TokenCache(seconds=60)
    cache.put("hash1", record(), TokenCache.generation)
    assert cache.get("hash1") == record()
    assert cache.get("other") is None
    stale = TokenCache(seconds=0)
    stale.put("hash1", record(), TokenCache.generation)
    assert stale.get("hash1") is None


def test_a_revocation_invalidates_every_entry_and_every_lookup_in_flight() -> None:
    cache = TokenCache(seconds=60)
    cache.put("hash1", record(), TokenCache.generation)
    read_before = TokenCache.generation
    TokenCache.invalidate()
    assert cache.get("hash1") is None
    # A lookup that began before the revocation committed may have read the token unrevoked.
    cache.put("hash1", record(), read_before)
    assert cache.get("hash1") is None


def test_expiry_is_still_checked_on_each_use_of_a_cached_record() -> None:
    cache = TokenCache(seconds=60)
    cache.put("hash1", record(expires_at=NOW + timedelta(hours=1)), TokenCache.generation)
    found = cache.get("hash1")
    assert found is not None
    assert found.check(NOW).unit_code == "STP"
    with pytest.raises(Unauthenticated, match="expired"):
        found.check(NOW + timedelta(hours=2))


def test_the_cache_stays_bounded() -> None:
    cache = TokenCache(seconds=60, size=3)
    for n in range(10):
        cache.put(f"h{n}", record(), TokenCache.generation)
    assert sum(cache.get(f"h{n}") is not None for n in range(10)) <= 3
    assert cache.get("h9") is not None
