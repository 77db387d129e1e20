"""The sample application for running ShiftGuard by hand (`--seed-sample`, `SHIFTGUARD_SEED=sample`).

Seeds what the sample events in `events/` name, so that each `cargo lambda invoke … --data-file
events/…` works against the emulator as it comes:

* Lambda `checkout`: versions 1 and 2 (both a canned healthy answer, `{"statusCode": 200, "body":
  "{\"status\":\"ok\"}"}`), alias `live` on `["1", {"2": 0.1}]` (a canary at 10%);
* CodeDeploy application `checkout-app`, group `checkout-dg` (Lambda, canary 10% 5 minutes, alarm
  `checkout-canary-errors`, auto-rollback), and a deployment 1 → 2 in flight whose id is the one in
  `events/hooks/pre-traffic.json` (`d-A1B2C3D4E`), created at 14:02 on the day of the sample alarms
  (before them: rollback stops it rather than leaving it alone); hook executions for
  BeforeAllowTraffic and AfterAllowTraffic with the ids of `events/hooks/pre-traffic.json` and
  `post-traffic.json`;
* SNS topic `shiftguard-alarms` (the sample notifications' TopicArn); alarms `checkout-canary-errors`
  (AWS/Lambda Errors of `checkout:live` version 2) and `orders-canary-5xx` (AWS/VpcLattice 5xx of the
  canary target group) notifying it;
* VPC Lattice service `orders` (`svc-0orders0000000000`), target groups `orders-production`
  (`tg-0production000000`) and `orders-canary` (`tg-0canary0000000000`), listener `orders-https`
  (`listener-0orders0000000000`) forwarding 90/10 (the ids are fixed so that the printed
  `ROLLBACK_TARGETS` is the same every time). Both target groups are LAMBDA groups holding one
  target each: `checkout` version 1 (production) and version 2 (canary), by qualified function ARN
  (the sample has no function of its own behind `orders`: the canary's versions stand in).

The deployment is the extension's manual kind (the engine does not run it, even with `--engine`):
nothing moves until a function acts on it. `instructions()` is the text printed on start: the
environment and commands that exercise each function against this state.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import zipfile
from typing import Any

import boto3
from botocore.config import Config

import lambda_invocations
from codedeploy_model import check_deployment_id
from seed import DEMO_ROLE
from state import DEFAULT_ACCOUNT, LOCK, STATE, HookExecution, codedeploy_backend, parse_time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"
FUNCTION = "checkout"
ALIAS = "live"
APPLICATION = "checkout-app"
GROUP = "checkout-dg"
TOPIC = "shiftguard-alarms"
ALARM = "checkout-canary-errors"
LATTICE_ALARM = "orders-canary-5xx"
PRE_HOOK = "CodeDeployHook_checkout_pre_traffic"
POST_HOOK = "CodeDeployHook_checkout_post_traffic"
# Before the sample alarms' StateChangeTime (2026-11-21T14:57:14.419+0000): the deployment the alarm
# is about (rollback leaves deployments created after the alarm alone).
DEPLOYMENT_CREATED = "2026-11-21T14:02:00Z"
# VPC Lattice ids: the model's shapes (`svc-[0-9a-z]{17}` …), fixed.
SERVICE_ID = "svc-0orders0000000000"
LISTENER_ID = "listener-0orders0000000000"
PRODUCTION_TG = "tg-0production000000"
CANARY_TG = "tg-0canary0000000000"
HEALTHY = {"response": {"statusCode": 200, "body": json.dumps({"status": "ok"})}}

EVENTS = {
    "pre-traffic": "events/hooks/pre-traffic.json",
    "post-traffic": "events/hooks/post-traffic.json",
    "rollback": "events/rollback/sns-single-metric-alarm.json",
    "rollback-lattice": "events/rollback/sns-lattice-alarm.json",
}

ROLLBACK_TARGETS = [
    {"alarms": "checkout-*", "targets": [{"type": "lambda-alias", "function": FUNCTION, "alias": ALIAS,
                                          "codeDeploy": {"application": APPLICATION, "deploymentGroup": GROUP}}]},
    {"alarms": "orders-*", "targets": [{"type": "lattice-listener", "service": SERVICE_ID, "listener": LISTENER_ID,
                                         "productionTargetGroup": PRODUCTION_TG}]},
]
HOOK_CHECKS = {"checks": [{"name": "health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"},
                           "expect": {"status": 200, "json": {"/body/status": "ok"}}}]}

# What was seeded (`GET /_shiftguard/seed`), empty until then.
SEEDED: dict = {}


def _event(name: str) -> dict:
    with open(os.path.join(ROOT, EVENTS[name]), encoding="utf-8") as f:
        return json.load(f)


def _zip(tag: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {tag}\n")
    return buf.getvalue()


class _FixedLatticeId:
    """moto makes a Lattice id from `str(uuid.uuid4())[:17]`: this one answers the id's tail."""

    def __init__(self, tail: str) -> None:
        self.tail = tail

    def uuid4(self) -> str:
        return self.tail


