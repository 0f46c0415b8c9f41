"""``python -m bench``: every benchmark with its default figures, one after the other, each in
its own process; prints each one's JSON object on a line and keeps them all in
``var/bench/<UTC time>.jsonl`` (the figures ``docs/performance.md`` quotes).

``python -m bench relay clock`` runs only those; ``--rounds 3`` runs each that many times
(the documented figures are medians of three)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RUNS: dict[str, list[list[str]]] = {
    "relay": [[]],
    "pipeline": [
        ["--db", "postgres"],
        ["--db", "sqlite"],
        ["--db", "postgres", "--mode", "sustained"],
        ["--db", "sqlite", "--mode", "sustained"],
    ],
    "notify": [["--db", "postgres"], ["--db", "sqlite"]],
    "clock": [[]],
    "consolidate": [[]],
    "startup": [[]],
}


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks.")
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(RUNS)}; default: all")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(RUNS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are {', '.join(RUNS)}")
    out = Path("var") / "bench" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    with out.open("w", encoding="utf-8") as results:
        for name in args.names or list(RUNS):
            for options in RUNS[name]:
                for _ in range(args.rounds):
                    command = [sys.executable, "-m", f"bench.{name}", *options]
                    print(f"# {' '.join(command[1:])}", file=sys.stderr, flush=True)
                    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
                    if done.returncode != 0:
                        failed += 1
                        continue
                    line = done.stdout.strip().splitlines()[-1]
                    json.loads(line)  # one JSON object, or this bench is broken
                    print(line, flush=True)
                    results.write(line + "\n")
    print(f"# results in {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
