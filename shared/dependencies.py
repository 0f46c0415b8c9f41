"""FastAPI dependencies that every service's routes declare.

Routes are defined at module level (``router = APIRouter()``) and name what they depend on
as arguments, so a reader sees it and a test can replace it with
``app.dependency_overrides``:

- :data:`RuntimeDep`: the service's runtime (rarely needed by a route itself);
- :data:`Uow`: a unit of work opened for the request; the handler commits it, and it is
  closed (rolled back if uncommitted) when the route returns, before the answer is sent;
- :data:`UowFactory`: for a route whose handler opens units of work itself (a retry after a
  conflict, or a long rendering that must not hold a transaction);
- :data:`Grouped`: the runtime's :class:`~shared.uow.GroupCommit`, for a handler whose
  steps may share a transaction with concurrent requests (report submissions);
- a service's settings: ``ReportsSettingsDep = Annotated[ReportsSettings,
  Depends(settings_of(ReportsSettings))]`` in the service's ``entrypoints``;
- the caller: :data:`shared.security.Caller`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request

from shared.runtime import Runtime
from shared.settings import ServiceSettings
from shared.uow import GroupCommit, UnitOfWork, UnitOfWorkFactory

S = TypeVar("S", bound=ServiceSettings)


async def get_runtime(request: Request) -> Runtime:
    """The service's runtime, set on the app by :func:`shared.http.create_app`. ``async``,
    like every dependency here that does not block: FastAPI runs a plain ``def`` dependency
    in a worker thread, a thread hop per dependency per request (6 % of the reports
    process's CPU in a submission burst)."""
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
"""A route's runtime: ``async def route(..., runtime: RuntimeDep)``."""


async def get_uow(runtime: RuntimeDep) -> AsyncIterator[UnitOfWork]:
    """A unit of work open for the route; what its handler did not commit is rolled back."""
    async with runtime.uow() as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
"""The request's unit of work: ``async def route(..., uow: Uow)``. Closed as soon as the
route returns (``scope="function"``), so no connection is held while the answer is sent."""


async def get_uow_factory(runtime: RuntimeDep) -> UnitOfWorkFactory:
    """Units of work on demand, for handlers that open (and retry) their own."""
    return runtime.uow


UowFactory = Annotated[UnitOfWorkFactory, Depends(get_uow_factory)]


async def get_grouped(runtime: RuntimeDep) -> GroupCommit:
    """Transactions shared by concurrent requests when they would wait for one."""
    return runtime.grouped


Grouped = Annotated[GroupCommit, Depends(get_grouped)]


def settings_of(settings_type: type[S]) -> Callable[[Runtime], Awaitable[S]]:
    """A dependency giving the service's settings as their own type."""

    async def get_settings(runtime: RuntimeDep) -> S:
        settings = runtime.settings
        if not isinstance(settings, settings_type):
            raise TypeError(f"the runtime's settings are not {settings_type.__name__}")
        return settings

    get_settings.__name__ = f"get_{settings_type.__name__}"
    return get_settings
