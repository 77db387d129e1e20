#!/usr/bin/env python3
"""A progressive rollout, driven locally: the stand-in for the Step Functions state machine that
drives `shift` on AWS (step -> choice on `status` -> wait `waitSeconds` -> step).

Each step is one invocation of the real `shift` binary through the Lambda Runtime API of
`cargo lambda watch` (POST /2015-03-31/functions/shift/invocations); the driver prints one line per
step, sleeps the `waitMs` the answer asks for, and stops when the rollout is promoted or aborted.
Like the state machine it keeps the previous answer in the event's `last` (shift ignores it) and
retries the errors rollback/shift/README.md#bad-input-and-errortypes marks retryable
(Shift.AwsError, Shift.RestoreFailed, Shift.NotifyFailed: three attempts, 1 s then 2 s apart).

Usage: rollout.py PLAN [--endpoint URL] [--emulator URL] [--speed N] [--id ID]
  PLAN        a plan file such as events/shift/lattice-rollout.json
  --endpoint  a running `cargo lambda watch` (e.g. http://127.0.0.1:9000)
  --emulator  the AWS emulator for a watch started here when there is no --endpoint, or nothing
              answers there (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:5005)
  --speed N   a rehearsal: every bake divided by N (5m at --speed 60 is 5s). shift times the bakes
              itself, so the plan it is sent is the scaled one
  --id ID     the rollout's id instead of the plan's (an id is used once: after its rollout ended,
              it only answers `finished`)

Exit status: 0 promoted, 2 aborted, 1 an error (its errorType and message are printed).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests"))
from local_run import answers_at, cargo_lambda_watch, docstring_parser, free_port  # noqa: E402

RETRYABLE = ("Shift.AwsError", "Shift.RestoreFailed", "Shift.NotifyFailed")
ATTEMPTS = 3


class StepFailed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


def invoke(endpoint: str, event: dict, timeout: float = 900.0) -> dict:
    """One invocation of `shift`: its answer, or StepFailed with Lambda's errorType."""
    url = f"{endpoint.rstrip('/')}/2015-03-31/functions/shift/invocations"
    req = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, function_error, body = resp.status, resp.headers.get("X-Amz-Function-Error"), resp.read()
    except urllib.error.HTTPError as exc:
        status, function_error, body = exc.code, "Unhandled", exc.read()
    try:
        answer = json.loads(body)
    except ValueError:
        raise StepFailed("Runtime.InvalidResponse", f"HTTP {status}: {body[:500]!r}") from None
    if status != 200 or function_error or not isinstance(answer, dict) or "status" not in answer:
        error = answer if isinstance(answer, dict) else {}
        raise StepFailed(error.get("errorType") or f"HTTP {status}", error.get("errorMessage") or json.dumps(answer)[:500])
    return answer


