"""`--seed-sample`: the state the by-hand commands need (tests/README.md#running-it-by-hand), and the
printed commands. The full run through `cargo lambda watch` is `tests/byhand/run.sh`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from typing import Any

import pytest

from conftest import HERE, Emulator

ROOT = os.path.dirname(os.path.dirname(HERE))
BEGIN = "----- ShiftGuard by hand: copy from here -----"
END = "----- end -----"


@pytest.fixture(scope="module")
def seeded() -> Any:
    env = {**os.environ, "SHIFTGUARD_STRICT": "1", "SHIFTGUARD_SEED": "sample"}
    env.pop("SHIFTGUARD_ENGINE", None)
    # Started from elsewhere than the repository root: the sample events are found all the same.
    process = subprocess.Popen([sys.executable, os.path.join(HERE, "shiftguard_emulator.py"), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd="/")
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    try:
        first = process.stdout.readline()
        assert first.startswith("SHIFTGUARD_EMULATOR_READY "), first
        printed = []
        for line in process.stdout:
            printed.append(line.rstrip("\n"))
            if line.strip() == END:
                break
        emu = Emulator(first.split()[1], process)
        emu.printed = printed
        yield emu
    finally:
        process.terminate()
        process.wait(timeout=10)


def event(path: str) -> dict:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return json.load(f)


def block(printed: list[str]) -> list[str]:
    start = printed.index(BEGIN)
    return printed[start + 1:printed.index(END)]


def test_lambda_versions_alias_and_behaviour(seeded: Emulator) -> None:
    lam = seeded.client("lambda")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="checkout")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    alias = lam.get_alias(FunctionName="checkout", Name="live")
    assert (alias["FunctionVersion"], alias["RoutingConfig"]["AdditionalVersionWeights"]) == ("1", {"2": 0.1})
    for version in ("1", "2"):
        out = lam.invoke(FunctionName="checkout", Qualifier=version, Payload=json.dumps({"httpMethod": "GET", "path": "/health"}))
        assert "FunctionError" not in out and out["ExecutedVersion"] == version
        body = json.loads(out["Payload"].read())
        assert body["statusCode"] == 200 and json.loads(body["body"]) == {"status": "ok"}


def test_deployment_in_flight_with_the_sample_hook_ids(seeded: Emulator) -> None:
    cd = seeded.client("codedeploy")
    pre, post = event("events/hooks/pre-traffic.json"), event("events/hooks/post-traffic.json")
    dep = pre["DeploymentId"]
    assert post["DeploymentId"] == dep
    assert cd.list_deployments(applicationName="checkout-app", deploymentGroupName="checkout-dg")["deployments"] == [dep]
    info = cd.get_deployment(deploymentId=dep)["deploymentInfo"]
    assert info["status"] == "InProgress" and info["creator"] == "user"
    # Before the sample alarms' StateChangeTime (2026-11-21T14:57:14Z): the deployment they are about.
    assert info["createTime"].isoformat().startswith("2026-11-21T14:02:00")
    [target] = cd.list_deployment_targets(deploymentId=dep)["targetIds"]
    fn = cd.get_deployment_target(deploymentId=dep, targetId=target)["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"]
    assert (fn["functionName"], fn["functionAlias"], fn["currentVersion"], fn["targetVersion"]) == ("checkout", "live", "1", "2")
    assert fn["targetVersionWeight"] == pytest.approx(0.1)
    group = cd.get_deployment_group(applicationName="checkout-app", deploymentGroupName="checkout-dg")["deploymentGroupInfo"]
    assert group["deploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    for ids in (pre, post):
        execution = seeded.control("GET", f"/_shiftguard/codedeploy/hook-executions/{ids['LifecycleEventHookExecutionId']}")
        assert (execution["status"], execution["reports"], execution["deploymentId"]) == ("Pending", [], dep)


def test_alarms_topic_and_lattice(seeded: Emulator) -> None:
    cw, sns, vl = seeded.client("cloudwatch"), seeded.client("sns"), seeded.client("vpc-lattice")
    single = json.loads(event("events/rollback/sns-single-metric-alarm.json")["Records"][0]["Sns"]["Message"])
    lattice = json.loads(event("events/rollback/sns-lattice-alarm.json")["Records"][0]["Sns"]["Message"])
    topic = event("events/rollback/sns-single-metric-alarm.json")["Records"][0]["Sns"]["TopicArn"]
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=[single["AlarmName"], lattice["AlarmName"]])["MetricAlarms"]}
    assert set(alarms) == {"checkout-canary-errors", "orders-canary-5xx"}
    assert all(a["AlarmActions"] == [topic] for a in alarms.values())
    listener = vl.get_listener(serviceIdentifier="svc-0orders0000000000", listenerIdentifier="listener-0orders0000000000")
    groups = [(g["targetGroupIdentifier"], g["weight"]) for g in listener["defaultAction"]["forward"]["targetGroups"]]
    assert groups == [("tg-0production000000", 90), ("tg-0canary0000000000", 10)]
    names = {g["id"]: g["name"] for g in vl.list_target_groups()["items"]}
    assert names == {"tg-0production000000": "orders-production", "tg-0canary0000000000": "orders-canary"}


def test_lattice_target_groups_hold_the_checkout_versions(seeded: Emulator) -> None:
    """Production holds the alias lattice-production (on checkout version 1), canary version 2 (one target each, all a LAMBDA target
    group can hold); the listener forwards to both, so neither is UNUSED, and Lambda targets are
    not health-checked."""
    vl = seeded.client("vpc-lattice")
    function = "arn:aws:lambda:us-east-1:123456789012:function:checkout"
    expected = {"tg-0production000000": f"{function}:lattice-production", "tg-0canary0000000000": f"{function}:2"}
    for tg, target in expected.items():
        assert vl.get_target_group(targetGroupIdentifier=tg)["type"] == "LAMBDA"
        assert vl.list_targets(targetGroupIdentifier=tg)["items"] == [
            {"id": target, "status": "UNAVAILABLE", "reasonCode": "HealthCheckNotSupported"}]
    with pytest.raises(vl.exceptions.ValidationException):
        vl.register_targets(targetGroupIdentifier="tg-0canary0000000000", targets=[{"id": f"{function}:1"}])
    assert seeded.control("GET", "/_shiftguard/seed")["lattice"]["targets"] == expected
    assert f"    targets: tg-0production000000 -> {function}:lattice-production, tg-0canary0000000000 -> {function}:2" in seeded.printed


def test_printed_commands(seeded: Emulator) -> None:
    lines = block(seeded.printed)
    exports = dict(shlex.split(line[len("export "):])[0].split("=", 1) for line in lines if line.startswith("export "))
    assert exports["AWS_ENDPOINT_URL"] == seeded.url
    targets = json.loads(exports["ROLLBACK_TARGETS"])
    assert targets[0]["targets"][0] == {"type": "lambda-alias", "function": "checkout", "alias": "live",
                                         "codeDeploy": {"application": "checkout-app", "deploymentGroup": "checkout-dg"}}
    # Strict IAM: the watch's credentials are the by-hand role's session, not the operator's key.
    assert exports["AWS_ACCESS_KEY_ID"] != "local" and exports["AWS_SESSION_TOKEN"]
    assert any(line.startswith("# IAM is enforced (strict)") for line in lines)
    assert targets[1]["targets"][0]["service"] == "svc-0orders0000000000"
    assert json.loads(exports["HOOK_CHECKS"])["checks"][0]["kind"] == "invoke"
    assert ".venv/bin/cargo-lambda lambda watch" in lines
    invokes = [shlex.split(line) for line in lines if line.startswith(".venv/bin/cargo-lambda lambda invoke ")]
    assert [(argv[3], argv[5]) for argv in invokes] == [
        ("pre-traffic", "events/hooks/pre-traffic.json"),
        ("post-traffic", "events/hooks/post-traffic.json"),
        ("rollback", "events/rollback/sns-single-metric-alarm.json"),
        ("rollback", "events/rollback/sns-lattice-alarm.json"),
    ]
    assert all(os.path.isfile(os.path.join(ROOT, argv[5])) for argv in invokes)
    # Every line is a comment or a command; the same as the control plane's copy.
    assert all(line.startswith(("#", "export ", ".venv/bin/cargo-lambda ", "curl -s ")) for line in lines)
    seed = seeded.control("GET", "/_shiftguard/seed")
    assert seed["env"] == exports and seed["deploymentId"] == "d-A1B2C3D4E"


def test_what_the_functions_do_to_it(seeded: Emulator) -> None:
    """The calls the hooks and rollback make, by boto3 (last: it changes the state): the sample
    hook id accepts exactly one report, and stopping the deployment restores the alias."""
    cd, lam = seeded.client("codedeploy"), seeded.client("lambda")
    pre = event("events/hooks/pre-traffic.json")
    cd.put_lifecycle_event_hook_execution_status(deploymentId=pre["DeploymentId"],
                                                 lifecycleEventHookExecutionId=pre["LifecycleEventHookExecutionId"], status="Succeeded")
    with pytest.raises(cd.exceptions.LifecycleEventAlreadyCompletedException):
        cd.put_lifecycle_event_hook_execution_status(deploymentId=pre["DeploymentId"],
                                                     lifecycleEventHookExecutionId=pre["LifecycleEventHookExecutionId"], status="Succeeded")
    execution = seeded.control("GET", f"/_shiftguard/codedeploy/hook-executions/{pre['LifecycleEventHookExecutionId']}")
    assert execution["status"] == "Succeeded" and len(execution["reports"]) == 1
    assert cd.stop_deployment(deploymentId=pre["DeploymentId"], autoRollbackEnabled=True)["status"] == "Pending"
    alias = lam.get_alias(FunctionName="checkout", Name="live")
    assert (alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}) == ("1", {})
    conformance = seeded.control("GET", "/_shiftguard/conformance")
    assert not [m for m in conformance["mismatches"] if m["enforced"]], conformance
