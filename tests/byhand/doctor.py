#!/usr/bin/env python3
"""`make doctor`: rollback's doctor against the local AWS emulator.

Rollback, asked `{"shiftguard": "doctor"}`, reads (and never changes) what its configuration
depends on — each mapped alarm exists, watches dimensions its Lambda target publishes, reaches
rollback, has data; each target and CodeDeploy group exists — and answers a report; a serious
finding fails the invocation with `Rollback.DoctorFoundProblems`. This runs it the way
tests/README.md#running-it-by-hand runs the functions: the emulator seeded with the sample
application (strict IAM: rollback holds exactly what the CDK construct grants it, from the
synthesized rehearsal stack), the rollback binary behind `cargo lambda watch` with the environment the emulator prints, then one
invocation. It prints the report one finding a line, serious first.

Usage: doctor.py [--emulator URL] [--watch URL]
  (neither)       start the seeded emulator and a watch of their own, ask doctor, stop both
  --emulator URL  an emulator already started with `make emulator SAMPLE=1`: only the watch is
                  started here, with the environment that emulator printed (GET /_shiftguard/seed)
  --watch URL     a `cargo lambda watch` already running (terminal 2 of "Running it by hand", e.g.
                  http://127.0.0.1:9000): only the invocation

Exit status: 0 no serious finding (warnings are printed), 1 serious findings, 2 doctor could not run
(the watch did not start, rollback failed otherwise: its errorType and message are printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests"))
from local_run import answers_at, cargo_lambda_watch, docstring_parser, free_port, stop_session  # noqa: E402

LOGDIR = ROOT / "target" / "doctor"
EVENT = {"shiftguard": "doctor"}
CANNOT_RUN = 2


class CannotRun(Exception):
    """doctor did not answer with a report: what happened instead."""


class Emulator:
    """The emulator seeded with the sample application (tests/emulator/sample.py), strict
    conformance, strict IAM: as `make emulator SAMPLE=1` starts it."""

    def __init__(self) -> None:
        LOGDIR.mkdir(parents=True, exist_ok=True)
        self.log = LOGDIR / "emulator.log"
        self.proc = subprocess.Popen(
            [sys.executable, "tests/emulator/shiftguard_emulator.py", "--host", "127.0.0.1", "--port", "0", "--seed-sample"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True,
            env={**os.environ, "SHIFTGUARD_STRICT": "1"}, start_new_session=True)
        first = self.proc.stdout.readline()
        if not first.startswith("SHIFTGUARD_EMULATOR_READY "):
            stop_session(self.proc)
            raise CannotRun(f"the emulator did not start: {first!r} (log: {self.log})")
        self.url = first.split()[1]
        # The by-hand instructions it prints next are not needed here (the seed has them); read and
        # dropped, so that the emulator never writes into a full or closed pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        stop_session(self.proc)


def seeded_environment(emulator: str) -> dict[str, str]:
    """The environment the seeded emulator prints for the functions' watch (its credentials are the
    rehearsal stack's roles under strict IAM)."""
    try:
        with urllib.request.urlopen(f"{emulator.rstrip('/')}/_shiftguard/seed", timeout=10) as resp:
            seed = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise CannotRun(f"no ShiftGuard emulator answers at {emulator}: {exc}") from None
    if not seed.get("env"):
        raise CannotRun(f"the emulator at {emulator} holds no sample application: start it with `make emulator SAMPLE=1`")
    return seed["env"]


