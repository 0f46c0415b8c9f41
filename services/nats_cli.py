"""``qcdc nats …``: NATS credentials and permissions generated from the unit registry.

Who gets which permissions is worked out in :mod:`services.nats_principals` (which imports
every service) and :mod:`services.nats_auth`; the command imports them when it runs, so that
building the CLI stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from services.nats_auth import Credential

nats_app = typer.Typer(help="NATS credentials and subject permissions.", no_args_is_help=True)


@nats_app.command("config")
def config(
    out: Annotated[Path, typer.Option(help="Folder for auth.conf and credentials/*.env.")],
    units: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A registry export (.csv/.yaml); default: the plans database.",
        ),
    ] = None,
    district: Annotated[
        list[str] | None,
        typer.Option(help="Also a district credential for this unit's subtree (repeatable)."),
    ] = None,
    district_kind: Annotated[
        list[str] | None,
        typer.Option(help="Units of this kind get a district credential. Default: district."),
    ] = None,
    integrator: Annotated[
        list[str] | None,
        typer.Option(
            help="A read-only credential (repeatable): NAME reads every event, "
            "NAME:UNIT only that unit's subtree.",
        ),
    ] = None,
    rotate: Annotated[
        list[str] | None,
        typer.Option(help="New password for this user ('all': everyone). Others keep theirs."),
    ] = None,
) -> None:
    """Generate the nats-server authorization block and one env file per credential."""
    import asyncio

    from services import nats_auth
    from services.nats_principals import principals, registry_from_database, registry_from_file

    try:
        registry = registry_from_file(units) if units else asyncio.run(registry_from_database())
        found = principals(
            registry,
            district_kinds=district_kind or ["district"],
            districts=district or [],
            integrators=integrator or [],
        )
        unknown = set(rotate or []) - {p.user for p in found} - {"all"}
        if unknown:
            raise ValueError(f"--rotate: no user {', '.join(sorted(unknown))}")
    except (nats_auth.RegistryError, ValueError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    existing = nats_auth.existing_passwords(out)
    bundle = nats_auth.credentials(found, existing, rotate or [])
    nats_auth.write_bundle(out, bundle)
    _summary(out, bundle, existing)


def _summary(out: Path, bundle: Sequence[Credential], before: Mapping[str, str]) -> None:
    from services import nats_auth

    typer.echo(f"{out / nats_auth.AUTH_FILE}: {len(bundle)} user(s) (mode 0600)")
    for credential in bundle:
        mark = "" if before.get(credential.user) == credential.password else " (new password)"
        typer.echo(f"  {credential.user:<28} {credential.principal.description}{mark}")
    typer.echo(
        f"credentials: {out / nats_auth.CREDENTIALS_DIR}/<user>.env. "
        "Reload nats-server (SIGHUP, or `nats-server --signal reload`) to apply."
    )