def bake_ms(value: int | str | None) -> int:
    """A step's bake as shift reads it ("500ms", "90s", "5m", "1h" or milliseconds)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)(ms|s|m|h)\s*", str(value))
    if not m:
        raise ValueError(f"bake {value!r}: expected a duration such as 5m, 90s, 1h or 500ms")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[m.group(2)]


def rehearsal(event: dict, speed: float) -> dict:
    """The plan with every bake divided by `speed`, in milliseconds."""
    scaled = copy.deepcopy(event)
    for step in scaled["rollout"]["steps"]:
        step["bake"] = round(bake_ms(step.get("bake")) / speed)
    return scaled


def line(answer: dict) -> str:
    """One step, as the driver prints it."""
    text = (f"step {answer['step']}/{answer['steps']}  canary {answer['canaryWeight']:3d}%  "
            f"{answer['action']:<9} {answer['status']}")
    if answer["status"] == "in-progress":
        text += f"  next step in {answer.get('waitMs', 0) / 1000:.1f}s"
    if answer.get("reason"):
        text += f"  ({answer['reason']})"
    if answer.get("restore"):
        text += f"  production: {answer['restore'].get('outcome')}"
    promotion = answer.get("promotion") or {}
    if promotion.get("productionAlias"):
        text += f"  production alias {promotion['productionAlias']} now on version {promotion['version']} (was {promotion.get('previous')})"
    elif promotion.get("productionTargets"):
        text += f"  production target group now holds {', '.join(t['id'] for t in promotion['productionTargets'])}"
    elif promotion.get("version"):
        text += f"  {promotion['alias']} on version {promotion['version']}" + (f", {promotion['stableAlias']} moved to it" if promotion.get("stableAlias") else "")
    return text


def drive(endpoint: str, event: dict, show: Callable[[dict], None] = lambda a: print(line(a), flush=True),
          sleep: Callable[[float], None] = time.sleep) -> dict:
    """Steps until the rollout is promoted or aborted; returns the last answer."""
    while True:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                answer = invoke(endpoint, event)
                break
            except StepFailed as exc:
                if exc.error_type not in RETRYABLE or attempt == ATTEMPTS:
                    raise
                print(f"{exc.error_type}: retrying in {attempt}s ({exc.message[:200]})", flush=True)
                sleep(attempt)
        show(answer)
        if answer["status"] != "in-progress":
            return answer
        event = {**event, "last": {k: answer[k] for k in ("status", "action", "step", "canaryWeight", "waitSeconds") if k in answer}}
        sleep(answer.get("waitMs", 1000 * answer.get("waitSeconds", 0)) / 1000)


class Watch:
    """`cargo lambda watch` of our own, on a free port, with the emulator's environment."""

    def __init__(self, emulator: str) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
               "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
               "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
        self.log = Path(tempfile.gettempdir()) / "shiftguard-rollout-watch.log"
        self.proc = cargo_lambda_watch(port, env, self.log)
        while not answers_at(self.endpoint):
            if self.proc.poll() is not None:
                raise SystemExit(f"cargo lambda watch did not start (log: {self.log})")
            time.sleep(0.1)

    def stop(self) -> None:
        """The watch and the function processes it started (its own process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def hint(exc: StepFailed, event: dict) -> str | None:
    target = event["rollout"]["target"]
    if exc.error_type == "Shift.Refused" and "from a split" in exc.message and target.get("type") == "lattice-listener":
        return ("put production back to 100% first: an operator rollback through the by-hand section's\n"
                "`cargo lambda watch` (its ROLLBACK_TARGETS name the listener):\n"
                f"  make rollback TARGET=lattice-listener:{target['service']}/{target['listener']} "
                "REASON='before the rollout' BY=$USER")
    return None


def main() -> int:
    parser = docstring_parser(__doc__)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--endpoint")
    parser.add_argument("--emulator", default=os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:5005")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--id", dest="rollout_id")
    args = parser.parse_args()
    event = json.loads(args.plan.read_text())
    if args.rollout_id:
        event["rollout"]["id"] = args.rollout_id
    if args.speed != 1.0:
        event = rehearsal(event, args.speed)
    rollout = event["rollout"]
    steps = " -> ".join(f"{s['weight']}% (bake {bake_ms(s.get('bake')) / 1000:g}s)" for s in rollout["steps"])
    speed = f" (a rehearsal: bakes divided by {args.speed:g})" if args.speed != 1.0 else ""
    print(f"rollout {rollout['id']}: {steps}{speed}", flush=True)
    watch = None
    if args.endpoint and answers_at(args.endpoint):
        endpoint = args.endpoint
    else:
        watch = Watch(args.emulator)
        endpoint = watch.endpoint
        print(f"cargo lambda watch started at {endpoint} against {args.emulator} (log: {watch.log}; "
              "its first invocation builds shift if needed)", flush=True)
    started = time.monotonic()
    try:
        final = drive(endpoint, event, show=lambda a: print(f"[{time.monotonic() - started:6.1f}s] {line(a)}", flush=True))
    except StepFailed as exc:
        print(f"rollout {rollout['id']} failed: {exc.error_type}: {exc.message}", file=sys.stderr)
        if (more := hint(exc, event)):
            print(more, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped; the rollout stands where the marker on its target says: run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if watch:
            watch.stop()
    if final["action"] == "finished":
        print(f"rollout {rollout['id']} had already ended ({final['status']}); nothing was written: a new rollout takes a new id (--id; make rollout ID=...)")
    return 0 if final["status"] == "promoted" else 2


if __name__ == "__main__":
    sys.exit(main())
