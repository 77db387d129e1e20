"""`make test-stress`: the timing-sensitive suites, over and over, with the CPU loaded.

A flaky gate blocks good work or teaches everyone to retry. This runs what depends on timing —
the CodeDeploy engine tests, the sequences (rollback's, the hooks', shift's and the nine of "one
truth" through the binaries), every demo scenario and the emulator's own suite — ROUNDS times
while LOAD busy processes compete for the two cores, and reports each round's failures. The
binaries are built once, before the load starts (a build under load is slow, not flaky).

    make test-stress [ROUNDS=5] [LOAD=2]

Exit 0 only when every round passed. A summary (rounds, failures by suite, durations) goes to
stdout and to target/stress/results.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv/bin/python")

SUITES: list[tuple[str, list[str]]] = [
    ("hooks engine + sequences", ["cargo", "test", "--locked", "-p", "shiftguard-hooks", "--test", "engine", "--test", "sequences"]),
    ("rollback engine + sequences", ["cargo", "test", "--locked", "-p", "shiftguard-rollback", "--test", "engine", "--test", "sequences"]),
    ("shift sequences + one truth", ["cargo", "test", "--locked", "-p", "shiftguard-shift", "--test", "shift", "--test", "one_truth"]),
    ("demo alias", [PYTHON, "tests/demo/demo.py", "--scenario", "alias"]),
    ("demo lattice", [PYTHON, "tests/demo/demo.py", "--scenario", "lattice"]),
    ("demo codedeploy-alarm", [PYTHON, "tests/demo/demo.py", "--scenario", "codedeploy-alarm"]),
    ("emulator", [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/emulator"]),
]


def burn(stop_at: float) -> None:
    """One core's worth of busy work until `stop_at` (bounded: it always ends by itself)."""
    x = 0
    while time.time() < stop_at:
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 5)))
    parser.add_argument("--load", type=int, default=int(os.environ.get("LOAD", 2)), help="busy processes competing for the CPU")
    parser.add_argument("--max-minutes", type=float, default=90.0, help="the load stops by itself after this long")
    args = parser.parse_args()

    print("building the test binaries and the functions once, before the load", flush=True)
    build = subprocess.run(["cargo", "test", "--locked", "--workspace", "--no-run"], cwd=ROOT)
    if build.returncode != 0:
        return build.returncode
    subprocess.run(["cargo", "build", "--locked", "--bins"], cwd=ROOT, check=True)

    stop_at = time.time() + args.max_minutes * 60
    burners = [multiprocessing.Process(target=burn, args=(stop_at,), daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    logs = ROOT / "target/stress"
    logs.mkdir(parents=True, exist_ok=True)
    rounds = []
    try:
        for r in range(1, args.rounds + 1):
            failed = []
            started = time.time()
            for name, cmd in SUITES:
                log = logs / f"round{r}-{name.replace(' ', '-').replace('+', 'and')}.log"
                t0 = time.time()
                with open(log, "w") as out:
                    code = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
                status = "ok" if code == 0 else f"FAILED (exit {code}, {log})"
                print(f"round {r}/{args.rounds}  {name:<30} {time.time() - t0:6.1f}s  {status}", flush=True)
                if code != 0:
                    failed.append(name)
            rounds.append({"round": r, "failed": failed, "seconds": round(time.time() - started, 1)})
    finally:
        for b in burners:
            b.terminate()
    failures = sum(len(r["failed"]) for r in rounds)
    summary = {"rounds": rounds, "load": args.load, "suites": [n for n, _ in SUITES], "failures": failures}
    (logs / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"{failures} failed, {len(rounds) * len(SUITES) - failures} passed: {len(rounds)} round(s) of {len(SUITES)} suites with {args.load} busy processes", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
