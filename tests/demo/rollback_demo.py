"""Rollback, rehearsed locally: a canary at 90/10 on a Lambda alias, an alarm notification
delivered the way SNS delivers it, and the real `rollback` binary (behind `cargo lambda watch`)
putting all traffic back on the stable version. Exits non-zero if the story does not happen.

Run it with `make demo`; it needs nothing but the project's venv and the Rust toolchain.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EVENT = ROOT / "events/rollback/sns-single-metric-alarm.json"
ROLE = "arn:aws:iam::123456789012:role/shiftguard-lambda-role"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_of(tag: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\necho {tag}\n")
    return buf.getvalue()


def show_alias(lam, name: str) -> tuple[str, dict]:
    alias = lam.get_alias(FunctionName="checkout", Name=name)
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    primary = 1.0 - sum(weights.values())
    shares = ", ".join([f"v{alias['FunctionVersion']} {primary:.0%}"] + [f"v{v} {w:.0%}" for v, w in weights.items()])
    print(f"    alias checkout:{name} -> {shares}")
    return alias["FunctionVersion"], weights


def kill_tree(proc: subprocess.Popen) -> None:
    # cargo-lambda leaves the function process behind when stopped: end the whole tree.
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for child in children:
        grandchildren = subprocess.run(["pgrep", "-P", child], capture_output=True, text=True).stdout.split()
        for g in grandchildren:
            subprocess.run(["kill", "-KILL", g], capture_output=True)
        subprocess.run(["kill", "-KILL", child], capture_output=True)
    proc.kill()
    proc.wait()


def main() -> int:
    step("Starting the local AWS emulator (moto + ShiftGuard's extension)")
    emulator = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/emulator/shiftguard_emulator.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watch = None
    try:
        url = emulator.stdout.readline().split()[-1]
        print(f"    {url}")
        aws = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="demo", aws_secret_access_key="demo")
        lam = boto3.client("lambda", **aws)

        step("A function `checkout` with versions 1 (stable) and 2 (canary), alias `live` at 90/10")
        lam.create_function(FunctionName="checkout", Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                            Code={"ZipFile": zip_of("v1")}, Publish=True)
        lam.update_function_code(FunctionName="checkout", ZipFile=zip_of("v2"))
        lam.publish_version(FunctionName="checkout")
        lam.create_alias(FunctionName="checkout", Name="live", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
        show_alias(lam, "live")

        step("Starting the real `rollback` binary behind the Lambda Runtime API (cargo lambda watch)")
        targets = [{"alarms": ["checkout-canary-*"], "targets": [{"type": "lambda-alias", "function": "checkout", "alias": "live"}]}]
        env_file = Path(tempfile.mkstemp(suffix=".env")[1])
        env_file.write_text(
            f"AWS_ENDPOINT_URL={url}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=demo\nAWS_SECRET_ACCESS_KEY=demo\n"
            f"ROLLBACK_TARGETS='{json.dumps(targets)}'\n"
        )
        print(f"    ROLLBACK_TARGETS={json.dumps(targets)}")
        port = free_port()
        watch = subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--ignore-changes",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--env-file", str(env_file)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            time.sleep(0.1)

        step(f"CloudWatch alarm `checkout-canary-errors` goes OK -> ALARM; SNS delivers {EVENT.relative_to(ROOT)}")
        print("    (the first invocation compiles the function; later ones take milliseconds)", flush=True)
        started = time.monotonic()
        invoke = subprocess.run(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", "rollback", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port), "--data-file", str(EVENT), "--output-format", "json"],
            cwd=ROOT, capture_output=True, text=True,
        )
        took = time.monotonic() - started
        if invoke.returncode != 0:
            print(invoke.stdout + invoke.stderr)
            print("FAILED: the rollback invocation failed")
            return 1
        summary = json.loads(invoke.stdout)
        for report in summary["targets"]:
            print(f"    {report['target']}: {report['action']} -> {report['outcome']}")
            print(f"      before {json.dumps(report['before'])}")
            print(f"      after  {json.dumps(report['after'])}")
        print(f"    invocation took {took:.2f}s (including the first build)")

        step("The alias now")
        version, weights = show_alias(lam, "live")
        if version != "1" or any(w > 0 for w in weights.values()):
            print("FAILED: the alias is not back on version 1 at 100%")
            return 1

        step("The same notification again (SNS may deliver twice): nothing to do")
        again = subprocess.run(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", "rollback", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port), "--data-file", str(EVENT), "--output-format", "json"],
            cwd=ROOT, capture_output=True, text=True,
        )
        outcome = json.loads(again.stdout)["targets"][0]["outcome"] if again.returncode == 0 else again.stderr
        print(f"    outcome: {outcome}")
        if outcome != "already-stable":
            print("FAILED: a duplicate delivery should change nothing")
            return 1
        print("\nOK: the 90/10 canary went back to 100% on version 1.")
        return 0
    finally:
        if watch is not None:
            kill_tree(watch)
        emulator.kill()


if __name__ == "__main__":
    sys.exit(main())
