"""``qcdc reports …``: submit, review and consolidate from the command line.

Commands work on the service's database through the same handlers as the HTTP API; the
events they cause wait in the outbox until the running service publishes them. The
service's modules are imported inside the commands, so that building the CLI (``qcdc
--help``) does not import them (nor the document writers)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shared.auth import CONSOLE
from shared.errors import Missing, Refused

if TYPE_CHECKING:
    from shared.uow import UnitOfWork

reports_app = typer.Typer(
    help="Reports: obligations, submit, review, consolidate.", no_args_is_help=True
)
T = TypeVar("T")


def _one(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    import asyncio

    from services.reports.bootstrap import SERVICE

    async def _main() -> T:
        async with SERVICE.offline() as runtime, runtime.uow() as uow:
            return await work(uow)

    try:
        return asyncio.run(_main())
    except Refused as exc:
        details = "".join(f"\n  {e['field']}: {e['message']}" for e in exc.errors)
        where = f" ({exc.field})" if exc.field else ""
        typer.echo(f"refused{where}: {exc.message}{details}", err=True)
        raise typer.Exit(1) from exc
    except Missing as exc:
        typer.echo(f"not found: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _pairs(items: list[str] | None, name: str) -> dict[str, str]:
    found = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=name)
        found[key] = value
    return found


@reports_app.command("obligations")
def obligations(
    unit: Annotated[str | None, typer.Option(help="Unit code.")] = None,
    status: Annotated[str | None, typer.Option(help="open, submitted, accepted, …")] = None,
) -> None:
    """List obligations."""
    from services.reports.adapters.repositories import ObligationRepository
    from shared.vntime import format_instant

    found = _one(lambda uow: ObligationRepository(uow.session).find(unit_code=unit, status=status))
    for o in found:
        typer.echo(
            f"{o.id}  {o.unit_code:10} {o.schedule_key:12} {o.status.value:10} "
            f"hạn cuối {format_instant(o.due_at)}  → {o.receiving_unit}"
        )


@reports_app.command("submit")
def submit(
    obligation: Annotated[str, typer.Option(help="Obligation id.")],
    unit: Annotated[str, typer.Option(help="The submitting unit's code.")],
    indicator: Annotated[list[str] | None, typer.Option(help="CODE=N, repeatable.")] = None,
    narrative: Annotated[list[str] | None, typer.Option(help="AREA=text, repeatable.")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    by: Annotated[str | None, typer.Option(help="Who submits.")] = None,
) -> None:
    """Submit a report; prints the receipt."""
    from services.reports.handlers import intake

    try:
        values = {k: int(v) for k, v in _pairs(indicator, "--indicator").items()}
    except ValueError as exc:
        raise typer.BadParameter("indicator values are whole numbers") from exc
    command = intake.SubmitReport(
        obligation_id=obligation,
        unit_code=unit,
        idempotency_key=key,
        submitted_by=by,
        narrative=_pairs(narrative, "--narrative"),
        indicators=values,
    )
    report = _one(lambda uow: intake.submit_report(command, uow, caller=CONSOLE)).report
    typer.echo(
        f"{report.receipt_number}  version {report.version}  "
        f"{'đúng hạn' if report.on_time else 'quá hạn'}  report {report.id}"
    )


@reports_app.command("review")
def review_report(
    report: Annotated[str, typer.Argument(help="Report id.")],
    reviewer: Annotated[str, typer.Option(help="The receiving unit's code.")],
    accept: Annotated[bool, typer.Option("--accept/--return", help="Accept or return.")],
    reason: Annotated[str, typer.Option(help="Why it is returned.")] = "",
) -> None:
    """Accept a report, or return it for revision with a reason."""
    from services.reports.handlers import review

    command = review.Review(report, reviewer, accept=accept, reason=reason)
    obligation, reviewed = _one(lambda uow: review.review_report(command, uow, caller=CONSOLE))
    typer.echo(
        f"{reviewed.receipt_number}: {reviewed.status.value}; obligation "
        f"{obligation.id} is {obligation.status.value}"
    )


@reports_app.command("consolidate")
def consolidate(
    plan: Annotated[str, typer.Option(help="Plan id.")],
    key: Annotated[str, typer.Option(help="Schedule key, e.g. six_month.")],
    receiving_unit: Annotated[str, typer.Option(help="The consolidating unit.")],
    output: Annotated[Path | None, typer.Option(help="Write here (.json, .docx, .xlsx).")] = None,
    publish: Annotated[bool, typer.Option(help="Publish a new version.")] = False,
    by: Annotated[str, typer.Option(help="Who publishes.")] = "cli",
) -> None:
    """Consolidate a plan's reports for a receiving unit: counts, rates, indicator totals."""
    from services.reports.adapters.documents import render_docx, render_xlsx
    from services.reports.domain.consolidation import ConsolidationKey
    from services.reports.handlers import consolidation

    target = ConsolidationKey(plan, key, receiving_unit)
    if publish:
        published = _one(
            lambda uow: consolidation.publish(
                consolidation.PublishConsolidation(target, by), uow, caller=CONSOLE
            )
        )
        result = published.consolidation
        done = "published" if published.created else "unchanged since"
        typer.echo(f"{done} version {published.version} ({published.id})")
    else:
        result = _one(lambda uow: consolidation.current(target, uow))
    if output is None:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    suffix = output.suffix.lower()
    if suffix == ".docx":
        output.write_bytes(render_docx(result))
    elif suffix == ".xlsx":
        output.write_bytes(render_xlsx(result))
    else:
        output.write_text(
            json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
    typer.echo(f"written {output}")
