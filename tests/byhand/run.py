#!/usr/bin/env python3
"""tests/README.md#running-it-by-hand, run as printed: the emulator with `--seed-sample`, then the
block it prints between its markers, line by line, each through bash at the repository root:

* the `export` lines make the environment of `cargo lambda watch` (and of every later line);
* `.venv/bin/cargo-lambda lambda watch` starts in the background (its log: target/byhand/watch.log);
* each `cargo-lambda lambda invoke` and `curl` runs to completion and must exit 0.

Then it asserts what the printed comments promise: pre-traffic and post-traffic report `Succeeded`
and the emulator recorded exactly one report for each hook execution; rollback puts `checkout:live`
back on `["1", {}]` (CodeDeploy's rollback of the stopped deployment) and the Lattice listener on
100% production. Exit 0 when all hold.

Usage (repository root): `.venv/bin/python tests/byhand/run.py`. Only when port 9000 (cargo lambda's
default) is taken does it add `--invoke-port` to the watch and invoke lines, and it says so.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests"))
from local_run import free_port, stop_session  # noqa: E402

PYTHON = sys.executable
BEGIN = "----- ShiftGuard by hand: copy from here -----"
END = "----- end -----"
LOGDIR = ROOT / "target" / "byhand"
started = time.monotonic()
failures: list[str] = []


def say(text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)


def check(what: str, ok: bool, detail: str = "") -> None:
    say(f"{'PASS' if ok else 'FAIL'} {what}{(': ' + detail) if detail and not ok else ''}")
    if not ok:
        failures.append(what)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    LOGDIR.mkdir(parents=True, exist_ok=True)
    emulator_port = free_port()
    say(f"emulator: {PYTHON} tests/emulator/shiftguard_emulator.py --port {emulator_port} --seed-sample (strict conformance)")
    emu = subprocess.Popen([PYTHON, "tests/emulator/shiftguard_emulator.py", "--host", "127.0.0.1", "--port", str(emulator_port), "--seed-sample"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=(LOGDIR / "emulator.log").open("w"), text=True,
                           env={**os.environ, "SHIFTGUARD_STRICT": "1"}, start_new_session=True)
    watch = None
    try:
        first = emu.stdout.readline()
        if not first.startswith("SHIFTGUARD_EMULATOR_READY "):
            raise SystemExit(f"the emulator did not start: {first!r} (log: {LOGDIR / 'emulator.log'})")
        url = first.split()[1]
        printed = []
        for line in emu.stdout:
            line = line.rstrip("\n")
            printed.append(line)
            if line == END:
                break
        print("\n".join(printed), flush=True)
        block = printed[printed.index(BEGIN) + 1:printed.index(END)]

        extra = []
        if not port_free(9000):
            port = free_port()
            extra = ["--invoke-port", str(port)]
            say(f"port 9000 is taken: adding --invoke-port {port} to the watch and invoke lines")
        else:
            port = 9000

        exports = [line for line in block if line.startswith("export ")]
        env_out = subprocess.run(["bash", "-c", "\n".join(exports) + "\nenv -0"], cwd=ROOT, capture_output=True, check=True).stdout
        env = dict(item.split("=", 1) for item in env_out.decode().split("\0") if "=" in item)
        results: list[tuple[str, subprocess.CompletedProcess]] = []
        for line in block:
            if line.startswith("#") or line.startswith("export ") or not line.strip():
                continue
            command = line + (" " + shlex.join(extra) if extra and line.startswith(".venv/bin/cargo-lambda") else "")
            if line.startswith(".venv/bin/cargo-lambda lambda watch"):
                say(f"$ {command} &")
                watch = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=(LOGDIR / "watch.log").open("w"),
                                         stderr=subprocess.STDOUT, start_new_session=True)
                deadline = time.monotonic() + 120
                while port_free(port):
                    if watch.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"cargo lambda watch did not start (log: {LOGDIR / 'watch.log'})")
                    time.sleep(0.2)
                say("cargo lambda watch is up")
                continue
            say(f"$ {command}")
            t0 = time.monotonic()
            done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            out = done.stdout.strip()
            say(f"  exit {done.returncode} in {time.monotonic() - t0:.1f}s: {out[:600]}{' …' if len(out) > 600 else ''}")
            if done.returncode != 0:
                say(f"  stderr: {done.stderr.strip()[-1500:]}")
            check(f"exit 0: {line[:90]}", done.returncode == 0)
            results.append((line, done))

        # What the printed comments promise.
        seed = json.loads(subprocess.run(["curl", "-s", f"{url}/_shiftguard/seed"], capture_output=True, text=True, check=True).stdout)
        for event, name in (("BeforeAllowTraffic", "pre-traffic"), ("AfterAllowTraffic", "post-traffic")):
            hook_id = seed["hookExecutions"][event]
            execution = json.loads(subprocess.run(["curl", "-s", f"{url}/_shiftguard/codedeploy/hook-executions/{hook_id}"],
                                                  capture_output=True, text=True, check=True).stdout)
            reports = [r["status"] for r in execution["reports"]]
            check(f"{name}: {event} reported Succeeded, exactly one report", reports == ["Succeeded"] and execution["status"] == "Succeeded", json.dumps(execution))
        summaries = [json.loads(done.stdout) for line, done in results
                     if " invoke " in line and done.returncode == 0 and done.stdout.strip().startswith("{")]
        hooks = [(s.get("phase"), s.get("status")) for s in summaries if "phase" in s]
        check("the hooks' summaries: pre-traffic and post-traffic Succeeded",
              hooks == [("pre-traffic", "Succeeded"), ("post-traffic", "Succeeded")], json.dumps(hooks))
        outcomes = [[(t.get("action"), t.get("outcome")) for t in s.get("targets", [])] for s in summaries if "phase" not in s]
        check("rollback's summaries: the alias restored by CodeDeploy, the listener restored",
              outcomes == [[("stop-deployment", "restored-by-code-deploy")], [("restore-listener", "restored")]], json.dumps(outcomes))

        cfg = Config(retries={"max_attempts": 1})
        lam = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local", config=cfg)
        alias = lam.get_alias(FunctionName="checkout", Name="live")
        state = [alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}]
        check('rollback: checkout:live restored to ["1", {}]', state == ["1", {}], json.dumps(state))
        dep = json.loads(subprocess.run(["curl", "-s", f"{url}/_shiftguard/codedeploy/deployments/{seed['deploymentId']}"],
                                        capture_output=True, text=True, check=True).stdout)
        check(f"rollback: deployment {seed['deploymentId']} stopped and rolled back by CodeDeploy",
              dep["status"] == "Stopped" and "rollbackDeploymentId" in dep["rollbackInfo"], json.dumps(dep))
        vl = boto3.client("vpc-lattice", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local", config=cfg)
        lattice = seed["lattice"]
        groups = vl.get_listener(serviceIdentifier=lattice["service"], listenerIdentifier=lattice["listener"])["defaultAction"]["forward"]["targetGroups"]
        weights = {g["targetGroupIdentifier"]: g["weight"] for g in groups}
        check("rollback: the Lattice listener sends 100% to production",
              all((w > 0) == (tg == lattice["production"]) for tg, w in weights.items()), json.dumps(weights))
        conformance = json.loads(subprocess.run(["curl", "-s", f"{url}/_shiftguard/conformance"], capture_output=True, text=True, check=True).stdout)
        enforced = [m for m in conformance["mismatches"] if m["enforced"]]
        check("no off-model answer (strict conformance)", not enforced, json.dumps(enforced)[:500])
        calls = json.loads(subprocess.run(["curl", "-s", f"{url}/_shiftguard/calls"], capture_output=True, text=True, check=True).stdout)
        judged = [c["iam"] for c in calls if ":assumed-role/shiftguard-byhand/" in ((c.get("iam") or {}).get("principal") or "")]
        denied = [j for j in judged if j["decision"] != "allowed"]
        check("strict IAM: every call the functions made was allowed by the construct's grants (the rehearsal stack's roles)",
              judged and not denied, f"{len(judged)} judged; " + json.dumps(denied)[:500])
    finally:
        if watch is not None:
            stop_session(watch)
        stop_session(emu)
    say(f"{'OK' if not failures else 'FAILED: ' + '; '.join(failures)} (logs: {LOGDIR})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