def _with_lattice_id(resource_id: str, call: Any) -> Any:
    from moto.vpclattice import models

    tail = resource_id.split("-", 1)[1]
    assert len(tail) == 17, resource_id
    previous = models.uuid
    models.uuid = _FixedLatticeId(tail)
    try:
        return call()
    finally:
        models.uuid = previous


def seed(url: str) -> dict:
    """Creates the sample application through the emulator at `url` (its own API, as a user
    would), except the deployment and hook executions, whose ids are chosen here."""
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"})

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name=REGION, aws_access_key_id="local",
                            aws_secret_access_key="local", config=cfg)

    lam, cd, cw, sns, vl = (client(s) for s in ("lambda", "codedeploy", "cloudwatch", "sns", "vpc-lattice"))

    # Lambda: two versions, both healthy, the alias on a 10% canary.
    lam.create_function(FunctionName=FUNCTION, Runtime="provided.al2023", Role=f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/{DEMO_ROLE}",
                        Handler="bootstrap", Code={"ZipFile": _zip("v1")}, Publish=True)
    lam.update_function_code(FunctionName=FUNCTION, ZipFile=_zip("v2"))
    assert lam.publish_version(FunctionName=FUNCTION)["Version"] == "2"
    for version in ("1", "2"):
        lambda_invocations.control("POST", "/_shiftguard/lambda/behaviour", {"function": FUNCTION, "version": version, **HEALTHY}, {})
    lam.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})

    # SNS and the alarms the sample notifications name.
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    cw.put_metric_alarm(AlarmName=ALARM, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": FUNCTION}, {"Name": "Resource", "Value": f"{FUNCTION}:{ALIAS}"},
                                    {"Name": "ExecutedVersion", "Value": "2"}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[topic], OKActions=[topic])

    # CodeDeploy: the group, and a deployment 1 -> 2 in flight with the sample events' ids.
    cd.create_application(applicationName=APPLICATION, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=APPLICATION, deploymentGroupName=GROUP, serviceRoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/{DEMO_ROLE}",
        deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        alarmConfiguration={"enabled": True, "alarms": [{"name": ALARM}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]},
    )
    pre, post = _event("pre-traffic"), _event("post-traffic")
    deployment_id = pre["DeploymentId"]
    check_deployment_id(deployment_id)
    appspec = {"version": 0.0,
               "Resources": [{FUNCTION: {"Type": "AWS::Lambda::Function", "Properties": {
                   "Name": FUNCTION, "Alias": ALIAS, "CurrentVersion": "1", "TargetVersion": "2"}}}],
               "Hooks": [{"BeforeAllowTraffic": PRE_HOOK}, {"AfterAllowTraffic": POST_HOOK}]}
    backend = codedeploy_backend(REGION)
    with LOCK:
        # Created on the backend, not with CreateDeployment: a manual deployment whatever the
        # engine's setting, and its id is the sample's (AWS's `d-XXXXXXXXX` shape).
        moto_id = backend.create_deployment(
            application_name=APPLICATION, deployment_group_name=GROUP,
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
            description="sample: checkout 1 -> 2 (ShiftGuard by hand)",
        )
        deployment = backend.deployments.pop(moto_id)
        deployment.deployment_id = deployment_id
        backend.deployments[deployment_id] = deployment
        deployment.status = "InProgress"
        deployment.create_time = parse_time(DEPLOYMENT_CREATED)
        deployment.start_time = deployment.create_time
        for event, ids in (("BeforeAllowTraffic", pre), ("AfterAllowTraffic", post)):
            execution = HookExecution(deployment_id, event)
            execution.id = ids["LifecycleEventHookExecutionId"]
            STATE.hook_executions[execution.id] = execution

    # VPC Lattice: service `orders`, listener forwarding 90% production / 10% canary.
    _with_lattice_id(SERVICE_ID, lambda: vl.create_service(name="orders"))
    _with_lattice_id(PRODUCTION_TG, lambda: vl.create_target_group(name="orders-production", type="LAMBDA"))
    _with_lattice_id(CANARY_TG, lambda: vl.create_target_group(name="orders-canary", type="LAMBDA"))
    # One target per LAMBDA group (all a Lambda target group can hold): the versions the alias splits.
    function_arn = lam.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    # Production's target is an alias on version 1 (what a rollout's promotion moves, so that the
    # group is never empty); the canary's is version 2.
    lam.create_alias(FunctionName=FUNCTION, Name="lattice-production", FunctionVersion="1")
    lattice_targets = {PRODUCTION_TG: f"{function_arn}:lattice-production", CANARY_TG: f"{function_arn}:2"}
    for tg, target in lattice_targets.items():
        assert not vl.register_targets(targetGroupIdentifier=tg, targets=[{"id": target}])["unsuccessful"]
    forward = {"forward": {"targetGroups": [{"targetGroupIdentifier": PRODUCTION_TG, "weight": 90},
                                            {"targetGroupIdentifier": CANARY_TG, "weight": 10}]}}
    _with_lattice_id(LISTENER_ID, lambda: vl.create_listener(serviceIdentifier=SERVICE_ID, name="orders-https", protocol="HTTPS",
                                                             defaultAction=forward))
    cw.put_metric_alarm(AlarmName=LATTICE_ALARM, Namespace="AWS/VpcLattice", MetricName="HTTPCode_5XX_Count", Statistic="Sum",
                        Dimensions=[{"Name": "TargetGroup", "Value": CANARY_TG}], Period=60, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
                        AlarmActions=[topic], OKActions=[topic])

    SEEDED.clear()
    SEEDED.update({
        "url": url,
        "function": FUNCTION, "alias": ALIAS, "versions": ["1", "2"], "aliasRouting": ["1", {"2": 0.1}],
        "application": APPLICATION, "deploymentGroup": GROUP, "deploymentId": deployment_id,
        "hookExecutions": {"BeforeAllowTraffic": pre["LifecycleEventHookExecutionId"],
                           "AfterAllowTraffic": post["LifecycleEventHookExecutionId"]},
        "topicArn": topic, "alarms": [ALARM, LATTICE_ALARM],
        "lattice": {"service": SERVICE_ID, "listener": LISTENER_ID, "production": PRODUCTION_TG, "canary": CANARY_TG,
                    "targets": lattice_targets},
        "events": dict(EVENTS),
        "env": environment(url),
        "commands": commands(url),
    })
    return dict(SEEDED)