class Watch:
    """`cargo lambda watch` on a free port with `env` (the functions read it at start-up)."""

    def __init__(self, env: dict[str, str]) -> None:
        LOGDIR.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = LOGDIR / "watch.log"
        keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("ROLLBACK_TARGETS", "HOOK_CHECKS")}
        self.proc = cargo_lambda_watch(port, {**keep, **env}, self.log)
        deadline = time.monotonic() + 120
        while not answers_at(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CannotRun(f"cargo lambda watch did not start (log: {self.log})")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_session(self.proc)


def ask(watch: str, timeout: float = 900.0) -> tuple[dict, str | None]:
    """One invocation of rollback with the doctor event: (the report, the errorType when it failed).
    `Rollback.DoctorFoundProblems` carries the report in its message (`…; report: {json}`); any
    other failure raises CannotRun with Lambda's errorType and message."""
    url = f"{watch.rstrip('/')}/2015-03-31/functions/rollback/invocations"
    req = urllib.request.Request(url, data=json.dumps(EVENT).encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, function_error, body = resp.status, resp.headers.get("X-Amz-Function-Error"), resp.read()
    except urllib.error.HTTPError as exc:
        status, function_error, body = exc.code, "Unhandled", exc.read()
    except OSError as exc:
        raise CannotRun(f"nothing answers at {watch}: {exc}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise CannotRun(f"rollback answered HTTP {status}: {body[:500]!r}") from None
    if status == 200 and not function_error:
        if not (isinstance(answer, dict) and isinstance(answer.get("findings"), list)):
            raise CannotRun(f"rollback did not answer with a doctor report (a build without doctor?): {json.dumps(answer)[:500]}")
        return answer, None
    error = answer if isinstance(answer, dict) else {}
    error_type, message = error.get("errorType") or f"HTTP {status}", str(error.get("errorMessage") or body[:500])
    if error_type == "Rollback.DoctorFoundProblems" and "report: " in message:
        try:
            report = json.loads(message.split("report: ", 1)[1])
        except ValueError:
            report = None
        if isinstance(report, dict) and isinstance(report.get("findings"), list):
            return report, error_type
    raise CannotRun(f"rollback failed: {error_type}: {message}")


def render(report: dict, error_type: str | None) -> list[str]:
    """The report, one finding a line, serious first (the order rollback gave otherwise)."""
    findings = sorted(report["findings"], key=lambda f: f.get("severity") != "serious")
    serious = sum(1 for f in findings if f.get("severity") == "serious")
    arn = report.get("functionArn") or "(its ARN is unknown under a local runtime)"
    lines = [f"doctor: rollback {arn}: {report.get('alarmsChecked', 0)} alarm(s), {report.get('targetsChecked', 0)} target(s) checked"]
    width = max((len(f.get("check", "")) for f in findings), default=0)
    for f in findings:
        lines.append(f"  {f.get('severity', '?'):<7}  {f.get('check', '?'):<{width}}  {f.get('subject', '?')}: {f.get('message', '')}")
    if serious:
        lines.append(f"NOT HEALTHY: {serious} serious, {len(findings) - serious} warning(s) ({error_type}): "
                     "rollback would not act on an alarm it must act on")
    else:
        lines.append(f"healthy: no serious finding, {len(findings)} warning(s)")
    return lines


def main() -> int:
    parser = docstring_parser(__doc__)
    parser.add_argument("--emulator")
    parser.add_argument("--watch")
    args = parser.parse_args()
    started: list = []
    try:
        if args.watch:
            watch = args.watch
        else:
            emulator = args.emulator
            if not emulator:
                started.append(em := Emulator())
                emulator = em.url
                print(f"emulator: the sample application at {emulator}, strict IAM (rollback as the rehearsal stack's role; log: {em.log})", flush=True)
            started.append(w := Watch(seeded_environment(emulator)))
            watch = w.url
            print(f"cargo lambda watch: {watch} (log: {w.log}; its first invocation builds rollback if needed)", flush=True)
        print(f"invoke rollback {json.dumps(EVENT)}", flush=True)
        report, error_type = ask(watch)
    except CannotRun as exc:
        print(f"doctor could not run: {exc}", file=sys.stderr)
        return CANNOT_RUN
    finally:
        for proc in reversed(started):
            proc.stop()
    for line in render(report, error_type):
        print(line, flush=True)
    return 1 if report.get("serious", 0) or error_type else 0


if __name__ == "__main__":
    sys.exit(main())
