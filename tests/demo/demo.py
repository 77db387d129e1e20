"""`make demo`: a whole canary deployment, rehearsed locally with the real ShiftGuard binaries.

The driver plays CodeDeploy (shifting weights as Canary10Percent5Minutes does, time compressed;
invoking the hooks; reading what they reported) and CloudWatch (turning the sample app's real
invocation metrics into an alarm state change and its SNS notification). Everything ShiftGuard
does is done by the shipped `pre-traffic`, `post-traffic` and `rollback` binaries, running behind
the Lambda Runtime API (`cargo lambda watch`), against the local AWS emulator.

Exits non-zero if any step's outcome differs from the story, so `make test` runs it too.
Usage: demo.py [--scenario alias|lattice]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib import request as urlrequest

import boto3

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ROLE = "arn:aws:iam::123456789012:role/shiftguard-lambda-role"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BINARIES = ("pre-traffic", "post-traffic", "rollback")
APP = "checkout"
ALARM = "checkout-canary-errors"

started_at = time.monotonic()
failures: list[str] = []


def say(text: str) -> None:
    print(f"[{time.monotonic() - started_at:6.1f}s] {text}", flush=True)


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def expect(what: str, ok: bool, detail: str = "") -> None:
    mark = "ok " if ok else "FAIL"
    print(f"         [{mark}] {what}{(' — ' + detail) if detail else ''}", flush=True)
    if not ok:
        failures.append(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree(pid: int) -> None:
    """cargo-lambda leaves the function processes behind when stopped: end the whole tree."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in out:
        kill_tree(int(child))
    subprocess.run(["kill", "-KILL", str(pid)], capture_output=True)


class Emulator:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            # SHIFTGUARD_EMULATOR names another copy of the emulator script (as for the Rust tests).
            [sys.executable, os.environ.get("SHIFTGUARD_EMULATOR") or str(ROOT / "tests/emulator/shiftguard_emulator.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.url = self.proc.stdout.readline().split()[-1]

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="demo", aws_secret_access_key="demo")

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urlrequest.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with urlrequest.urlopen(req) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.kill()


class Functions:
    """The three binaries behind `cargo lambda watch`, one server per configuration."""

    def __init__(self, emulator: Emulator, env: dict[str, str], log_name: str) -> None:
        self.port = free_port()
        env_file = Path(tempfile.mkstemp(suffix=".env")[1])
        base = {"AWS_ENDPOINT_URL": emulator.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo",
                "AWS_SECRET_ACCESS_KEY": "demo"}
        env_file.write_text("".join(f"{k}='{v}'\n" for k, v in {**base, **env}.items()))
        self.log = Path(tempfile.gettempdir()) / f"shiftguard-demo-{log_name}.log"
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port), "--env-file", str(env_file)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        while socket.socket().connect_ex(("127.0.0.1", self.port)) != 0:
            time.sleep(0.1)

    def invoke(self, binary: str, event: dict) -> tuple[bool, dict | str]:
        path = Path(tempfile.mkstemp(suffix=".json")[1])
        path.write_text(json.dumps(event))
        out = subprocess.run(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", binary, "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port), "--data-file", str(path), "--output-format", "json"],
            cwd=ROOT, capture_output=True, text=True,
        )
        if out.returncode != 0:
            return False, (out.stdout + out.stderr).strip()
        return True, json.loads(out.stdout)

    def stop(self) -> None:
        kill_tree(self.proc.pid)
        self.proc.wait()


def build() -> None:
    step("Building the three functions (debug; the first build takes a few minutes on a cold machine)")
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
# CloudWatch's part: metrics → alarm → SNS notification, as SNS delivers it to Lambda
# ---------------------------------------------------------------------------------------------


def alarm_notification(cw, alarm_name: str, reason: str) -> dict:
    cw.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason=reason)
    alarm = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    message = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": ACCOUNT,
        "NewStateValue": "ALARM",
        "NewStateReason": reason,
        "StateChangeTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "Statistic",
            "Statistic": alarm["Statistic"].upper(),
            "Unit": None,
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"],
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
        },
    }
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                         "EventSubscriptionArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:shiftguard-alarms:{uuid.uuid4()}",
                         "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()),
                                 "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:shiftguard-alarms",
                                 "Subject": f'ALARM: "{alarm_name}" in US East (N. Virginia)',
                                 "Message": json.dumps(message),
                                 "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                 "SignatureVersion": "1", "Signature": "EXAMPLE", "MessageAttributes": {}}}]}


