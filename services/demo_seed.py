"""The demo that ``qcdc up`` seeds on first start: a real two-level province and the seed's
plan, issued with its dates moved by whole years so that its deadlines still lie ahead.

It runs the operators' own commands against the plans database (``qcdc units import-admin``,
``qcdc plans import``), so the demo goes through the same handlers as everything else; the
running plans service publishes the events from its outbox. Both commands run in one child
process (``python -m services.demo_seed``): importing the plans service is most of what a
command costs, and a process per command paid it twice."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

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
    import httpx

    existing = httpx.get(f"{plans_url}/units", timeout=30).json()
    if existing:
        return f"demo: resumed, {len(existing)} unit(s) already registered"
    command = [sys.executable, "-m", "services.demo_seed", province, str(plan_file())]
    done = subprocess.run(
        command, env=plans_env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SeedFailed(f"seeding the demo failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def demo_commands(province: str, plan: Path) -> list[tuple[str, list[str]]]:
    """(label, ``qcdc`` arguments) of the demo's commands, in order."""
    return [
        ("demo", ["units", "import-admin", "--province", province, "--demo-contacts"]),
        ("demo plan", ["plans", "import", str(plan), "--province", province, "--live", "--issue"]),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the demo's commands in this process; each one's output follows its label."""
    parser = argparse.ArgumentParser(description="Seed the demo into the plans database.")
    parser.add_argument("province")
    parser.add_argument("plan", type=Path)
    args = parser.parse_args(argv)

    from services.cli import app
    from shared.logging import configure_logging

    configure_logging("cli", os.environ.get("QCDC_LOG_LEVEL", "WARNING"))
    for label, arguments in demo_commands(args.province, args.plan):
        print(f"{label}: ", end="", flush=True)
        code = app(arguments, prog_name="qcdc", standalone_mode=False)
        if code:
            print(f"qcdc {' '.join(arguments)} failed", file=sys.stderr)
            return int(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
