"""`make demo`: a whole canary deployment, rehearsed locally with the real ShiftGuard binaries.

The driver only starts things and watches. The local AWS emulator's engine is CodeDeploy and
CloudWatch: it runs each deployment (invoking the hooks asynchronously, shifting the alias as
Canary10Percent5Minutes does, time compressed), evaluates the alarm on the sample application's real
invocation metrics, publishes the alarm notification to SNS, and SNS delivers it to the rollback
function. Everything ShiftGuard does is done by the shipped `pre-traffic`, `post-traffic` and
`rollback` binaries, each behind its own `cargo lambda watch` (the Lambda Runtime API), bound to
the emulator's Lambda functions. The driver's only part in the story is what real callers do:
it sends the sample application's traffic through the alias, all the time. In the lattice
scenario the `shift` binary rolls out instead of CodeDeploy, and `tests/demo/rollout.py` plays the
Step Functions state machine that drives it (one invocation per step, a wait between steps), and
the driver publishes the canary's 5xx metric as Lattice would.

Every step is shown and checked from what the emulator recorded (hook executions, invocations,
alarm transitions, SNS deliveries, GetDeployment, the call log). Exits non-zero if any step's
outcome differs from the story, so `make test` runs it too.

Usage: demo.py [--scenario alias|codedeploy-alarm|lattice] [--transcript FILE]
  --transcript FILE  also write everything printed to FILE (tests/demo/readme_transcript.py
                     compares it with the transcript README.md or tests/README.md shows)
  alias             doctor catches an alarm that could never fire (a dimension Lambda never
                    publishes); v2 stopped by pre-traffic; v3 rolled back by ShiftGuard on its alarm;
                    v4 promoted
  codedeploy-alarm  the deployment group watches the same alarm and rolls back itself, while
                    ShiftGuard's rollback receives it through SNS: the two must agree, not fight
  lattice           a VPC Lattice listener, rolled out by `shift` (no CodeDeploy): v2 aborted at 10%
                    (alarm -> SNS -> rollback restores production), v3 promoted through every step
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib import request as urlrequest

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests"))
from local_run import free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
ROLE = "arn:aws:iam::123456789012:role/shiftguard-lambda-role"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BINARIES = ("pre-traffic", "post-traffic", "rollback", "shift")
APP = "checkout"
ALARM = "checkout-canary-errors"
TOPIC = "shiftguard-alarms"
PRE_HOOK = "CodeDeployHook_checkout_pre_traffic"
POST_HOOK = "CodeDeployHook_checkout_post_traffic"
ROLLBACK_FN = "checkout_rollback"
SHIFT_FN = "checkout_shift"
# The demo's world as a CDK app deploys it (cdk/lib/rehearsal.ts), synthesized by `make cdk-synth`:
# each binary runs with the IAM policy this template gives its function, strict IAM on.
REHEARSAL = ROOT / "target" / "cdk.out" / "ShiftGuardRehearsal.template.json"
# Emulated seconds per real second: Canary10Percent5Minutes waits 5 s between its two shifts, the
# alarm's 60 s period is 1 s, CodeDeploy's one-hour hook timeout is 60 s, Lambda's async retries
# come 1 s and 2 s after a failure.
TIME_SCALE = 60
# Requests per second the sample application's callers send through the alias (at 10% for 5 s the
# canary gets ~60, well above post-traffic's minSamples of 20).
TRAFFIC_RATE = 120
WAIT = 60.0  # real seconds any one step may take before the demo calls it failed (a bound, not a sleep: the first step includes cargo lambda watch building a binary, which waits for the cargo lock when another build holds it)

started_at = time.monotonic()
failures: list[str] = []


def say(text: str) -> None:
    print(f"[{time.monotonic() - started_at:6.1f}s] {text}", flush=True)


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def expect(what: str, ok: bool, detail: str = "") -> bool:
    mark = "ok " if ok else "FAIL"
    print(f"         [{mark}] {what}{(' — ' + detail) if detail else ''}", flush=True)
    if not ok:
        failures.append(what)
    return ok


class StepTimeout(Exception):
    pass


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def eventually(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Like wait_for, for a condition an expectation then judges: the last value, truthy or not."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def kill_tree(pid: int) -> None:
    """cargo-lambda leaves the function processes behind when stopped: end the whole tree."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in out:
        kill_tree(int(child))
    subprocess.run(["kill", "-KILL", str(pid)], capture_output=True)


def parse_json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def summary_of(inv: dict) -> Any:
    """The JSON a binary returned, from the emulator's record of the invocation (which keeps the
    first 4096 characters of a response: a longer summary is reported, not silently misread)."""
    summary = parse_json(inv.get("response"))
    if summary is None and len(inv.get("response") or "") >= 4096:
        expect(f"{inv['function']}'s summary fits the emulator's invocation record", False, "cut at 4096 characters")
    return summary


# ---------------------------------------------------------------------------------------------
# The local AWS emulator, its engine, and the three binaries bound to its Lambda functions
# ---------------------------------------------------------------------------------------------


class Emulator:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            # SHIFTGUARD_EMULATOR names another copy of the emulator script (as for the Rust tests).
            [sys.executable, os.environ.get("SHIFTGUARD_EMULATOR") or str(ROOT / "tests/emulator/shiftguard_emulator.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.url = self.proc.stdout.readline().split()[-1]
        # Strict IAM: the driver is the operator (it sets the world up and plays the callers); each
        # ShiftGuard binary runs as its own role from the synthesized template (roles()).
        self.operator = self.control("POST", "/_shiftguard/iam/operator")
        self.control("POST", "/_shiftguard/iam", {"enforce": True, "strict": True})

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=self.operator["AccessKeyId"], aws_secret_access_key=self.operator["SecretAccessKey"],
                            config=Config(max_pool_connections=20))

    def roles(self, *functions: str) -> dict[str, dict]:
        """The named functions of the rehearsal stack, their roles made real here: credentials,
        statements, environment. Resources of the stack this world lacks (the other scenario's)
        stay unresolved placeholders: a statement about them grants nothing."""
        if not REHEARSAL.exists():
            raise SystemExit(f"{REHEARSAL} is missing: run `make cdk-synth` (make demo does)")
        return self.control("POST", "/_shiftguard/iam/stack", {"templatePath": str(REHEARSAL), "functions": list(functions),
                                                               "unresolved": "placeholder"})["functions"]

    def role_calls(self) -> list[dict]:
        """Every call a stack role made, with the emulator's IAM decision."""
        return [c for c in self.control("GET", "/_shiftguard/calls") if ":assumed-role/" in ((c.get("iam") or {}).get("principal") or "")]

    def denied_calls(self) -> list[dict]:
        return [c for c in self.control("GET", "/_shiftguard/calls") if (c.get("iam") or {}).get("decision") not in (None, "allowed", "operator")]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urlrequest.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with urlrequest.urlopen(req) as resp:
            return json.loads(resp.read())

    def engine_on(self) -> dict:
        return self.control("POST", "/_shiftguard/engine", {"enabled": True, "timeScale": TIME_SCALE})

    # What the engine recorded.
    def invocations(self, function: str) -> list[dict]:
        return self.control("GET", f"/_shiftguard/lambda/invocations?function={function}")

    def transitions(self, alarm: str) -> list[dict]:
        return self.control("GET", f"/_shiftguard/cloudwatch/transitions?alarm={alarm}")

    def deliveries(self) -> list[dict]:
        return self.control("GET", "/_shiftguard/sns/deliveries")

    def calls(self, service: str, operation: str) -> list[dict]:
        return self.control("GET", f"/_shiftguard/calls?service={service}&operation={operation}")

    def hook_execution(self, execution_id: str) -> dict:
        return self.control("GET", f"/_shiftguard/codedeploy/hook-executions/{execution_id}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Functions:
    """One binary behind `cargo lambda watch` (the Lambda Runtime API), with its configuration."""

    def __init__(self, emulator: Emulator, binary: str, env: dict[str, str], log_name: str, role: dict) -> None:
        self.binary = binary
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env_file = Path(tempfile.mkstemp(suffix=".env")[1])
        creds = role["credentials"]
        base = {"AWS_ENDPOINT_URL": emulator.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}
        env_file.write_text("".join(f"{k}='{v}'\n" for k, v in {**base, **env}.items()))
        self.log = Path(tempfile.gettempdir()) / f"shiftguard-demo-{log_name}.log"
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port), "--env-file", str(env_file)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        while socket.socket().connect_ex(("127.0.0.1", self.port)) != 0:
            time.sleep(0.1)

    def stop(self) -> None:
        kill_tree(self.proc.pid)
        self.proc.wait()


def same_as_stack(role: dict, expected: dict) -> None:
    """The demo's configuration is the rehearsal stack's (cdk/lib/rehearsal.ts): they never drift."""
    for key, value in expected.items():
        got = role["settings"].get(key)  # the environment and the settings file, as the function reads them
        got = json.loads(got) if isinstance(value, (dict, list)) and got is not None else got
        if got != value:
            raise SystemExit(f"{key} of the rehearsal stack differs from the demo's: {json.dumps(got)} != {json.dumps(value)} "
                             "(cdk/lib/rehearsal.ts and tests/demo/demo.py describe the same world)")


def deploy_function(em: Emulator, name: str, server: Functions) -> str:
    """A Lambda function in the emulator whose every invocation runs `server`'s real binary."""
    lam = em.client("lambda")
    arn = lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                              Code={"ZipFile": zip_of(name)})["FunctionArn"]
    em.control("POST", "/_shiftguard/lambda/bindings", {"function": name, "endpoint": server.endpoint, "name": server.binary})
    return arn


