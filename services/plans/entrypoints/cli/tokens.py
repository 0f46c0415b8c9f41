"""``qcdc tokens …``: API tokens from the operator's console (no token needed there)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from services.plans.bootstrap import SERVICE
from services.plans.handlers import tokens as handlers
from shared.auth import Role
from shared.errors import Missing, Refused

tokens_app = typer.Typer(help="API tokens bound to a unit and a role.", no_args_is_help=True)


@tokens_app.command("create")
def create(
    unit: Annotated[str, typer.Option(help="The unit the token acts for.")],
    role: Annotated[Role, typer.Option(help="What it may do.")],
    days: Annotated[int, typer.Option(help="Valid for this many days.")] = 365,
) -> None:
    """Create a token; it is printed once, only its hash is kept. Every service learns it
    from the bus once the plans service runs."""

    async def _main() -> handlers.CreatedToken:
        async with SERVICE.offline() as runtime, runtime.uow() as uow:
            return await handlers.create_token(handlers.CreateToken(unit, role, days), uow)

    try:
        created = asyncio.run(_main())
    except (Refused, Missing) as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"token id {created.token_id}\n{created.token}")


@tokens_app.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a token everywhere."""

    async def _main() -> None:
        async with SERVICE.offline() as runtime, runtime.uow() as uow:
            await handlers.revoke_token(token_id, uow)

    try:
        asyncio.run(_main())
    except (Refused, Missing) as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {token_id}")
