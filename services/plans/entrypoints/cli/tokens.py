"""``qcdc tokens …``: API tokens from the operator's console (no token needed there).

The handlers are imported inside the commands, so that building the CLI does not."""

from __future__ import annotations

from typing import Annotated

import typer

from services.plans.entrypoints.cli.console import run_in_uow
from shared.auth import CONSOLE, Role

tokens_app = typer.Typer(help="API tokens bound to a unit and a role.", no_args_is_help=True)


@tokens_app.command("create")
def create(
    unit: Annotated[str, typer.Option(help="The unit the token acts for.")],
    role: Annotated[Role, typer.Option(help="What it may do.")],
    days: Annotated[int, typer.Option(help="Valid for this many days.")] = 365,
) -> None:
    """Create a token; it is printed once, only its hash is kept. Every service learns it
    from the bus once the plans service runs."""
    from services.plans.handlers import tokens as handlers

    command = handlers.CreateToken(unit, role, days)
    created = run_in_uow(lambda uow: handlers.create_token(command, uow, caller=CONSOLE))
    typer.echo(f"token id {created.token_id}\n{created.token}")


@tokens_app.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a token everywhere."""
    from services.plans.handlers import tokens as handlers

    run_in_uow(lambda uow: handlers.revoke_token(token_id, uow, caller=CONSOLE))
    typer.echo(f"revoked {token_id}")
