"""docs/asyncapi.yaml: generated from the code, in step with it, valid for the AsyncAPI
project's own parser (@asyncapi/parser, run with Node.js), and served by every service."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import Field

from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared import asyncapi
from shared.bus.envelope import encode
from shared.events import CATALOGUE, ReportSubmitted
from shared.rpc import BusReceipt, BusSubmission
from shared.service import ServiceDefinition
from tests.integrator_bus import ROOT, npm_ready

DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
NODE_DIR = ROOT / "tests" / "node"


def _file() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


def test_the_document_is_the_codes() -> None:
    assert _file() == asyncapi.render(), "run: python scripts/gen_event_docs.py"


class ReportSubmittedWithChannel(ReportSubmitted):
    """A model change nobody regenerated the document for."""

    channel_hint: str = Field("", description="A field added within v1.")


def test_a_model_change_without_the_document_is_caught() -> None:
    changed = [ReportSubmittedWithChannel if c is ReportSubmitted else c for c in CATALOGUE]
    regenerated = asyncapi.render(changed)
    assert regenerated != _file()
    schema = yaml.safe_load(regenerated)["components"]["schemas"]["ReportSubmittedWithChannel"]
    assert "channel_hint" in schema["properties"]


def test_every_event_has_its_channel_headers_and_payload() -> None:
    document = yaml.safe_load(_file())
    schemas = document["components"]["schemas"]
    sample_headers = set(encode(_any_event(), source="/qcdc/x", correlation_id="c")[1])
    required = set(schemas["CloudEventHeaders"]["required"])
    assert required | {"ce-correlationid"} == sample_headers
    for cls in CATALOGUE:
        key = f"{cls.aggregate}.{cls.event}"
        channel = document["channels"][key]
        assert channel["address"] == f"qcdc.v1.{key}.{{unitPath}}"
        message = document["components"]["messages"][key]
        assert message["payload"] == {"$ref": f"#/components/schemas/{cls.__name__}"}
        assert set(schemas[cls.__name__]["properties"]) == set(cls.model_fields)
        override = message["headers"]["allOf"][1]["properties"]
        assert override["ce-type"]["const"] == cls.ce_type()
        assert document["operations"][f"receive{cls.__name__}"]["action"] == "receive"
    submit = document["operations"]["submitReport"]
    assert submit["action"] == "send" and len(submit["reply"]["messages"]) == 2
    assert set(schemas["BusSubmission"]["properties"]) == set(BusSubmission.model_fields)
    assert set(schemas["BusReceipt"]["properties"]) == set(BusReceipt.model_fields)


def _any_event() -> ReportSubmitted:
    return ReportSubmitted.model_validate(
        {
            "unit_path": ["T89"],
            "report_id": "r",
            "receipt_number": "BC-2026-000001",
            "version": 1,
            "obligation": {
                "obligation_id": "o",
                "plan_id": "p",
                "schedule_key": "k",
                "report_kind": "annual",
                "unit_code": "T89",
                "receiving_unit": "T89",
                "period_start": "2025-12-15",
                "period_end": "2026-12-14",
                "due_at": "2026-12-20T10:00:00Z",
            },
            "submitted_at": "2026-12-19T10:00:00Z",
            "on_time": True,
        }
    )


def _validate(path: Path) -> tuple[int, dict[str, Any]]:
    skip = npm_ready(NODE_DIR)
    if skip:
        pytest.skip(skip)
    done = subprocess.run(
        ["node", str(NODE_DIR / "validate_asyncapi.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_asyncapi_parser_accepts_the_document() -> None:
    code, result = _validate(DOCUMENT)
    assert code == 0 and result["errors"] == [], result["errors"]
    assert result["warnings"] == []
    assert result["version"] == "3.0.0"
    assert result["channels"]["report.submitted"] == "qcdc.v1.report.submitted.{unitPath}"
    assert ["submitReport", "send"] in result["operations"]
    submitted = result["messages"]["ReportSubmitted"]
    assert submitted["headers"] and "receipt_number" in submitted["payloadProperties"]
    assert len(result["channels"]) == len(CATALOGUE) + 3  # submit, its reply, dead letters


def test_the_asyncapi_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    """The validation is not vacuous: a dangling reference is an error."""
    document = yaml.safe_load(_file())
    document["channels"]["report.submitted"]["messages"]["ReportSubmitted"] = {
        "$ref": "#/components/messages/no.such.message"
    }
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")
    code, result = _validate(broken)
    assert code == 1 and result["errors"], result


@pytest.mark.parametrize("definition", [PLANS, REPORTS, NOTIFY], ids=lambda d: d.name)
async def test_every_service_serves_the_document(definition: ServiceDefinition) -> None:
    settings = definition.settings_type(database_url="sqlite+aiosqlite://")
    app = definition.app(definition.runtime(settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/asyncapi.yaml")  # no token: the contract is public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text == _file()
