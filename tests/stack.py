"""Whole systems for the integration and browser tests: the services started in-process on
real HTTP, units and tokens made at the operator's console, a plan drafted and issued, the
portal served. One copy each, so that a test names only what its system does differently."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from services.plans.adapters.repositories import UnitRepository
from services.plans.handlers import tokens as token_handlers
from services.plans.handlers import units as unit_handlers
from services.portal.entrypoints.http import create_portal_app
from services.portal.settings import PortalSettings
from shared.auth import CONSOLE, Role
from shared.clock import Clock
from shared.events import Contacts
from shared.service import ServiceDefinition
from tests.support import (
    DEFAULT_TIMEOUT,
    InProcessService,
    eventually,
    patience,
    service_settings,
)

SERVICE_NAMES = ("plans", "reports", "notify")
Grant = tuple[str, str, Role, int]
"""A token to make at the console: (the test's name for it, unit code, role, days valid)."""


def sqlite_urls(folder: Path) -> dict[str, str]:
    """A SQLite database in ``folder`` for each service."""
    return {name: f"sqlite+aiosqlite:///{folder}/{name}.db" for name in SERVICE_NAMES}


async def start_services(
    definitions: Sequence[ServiceDefinition],
    database_urls: Mapping[str, str],
    clock: Clock | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    **common: Any,
) -> dict[str, InProcessService]:
    """Each service on its own database; ``common`` settings for all, ``extra`` by name."""
    running: dict[str, InProcessService] = {}
    try:
        for definition in definitions:
            settings = service_settings(
                definition,
                database_url=database_urls[definition.name],
                **common,
                **(extra or {}).get(definition.name, {}),
            )
            service = InProcessService(definition, settings, clock)
            running[definition.name] = await service.start()
    except BaseException:
        await stop_services(running)  # those that did start: the test will not get them
        raise
    return running


async def stop_services(running: Mapping[str, InProcessService]) -> None:
    """In the reverse order of their start: the last started may still use the first."""
    for service in reversed(list(running.values())):
        await service.stop()


async def register_units_at_console(
    plans: InProcessService,
    units: Iterable[Mapping[str, Any]],
    focal: Mapping[str, str] | None = None,
) -> None:
    """Units as the operator's console (``qcdc units …``) registers them, without a token;
    ``focal`` gives some of them a focal person's address."""
    async with plans.runtime.uow() as uow:
        for unit in units:
            command = unit_handlers.RegisterUnit(
                code=unit["code"],
                name=unit["name"],
                kind=unit["kind"],
                parent_code=unit.get("parent_code"),
                reports_to_code=unit.get("reports_to_code"),
                contacts=Contacts(focal_email=(focal or {}).get(unit["code"])),
                tags=tuple(unit.get("tags", ())),
            )
            await unit_handlers.add_unit(command, UnitRepository(uow.session), uow)
        await uow.commit()


async def console_tokens(
    plans: InProcessService, grants: Iterable[Grant]
) -> dict[str, token_handlers.CreatedToken]:
    """Tokens as the operator's console (``qcdc tokens …``) makes them, by the test's name."""
    tokens: dict[str, token_handlers.CreatedToken] = {}
    for name, code, role, days in grants:
        async with plans.runtime.uow() as uow:
            tokens[name] = await token_handlers.create_token(
                token_handlers.CreateToken(code, role, days), uow, caller=CONSOLE
            )
    return tokens


async def issue_plan(plans: httpx.AsyncClient, body: Mapping[str, Any]) -> dict[str, Any]:
    """Draft the plan ``body`` and issue it; the issued plan."""
    draft = await plans.post("/plans", json=body)
    assert draft.status_code == 201, draft.text
    issued = await plans.post(f"/plans/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.text
    result: dict[str, Any] = issued.json()
    return result


@contextlib.asynccontextmanager
async def serving_portal(settings: PortalSettings) -> AsyncIterator[str]:
    """The portal on real HTTP at ``settings.http_port``; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_portal_app(settings),
            host="127.0.0.1",
            port=settings.http_port,
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + patience(DEFAULT_TIMEOUT)
    try:
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the portal did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        server.should_exit = True
        await task


PROBE = {"plans": "/units", "reports": "/obligations", "notify": "/subscriptions"}
"""A path each service answers any known token on (an integrator may be refused, 403)."""


def as_token(
    service: InProcessService, token: token_handlers.CreatedToken | None
) -> httpx.AsyncClient:
    """A client of ``service`` with ``token`` (none: anonymous)."""
    headers = {"Authorization": f"Bearer {token.token}"} if token else {}
    return httpx.AsyncClient(base_url=service.url, headers=headers, timeout=patience(10))


async def until_known(
    service: InProcessService, token: token_handlers.CreatedToken, *, refused_is_known: bool = False
) -> None:
    """Tokens reach every service over the bus: wait until ``service`` answers ``token`` on
    its :data:`PROBE` with 200 (or, if ``refused_is_known``, with anything but 401)."""
    async with as_token(service, token) as client:

        async def known() -> bool:
            status = (await client.get(PROBE[service.definition.name])).status_code
            return status != 401 if refused_is_known else status == 200

        await eventually(known)


async def register_units(plans: httpx.AsyncClient, units: Iterable[Mapping[str, Any]]) -> None:
    """Register ``units`` over plans' HTTP API, each answered 201."""
    for unit in units:
        response = await plans.post("/units", json=unit)
        assert response.status_code == 201, response.text


async def register_units_and_issue_plan(
    plans: httpx.AsyncClient, units: Iterable[Mapping[str, Any]], body: Mapping[str, Any]
) -> dict[str, Any]:
    """Register ``units``, then draft and issue the plan ``body``; the issued plan."""
    await register_units(plans, units)
    return await issue_plan(plans, body)


async def obligation_of(
    reports: httpx.AsyncClient, unit: str, key: str = "six_month"
) -> dict[str, Any]:
    """``unit``'s obligation of schedule entry ``key``, once the reports instance has it."""

    async def probe() -> dict[str, Any] | None:
        found = (await reports.get("/obligations", params={"unit": unit})).json()
        return next((o for o in found if o["schedule_key"] == key), None)

    found: dict[str, Any] = await eventually(probe)
    return found


@contextlib.asynccontextmanager
async def clients(*services: InProcessService) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client of each of ``services``, in their order, closed together."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(service.client()) for service in services]