def build() -> None:
    step("Building the functions (debug; the first build takes a few minutes on a cold machine)")
    cmd = ["cargo", "build"] + [a for b in BINARIES for a in ("--bin", b)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    compiled = 0
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("Compiling"):
            compiled += 1
            if compiled % 25 == 0:
                say(f"  compiled {compiled} crates… ({line.split()[1]})")
        elif line.startswith("Finished") or line.startswith("error"):
            say("  " + line)
    if proc.wait() != 0:
        raise SystemExit("the build failed")


# ---------------------------------------------------------------------------------------------
# The sample application, its callers, and what the driver watches
# ---------------------------------------------------------------------------------------------


def zip_of(tag: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {tag}\n")
    return buf.getvalue()


HEALTHY = {"response": {"statusCode": 200, "body": json.dumps({"status": "ok"})}}
BROKEN = {"function_error": "Unhandled", "response": {"errorType": "Runtime.ImportModuleError", "errorMessage": "Cannot find module 'db'"}}
# Fine on /health, failing on /checkout: passes pre-traffic, fails under real traffic.
FAILS_CHECKOUT = {**HEALTHY, "fail_if_payload_contains": "/checkout",
                  "error_response": {"errorType": "TypeError", "errorMessage": "cart.total is undefined"}}


def publish(em: Emulator, version: str, behaviour: dict) -> None:
    lam = em.client("lambda")
    lam.update_function_code(FunctionName=APP, ZipFile=zip_of(f"v{version}"))
    got = lam.publish_version(FunctionName=APP)["Version"]
    assert got == version, (got, version)
    em.control("POST", "/_shiftguard/lambda/behaviour", {"function": APP, "version": version, **behaviour})


def alias_state(lam, name: str = "live") -> tuple[str, dict]:
    a = lam.get_alias(FunctionName=APP, Name=name)
    weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return a["FunctionVersion"], {k: round(v, 4) for k, v in weights.items()}


def show(state: tuple[str, dict]) -> str:
    version, weights = state
    primary = 1.0 - sum(weights.values())
    return ", ".join([f"v{version} {primary:.0%}"] + [f"v{v} {w:.0%}" for v, w in weights.items()])


def on_100(state: tuple[str, dict], version: str) -> bool:
    return state[0] == version and not any(w > 0 for w in state[1].values())


class Traffic:
    """The sample application's callers: POST /checkout through the alias, all the time, as real
    callers would. Records (time, executed version, failed) for each request."""

    def __init__(self, em: Emulator, rate: float = TRAFFIC_RATE) -> None:
        self.lam = em.client("lambda")
        self.period = 1.0 / rate
        self.records: list[tuple[float, str, bool]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="traffic")
        self.thread.start()

    def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self.stopping.is_set():
            i += 1
            try:
                out = self.lam.invoke(FunctionName=APP, Qualifier="live",
                                      Payload=json.dumps({"httpMethod": "POST", "path": "/checkout", "body": json.dumps({"cart": i})}))
                self.records.append((time.monotonic(), out.get("ExecutedVersion", "?"), bool(out.get("FunctionError"))))
            except Exception as exc:  # a caller that sees an error keeps calling
                self.records.append((time.monotonic(), f"error {type(exc).__name__}", True))
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def between(self, start: float, end: float | None = None) -> list[tuple[float, str, bool]]:
        return [r for r in list(self.records) if r[0] >= start and (end is None or r[0] <= end)]

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def summarize(records: list[tuple[float, str, bool]]) -> str:
    by_version: dict[str, list[int]] = {}
    for _, version, failed in records:
        counts = by_version.setdefault(version, [0, 0])
        counts[0] += 1
        counts[1] += failed
    return ", ".join(f"v{v}: {n} ({e} failed)" for v, (n, e) in sorted(by_version.items()))


class AliasWatch:
    """Every state the alias `live` went through, as GetAlias showed it (polled every 10 ms)."""

    def __init__(self, em: Emulator) -> None:
        self.lam = em.client("lambda")
        self.seen: list[tuple[float, tuple[str, dict]]] = [(time.monotonic(), alias_state(self.lam))]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="alias-watch")
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            state = alias_state(self.lam)
            if state != self.seen[-1][1]:
                self.seen.append((time.monotonic(), state))
            time.sleep(0.01)

    def now(self) -> tuple[str, dict]:
        return self.seen[-1][1]

    def reached(self, predicate: Callable[[tuple[str, dict]], bool], since: float = 0.0) -> float | None:
        return next((t for t, s in self.seen if t >= since and predicate(s)), None)

    def states_since(self, since: float) -> list[tuple[str, dict]]:
        before = [s for t, s in self.seen if t < since][-1:]
        return before + [s for t, s in self.seen if t >= since]

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def put_canary_alarm(cw, canary_version: str, topic_arn: str) -> None:
    """The canary's own errors: AWS/Lambda Errors of `checkout:live` where ExecutedVersion is the
    version being deployed (updated before each deployment, as a SAM template's alarm on the new
    version is). Missing data (no canary traffic) is not breaching. ALARM and OK both notify the
    topic; rollback acts only on ALARM."""
    cw.put_metric_alarm(AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": APP}, {"Name": "Resource", "Value": f"{APP}:live"},
                                    {"Name": "ExecutedVersion", "Value": canary_version}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[topic_arn], OKActions=[topic_arn])
    # CloudWatch leaves an updated alarm's state unchanged; the emulator restarts it at
    # INSUFFICIENT_DATA until its next evaluation. Wait for that evaluation (OK: no canary traffic
    # yet), so that each deployment starts, as on AWS, with the alarm OK.
    wait_for(lambda: cw.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["StateValue"] == "OK", f"alarm {ALARM} to be OK")


# ---------------------------------------------------------------------------------------------
# CodeDeploy, as the driver sees it: it creates deployments, the engine runs them
# ---------------------------------------------------------------------------------------------


class CodeDeploy:
    def __init__(self, em: Emulator, alarms: list[str] | None = None, rollback_events: list[str] | None = None) -> None:
        self.em = em
        self.cd = em.client("codedeploy")
        self.cd.create_application(applicationName=f"{APP}-app", computePlatform="Lambda")
        group: dict[str, Any] = {
            "applicationName": f"{APP}-app", "deploymentGroupName": f"{APP}-dg", "serviceRoleArn": ROLE,
            "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        }
        if alarms:
            group["alarmConfiguration"] = {"enabled": True, "alarms": [{"name": a} for a in alarms]}
        if rollback_events:
            group["autoRollbackConfiguration"] = {"enabled": True, "events": rollback_events}
        self.cd.create_deployment_group(**group)

    def create(self, current: str, target: str) -> str:
        appspec = {"version": 0.0, "Resources": [{APP: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": APP, "Alias": "live", "CurrentVersion": current, "TargetVersion": target}}}],
            "Hooks": [{"BeforeAllowTraffic": PRE_HOOK}, {"AfterAllowTraffic": POST_HOOK}]}
        return self.cd.create_deployment(applicationName=f"{APP}-app", deploymentGroupName=f"{APP}-dg",
                                         revision={"revisionType": "AppSpecContent",
                                                   "appSpecContent": {"content": json.dumps(appspec)}})["deploymentId"]

    def info(self, dep: str) -> dict:
        return self.cd.get_deployment(deploymentId=dep)["deploymentInfo"]

    def finished(self, dep: str) -> dict | None:
        info = self.info(dep)
        return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None

    def wait_finished(self, dep: str) -> dict:
        return wait_for(lambda: self.finished(dep), f"deployment {dep} to finish")

    def versions(self, dep: str) -> tuple[str, str]:
        """(current, target) from the deployment's Lambda target, as ShiftGuard reads them."""
        target_id = self.cd.list_deployment_targets(deploymentId=dep)["targetIds"][0]
        info = self.cd.get_deployment_target(deploymentId=dep, targetId=target_id)["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"]
        return info.get("currentVersion", "?"), info.get("targetVersion", "?")

    def all(self) -> list[dict]:
        ids = self.cd.list_deployments(applicationName=f"{APP}-app", deploymentGroupName=f"{APP}-dg")["deployments"]
        infos = [self.info(d) for d in ids]
        return sorted(infos, key=lambda i: i["createTime"])

    def rollbacks(self) -> list[dict]:
        """Every rollback deployment CodeDeploy made in the group."""
        return [i for i in self.all() if i.get("creator") == "codeDeployRollback"]

    def lifecycle(self, dep: str) -> dict[str, str]:
        target_id = self.cd.list_deployment_targets(deploymentId=dep)["targetIds"][0]
        target = self.cd.get_deployment_target(deploymentId=dep, targetId=target_id)["deploymentTarget"]["lambdaTarget"]
        return {e["lifecycleEventName"]: e["status"] for e in target.get("lifecycleEvents", [])}

    def show_rollback(self, rollback_id: str) -> None:
        """CodeDeploy's rollback deployment: it runs the original's hooks for the version it
        restores, and puts the alias back in its AllowTraffic event."""
        rb = self.wait_finished(rollback_id)
        current, target = self.versions(rollback_id)
        events = self.lifecycle(rollback_id)
        say(f"CodeDeploy's rollback deployment {rollback_id} (creator {rb['creator']}): {current} -> {target}, {rb['status']}; "
            + ", ".join(f"{k} {v}" for k, v in events.items()))
        expect(f"CodeDeploy's rollback deployment put the alias back on version {target} (AllowTraffic)", events.get("AllowTraffic") == "Succeeded",
               str(events.get("AllowTraffic")))
        # ShiftGuard's hooks never block CodeDeploy's rollback deployment (their checks are advisory
        # there), so it must end Succeeded.
        detail = rb["status"]
        if rb["status"] != "Succeeded":
            failed = [e for e in ("BeforeAllowTraffic", "AfterAllowTraffic") if events.get(e) == "Failed"]
            reasons = [(self.hook_status(rollback_id, e)[1] or {}).get("reason", "?") for e in failed]
            detail = f"{rb['status']}: {'; '.join(reasons) or rb.get('errorInformation')}"
        expect("CodeDeploy's rollback deployment succeeded (ShiftGuard's hooks never block a rollback)", rb["status"] == "Succeeded", detail)

    def hook_runs(self, dep: str, event: str) -> list[dict]:
        """Every invocation the engine made of `event`'s hook for `dep`, with what CodeDeploy
        recorded for its hook execution and the summary the binary returned."""
        function = PRE_HOOK if event == "BeforeAllowTraffic" else POST_HOOK
        runs = []
        for inv in self.em.invocations(function):
            payload = parse_json(inv["payload"]) or {}
            if payload.get("DeploymentId") != dep:
                continue
            execution = self.em.hook_execution(payload["LifecycleEventHookExecutionId"])
            runs.append({**inv, "execution": execution, "summary": summary_of(inv)})
        return runs

    def hook_status(self, dep: str, event: str) -> tuple[str, dict | None]:
        """CodeDeploy's record of the hook (one report, Succeeded or Failed), and the hook's summary."""
        runs = wait_for(lambda: [r for r in self.hook_runs(dep, event) if r["execution"]["status"] != "Pending"],
                        f"{event} of {dep} to be reported")
        reports = runs[-1]["execution"]["reports"]
        status = reports[0]["status"] if len(reports) == 1 else f"{len(reports)} reports"
        return status, runs[-1]["summary"]


def notified_state(inv: dict) -> str | None:
    """The alarm state an SNS event delivered to rollback notifies (None: not an SNS alarm event)."""
    try:
        return json.loads(json.loads(inv["payload"])["Records"][0]["Sns"]["Message"])["NewStateValue"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def rollback_invocations(em: Emulator, since: float = 0.0, state: str = "ALARM") -> list[dict]:
    """rollback's invocations since `since` (wall clock) for notifications of `state`."""
    return [i for i in em.invocations(ROLLBACK_FN) if i["time"] >= since and notified_state(i) == state]


def ok_notification_ignored(em: Emulator, alarm: str) -> None:
    """A new alarm goes INSUFFICIENT_DATA -> OK at its first evaluation; its OK notification reaches
    rollback, which acts only on transitions into ALARM."""
    inv = wait_for(lambda: rollback_invocations(em, 0.0, "OK"), f"the OK notification of {alarm} to reach rollback")[0]
    summary = summary_of(inv) or {}
    ignored = [i.get("reason", "") for i in summary.get("ignored", []) if i.get("alarm") == alarm]
    say(f"alarm {alarm}: INSUFFICIENT_DATA -> OK; SNS delivered the OK notification, rollback ignored it: {ignored[0] if ignored else inv['response'][:120]}")
    expect("rollback ignores the OK notification and touches nothing", not inv["functionError"] and bool(ignored) and not summary.get("targets"))


def rollback_report(inv: dict) -> dict:
    summary = summary_of(inv) or {}
    targets = summary.get("targets") or [{}]
    return targets[0] if isinstance(summary, dict) else {}


def alarm_deliveries(em: Emulator, alarm: str, since: float) -> list[dict]:
    """SNS deliveries to Lambda of `alarm`'s ALARM notifications since `since` (wall clock), each
    with the notification's StateChangeTime (epoch seconds) as `changed`."""
    out = []
    for d in em.deliveries():
        message = parse_json(d["event"]["Records"][0]["Sns"]["Message"]) or {}
        if d["time"] >= since and message.get("AlarmName") == alarm and message.get("NewStateValue") == "ALARM":
            changed = datetime.strptime(message["StateChangeTime"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
            out.append({**d, "changed": changed})
    return out


def alarm_transition(em: Emulator, alarm: str, state: str, since: float) -> dict:
    return wait_for(lambda: next((t for t in em.transitions(alarm) if t["newState"] == state and t["time"] >= since), None),
                    f"alarm {alarm} to go to {state}")


DOCTOR_EVENT = '{"shiftguard":"doctor"}'


def ask_doctor(em: Emulator) -> tuple[dict | None, str | None, str]:
    """rollback asked `{"shiftguard": "doctor"}` through the emulator's Lambda, as the CDK
    construct's deploy-time trigger asks it: (the report, the errorType when it failed, the error
    message). `Rollback.DoctorFoundProblems` carries the report in its message (`…; report: {json}`)."""
    out = em.client("lambda").invoke(FunctionName=ROLLBACK_FN, Payload=DOCTOR_EVENT)
    body = parse_json(out["Payload"].read())
    if not out.get("FunctionError"):
        return (body if isinstance(body, dict) and isinstance(body.get("findings"), list) else None), None, ""
    error = body if isinstance(body, dict) else {}
    message = str(error.get("errorMessage") or "")
    report = parse_json(message.split("report: ", 1)[1]) if "report: " in message else None
    return (report if isinstance(report, dict) else None), error.get("errorType") or out["FunctionError"], message


def doctor_calls(em: Emulator, role: str, since: float, until: float) -> list[dict]:
    """The calls rollback's role made between `since` and `until` (wall clock)."""
    return [c for c in em.role_calls() if f":assumed-role/{role}/" in c["iam"]["principal"] and since <= c["time"] <= until]


def doctor_step(em: Emulator, stack: "Stack") -> None:
    """rollback checks its own safety net; an alarm rewritten on a dimension Lambda never publishes
    is caught, and the net is sound again once it is put back."""
    cw = stack.cw
    report, error_type, message = ask_doctor(em)
    findings = (report or {}).get("findings") or []
    say(f"doctor ({DOCTOR_EVENT} to {ROLLBACK_FN}): {(report or {}).get('alarmsChecked', 0)} alarm(s), "
        f"{(report or {}).get('targetsChecked', 0)} target(s) checked: "
        + (f"healthy, {len(findings)} warning(s)" if report and report.get("healthy") and not error_type else f"{error_type}: {message[:200]}"))
    expect("doctor finds the safety net sound (no serious finding)", bool(report) and report.get("healthy") is True and not error_type,
           "; ".join(f"{f['severity']} {f['check']} {f['subject']}" for f in findings))

    # The alarm as people write it by mistake, on the alias: Lambda publishes Resource=checkout:live,
    # never an Alias dimension, so this alarm would never get a datapoint and never fire.
    cw.put_metric_alarm(AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": APP}, {"Name": "Alias", "Value": "live"}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[stack.topic], OKActions=[stack.topic])
    say(f"alarm {ALARM} rewritten on FunctionName={APP}, Alias=live (Lambda publishes Resource={APP}:live, never Alias)")
    asked = time.time()
    report, error_type, message = ask_doctor(em)
    done = time.time()
    serious = [f for f in ((report or {}).get("findings") or []) if f.get("severity") == "serious"]
    for f in serious:
        say(f"doctor: {error_type}: [{f['check']}] {f['subject']}: {f['message']}")
    if not serious:
        say(f"doctor: {error_type or 'healthy'}: {message[:200]}")
    caught = [f for f in serious if f.get("check") == "alarm-dimensions" and f.get("subject") == ALARM and "dimension Alias" in f.get("message", "")]
    expect("doctor fails with Rollback.DoctorFoundProblems, naming the alarm's Alias dimension (its only serious finding)",
           error_type == "Rollback.DoctorFoundProblems" and len(caught) == 1 and len(serious) == 1, f"{len(serious)} serious")
    calls = doctor_calls(em, stack.rollback_role, asked, done)
    writes = sorted({c["iam"]["action"] for c in calls if not c["iam"]["action"].split(":", 1)[1].startswith(("Describe", "List", "Get", "BatchGet"))})
    expect("doctor only read: its calls as rollback's role were Describe/List/Get", bool(calls) and not writes,
           f"{len(calls)} call(s)" + (f"; writes: {', '.join(writes)}" if writes else ""))

    put_canary_alarm(cw, "1", stack.topic)
    report, error_type, _ = ask_doctor(em)
    say(f"alarm {ALARM} put back (ExecutedVersion=1 under Resource={APP}:live): doctor "
        + ("healthy again" if report and report.get("healthy") and not error_type else f"{error_type}"))
    expect("the safety net is sound again", bool(report) and report.get("healthy") is True and not error_type)


# ---------------------------------------------------------------------------------------------
# The configuration of the three functions
# ---------------------------------------------------------------------------------------------


PRE_CHECKS = {"concurrency": 3, "checks": [
    {"name": "health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"},
     "expect": {"status": 200, "json": {"/body/status": "ok"}, "maxLatencyMs": 2000}, "timeout": "5s", "retries": 1, "backoff": "100ms"},
    {"name": "burst", "kind": "burst", "requests": 20, "concurrency": 5, "timeout": "20s",
     "target": {"invoke": {"payload": {"httpMethod": "GET", "path": "/health"}, "expect": {"status": 200}}}},
]}
POST_CHECKS = {"concurrency": 2, "checks": [
    {"name": "alias-health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"},
     "expect": {"status": 200, "json": {"/body/status": "ok"}}, "timeout": "5s"},
    {"name": "new-vs-old", "kind": "metrics", "window": "15m", "minSamples": 20, "maxErrorRate": 0.02,
     "maxErrorRateMultiple": 2.0, "inconclusive": "fail"},
]}
ROLLBACK_TARGETS = [{"alarms": [ALARM], "targets": [{"type": "lambda-alias", "function": APP, "alias": "live",
                                                     "stableAlias": "blue",
                                                     "codeDeploy": {"application": f"{APP}-app", "deploymentGroup": f"{APP}-dg"}}]}]


class Stack:
    """The sample application and ShiftGuard, wired as a SAM/CDK stack would wire them: `checkout`
    with alias `live` (and the stable pointer `blue`) on version 1, the hooks and rollback as Lambda
    functions running the real binaries, an SNS topic for alarms with rollback subscribed."""

    def __init__(self, em: Emulator, codedeploy_alarm: bool = False) -> None:
        self.em = em
        self.lam, self.cw, self.sns = em.client("lambda"), em.client("cloudwatch"), em.client("sns")
        self.lam.create_function(FunctionName=APP, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                                 Code={"ZipFile": zip_of("v1")}, Publish=True)
        em.control("POST", "/_shiftguard/lambda/behaviour", {"function": APP, "version": "1", **HEALTHY})
        self.lam.create_alias(FunctionName=APP, Name="live", FunctionVersion="1")
        self.lam.create_alias(FunctionName=APP, Name="blue", FunctionVersion="1")
        self.topic = self.sns.create_topic(Name=TOPIC)["TopicArn"]
        if codedeploy_alarm:
            self.codedeploy = CodeDeploy(em, alarms=[ALARM], rollback_events=["DEPLOYMENT_STOP_ON_ALARM"])
        else:
            self.codedeploy = CodeDeploy(em)
        self.servers: list[Functions] = []
        self.watch: AliasWatch | None = None
        self.traffic: Traffic | None = None
        try:
            roles = em.roles(PRE_HOOK, POST_HOOK, ROLLBACK_FN)
            same_as_stack(roles[PRE_HOOK], {"HOOK_CHECKS": PRE_CHECKS})
            same_as_stack(roles[POST_HOOK], {"HOOK_CHECKS": POST_CHECKS, "STABLE_ALIAS": "blue"})
            for binary, env, log, fn in (
                ("pre-traffic", {"HOOK_CHECKS": json.dumps(PRE_CHECKS)}, "pre", PRE_HOOK),
                ("post-traffic", {"HOOK_CHECKS": json.dumps(POST_CHECKS), "STABLE_ALIAS": "blue"}, "post", POST_HOOK),
                ("rollback", {"ROLLBACK_TARGETS": json.dumps(ROLLBACK_TARGETS), "CODEDEPLOY_ROLLBACK_WAIT": "5s"}, "rollback", ROLLBACK_FN),
            ):
                self.servers.append(Functions(em, binary, env, log, roles[fn]))
            pre, post, rollback = self.servers
            deploy_function(em, PRE_HOOK, pre)
            deploy_function(em, POST_HOOK, post)
            rollback_arn = deploy_function(em, ROLLBACK_FN, rollback)
            self.rollback_role = roles[ROLLBACK_FN]["roleArn"].rsplit("/", 1)[1]
            self.sns.subscribe(TopicArn=self.topic, Protocol="lambda", Endpoint=rollback_arn)
            self.watch = AliasWatch(em)
        except BaseException:
            self.stop()
            raise

    def start_traffic(self) -> None:
        self.traffic = Traffic(self.em)

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        if self.watch is not None:
            self.watch.stop()
        for s in self.servers:
            s.stop()

    def final_state(self) -> None:
        step("Final state")
        rows = [("alias live", show(alias_state(self.lam))), ("alias blue", f"v{alias_state(self.lam, 'blue')[0]}")]
        for info in self.codedeploy.all():
            current, target = self.codedeploy.versions(info["deploymentId"])
            label = f"deployment {current} -> {target}"
            if info.get("creator") == "codeDeployRollback":
                label += " (CodeDeploy's rollback)"
            status = info["status"]
            error = (info.get("errorInformation") or {}).get("code")
            rows.append((label, f"{status}{f' ({error})' if error else ''}"))
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"    {name.ljust(width)}  {value}")


def engine_banner(settings: dict) -> None:
    say(f"engine on, time x{settings['timeScale']:.0f}: Canary10Percent5Minutes waits {300 / settings['timeScale']:.0f}s "
        f"between its shifts, a 60 s alarm period is {60 / settings['timeScale']:.0f}s")


def no_alias_writes_by_rollback(em: Emulator, since: float) -> None:
    """CodeDeploy is in charge of `live`: nothing but CodeDeploy may move it. The engine writes the
    alias inside the emulator; any UpdateAlias on `live` in the call log came from a client."""
    writes = [c for c in em.calls("lambda", "UpdateAlias") if c["time"] >= since and c["path"].rstrip("/").endswith("/aliases/live")]
    expect("rollback never wrote the alias behind CodeDeploy's back (no UpdateAlias on live in the call log)",
           not writes, f"{len(writes)} UpdateAlias call(s)" if writes else "")


def deploy_to_canary(em: Emulator, stack: Stack, version: str, behaviour: dict, pre_traffic_said: str | None = "") -> tuple[str, float, float, float]:
    """Version `version` (behaving as `behaviour`) deployed from version 1, the canary alarm on it:
    pre-traffic must pass, then CodeDeploy shifts 10% to it. Says what happens (the pre-traffic
    status followed by `pre_traffic_said`; nothing of it when that is None). Returns the deployment
    id, when it began (time.monotonic(), time.time()) and when the shift was seen."""
    publish(em, version, behaviour)
    put_canary_alarm(stack.cw, version, stack.topic)
    t0 = time.monotonic()
    wall0 = time.time()
    dep = stack.codedeploy.create("1", version)
    say(f"CreateDeployment {dep}: 1 -> {version}")
    status, _ = stack.codedeploy.hook_status(dep, "BeforeAllowTraffic")
    if pre_traffic_said is not None:
        say(f"pre-traffic reported {status}{pre_traffic_said}")
    expect(f"pre-traffic reports Succeeded for version {version}", status == "Succeeded")
    shifted = wait_for(lambda: stack.watch.reached(lambda s: s == ("1", {version: 0.1}), t0), "CodeDeploy's 10% shift")
    say(f"CodeDeploy shifts 10%: live -> {show(('1', {version: 0.1}))}")
    return dep, t0, wall0, shifted


# ---------------------------------------------------------------------------------------------
# Scenario: alias (ShiftGuard's rollback stops the deployment; CodeDeploy rolls back)
# ---------------------------------------------------------------------------------------------


def alias_scenario(em: Emulator) -> None:
    step("1. The sample application: `checkout`, alias `live` on version 1 (healthy)")
    engine_banner(em.engine_on())
    stack = Stack(em)
    lam, cw, codedeploy = stack.lam, stack.cw, stack.codedeploy
    try:
        say(f"live -> {show(alias_state(lam))}; pre-traffic, post-traffic and rollback run behind the Lambda Runtime API")
        stack.start_traffic()
        say(f"callers send POST /checkout through live, {TRAFFIC_RATE} requests a second, from now on")
        put_canary_alarm(cw, "1", stack.topic)
        say(f"alarm {ALARM}: Errors >= 1 in a minute through {APP}:live on the version being deployed (for now 1); "
            f"notifies SNS topic {TOPIC}, rollback is subscribed")
        ok_notification_ignored(em, ALARM)

        step("2. Doctor: the safety net checks itself, and catches an alarm that could never fire")
        doctor_step(em, stack)

        step("3. Version 2 is broken: stopped by pre-traffic before it gets any traffic")
        publish(em, "2", BROKEN)
        put_canary_alarm(cw, "2", stack.topic)
        t0 = time.monotonic()
        dep = codedeploy.create("1", "2")
        say(f"CreateDeployment {dep}: 1 -> 2; CodeDeploy invokes BeforeAllowTraffic (pre-traffic)")
        status, summary = codedeploy.hook_status(dep, "BeforeAllowTraffic")
        reason = (summary or {}).get("reason") or ""
        say(f"pre-traffic reported {status}: {reason[:110]}")
        expect("pre-traffic reports Failed for version 2", status == "Failed")
        info = codedeploy.wait_finished(dep)
        error = info.get("errorInformation") or {}
        say(f"CodeDeploy: deployment {info['status']} ({error.get('code')})")
        expect("the deployment failed", info["status"] == "Failed", info["status"])
        states = stack.watch.states_since(t0)
        expect("the alias never moved", all(on_100(s, "1") for s in states), " then ".join(show(s) for s in states))
        v2 = [r for r in stack.traffic.between(t0) if r[1] == "2"]
        expect("no real request ran on version 2", not v2, f"{len(v2)} did" if v2 else "")

        step("4. Version 3 passes pre-traffic but fails under real traffic: rolled back")
        dep, t0, wall0, shifted = deploy_to_canary(em, stack, "3", FAILS_CHECKOUT, " (/health is fine on version 3)")
        alarm = alarm_transition(em, ALARM, "ALARM", wall0)
        canary = stack.traffic.between(shifted)
        say(f"requests through live since the shift: {summarize(canary)}")
        say(f"alarm {ALARM}: {alarm['oldState']} -> ALARM ({alarm['by']}): {alarm['reason'][:100]}")
        # The alarm counts an error when the invocation's metric lands; the caller records the same
        # request only when its response arrives, and the watch notes the 10% shift only when its own
        # GetAlias returns (possibly after the first canary requests). So look at every request
        # through live since the deployment began (none reach version 3 before the shift) and wait,
        # briefly, for the failed one to be recorded rather than reading once.
        failed_on_3 = eventually(lambda: [r for r in stack.traffic.between(t0) if r[1] == "3" and r[2]])
        expect("the alarm fired on the canary's real errors", alarm["by"] == "evaluation" and bool(failed_on_3),
               f"by {alarm['by']}; failed requests on v3 through live: {len(failed_on_3)}")
        delivery = wait_for(lambda: alarm_deliveries(em, ALARM, wall0), "SNS to deliver the alarm")[0]
        say(f"SNS delivered the notification to {delivery['function'].split(':')[-1]}")
        inv = wait_for(lambda: rollback_invocations(em, delivery["time"]), "the rollback binary to finish")[0]
        report = rollback_report(inv)
        say(f"rollback: {report.get('action')} -> {report.get('outcome')} ({report.get('detail') or inv['response'][:200]})")
        expect("rollback stopped the CodeDeploy deployment", not inv["functionError"] and report.get("action") == "stop-deployment"
               and report.get("outcome") == "restored-by-code-deploy")
        stops = [c for c in em.calls("codedeploy", "StopDeployment") if c["time"] >= wall0]
        expect("one StopDeployment, with auto-rollback (call log)",
               len(stops) == 1 and (parse_json(stops[0]["body"]) or {}).get("autoRollbackEnabled") is True, f"{len(stops)} call(s)")
        info = codedeploy.wait_finished(dep)
        rollbacks = codedeploy.rollbacks()
        expect("the deployment is stopped", info["status"] == "Stopped", f"{info['status']} ({(info.get('errorInformation') or {}).get('code')})")
        expect("CodeDeploy made exactly one rollback deployment, of this deployment",
               len(rollbacks) == 1 and rollbacks[0]["rollbackInfo"].get("rollbackTriggeringDeploymentId") == dep, str(len(rollbacks)))
        if rollbacks:
            codedeploy.show_rollback(rollbacks[0]["deploymentId"])
        expect("the alias is back on version 1 at 100%", on_100(alias_state(lam), "1"), show(alias_state(lam)))
        expect("version 3 never had all the traffic", not any(on_100(s, "3") for s in stack.watch.states_since(t0)))
        no_alias_writes_by_rollback(em, wall0)
        say(f"alarm to restored traffic: {inv['end'] - delivery['changed']:.2f}s (CloudWatch -> SNS -> rollback -> StopDeployment -> CodeDeploy's rollback)")

        step("5. Version 4 is good: 10% -> 100%, post-traffic compares it with version 1, it becomes stable")
        dep, t0, wall0, shifted = deploy_to_canary(em, stack, "4", HEALTHY, pre_traffic_said=None)
        full = wait_for(lambda: stack.watch.reached(lambda s: on_100(s, "4"), t0), "CodeDeploy's shift to 100%")
        say(f"requests through live during the canary ({full - shifted:.1f}s, 5 minutes compressed): {summarize(stack.traffic.between(shifted, full))}")
        say(f"CodeDeploy shifts the rest: live -> {show(('4', {}))}")
        alarms = [t["newState"] for t in em.transitions(ALARM) if t["time"] >= wall0]
        expect("the alarm never fired for version 4", "ALARM" not in alarms, " -> ".join(alarms))
        status, summary = codedeploy.hook_status(dep, "AfterAllowTraffic")
        metrics = next((c for c in (summary or {}).get("checks", []) if c["name"] == "new-vs-old"), {})
        cmp_ = metrics.get("details", {}).get("comparison", {})
        say(f"post-traffic reported {status}; new v4: {cmp_.get('new', {}).get('invocations', 0):.0f} invocations, "
            f"{cmp_.get('new', {}).get('errorRate', 0):.1%} errors; old v1: {cmp_.get('old', {}).get('invocations', 0):.0f}, "
            f"{cmp_.get('old', {}).get('errorRate', 0):.1%}")
        expect("post-traffic reports Succeeded for version 4", status == "Succeeded", "" if status == "Succeeded" else str((summary or {}).get("reason")))
        passed = metrics.get("verdict") == "passed"
        expect("the metrics comparison passed", passed, "" if passed else str(metrics.get("reason")))
        info = codedeploy.wait_finished(dep)
        expect("the deployment succeeded", info["status"] == "Succeeded", info["status"])
        expect("live is on version 4 at 100%", on_100(alias_state(lam), "4"), show(alias_state(lam)))
        expect("the stable pointer `blue` moved to version 4", alias_state(lam, "blue")[0] == "4")
        stack.traffic.stop()
        stack.final_state()
    finally:
        stack.stop()


# ---------------------------------------------------------------------------------------------
# Scenario: codedeploy-alarm (CodeDeploy and ShiftGuard both act on the same alarm)
# ---------------------------------------------------------------------------------------------


def codedeploy_alarm_scenario(em: Emulator) -> None:
    step("1. `checkout` on version 1; the deployment group itself watches the canary alarm")
    engine_banner(em.engine_on())
    stack = Stack(em, codedeploy_alarm=True)
    lam, cw, codedeploy = stack.lam, stack.cw, stack.codedeploy
    try:
        say(f"live -> {show(alias_state(lam))}; deployment group {APP}-dg: alarmConfiguration [{ALARM}], "
            "auto-rollback on DEPLOYMENT_STOP_ON_ALARM")
        stack.start_traffic()
        say(f"callers send POST /checkout through live, {TRAFFIC_RATE} requests a second, from now on")
        put_canary_alarm(cw, "1", stack.topic)
        say(f"alarm {ALARM}: Errors >= 1 in a minute through {APP}:live on the version being deployed (for now 1); "
            f"the same alarm notifies SNS topic {TOPIC}, ShiftGuard's rollback is subscribed")
        ok_notification_ignored(em, ALARM)

        step("2. Version 2 fails under real traffic: CodeDeploy and ShiftGuard both hear the alarm")
        dep, t0, wall0, shifted = deploy_to_canary(em, stack, "2", FAILS_CHECKOUT)
        alarm = alarm_transition(em, ALARM, "ALARM", wall0)
        say(f"requests through live since the shift: {summarize(stack.traffic.between(shifted))}")
        say(f"alarm {ALARM}: {alarm['oldState']} -> ALARM ({alarm['by']})")
        info = codedeploy.wait_finished(dep)
        error = info.get("errorInformation") or {}
        stopped_by = {"ALARM_ACTIVE": "CodeDeploy's own alarm monitoring", "MANUAL_STOP": "ShiftGuard's StopDeployment"}.get(error.get("code"), error.get("code"))
        say(f"CodeDeploy: deployment {info['status']} ({error.get('code')}: stopped by {stopped_by})")
        expect("the deployment ends Stopped", info["status"] == "Stopped", info["status"])
        # Every SNS delivery of the alarm handled by rollback; a failed invocation would be retried by
        # Lambda (1 s and 2 s later, scaled): wait for those too, so that a failure is seen.
        deliveries = wait_for(lambda: alarm_deliveries(em, ALARM, wall0), "SNS to deliver the alarm")
        invocations = wait_for(lambda: (lambda i: i if len(i) >= len(deliveries) else None)(rollback_invocations(em, deliveries[0]["time"])),
                               "rollback to handle the alarm")
        if any(i["functionError"] for i in invocations):
            time.sleep(3 * 60 / TIME_SCALE + 1)
            invocations = rollback_invocations(em, deliveries[0]["time"])
        for inv in invocations:
            report = rollback_report(inv)
            say(f"rollback: {report.get('action')} -> {report.get('outcome')} ({report.get('detail') or report.get('decision') or inv['response'][:200]})")
        reports = [rollback_report(i) for i in invocations]
        expect("SNS delivered the alarm to rollback once, and rollback succeeded",
               len(deliveries) == 1 and len(invocations) == 1 and not invocations[0]["functionError"],
               f"{len(deliveries)} deliveries, {len(invocations)} invocations, "
               f"{sum(1 for i in invocations if i['functionError'])} failed")
        agreed = all(r.get("outcome") in ("restored-by-code-deploy", "already-stable")
                     and r.get("action") in ("await-code-deploy-rollback", "stop-deployment", "none") for r in reports)
        expect("rollback followed CodeDeploy's rollback (restored-by-code-deploy or already-stable)", agreed,
               "; ".join(f"{r.get('action')} -> {r.get('outcome')}" for r in reports))

        step("3. Did they agree?")
        rollbacks = codedeploy.rollbacks()
        expect("exactly one rollback deployment, rolling back this deployment",
               len(rollbacks) == 1 and rollbacks[0]["rollbackInfo"].get("rollbackTriggeringDeploymentId") == dep, str(len(rollbacks)))
        if rollbacks:
            codedeploy.show_rollback(rollbacks[0]["deploymentId"])
        expect("the alias ends on version 1 at 100%", on_100(alias_state(lam), "1"), show(alias_state(lam)))
        states = stack.watch.states_since(t0)
        say("live went through: " + " -> ".join(show(s) for s in states))
        expect("version 2 never had all the traffic", not any(on_100(s, "2") for s in states))
        stops = [c for c in em.calls("codedeploy", "StopDeployment") if c["time"] >= wall0]
        say(f"StopDeployment calls by rollback: {len(stops)}")
        expect("rollback stopped the deployment at most once", len(stops) <= 1, str(len(stops)))
        no_alias_writes_by_rollback(em, wall0)
        stack.traffic.stop()
        stack.final_state()
    finally:
        stack.stop()


# ---------------------------------------------------------------------------------------------
# Scenario: lattice (no CodeDeploy: `shift` rolls out, the engine's part is the alarm and SNS)
# ---------------------------------------------------------------------------------------------

ORDERS = "orders"
LATTICE_ALARM = "orders-canary-5xx"
# The rollouts' steps: a first bake long enough for the alarm to fire and rollback to act (the alarm's
# 60 s period is 1 s here), then short ones.
ROLLOUT_STEPS = [{"weight": 10, "bake": "4s"}, {"weight": 50, "bake": "2s"}, {"weight": 100, "bake": "2s"}]


def lattice_scenario(em: Emulator) -> None:
    sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
    import rollout  # tests/demo/rollout.py: the local stand-in for the Step Functions state machine

    step("1. A VPC Lattice service `orders`: production (v1) takes 100%, the canary group (v2) 0%")
    engine_banner(em.engine_on())
    vl, cw, sns, lam = em.client("vpc-lattice"), em.client("cloudwatch"), em.client("sns"), em.client("lambda")
    # The functions behind the target groups (never run: the emulator serves no Lattice traffic).
    lam.create_function(FunctionName=ORDERS, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                        Code={"ZipFile": zip_of("orders v1")}, Publish=True)
    arn = {"1": lam.get_function(FunctionName=ORDERS)["Configuration"]["FunctionArn"] + ":1"}

    def publish_orders(version: str) -> None:
        lam.update_function_code(FunctionName=ORDERS, ZipFile=zip_of(f"orders v{version}"))
        arn[version] = lam.publish_version(FunctionName=ORDERS)["FunctionArn"]
        assert arn[version].endswith(f":{version}"), arn[version]

    publish_orders("2")
    svc = vl.create_service(name="orders")["id"]
    prod = vl.create_target_group(name="orders-production", type="LAMBDA")["id"]
    canary = vl.create_target_group(name="orders-canary", type="LAMBDA")["id"]
    # A Lambda target group holds one target: production's is the alias `live` (on v1), which
    # promotion moves to the canary's version, so that production is never without a target.
    lam.create_alias(FunctionName=ORDERS, Name="live", FunctionVersion="1")
    live = arn["1"].rsplit(":", 1)[0] + ":live"
    vl.register_targets(targetGroupIdentifier=prod, targets=[{"id": live}])
    vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": arn["2"]}])
    forward = {"forward": {"targetGroups": [{"targetGroupIdentifier": prod, "weight": 100}, {"targetGroupIdentifier": canary, "weight": 0}]}}
    listener = vl.create_listener(serviceIdentifier=svc, name="orders-https", protocol="HTTPS", defaultAction=forward)
    rule = vl.create_rule(serviceIdentifier=svc, listenerIdentifier=listener["id"], name="api-v2", priority=10,
                          match={"httpMatch": {"pathMatch": {"match": {"prefix": "/v2"}}}}, action=forward)["id"]

    def groups() -> list[list[dict]]:
        d = vl.get_listener(serviceIdentifier=svc, listenerIdentifier=listener["id"])["defaultAction"]["forward"]["targetGroups"]
        r = vl.get_rule(serviceIdentifier=svc, listenerIdentifier=listener["id"], ruleIdentifier=rule)["action"]["forward"]["targetGroups"]
        return [d, r]

    def weights() -> str:
        fmt = lambda gs: "/".join(str(g["weight"]) for g in gs)
        d, r = groups()
        return f"default {fmt(d)}, rule /v2 {fmt(r)} (production/canary)"

    def all_on_production() -> bool:
        return all((g["weight"] > 0) == (g["targetGroupIdentifier"] == prod) for fwd in groups() for g in fwd)

    def targets(group: str) -> list[str]:
        return sorted(t["id"] for t in vl.list_targets(targetGroupIdentifier=group)["items"])

    def version_of(target_arn: str) -> str:
        qualifier = target_arn.rsplit(":", 1)[-1]
        if qualifier.isdigit():
            return "v" + qualifier
        return f"{qualifier} -> v" + lam.get_alias(FunctionName=ORDERS, Name=qualifier)["FunctionVersion"]

    def marker() -> str:
        return vl.list_tags_for_resource(resourceArn=listener["arn"])["tags"].get("shiftguard:rollout", "(none)")

    def plan(rollout_id: str) -> dict:
        return {"shiftguard": "shift", "rollout": {
            "id": rollout_id, "alarms": [LATTICE_ALARM], "steps": ROLLOUT_STEPS,
            "target": {"type": "lattice-listener", "service": svc, "listener": listener["id"],
                       "productionTargetGroup": prod, "canaryTargetGroup": canary}}}

    say(weights())
    say(f"production {prod} -> {ORDERS} {version_of(targets(prod)[0])}; canary {canary} -> {ORDERS} {version_of(targets(canary)[0])} (a broken build)")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    rollback_targets = [{"alarms": [LATTICE_ALARM], "targets": [{"type": "lattice-listener", "service": svc,
                                                                 "listener": listener["id"], "productionTargetGroup": prod}]}]
    roles = em.roles(ROLLBACK_FN, SHIFT_FN)
    server = Functions(em, "rollback", {"ROLLBACK_TARGETS": json.dumps(rollback_targets)}, "lattice", roles[ROLLBACK_FN])
    shift = None
    try:
        # shift runs behind its own watch, invoked directly by the driver (as Step Functions would).
        shift = Functions(em, "shift", {}, "shift", roles[SHIFT_FN])
        rollback_arn = deploy_function(em, ROLLBACK_FN, server)
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=rollback_arn)
        cw.put_metric_alarm(AlarmName=LATTICE_ALARM, Namespace="AWS/VpcLattice", MetricName="HTTPCode_5XX_Count",
                            Statistic="Sum", Dimensions=[{"Name": "TargetGroup", "Value": canary}], Period=60,
                            EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanOrEqualToThreshold",
                            TreatMissingData="notBreaching", AlarmActions=[topic], OKActions=[topic])
        say(f"alarm {LATTICE_ALARM} (5xx >= 5 a minute on the canary target group) notifies SNS topic {TOPIC}; rollback is subscribed")
        ok_notification_ignored(em, LATTICE_ALARM)
        say("rollout plan: " + " -> ".join(f"{s['weight']}% (bake {s['bake']})" for s in ROLLOUT_STEPS)
            + f", watched by {LATTICE_ALARM}; tests/demo/rollout.py drives shift, one invocation per step")

        step("2. Rollout orders-v2: at 10% the canary answers 5xx, the alarm fires, rollback restores production")
        wall0 = time.time()
        answers: list[dict] = []
        outcome: dict = {}

        def show(answer: dict) -> None:
            answers.append(answer)
            say(f"shift: {rollout.line(answer)}")

        def drive_v2() -> None:
            try:
                outcome["final"] = rollout.drive(shift.endpoint, plan("orders-v2"), show=show)
            except Exception as exc:  # reported by the main thread
                outcome["error"] = exc

        driver = threading.Thread(target=drive_v2, name="rollout-orders-v2", daemon=True)
        driver.start()
        wait_for(lambda: answers or "error" in outcome, "shift's first step")
        if "error" in outcome:
            raise StepTimeout(f"shift's first step failed: {outcome['error']}")
        expect("shift started the rollout: 10% to the canary", answers[0]["action"] == "started" and answers[0]["canaryWeight"] == 10, rollout.line(answers[0]))
        say(weights())
        # The emulator serves no Lattice traffic: the driver publishes the metric Lattice would.
        cw.put_metric_data(Namespace="AWS/VpcLattice", MetricData=[
            {"MetricName": "HTTPCode_5XX_Count", "Value": 12, "Unit": "Count", "Dimensions": [{"Name": "TargetGroup", "Value": canary}]}])
        say("canary target group: 12 responses with 5xx in the last minute (AWS/VpcLattice, as Lattice publishes it)")
        alarm = alarm_transition(em, LATTICE_ALARM, "ALARM", wall0)
        say(f"alarm {LATTICE_ALARM}: {alarm['oldState']} -> ALARM ({alarm['by']}): {alarm['reason'][:90]}")
        deliveries = wait_for(lambda: alarm_deliveries(em, LATTICE_ALARM, wall0), "SNS to deliver the alarm")
        say(f"SNS delivered the notification to {deliveries[0]['function'].split(':')[-1]}")
        inv = wait_for(lambda: rollback_invocations(em, deliveries[0]["time"]), "the rollback binary to finish")[0]
        report = rollback_report(inv)
        say(f"rollback: {report.get('action')} -> {report.get('outcome')}")
        restored = not inv["functionError"] and report.get("outcome") == "restored"
        expect("rollback restored the listener", restored, "" if restored else inv["response"][:300])
        say(weights())
        expect("every weighted forward sends 100% to production", all_on_production())
        say(f"alarm to restored traffic: {inv['end'] - deliveries[0]['changed']:.2f}s (CloudWatch -> SNS -> rollback)")
        driver.join(WAIT)
        if driver.is_alive() or "error" in outcome:
            raise StepTimeout(f"the rollout orders-v2 did not end: {outcome.get('error', 'still running')}")
        final = outcome["final"]
        expect("the rollout's next step read rollback's restore record and ended aborted at step 1 (10%)",
               final["status"] == "aborted" and final["step"] == 1 and "rollback restored production" in (final.get("reason") or ""),
               rollout.line(final))
        writes = [c for c in em.calls("vpc-lattice", "UpdateListener") + em.calls("vpc-lattice", "UpdateRule") if c["time"] > inv["end"]]
        expect("shift's abort wrote no weight: rollback had restored production (call log)",
               final.get("restore") is None and not writes, f"{len(writes)} writes" if writes else "")
        expect("the marker on the listener says aborted at step 1", "status=aborted" in marker() and "step=1" in marker(), marker())
        expect("every weighted forward still sends 100% to production", all_on_production(), weights())

        step("3. The same notification again (SNS may deliver twice)")
        message = deliveries[0]["event"]["Records"][0]["Sns"]
        again = time.time()
        sns.publish(TopicArn=topic, Message=message["Message"], Subject=message["Subject"])
        say("the driver publishes the identical notification to the topic again; SNS delivers it to rollback")
        inv = wait_for(lambda: rollback_invocations(em, again), "the second rollback invocation")[0]
        outcome_again = rollback_report(inv).get("outcome") if not inv["functionError"] else inv["response"][:300]
        say(f"rollback: {outcome_again}")
        expect("a duplicate changes nothing", outcome_again == "already-stable")
        writes = [c for c in em.calls("vpc-lattice", "UpdateListener") + em.calls("vpc-lattice", "UpdateRule") if c["time"] >= again]
        expect("no Lattice write for the duplicate (call log)", not writes, f"{len(writes)} writes" if writes else "")

        step("4. Version 3 fixes it: a new rollout, orders-v3, promotes it through every step")
        publish_orders("3")
        vl.deregister_targets(targetGroupIdentifier=canary, targets=[{"id": arn["2"]}])
        vl.register_targets(targetGroupIdentifier=canary, targets=[{"id": arn["3"]}])
        say(f"canary {canary}: DeregisterTargets {ORDERS} v2, RegisterTargets {ORDERS} v3 (a Lambda target group holds one target)")
        expect("the canary group holds v3 only", targets(canary) == [arn["3"]], ", ".join(targets(canary)))
        # No new 5xx: the alarm's next evaluation finds no data (notBreaching) and goes back to OK.
        ok = alarm_transition(em, LATTICE_ALARM, "OK", alarm["time"])
        inv = wait_for(lambda: rollback_invocations(em, ok["time"], "OK"), f"the OK notification of {LATTICE_ALARM} to reach rollback")[0]
        say(f"alarm {LATTICE_ALARM}: {ok['oldState']} -> OK ({ok['by']}: no 5xx since); SNS delivered the OK notification to rollback")
        expect("rollback ignores the OK notification and touches nothing",
               not inv["functionError"] and not (summary_of(inv) or {}).get("targets") and all_on_production())
        again = rollout.invoke(shift.endpoint, plan("orders-v2"))
        say(f"orders-v2 again: {rollout.line(again)}")
        expect("a rollout id is used once: orders-v2 only answers finished, nothing written",
               again["action"] == "finished" and again["status"] == "aborted" and all_on_production())
        answers.clear()
        wall3 = time.time()
        final = rollout.drive(shift.endpoint, plan("orders-v3"), show=show)
        seen = [a["canaryWeight"] for a in answers if a["status"] == "in-progress"]
        expect("shift moved the canary through every step: 10% -> 50% -> 100%", seen == [10, 50, 100], " -> ".join(f"{w}%" for w in seen))
        expect("the rollout orders-v3 ended promoted", final["status"] == "promoted" and final["action"] == "promoted", rollout.line(final))
        d, r = groups()
        final_weights = [{g["targetGroupIdentifier"]: g["weight"] for g in fwd} for fwd in (d, r)]
        say(weights())
        expect("every weighted forward is back on production 100 / canary 0",
               all(w == {prod: 100, canary: 0} for w in final_weights), weights())
        expect("the production target group's alias live now points at v3",
               targets(prod) == [live] and lam.get_alias(FunctionName=ORDERS, Name="live")["FunctionVersion"] == "3",
               ", ".join(version_of(t) for t in targets(prod)))
        expect("the marker on the listener says promoted", "id=orders-v3" in marker() and "status=promoted" in marker(), marker())
        fired = [t for t in em.transitions(LATTICE_ALARM) if t["time"] >= wall3]
        expect(f"{LATTICE_ALARM} stayed OK during orders-v3", not fired, " -> ".join(t["newState"] for t in fired))

        step("Final state")
        rows = [("listener", weights()),
                (f"production {prod}", ", ".join(version_of(t) for t in targets(prod))),
                (f"canary {canary}", ", ".join(version_of(t) for t in targets(canary))),
                ("tag shiftguard:rollout", marker())]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"    {name.ljust(width)}  {value}")
    finally:
        server.stop()
        if shift is not None:
            shift.stop()


SCENARIOS = {"alias": alias_scenario, "codedeploy-alarm": codedeploy_alarm_scenario, "lattice": lattice_scenario}


class Tee(io.TextIOBase):
    """stdout, and a copy in the transcript file."""

    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default=os.environ.get("SCENARIO") or "alias")
    parser.add_argument("--transcript", type=Path, help="also write everything printed to this file")
    args = parser.parse_args()
    if not args.transcript:
        return run(args.scenario)
    args.transcript.parent.mkdir(parents=True, exist_ok=True)
    with args.transcript.open("w", encoding="utf-8") as transcript:
        sys.stdout = Tee(sys.__stdout__, transcript)
        try:
            return run(args.scenario)
        finally:
            sys.stdout.flush()
            sys.stdout = sys.__stdout__


def run(scenario: str) -> int:
    build()
    em = Emulator()
    say(f"local AWS emulator at {em.url}")
    scenario_started = time.monotonic()
    try:
        SCENARIOS[scenario](em)
        denied, judged = em.denied_calls(), em.role_calls()
        expect("every call of every binary was allowed by its own role from the synthesized template (strict IAM)", judged and not denied,
               f"{len(judged)} calls judged; " + "; ".join(f"{c['iam'].get('principal')}: {c['iam'].get('action')} on {', '.join(c['iam'].get('resources') or [])} "
                         f"({c['iam']['decision']})" for c in denied[:5]))
    except StepTimeout as exc:
        expect("the story went on", False, str(exc))
    finally:
        em.stop()
    total = time.monotonic() - started_at
    took = time.monotonic() - scenario_started
    if failures:
        print(f"\nDEMO FAILED after {total:.0f}s: {len(failures)} step(s) did not go as the story says:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"\nDemo ({scenario}) passed: every step went as the story says ({total:.0f}s; the scenario itself {took:.1f}s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
