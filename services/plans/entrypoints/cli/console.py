"""Running the plans service's handlers from the operator's console: against its database,
in one process, with a refusal printed as one line and exit status 1. The service is
imported when a command runs, not when the CLI is built (``qcdc --help``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from shared.errors import Missing, Refused

if TYPE_CHECKING:
    from shared.runtime import Runtime
    from shared.uow import UnitOfWork

T = TypeVar("T")


def run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run handler calls against the plans database; refusals end the command cleanly."""
    import asyncio

    from services.plans.bootstrap import SERVICE

    async def _main() -> T:
        async with SERVICE.offline() as runtime:
            return await work(runtime)

    try:
        return asyncio.run(_main())
    except (Refused, Missing) as exc:
        where = f" ({exc.field})" if isinstance(exc, Refused) and exc.field else ""
        typer.echo(f"refused{where}: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def run_in_uow(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run one handler call in one unit of work."""

    async def in_uow(runtime: Runtime) -> T:
        async with runtime.uow() as uow:
            return await work(uow)

    return run(in_uow)
