"""The unit registry on a real bus, over real HTTP, on SQLite and PostgreSQL: a CSV with bad
rows imports nothing; fixed, it imports once; a real province and the three-level demo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from vietnam_provinces import Ward

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.plans.handlers.unit_import import (
    COLUMNS,
    find_province,
    import_admin,
    load_departments,
)
from tests.support import BusSpy, InProcessService, service_settings

REGISTERED = "qcdc.unit.registered.v1"
UPDATED = "qcdc.unit.updated.v1"
DEMO = Path(__file__).resolve().parents[2] / "data" / "units" / "demo-three-level.yaml"
CSV = {"content-type": "text/csv"}

GOOD_ROWS = [
    "T89,Tỉnh An Bình,province,,,vanphong.t89@anbinh.demo.gov.vn,,,province_committee,",
    "T89-SNV,Sở Nội vụ,department,T89,,vanphong.snv@anbinh.demo.gov.vn,,,home_affairs,",
    "H801,Thành phố An Bình,district,T89,T89-SNV,,,,,",
    "X80101,Phường Tân Phú,commune,H801,H801,,,,,2023-01-01",
    "X80102,Xã Hòa Châu,commune,H801,H801,,,,,",
]
BAD_ROWS = [
    *GOOD_ROWS[:2],
    "H801,Thành phố An Bình,huyen,T89,T89-SNV,,,,,",
    "X80101,Phường Tân Phú,commune,H801,H801,not-an-email,,,,2023-01-01",
    "X80102,Xã Hòa Châu,commune,H899,H801,,,,,",
]


def csv_text(rows: list[str]) -> str:
    return "\n".join([",".join(COLUMNS), *rows]) + "\n"


@pytest.fixture
async def plans(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[InProcessService]:
    settings = service_settings(
        PLANS, nats_url=nats_server.url, database_url=database_urls["plans"]
    )
    service = await InProcessService(PLANS, settings).start()
    yield service
    await service.stop()


async def units(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/units", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_bad_rows_import_nothing_and_fixed_rows_import_once(
    plans: InProcessService, bus_spy: BusSpy
) -> None:
    async with plans.client() as client:
        refused = await client.post("/units/import", content=csv_text(BAD_ROWS), headers=CSV)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert [(e["line"], e["field"]) for e in error["errors"]] == [
            (4, "kind"),
            (5, "focal_email"),
            (6, "parent_code"),
        ]
        assert "nothing was imported" in error["message"]
        assert await units(client) == []

        first = await client.post("/units/import", content=csv_text(GOOD_ROWS), headers=CSV)
        assert first.json() == {"created": 5, "updated": 0, "unchanged": 0}
        again = await client.post("/units/import", content=csv_text(GOOD_ROWS), headers=CSV)
        assert again.json() == {"created": 0, "updated": 0, "unchanged": 5}

        # A last registration after both imports: once its event is seen, every event the
        # imports caused has been published before it (one outbox, relayed in order).
        sentinel = {"code": "X80103", "name": "Xã Cát Lâm", "kind": "commune"}
        sentinel |= {"parent_code": "H801", "reports_to_code": "H801"}
        assert (await client.post("/units", json=sentinel)).status_code == 201
        await bus_spy.wait_for_type(REGISTERED, count=6)

        exported = await client.get("/units/export", params={"format": "yaml", "under": "H801"})
        assert exported.headers["content-type"].startswith("application/yaml")
        reimported = await client.post(
            "/units/import", content=exported.text, headers={"content-type": "application/yaml"}
        )
        assert reimported.json() == {"created": 0, "updated": 0, "unchanged": 4}

        huge = await client.post("/units/import", content=b"x" * (5 * 1024 * 1024 + 1), headers=CSV)
        assert huge.status_code == 413
        assert "larger than 5 MB" in huge.json()["error"]["message"]
        assert (await client.post("/units/import", json=[{"code": "X9"}])).status_code == 415

    assert sorted(seen.subject for seen in bus_spy.of_type(REGISTERED)) == [
        "qcdc.v1.unit.registered.T89",
        "qcdc.v1.unit.registered.T89.H801",
        "qcdc.v1.unit.registered.T89.H801.X80101",
        "qcdc.v1.unit.registered.T89.H801.X80102",
        "qcdc.v1.unit.registered.T89.H801.X80103",
        "qcdc.v1.unit.registered.T89.T89-SNV",
    ]
    assert bus_spy.of_type(UPDATED) == []


async def test_a_real_two_level_province_is_imported_once(plans: InProcessService) -> None:
    province = find_province("12")
    expected_departments = [d for d in load_departments() if d.applies_to("12")]
    async with plans.runtime.uow() as uow:
        first = await import_admin("12", uow)
    async with plans.runtime.uow() as uow:
        again = await import_admin("lai_chau", uow)

    wards = list(Ward.iter_by_province(province.code))
    total = 1 + len(expected_departments) + len(wards)
    assert (first.created, again.created, again.unchanged) == (total, 0, total)
    async with plans.client() as client:
        communes = await units(client, kind="commune", under="12")
        assert len(communes) == len(wards) == 38
        assert {(c["parent_code"], c["reports_to_code"]) for c in communes} == {("12", "12-SNV")}
        assert len(await units(client, under="12")) == total - 1


async def test_the_three_level_demo_province_imports_with_its_districts(
    plans: InProcessService,
) -> None:
    async with plans.client() as client:
        response = await client.post(
            "/units/import",
            content=DEMO.read_bytes(),
            headers={"content-type": "application/yaml"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["created"] == len(await units(client))
        districts = {d["code"]: d for d in await units(client, kind="district")}
        communes = await units(client, kind="commune")
    assert len(districts) == 9
    assert len(communes) == 150
    assert all(c["reports_to_code"] == c["parent_code"] in districts for c in communes)
    assert {d["reports_to_code"] for d in districts.values()} == {"T89-SNV"}
    assert all(c["path"][:2] == ["T89", c["parent_code"]] for c in communes)