#: The ShiftGuard functions of the rehearsal stack (cdk/lib/rehearsal.ts), whose roles the by-hand
#: watch runs with, together (one `cargo lambda watch` serves every function with one environment).
REHEARSAL_FUNCTIONS = ["CodeDeployHook_checkout_pre_traffic", "CodeDeployHook_checkout_post_traffic", "checkout_rollback", "checkout_shift"]
REHEARSAL = os.path.join(ROOT, "target", "cdk.out", "ShiftGuardRehearsal.template.json")


def enforce_iam(url: str, info: dict) -> str:
    """Strict IAM for the by-hand session: the watch's credentials are a role holding the
    statements the CDK construct gives the four ShiftGuard functions (the rehearsal stack, loaded
    into this emulator), so a call the construct does not grant fails here as it would on AWS; the
    `local` key (your own AWS CLI or SDK calls) is the operator, allowed everything. Without the
    synthesized template, IAM stays off and the returned line says so."""
    if not os.path.exists(REHEARSAL):
        return f"# IAM is not enforced: {os.path.relpath(REHEARSAL, ROOT)} is missing (make cdk-synth, then start again)"
    import urllib.request

    def control(path: str, body: dict) -> Any:
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    roles = control("/_shiftguard/iam/stack", {"templatePath": REHEARSAL, "functions": REHEARSAL_FUNCTIONS, "unresolved": "placeholder"})
    statements = [st for name in REHEARSAL_FUNCTIONS for st in roles["functions"][name]["statements"]]
    iam_client = boto3.client("iam", endpoint_url=url, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    sts = boto3.client("sts", endpoint_url=url, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    iam_client.create_role(RoleName="shiftguard-byhand", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam_client.put_role_policy(RoleName="shiftguard-byhand", PolicyName="rehearsal", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/shiftguard-byhand", RoleSessionName="byhand",
                            DurationSeconds=43200)["Credentials"]
    control("/_shiftguard/iam", {"enforce": True, "strict": True, "operatorKeys": ["local"]})
    info["env"].update({"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                        "AWS_SESSION_TOKEN": creds["SessionToken"]})
    return ("# IAM is enforced (strict): the credentials below are a role with what the CDK construct grants the ShiftGuard "
            "functions (target/cdk.out/ShiftGuardRehearsal.template.json); your own calls with the key `local` are allowed everything")


def environment(url: str) -> dict[str, str]:
    """What `cargo lambda watch` needs in its environment (the functions read it at start-up)."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "ROLLBACK_TARGETS": json.dumps(ROLLBACK_TARGETS, separators=(",", ":")),
        "HOOK_CHECKS": json.dumps(HOOK_CHECKS, separators=(",", ":")),
    }


def commands(url: str) -> list[dict]:
    """The invocations, in order (pre-traffic, post-traffic, then the rollbacks, as CodeDeploy and an
    alarm would run them), with what each should do."""
    pre, post = (_event(n)["LifecycleEventHookExecutionId"] for n in ("pre-traffic", "post-traffic"))
    invoke = ".venv/bin/cargo-lambda lambda invoke"
    return [
        {"function": "pre-traffic", "run": f"{invoke} pre-traffic --data-file {EVENTS['pre-traffic']}",
         "expect": "reports Succeeded for BeforeAllowTraffic",
         "check": f"curl -s {url}/_shiftguard/codedeploy/hook-executions/{pre}"},
        {"function": "post-traffic", "run": f"{invoke} post-traffic --data-file {EVENTS['post-traffic']}",
         "expect": "reports Succeeded for AfterAllowTraffic",
         "check": f"curl -s {url}/_shiftguard/codedeploy/hook-executions/{post}"},
        {"function": "rollback", "run": f"{invoke} rollback --data-file {EVENTS['rollback']}",
         "expect": "stops the deployment; CodeDeploy's rollback puts live back on [\"1\", {}]",
         "check": f"curl -s {url}/_shiftguard/codedeploy/deployments/{_event('pre-traffic')['DeploymentId']}"},
        {"function": "rollback", "run": f"{invoke} rollback --data-file {EVENTS['rollback-lattice']}",
         "expect": f"listener {LISTENER_ID}: 100% to {PRODUCTION_TG}", "check": None},
    ]


BEGIN = "----- ShiftGuard by hand: copy from here -----"
END = "----- end -----"


def instructions(info: dict) -> str:
    """The text printed on start. Between BEGIN and END: shell lines only (comments, `export`s, the
    watch and the invokes), the way `tests/byhand/run.sh` reads them."""
    env = info["env"]
    iam_line = info.get("iamLine")
    lines = [
        f"Seeded the sample application (tests/emulator/sample.py) at {info['url']}:",
        f"  lambda {FUNCTION}: versions 1 and 2 (canned healthy), alias {ALIAS} -> [\"1\", {{\"2\": 0.1}}]",
        f"  codedeploy {APPLICATION}/{GROUP}: deployment {info['deploymentId']} 1 -> 2 in flight (created {DEPLOYMENT_CREATED}),",
        f"    hook executions BeforeAllowTraffic {info['hookExecutions']['BeforeAllowTraffic'][:24]}… (events/hooks/pre-traffic.json),",
        f"    AfterAllowTraffic {info['hookExecutions']['AfterAllowTraffic'][:24]}… (events/hooks/post-traffic.json)",
        f"  cloudwatch alarms {ALARM}, {LATTICE_ALARM} -> sns {TOPIC}",
        f"  vpc-lattice service {SERVICE_ID}, listener {LISTENER_ID}: {PRODUCTION_TG} 90 / {CANARY_TG} 10",
        f"    targets: {PRODUCTION_TG} -> {info['lattice']['targets'][PRODUCTION_TG]}, {CANARY_TG} -> {info['lattice']['targets'][CANARY_TG]}",
        "",
        BEGIN,
        "# Terminal 2, at the repository root: the three functions behind a local Lambda Runtime API (port 9000)",
    ]
    if iam_line:
        lines.append(iam_line)
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(".venv/bin/cargo-lambda lambda watch")
    lines.append("# Terminal 3, at the repository root, once the watch is up (the first invoke of each function builds it)")
    for command in info["commands"]:
        lines.append(f"# {command['function']}: {command['expect']}")
        lines.append(command["run"])
        if command["check"]:
            lines.append(command["check"])
    lines.append(END)
    return "\n".join(lines)


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/seed" and method == "GET":
        # What `--seed-sample` created (ids, environment, commands); {} when not seeded.
        return 200, SEEDED
    return None
