"""A district plugs its own reports service into the provincial bus with its own credential.

The province runs plans and its reports instance (``delegated=["H801"]``) with their
service credentials; district H801 runs a reports instance scoped to its subtree, on its
own SQLite database, with the ``district-H801`` credential, on the same nats-server secured
by ``qcdc nats config``'s generated users. A commune's report goes to the district, the
district's own report reaches the province's consolidation, and the district credential
trying to speak for H802 is refused by the server, which logs the attempt.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.js.errors import NotFoundError

from services import nats_auth
from services.nats_auth import Credential, RegistryUnit
from services.nats_principals import principals
from services.natsd import NatsServer, free_port
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.bus.streams import REPORTS as REPORTS_STREAM
from shared.bus.streams import provision
from shared.service import ServiceDefinition
from tests.bodies import district_plan
from tests.integration.test_plan_lifecycle import UNITS, _issue_province_plan
from tests.stack import issue_plan, obligation_of
from tests.support import InProcessService, eventually, service_settings

FORGED_SUBJECT = "qcdc.v1.report.submitted.T89.H802"


def registry() -> list[RegistryUnit]:
    paths = nats_auth.unit_paths({u["code"]: u.get("parent_code") for u in UNITS})
    return [RegistryUnit(u["code"], u["kind"], paths[u["code"]]) for u in UNITS]


@dataclass
class Province:
    server: NatsServer
    credentials: dict[str, Credential]
    services: dict[str, InProcessService]

    def login(self, user: str) -> dict[str, str]:
        return {"user": user, "password": self.credentials[user].password}


@pytest.fixture
async def province(tmp_path: Path) -> AsyncIterator[Province]:
    bundle = nats_auth.credentials(principals(registry()), existing={})
    server = NatsServer(
        tmp_path / "nats", free_port(), authorization=nats_auth.render_authorization(bundle)
    )
    server.start()
    credentials = {c.user: c for c in bundle}
    admin = await nats.connect(server.url, user="admin", password=credentials["admin"].password)
    await provision(admin.jetstream())  # the operator's step: services may not create streams
    await admin.close()
    running: dict[str, InProcessService] = {}
    instances: list[tuple[str, ServiceDefinition, str, dict[str, Any]]] = [
        ("plans", PLANS, "svc-plans", {}),
        ("province", REPORTS, "svc-reports", {"delegated": ["H801"]}),
        ("district", REPORTS, "district-H801", {"scope": "H801"}),
    ]
    try:
        for name, definition, user, extra in instances:
            settings = _settings(definition, server, credentials[user], tmp_path / name, extra)
            running[name] = await InProcessService(definition, settings).start()
        yield Province(server, credentials, running)
    finally:
        for service in running.values():
            await service.stop()
        server.stop()


def _settings(
    definition: ServiceDefinition,
    server: NatsServer,
    credential: Credential,
    data_dir: Path,
    extra: dict[str, Any],
) -> Any:
    env = dict(credential.principal.env)  # what the generated env file says, e.g. QCDC_SCOPE
    assert env["QCDC_BUS_PROVISION"] == "false"
    return service_settings(
        definition,
        nats_url=server.url,
        nats_user=credential.user,
        nats_password=credential.password,
        bus_provision=False,
        database_url=f"sqlite+aiosqlite:///{data_dir}.db",
        data_dir=str(data_dir),
        **extra,
    )


async def _obligation(client: httpx.AsyncClient, unit: str) -> dict[str, Any]:
    return await obligation_of(client, unit)


async def _submit(client: httpx.AsyncClient, obligation: dict[str, Any], unit: str) -> Any:
    body = {
        "obligation_id": obligation["id"],
        "unit_code": unit,
        "indicators": {"reception_sessions": 4, "citizens_received": 30},
    }
    response = await client.post("/reports", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _consolidation_with(client: httpx.AsyncClient, plan_id: str, unit: str) -> dict[str, Any]:
    params = {"plan_id": plan_id, "schedule_key": "six_month", "receiving_unit": "T89-SNV"}

    async def probe() -> Any:
        response = await client.get("/consolidations", params=params)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if unit in {u["code"] for u in body["units"]["received"]} else None

    found: dict[str, Any] = await eventually(probe)
    return found


async def test_a_commune_report_flows_through_its_district_into_the_province(
    province: Province,
) -> None:
    services = province.services
    async with (
        services["plans"].client() as plans,
        services["province"].client() as home_affairs,
        services["district"].client() as district,
    ):
        for client in (plans, home_affairs, district):
            # Ready, and its consumers' lag readable, with its own least-privilege credential.
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert "qcdc_consumer_pending{" in (await client.get("/metrics")).text
        parent = await _issue_province_plan(plans)
        await issue_plan(plans, district_plan(parent["id"]))

        commune = await _obligation(district, "X80101")
        taken = await _submit(district, commune, "X80101")
        accepted = await district.post(
            f"/reports/{taken['report_id']}/accept", json={"reviewer_unit": "H801"}
        )
        own = await _obligation(district, "H801")
        sent = await _submit(district, own, "H801")
        consolidation = await _consolidation_with(home_affairs, parent["id"], "H801")
        copies = (await home_affairs.get(f"/obligations/{own['id']}/reports")).json()

    assert taken["receipt_number"].startswith("BC-H801-")
    assert accepted.status_code == 200
    assert copies[0]["receipt_number"] == sent["receipt_number"]
    totals = {i["code"]: i["total"] for i in consolidation["indicators"] if i["total"]}
    assert totals == {"reception_sessions": 4, "citizens_received": 30}
    assert consolidation["counts"]["received"] == 1
    assert _violations(province.server) == []  # the whole flow stayed inside its permissions


async def test_a_district_cannot_speak_for_another_district(province: Province) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    forger = await nats.connect(
        province.server.url, error_cb=on_error, **province.login("district-H801")
    )
    forged = {"unit_path": ["T89", "H802"], "report_id": "forged"}
    try:
        with pytest.raises(nats.errors.TimeoutError):  # no PubAck: the stream never saw it
            await forger.jetstream().publish(
                FORGED_SUBJECT,
                json.dumps(forged).encode(),
                headers={"ce-type": "qcdc.report.submitted.v1", "Nats-Msg-Id": "forged-1"},
                timeout=0.5,
            )
        await forger.flush()
        assert not forger.is_closed
    finally:
        await forger.close()

    assert f'nats: permissions violation for publish to "{FORGED_SUBJECT.lower()}"' in errors
    assert _violations(province.server) == [("district-H801", "Publish", FORGED_SUBJECT)]
    admin = await nats.connect(province.server.url, **province.login("admin"))
    try:
        with pytest.raises(NotFoundError):
            await admin.jetstream().get_last_msg(REPORTS_STREAM.name, FORGED_SUBJECT)
    finally:
        await admin.close()


def _violations(server: NatsServer) -> list[tuple[str, str, str]]:
    """(user, Publish/Subscription, subject) of each violation line in the server's log:
    ``[ERR] … - "$G/user:district-H801" - Publish Violation - Subject "…"``. Subscription
    violations of the district's request-reply responder are left out (see docs/security.md:
    it subscribes to every unit's submissions until it subscribes to its own subtree)."""
    found = []
    for line in server.log_path.read_text(encoding="utf-8").splitlines():
        if " Violation - Subject " not in line:
            continue
        user = line.split('"$G/user:', 1)[1].split('"', 1)[0]
        kind = line.split(" Violation - ", 1)[0].rsplit(" - ", 1)[1]
        subject = line.split(' Violation - Subject "', 1)[1].split('"', 1)[0]
        if not subject.startswith("qcdc.v1.rpc.report.submit"):
            found.append((user, kind, subject))
    return found