def metric_sum(cw, metric: str, dims: dict[str, str], namespace: str = "AWS/Lambda") -> float:
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    out = cw.get_metric_statistics(Namespace=namespace, MetricName=metric,
                                   Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
                                   StartTime=end - timedelta(minutes=30), EndTime=end, Period=60, Statistics=["Sum"])
    return sum(p["Sum"] for p in out["Datapoints"])


# ---------------------------------------------------------------------------------------------
# The sample application and CodeDeploy's part
# ---------------------------------------------------------------------------------------------


def zip_of(tag: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {tag}\n")
    return buf.getvalue()


def publish(lam, emulator: Emulator, version: str, behaviour: dict) -> None:
    lam.update_function_code(FunctionName=APP, ZipFile=zip_of(f"v{version}"))
    got = lam.publish_version(FunctionName=APP)["Version"]
    assert got == version, (got, version)
    emulator.control("POST", "/_shiftguard/lambda/behaviour", {"function": APP, "version": version, **behaviour})


def alias_text(lam, name: str = "live") -> tuple[str, dict]:
    a = lam.get_alias(FunctionName=APP, Name=name)
    weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return a["FunctionVersion"], weights


def show_alias(lam) -> str:
    version, weights = alias_text(lam)
    primary = 1.0 - sum(weights.values())
    return ", ".join([f"v{version} {primary:.0%}"] + [f"v{v} {w:.0%}" for v, w in weights.items()])


def traffic(lam, n: int) -> tuple[int, int]:
    """Real callers through the alias: (invocations, errors)."""
    errors = 0
    for i in range(n):
        out = lam.invoke(FunctionName=APP, Qualifier="live",
                         Payload=json.dumps({"httpMethod": "POST", "path": "/checkout", "body": json.dumps({"cart": i})}))
        errors += 1 if out.get("FunctionError") else 0
    return n, errors


class CodeDeploy:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.cd = emulator.client("codedeploy")
        self.cd.create_application(applicationName=f"{APP}-app", computePlatform="Lambda")
        self.cd.create_deployment_group(
            applicationName=f"{APP}-app", deploymentGroupName=f"{APP}-dg", serviceRoleArn=ROLE,
            deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"})

    def create(self, current: str, target: str) -> str:
        appspec = {"version": 0.0, "Resources": [{APP: {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": APP, "Alias": "live", "CurrentVersion": current, "TargetVersion": target}}}],
            "Hooks": [{"BeforeAllowTraffic": "CodeDeployHook_checkout_pre_traffic"},
                      {"AfterAllowTraffic": "CodeDeployHook_checkout_post_traffic"}]}
        dep = self.cd.create_deployment(applicationName=f"{APP}-app", deploymentGroupName=f"{APP}-dg",
                                        revision={"revisionType": "AppSpecContent",
                                                  "appSpecContent": {"content": json.dumps(appspec)}})["deploymentId"]
        self.set_status(dep, "InProgress")
        return dep

    def set_status(self, dep: str, status: str) -> None:
        self.emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": status})

    def status(self, dep: str) -> str:
        return self.cd.get_deployment(deploymentId=dep)["deploymentInfo"]["status"]

    def run_hook(self, functions: Functions, binary: str, dep: str, lifecycle: str) -> tuple[str, dict | str]:
        execution = self.emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}/hook-executions",
                                          {"lifecycleEvent": lifecycle})["lifecycleEventHookExecutionId"]
        ok, summary = functions.invoke(binary, {"DeploymentId": dep, "LifecycleEventHookExecutionId": execution})
        recorded = self.emulator.control("GET", f"/_shiftguard/codedeploy/hook-executions/{execution}")
        reports = recorded["reports"]
        status = reports[0]["status"] if len(reports) == 1 else f"{len(reports)} reports"
        return status, summary


def shift(lam, target: str, weight: float, current: str) -> None:
    """CodeDeploy's shape: primary stays the old version, the new one is the additional weight."""
    if weight >= 1.0:
        lam.update_alias(FunctionName=APP, Name="live", FunctionVersion=target, RoutingConfig={"AdditionalVersionWeights": {}})
    else:
        lam.update_alias(FunctionName=APP, Name="live", FunctionVersion=current,
                         RoutingConfig={"AdditionalVersionWeights": {target: weight}})


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
HEALTHY = {"response": {"statusCode": 200, "body": json.dumps({"status": "ok"})}}


def alias_scenario(em: Emulator) -> None:
    lam, cw = em.client("lambda"), em.client("cloudwatch")
    step("1. The sample application: `checkout`, alias `live` on version 1 (healthy)")
    lam.create_function(FunctionName=APP, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                        Code={"ZipFile": zip_of("v1")}, Publish=True)
    em.control("POST", "/_shiftguard/lambda/behaviour", {"function": APP, "version": "1", **HEALTHY})
    lam.create_alias(FunctionName=APP, Name="live", FunctionVersion="1")
    lam.create_alias(FunctionName=APP, Name="blue", FunctionVersion="1")
    cw.put_metric_alarm(AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": APP}, {"Name": "Resource", "Value": f"{APP}:live"}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        AlarmActions=[f"arn:aws:sns:{REGION}:{ACCOUNT}:shiftguard-alarms"])
    codedeploy = CodeDeploy(em)
    say(f"live -> {show_alias(lam)}; alarm {ALARM} (Errors >= 1 on {APP}:live) notifies the rollback topic")

    step("Starting pre-traffic, post-traffic and rollback behind the Lambda Runtime API")
    targets = [{"alarms": [ALARM], "targets": [{"type": "lambda-alias", "function": APP, "alias": "live",
                                                "stableAlias": "blue",
                                                "codeDeploy": {"application": f"{APP}-app", "deploymentGroup": f"{APP}-dg"}}]}]
    pre = Functions(em, {"HOOK_CHECKS": json.dumps(PRE_CHECKS)}, "pre")
    post = Functions(em, {"HOOK_CHECKS": json.dumps(POST_CHECKS), "STABLE_ALIAS": "blue"}, "post")
    rollback = Functions(em, {"ROLLBACK_TARGETS": json.dumps(targets), "CODEDEPLOY_ROLLBACK_WAIT": "5s"}, "rollback")
    servers = [pre, post, rollback]
    try:
        step("2. Version 2 is broken: stopped by pre-traffic before it gets any traffic")
        publish(lam, em, "2", {"function_error": "Unhandled",
                               "response": {"errorType": "Runtime.ImportModuleError", "errorMessage": "Cannot find module 'db'"}})
        dep = codedeploy.create("1", "2")
        say(f"deployment {dep[:8]}…: 1 -> 2; CodeDeploy invokes BeforeAllowTraffic")
        status, summary = codedeploy.run_hook(pre, "pre-traffic", dep, "BeforeAllowTraffic")
        reason = summary.get("reason", "") if isinstance(summary, dict) else summary
        say(f"pre-traffic reported {status}: {reason[:110]}")
        expect("pre-traffic reports Failed for version 2", status == "Failed")
        codedeploy.set_status(dep, "Failed")
        expect("the alias never moved", alias_text(lam) == ("1", {}), show_alias(lam))

        step("3. Version 3 passes pre-traffic but fails under real traffic: rolled back")
        publish(lam, em, "3", {**HEALTHY, "fail_if_payload_contains": "/checkout",
                               "error_response": {"errorType": "TypeError", "errorMessage": "cart.total is undefined"}})
        dep = codedeploy.create("1", "3")
        status, _ = codedeploy.run_hook(pre, "pre-traffic", dep, "BeforeAllowTraffic")
        say(f"pre-traffic reported {status} (/health is fine on version 3)")
        expect("pre-traffic reports Succeeded for version 3", status == "Succeeded")
        shift(lam, "3", 0.1, "1")
        say(f"CodeDeploy shifts 10%: live -> {show_alias(lam)}")
        n, errors = traffic(lam, 60)
        v3_errors = metric_sum(cw, "Errors", {"FunctionName": APP, "Resource": f"{APP}:live", "ExecutedVersion": "3"})
        say(f"{n} real requests through live: {errors} errors, {v3_errors:.0f} of them on version 3 (CloudWatch, ExecutedVersion=3)")
        expect("the canary's errors reach CloudWatch", v3_errors >= 1)
        alarm_at = time.monotonic()
        event = alarm_notification(cw, ALARM, f"Threshold Crossed: 1 out of the last 1 datapoints [{errors}.0] was greater than or equal to the threshold (1.0).")
        say(f"alarm {ALARM}: OK -> ALARM; SNS delivers the notification to rollback")
        ok, summary = rollback.invoke("rollback", event)
        restored_in = time.monotonic() - alarm_at
        report = summary["targets"][0] if ok else {}
        say(f"rollback: {report.get('action')} -> {report.get('outcome')} ({report.get('detail', summary if not ok else '')})")
        expect("rollback stopped the CodeDeploy deployment", ok and report.get("action") == "stop-deployment")
        expect("the alias is back on version 1 at 100%", alias_text(lam) == ("1", {}), show_alias(lam))
        expect("the deployment is stopped", codedeploy.status(dep) == "Stopped", codedeploy.status(dep))
        say(f"alarm to restored traffic: {restored_in:.2f}s (one invocation of the rollback binary)")
        cw.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="rolled back")

        step("4. Version 4 is good: 10% -> 100%, post-traffic compares it with version 1, it becomes stable")
        publish(lam, em, "4", HEALTHY)
        dep = codedeploy.create("1", "4")
        status, _ = codedeploy.run_hook(pre, "pre-traffic", dep, "BeforeAllowTraffic")
        expect("pre-traffic reports Succeeded for version 4", status == "Succeeded")
        shift(lam, "4", 0.1, "1")
        say(f"CodeDeploy shifts 10%: live -> {show_alias(lam)}")
        n, errors = traffic(lam, 60)
        say(f"{n} real requests: {errors} errors; the alarm stays OK. (5 minutes pass, compressed)")
        shift(lam, "4", 1.0, "1")
        say(f"CodeDeploy shifts the rest: live -> {show_alias(lam)}")
        n, errors = traffic(lam, 40)
        status, summary = codedeploy.run_hook(post, "post-traffic", dep, "AfterAllowTraffic")
        metrics = next((c for c in summary.get("checks", []) if c["name"] == "new-vs-old"), {}) if isinstance(summary, dict) else {}
        cmp_ = metrics.get("details", {}).get("comparison", {})
        say(f"post-traffic reported {status}; new v4: {cmp_.get('new', {}).get('invocations', 0):.0f} invocations, "
            f"{cmp_.get('new', {}).get('errorRate', 0):.1%} errors; old v1: {cmp_.get('old', {}).get('invocations', 0):.0f}, "
            f"{cmp_.get('old', {}).get('errorRate', 0):.1%}")
        expect("post-traffic reports Succeeded for version 4", status == "Succeeded")
        passed = metrics.get("verdict") == "passed"
        expect("the metrics comparison passed", passed, "" if passed else str(metrics.get("reason")))
        codedeploy.set_status(dep, "Succeeded")
        expect("live is on version 4 at 100%", alias_text(lam) == ("4", {}), show_alias(lam))
        expect("the stable pointer `blue` moved to version 4", alias_text(lam, "blue")[0] == "4")

        step("Final state")
        deployments = codedeploy.cd.list_deployments(applicationName=f"{APP}-app", deploymentGroupName=f"{APP}-dg")["deployments"]
        rows = [("alias live", show_alias(lam)), ("alias blue", f"v{alias_text(lam, 'blue')[0]}")]
        for d in deployments:
            info = codedeploy.cd.get_deployment(deploymentId=d)["deploymentInfo"]
            spec = json.loads(info["revision"]["appSpecContent"]["content"])["Resources"][0][APP]["Properties"]
            rows.append((f"deployment {spec['CurrentVersion']} -> {spec['TargetVersion']}", info["status"]))
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"    {name.ljust(width)}  {value}")
    finally:
        for s in servers:
            s.stop()


def lattice_scenario(em: Emulator) -> None:
    vl, cw = em.client("vpc-lattice"), em.client("cloudwatch")
    step("1. A VPC Lattice service `orders`: listener forwards 90% production, 10% canary")
    svc = vl.create_service(name="orders")["id"]
    prod = vl.create_target_group(name="orders-production", type="LAMBDA")["id"]
    canary = vl.create_target_group(name="orders-canary", type="LAMBDA")["id"]
    forward = {"forward": {"targetGroups": [{"targetGroupIdentifier": prod, "weight": 90}, {"targetGroupIdentifier": canary, "weight": 10}]}}
    listener = vl.create_listener(serviceIdentifier=svc, name="orders-https", protocol="HTTPS", defaultAction=forward)["id"]
    rule = vl.create_rule(serviceIdentifier=svc, listenerIdentifier=listener, name="api-v2", priority=10,
                          match={"httpMatch": {"pathMatch": {"match": {"prefix": "/v2"}}}}, action=forward)["id"]

    def weights() -> str:
        d = vl.get_listener(serviceIdentifier=svc, listenerIdentifier=listener)["defaultAction"]["forward"]["targetGroups"]
        r = vl.get_rule(serviceIdentifier=svc, listenerIdentifier=listener, ruleIdentifier=rule)["action"]["forward"]["targetGroups"]
        fmt = lambda groups: "/".join(str(g["weight"]) for g in groups)
        return f"default {fmt(d)}, rule /v2 {fmt(r)} (production/canary)"

    say(weights())
    cw.put_metric_alarm(AlarmName="orders-canary-5xx", Namespace="AWS/VpcLattice", MetricName="HTTPCode_5XX_Count",
                        Statistic="Sum", Dimensions=[{"Name": "TargetGroup", "Value": canary}], Period=60,
                        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanOrEqualToThreshold")
    targets = [{"alarms": ["orders-canary-5xx"], "targets": [{"type": "lattice-listener", "service": svc,
                                                              "listener": listener, "productionTargetGroup": prod}]}]
    rollback = Functions(em, {"ROLLBACK_TARGETS": json.dumps(targets)}, "lattice")
    try:
        step("2. The canary target group starts answering 5xx: the alarm fires, rollback restores production")
        cw.put_metric_data(Namespace="AWS/VpcLattice", MetricData=[
            {"MetricName": "HTTPCode_5XX_Count", "Value": 12, "Unit": "Count", "Dimensions": [{"Name": "TargetGroup", "Value": canary}]}])
        say("canary target group: 12 responses with 5xx in the last minute (CloudWatch)")
        alarm_at = time.monotonic()
        event = alarm_notification(cw, "orders-canary-5xx", "Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than or equal to the threshold (5.0).")
        ok, summary = rollback.invoke("rollback", event)
        restored_in = time.monotonic() - alarm_at
        report = summary["targets"][0] if ok else {}
        say(f"rollback: {report.get('action')} -> {report.get('outcome')}")
        restored = ok and report.get("outcome") == "restored"
        expect("rollback restored the listener", restored, "" if restored else str(summary)[:300])
        say(weights())
        d = vl.get_listener(serviceIdentifier=svc, listenerIdentifier=listener)["defaultAction"]["forward"]["targetGroups"]
        r = vl.get_rule(serviceIdentifier=svc, listenerIdentifier=listener, ruleIdentifier=rule)["action"]["forward"]["targetGroups"]
        all_prod = all((g["weight"] > 0) == (g["targetGroupIdentifier"] == prod) for g in d + r)
        expect("every weighted forward sends 100% to production", all_prod)
        say(f"alarm to restored traffic: {restored_in:.2f}s")

        step("3. The same notification again (SNS may deliver twice)")
        ok, summary = rollback.invoke("rollback", event)
        outcome = summary["targets"][0]["outcome"] if ok else summary
        say(f"rollback: {outcome}")
        expect("a duplicate changes nothing", outcome == "already-stable")
    finally:
        rollback.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["alias", "lattice"], default=os.environ.get("SCENARIO") or "alias")
    args = parser.parse_args()
    build()
    em = Emulator()
    say(f"local AWS emulator at {em.url}")
    try:
        (alias_scenario if args.scenario == "alias" else lattice_scenario)(em)
    finally:
        em.stop()
    total = time.monotonic() - started_at
    if failures:
        print(f"\nDEMO FAILED after {total:.0f}s: {len(failures)} step(s) did not go as the story says:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"\nDemo ({args.scenario}) passed: every step went as the story says ({total:.0f}s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
