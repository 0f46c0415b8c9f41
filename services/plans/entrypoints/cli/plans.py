"""``qcdc plans …``: plans from the command line."""

from __future__ import annotations

import typer

plans_app = typer.Typer(help="Plans: import a plan document, issue, amend, sub-plans.",
                        no_args_is_help=True)
