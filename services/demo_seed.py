"""The demo that ``qcdc up`` seeds on first start: a real two-level province and the seed's
plan, issued with its dates moved by whole years so that its deadlines still lie ahead.

It runs the operators' own commands against the plans database (``qcdc units import-admin``,
``qcdc plans import``), so the demo goes through the same handlers as everything else; the
running plans service publishes the events from its outbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

DEMO_PROVINCE = "12"  # Lai Châu: 38 communes, a demo small enough to read
PLAN_FILE = Path("data") / "plans" / "2023-quy-che-dan-chu.yaml"


class SeedFailed(Exception):
    pass


def plan_file() -> Path:
    """The seed's plan in the checkout (editable install), else under the working directory."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / PLAN_FILE).is_file():
            return root / PLAN_FILE
    raise SeedFailed(f"{PLAN_FILE} not found; run from the repository or start with --no-seed")


def seed_demo(plans_url: str, plans_env: dict[str, str], province: str = DEMO_PROVINCE) -> str:
    """Import the province and issue the plan, unless units exist already."""
    existing = httpx.get(f"{plans_url}/units", timeout=30).json()
    if existing:
        return f"demo: resumed, {len(existing)} unit(s) already registered"
    units = _qcdc(plans_env, "units", "import-admin", "--province", province, "--demo-contacts")
    plan = _qcdc(
        plans_env, "plans", "import", str(plan_file()), "--province", province, "--live", "--issue"
    )
    return f"demo: {units.strip()}\ndemo plan: {plan.strip()}"


def _qcdc(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SeedFailed(
            f"seeding the demo failed: qcdc {' '.join(arguments)}\n{done.stdout}{done.stderr}"
        )
    return done.stdout
