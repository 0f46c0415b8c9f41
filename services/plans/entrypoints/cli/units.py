"""``qcdc units …``: the unit registry from the command line."""

from __future__ import annotations

import typer

units_app = typer.Typer(
    help="The unit registry: import, export, real administrative units.", no_args_is_help=True
)
