"""``qcdc plans …``: plans from the command line.

The service's modules are imported inside the commands, so that building the CLI
(``qcdc --help``) does not import them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from services.plans.entrypoints.cli.console import run, run_in_uow
from shared.auth import CONSOLE

if TYPE_CHECKING:
    from services.plans.domain.plans import Plan
    from services.plans.entrypoints.schemas import PlanIn
    from shared.runtime import Runtime

plans_app = typer.Typer(
    help="Plans: import a plan document, issue, amend, sub-plans.", no_args_is_help=True
)
T = TypeVar("T")


def load_plan_document(path: Path) -> PlanIn:
    """Read a plan YAML file (see data/plans/) into the API's plan schema."""
    import yaml
    from pydantic import ValidationError

    from services.plans.entrypoints.schemas import PlanIn

    try:
        return PlanIn.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        typer.echo(f"{path} is not a valid plan:\n  " + "\n  ".join(lines), err=True)
        raise typer.Exit(1) from exc


def next_live_year(plan: Plan, today: date) -> int:
    """The first year, shifting whole years, in which one of the plan's deadlines is still
    ahead of ``today`` (so a demo has live deadlines and reminders)."""
    from services.plans.domain.plans import shift_years

    years = 0
    while all(shift_years(e.due_before, years) <= today for e in plan.schedule):
        years += 1
    return plan.year + years


def _summary(plan: Plan) -> str:
    deadlines = ", ".join(f"{e.key} trước {e.due_before:%d/%m/%Y}" for e in plan.schedule)
    return (
        f"{plan.id}  {plan.doc_number}  {plan.status.value}  năm {plan.year}  "
        f"{len(plan.assignees)} assignee(s)  {deadlines}"
    )


@plans_app.command("import")
def import_plan(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    province: Annotated[
        str | None, typer.Option(help="Resolve kind:/tag: references here.")
    ] = None,
    year: Annotated[int | None, typer.Option(help="Shift every date to this year.")] = None,
    live: Annotated[
        bool, typer.Option(help="Shift by whole years so the next deadline lies ahead of today.")
    ] = False,
    issue: Annotated[bool, typer.Option(help="Issue it right away.")] = False,
) -> None:
    """Load a plan document (YAML) as a draft, optionally shifted in time and issued."""
    from services.plans.handlers import plans as handlers

    document = load_plan_document(file)
    plan = document.to_plan()
    if live:
        year = next_live_year(plan, date.today())
    if year is not None and year != plan.year:
        plan = plan.roll_over("", year)
    command = handlers.DraftPlan(plan, province=province or document.province, actor="cli")

    async def work(runtime: Runtime) -> Plan:
        async with runtime.uow() as uow:
            drafted = await handlers.draft_plan(command, uow, caller=CONSOLE)
        if not issue:
            return drafted
        async with runtime.uow() as uow:
            return await handlers.issue_plan(drafted.id, uow, actor="cli", caller=CONSOLE)

    typer.echo(_summary(run(work)))


@plans_app.command("list")
def list_plans(year: int | None = None) -> None:
    """List plans."""
    from services.plans.adapters.repositories import PlanRepository

    for plan in run_in_uow(lambda uow: PlanRepository(uow.session).find(year=year)):
        typer.echo(_summary(plan))


@plans_app.command("issue")
def issue_plan(plan_id: str) -> None:
    """Issue a draft plan (publishes PlanIssued when the service runs)."""
    from services.plans.handlers import plans as handlers

    typer.echo(
        _summary(
            run_in_uow(lambda uow: handlers.issue_plan(plan_id, uow, actor="cli", caller=CONSOLE))
        )
    )


@plans_app.command("amend")
def amend_plan(
    plan_id: str,
    reason: Annotated[str, typer.Option(help="Why the plan changes.")],
    deadline: Annotated[
        list[str] | None, typer.Option(help="KEY=YYYY-MM-DD, a new 'before' date.")
    ] = None,
    add: Annotated[list[str] | None, typer.Option(help="Unit code to assign.")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="Unit code to release.")] = None,
) -> None:
    """Move deadlines, add or remove assignees (publishes PlanAmended)."""
    from services.plans.domain.plans import Amendment
    from services.plans.handlers import plans as handlers

    deadlines = {}
    for item in deadline or []:
        key, _, day = item.partition("=")
        try:
            deadlines[key] = date.fromisoformat(day)
        except ValueError as exc:
            raise typer.BadParameter(f"{item!r}: expected KEY=YYYY-MM-DD") from exc
    amendment = Amendment(
        reason=reason,
        deadlines=deadlines,
        add_units=tuple(add or ()),
        remove_units=tuple(remove or ()),
    )
    typer.echo(
        _summary(
            run_in_uow(
                lambda uow: handlers.amend_plan(plan_id, amendment, uow, "cli", caller=CONSOLE)
            )
        )
    )


@plans_app.command("roll-over")
def roll_over(plan_id: str, year: Annotated[int, typer.Option()]) -> None:
    """Copy a plan into another year, dates shifted, as a new draft."""
    from services.plans.handlers import plans as handlers

    typer.echo(
        _summary(
            run_in_uow(
                lambda uow: handlers.roll_over_plan(plan_id, year, uow, "cli", caller=CONSOLE)
            )
        )
    )


@plans_app.command("sub-plans")
def sub_plans(plan_id: str) -> None:
    """Which assignees have and have not registered their own plans."""
    from services.plans.handlers import plans as handlers

    status = run_in_uow(lambda uow: handlers.sub_plan_status(plan_id, uow))
    for row in status.registered:
        typer.echo(
            f"registered  {row['unit_code']}  {row['doc_number']}  {row['issued_on']:%d/%m/%Y}"
        )
    for code in status.missing:
        typer.echo(f"missing     {code}")
    typer.echo(f"{len(status.registered)} registered, {len(status.missing)} missing")
