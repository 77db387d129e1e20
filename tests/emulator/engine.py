"""The emulator's engine: CodeDeploy Lambda deployments that run themselves, functions that can be real
processes (a local Lambda Runtime API endpoint, e.g. `cargo lambda watch`), and time compression.

Opt-in (see `ENGINE_DEFAULT`): `POST /_shiftguard/engine {"enabled": true, "timeScale": 60}`, the
command-line flag `--engine`, or `SHIFTGUARD_ENGINE=1`. When it is off, CreateDeployment makes a
deployment that stays `Created` until a test sets its status, as before.

Time scale: `timeScale` emulated seconds pass per real second. Every CodeDeploy and CloudWatch
interval (canary/linear intervals, the one-hour hook timeout, Lambda's async retry delays, alarm
periods) is divided by it: with `timeScale: 60` a Canary10Percent5Minutes deployment waits 5 s
between its two shifts and a hook that never reports fails the deployment after 60 s.

What is documented and what is guessed: `MODELLED.md`.
"""

from __future__ import annotations

import json
import os
import random
import string
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

import cloudwatch_logs
import shiftguard_emulator as em

# Flip to True to make the engine the default (tests and the demo then only start things).
ENGINE_DEFAULT = False

# Wakes every waiter when something an engine run may be waiting for changes (a hook report, a
# stop request, an alarm state change, a setting).
COND = threading.Condition(em.LOCK)


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


class Settings:
    def __init__(self) -> None:
        flag = _env_flag("SHIFTGUARD_ENGINE")
        self.enabled = ENGINE_DEFAULT if flag is None else flag
        self.time_scale = float(os.environ.get("SHIFTGUARD_TIME_SCALE") or 1.0)
        # CloudWatch alarms evaluate their metrics by themselves (when the engine is on). Off: alarm
        # state changes only by SetAlarmState, and still notifies.
        self.alarm_evaluation = True
        # CodeDeploy's Lambda hook timeout (emulated seconds): one hour on AWS.
        self.hook_timeout = 3600.0
        # Real seconds between two engine ticks (alarm evaluation, alarm polling).
        self.tick = 0.05

    def scaled(self, emulated_seconds: float) -> float:
        """Real seconds an emulated interval takes."""
        return float(emulated_seconds) / self.time_scale

    def to_json(self) -> dict:
        return {
            "enabled": self.enabled,
            "timeScale": self.time_scale,
            "alarmEvaluation": self.alarm_evaluation,
            "hookTimeoutSeconds": self.hook_timeout,
            "tickSeconds": self.tick,
        }

    def update(self, body: dict) -> None:
        # Checked before anything changes.
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise ValueError("enabled must be true or false")
        if "alarmEvaluation" in body and not isinstance(body["alarmEvaluation"], bool):
            raise ValueError("alarmEvaluation must be true or false")
        for key in ("timeScale", "hookTimeoutSeconds", "tickSeconds"):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
        unknown = sorted(set(body) - {"enabled", "timeScale", "alarmEvaluation", "hookTimeoutSeconds", "tickSeconds"})
        if unknown:
            raise ValueError(f"unknown engine setting {unknown[0]!r}")
        with COND:
            self.enabled = body.get("enabled", self.enabled)
            self.time_scale = float(body.get("timeScale", self.time_scale))
            self.alarm_evaluation = body.get("alarmEvaluation", self.alarm_evaluation)
            self.hook_timeout = float(body.get("hookTimeoutSeconds", self.hook_timeout))
            self.tick = float(body.get("tickSeconds", self.tick))
            COND.notify_all()


SETTINGS = Settings()


def notify() -> None:
    with COND:
        COND.notify_all()


def now_naive() -> datetime:
    return em.utc_now_naive()


# ---------------------------------------------------------------------------------------------
# Invoking functions: a bound local Runtime API endpoint, a canned behaviour, or moto's echo
# ---------------------------------------------------------------------------------------------

# Each: {"function", "qualifier" (None: any), "endpoint", "name"}
BINDINGS: list[dict] = []
# Every invocation the engine made (hooks, SNS deliveries, alarm actions) and bound Invokes.
INVOCATIONS: list[dict] = []


def bind(body: dict) -> dict:
    function = body.get("function")
    endpoint = body.get("endpoint")
    if not isinstance(function, str) or not function:
        raise ValueError("a binding needs a string 'function'")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError("endpoint must be a loopback http:// URL, e.g. http://127.0.0.1:9000")
    qualifier = body.get("qualifier", body.get("version"))
    if qualifier is not None:
        qualifier = str(qualifier)
    name = body.get("name") or function
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    binding = {"function": function, "qualifier": qualifier, "endpoint": endpoint.rstrip("/"), "name": name}
    with em.LOCK:
        BINDINGS[:] = [b for b in BINDINGS if (b["function"], b["qualifier"]) != (function, qualifier)]
        BINDINGS.append(binding)
    return binding


def unbind(body: dict) -> int:
    with em.LOCK:
        before = len(BINDINGS)
        if not body.get("function"):
            BINDINGS.clear()
        else:
            qualifier = body.get("qualifier", body.get("version"))
            BINDINGS[:] = [
                b
                for b in BINDINGS
                if not (b["function"] == body["function"] and ("qualifier" not in body and "version" not in body or b["qualifier"] == (None if qualifier is None else str(qualifier))))
            ]
        return before - len(BINDINGS)


def binding_for(function: str, qualifier: str | None, version: str) -> dict | None:
    with em.LOCK:
        candidates = list(BINDINGS)
    for want in (version, qualifier, None):
        for b in candidates:
            if b["function"] == function and b["qualifier"] == want:
                return b
    return None


def split_function(name_or_arn: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """A FunctionName as Lambda reads it: a name, `NAME:QUALIFIER`, a function ARN
    (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`) or a partial ARN
    (`ACCOUNT:function:NAME[:QUALIFIER]`). Returns (name, qualifier)."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:") and len(parts) >= 7 and parts[5] == "function":
        return parts[6], (parts[7] if len(parts) > 7 else qualifier)
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) > 3 else qualifier)
    if len(parts) == 2:
        return parts[0], parts[1]
    return name_or_arn, qualifier


def post_runtime_api(binding: dict, payload: bytes, timeout: float = 900.0) -> tuple[int, dict, bytes]:
    """An invocation of a local Lambda Runtime API emulator, as `cargo lambda invoke` sends it:
    `POST {endpoint}/2015-03-31/functions/{name}/invocations` with the payload as the body;
    HTTP 200 is a result, anything else an error payload."""
    url = f"{binding['endpoint']}/2015-03-31/functions/{binding['name']}/invocations"
    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers or {}), exc.read()


def invoke(region: str, function: str, qualifier: str | None, payload: bytes, source: str, version: str | None = None, request_id: str | None = None) -> dict:
    """One synchronous invocation of `function` (name or ARN) at `qualifier`: through a binding
    when the function (or its version/alias) is bound, else a canned behaviour, else moto's echo.
    Emits Lambda's metrics and writes Lambda's log lines (`cloudwatch_logs`). Raises AwsError(404)
    when the function or qualifier does not exist."""
    fn_name, qualifier = split_function(function, qualifier)
    try:
        em.lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        version = version or em._resolve_version(region, fn_name, qualifier)
    except Exception:
        suffix = f":{qualifier}" if qualifier else ""
        raise em.AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{em.DEFAULT_ACCOUNT}:function:{fn_name}{suffix}")
    started = time.time()
    request_id = request_id or str(uuid.uuid4())
    # The execution environment (and so the log stream) this invocation runs in.
    sandbox = cloudwatch_logs.claim(region, fn_name, version, started)
    binding = binding_for(fn_name, qualifier, version)
    record = {"function": fn_name, "qualifier": qualifier, "executedVersion": version, "source": source, "time": started, "payload": payload.decode("utf-8", "replace"), "requestId": request_id, "logStreamName": sandbox["stream"]}
    behaviour: dict = {}
    outcome: dict = {}
    try:
        if binding is not None:
            try:
                status, headers, body = post_runtime_api(binding, payload)
                error = headers.get("X-Amz-Function-Error") or headers.get("x-amz-function-error") or (None if status == 200 else "Unhandled")
            except OSError as exc:
                # The process is not there: Lambda would report a failed runtime.
                error, body = "Unhandled", json.dumps({"errorType": "Runtime.Unavailable", "errorMessage": f"{binding['endpoint']}: {exc}"}).encode()
            record["via"] = f"binding {binding['endpoint']} ({binding['name']})"
        else:
            behaviour = em.BEHAVIOURS.get((fn_name, version)) or em.BEHAVIOURS.get((fn_name, "*")) or {}
            if behaviour:
                error, body = em.run_behaviour(behaviour, payload, outcome)
                record["via"] = "behaviour"
            else:
                error, body = None, payload  # moto without Docker echoes the payload
                record["via"] = "echo"
    except BaseException:
        cloudwatch_logs.release(sandbox)
        raise
    ended = time.time()
    em.emit_lambda_metrics(region, fn_name, qualifier, version, error is not None, (ended - started) * 1000.0)
    logged = cloudwatch_logs.record_invocation(
        region,
        fn_name,
        version,
        request_id,
        started,
        ended,
        sandbox=sandbox,
        log_lines=behaviour.get("log_lines"),
        error_payload=body,
        failed=error is not None,
        timed_out_after=outcome.get("timeoutSeconds") if outcome.get("timedOut") else None,
        max_memory_used_mb=behaviour.get("max_memory_used_mb"),
    )
    # Kept whole up to 64 KiB (hook and rollback summaries run to a few KiB; Lambda's synchronous
    # response limit is 6 MB, more than a test log needs).
    record.update({"functionError": error, "response": body.decode("utf-8", "replace")[:65536], "end": ended})
    with em.LOCK:
        INVOCATIONS.append(record)
    return {"functionError": error, "payload": body, "executedVersion": version, "via": record["via"], "requestId": request_id, "logStreamName": logged["logStreamName"], "logMessages": logged["messages"]}


def invoke_async(region: str, function: str, qualifier: str | None, payload: bytes, source: str) -> str:
    """InvocationType=Event: queued, run in the background; a function error is retried twice,
    1 and 2 minutes later (Lambda's default for asynchronous invocation), scaled. The retries keep
    the event's request id (a guess: what Lambda is seen doing, not documented)."""
    request_id = str(uuid.uuid4())

    def attempt() -> None:
        for delay in (0.0, 60.0, 120.0):
            if delay:
                time.sleep(SETTINGS.scaled(delay))
            try:
                result = invoke(region, function, qualifier, payload, source, request_id=request_id)
            except em.AwsError as err:
                print(f"async invocation of {function} failed: {err.code}: {err.message}", file=sys.stderr)
                return
            if result["functionError"] is None:
                return

    threading.Thread(target=attempt, daemon=True, name=f"invoke-{function}").start()
    return request_id


def function_exists(region: str, function: str) -> bool:
    fn_name, qualifier = split_function(function)
    try:
        em.lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# Deployment configurations (Lambda compute platform)
# ---------------------------------------------------------------------------------------------


def _canary(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes}}


def _linear(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes}}


# The predefined Lambda configurations (CodeDeploy user guide, *Deployment configurations on an
# AWS Lambda compute platform*).
PREDEFINED: dict[str, dict] = {
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": _canary(10, 5),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": _canary(10, 10),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": _canary(10, 15),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": _canary(10, 30),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": _linear(10, 1),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": _linear(10, 2),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": _linear(10, 3),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": _linear(10, 10),
    "CodeDeployDefault.LambdaAllAtOnce": {"type": "AllAtOnce"},
}
# The EC2/on-premises ones CodeDeploy also lists (GetDeploymentConfig answers them).
PREDEFINED_SERVER = {
    "CodeDeployDefault.OneAtATime": {"type": "HOST_COUNT", "value": 1},
    "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
    "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
}

# name -> {"deploymentConfigId", "deploymentConfigName", "computePlatform", "trafficRoutingConfig",
#          "minimumHealthyHosts", "createTime"}
CUSTOM_CONFIGS: dict[str, dict] = {}
_BOOT = time.time()


def config_info(name: str) -> dict | None:
    if name in PREDEFINED:
        return {
            "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "deploymentConfigName": name,
            "createTime": _BOOT,
            "computePlatform": "Lambda",
            "trafficRoutingConfig": PREDEFINED[name],
        }
    if name in PREDEFINED_SERVER:
        return {
            "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "deploymentConfigName": name,
            "minimumHealthyHosts": PREDEFINED_SERVER[name],
            "createTime": _BOOT,
            "computePlatform": "Server",
        }
    with em.LOCK:
        found = CUSTOM_CONFIGS.get(name)
        return dict(found) if found else None


def routing_of(config_name: str | None, compute_platform: str = "Lambda") -> dict:
    """The traffic routing of a deployment's configuration. moto defaults a group without a
    configuration to `CodeDeployDefault.OneAtATime` (EC2's default); on the Lambda platform
    CodeDeploy's default is `CodeDeployDefault.LambdaAllAtOnce`."""
    name = str(config_name) if config_name else "CodeDeployDefault.LambdaAllAtOnce"
    if name in PREDEFINED_SERVER and compute_platform == "Lambda":
        name = "CodeDeployDefault.LambdaAllAtOnce"
    info = config_info(name)
    if info is None or "trafficRoutingConfig" not in info:
        raise em.AwsError(400, "DeploymentConfigDoesNotExistException", f"The deployment configuration {name} does not exist with the user or AWS account.")
    return info["trafficRoutingConfig"]


def _validate_routing(routing: Any) -> dict:
    def bad(message: str) -> em.AwsError:
        return em.AwsError(400, "InvalidTrafficRoutingConfigurationException", message)

    if not isinstance(routing, dict) or routing.get("type") not in ("TimeBasedCanary", "TimeBasedLinear", "AllAtOnce"):
        raise bad("The trafficRoutingConfig type must be TimeBasedCanary, TimeBasedLinear or AllAtOnce.")
    kind = routing["type"]
    if kind == "AllAtOnce":
        return {"type": "AllAtOnce"}
    member, pct, interval = {
        "TimeBasedCanary": ("timeBasedCanary", "canaryPercentage", "canaryInterval"),
        "TimeBasedLinear": ("timeBasedLinear", "linearPercentage", "linearInterval"),
    }[kind]
    body = routing.get(member)
    if not isinstance(body, dict):
        raise bad(f"A {kind} configuration needs {member}.")
    p, i = body.get(pct), body.get(interval)
    # The API reference: percentages of traffic, intervals in minutes. The console allows 1-99 %
    # and 1-2880 minutes; those bounds are what this emulator enforces (a guess for the API).
    if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 99:
        raise bad(f"{member}.{pct} must be an integer from 1 to 99.")
    if not isinstance(i, int) or isinstance(i, bool) or not 1 <= i <= 2880:
        raise bad(f"{member}.{interval} must be an integer number of minutes from 1 to 2880.")
    return {"type": kind, member: {pct: p, interval: i}}


def cd_create_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise em.AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    if not isinstance(name, str) or len(name) > 100:
        raise em.AwsError(400, "InvalidDeploymentConfigNameException", "The deployment configuration name was specified in an invalid format.")
    platform = req.get("computePlatform", "Server")
    if platform not in ("Server", "Lambda", "ECS"):
        raise em.AwsError(400, "InvalidComputePlatformException", "The computePlatform is invalid. The computePlatform should be Lambda, Server, or ECS.")
    if platform != "Lambda":
        raise em.AwsError(400, "InvalidComputePlatformException", "This emulator serves deployment configurations for the Lambda compute platform only.")
    routing = _validate_routing(req.get("trafficRoutingConfig"))
    with em.LOCK:
        if name in CUSTOM_CONFIGS or name in PREDEFINED or name in PREDEFINED_SERVER:
            raise em.AwsError(400, "DeploymentConfigAlreadyExistsException", f"A deployment configuration with the name {name} already exists with the user or AWS account.")
        config_id = str(uuid.uuid4())
        CUSTOM_CONFIGS[name] = {
            "deploymentConfigId": config_id,
            "deploymentConfigName": name,
            "createTime": time.time(),
            "computePlatform": platform,
            "trafficRoutingConfig": routing,
        }
    return {"deploymentConfigId": config_id}


def cd_get_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise em.AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    info = config_info(name)
    if info is None:
        raise em.AwsError(400, "DeploymentConfigDoesNotExistException", f"The deployment configuration {name} does not exist with the user or AWS account.")
    return {"deploymentConfigInfo": info}


def cd_list_deployment_configs(region: str, req: dict) -> dict:
    with em.LOCK:
        names = list(PREDEFINED_SERVER) + list(PREDEFINED) + sorted(CUSTOM_CONFIGS)
    return {"deploymentConfigsList": names}


def cd_delete_deployment_config(region: str, req: dict) -> dict:
    name = req.get("deploymentConfigName")
    if not name:
        raise em.AwsError(400, "DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
    if name in PREDEFINED or name in PREDEFINED_SERVER:
        raise em.AwsError(400, "InvalidOperationException", "A predefined deployment configuration cannot be deleted.")
    backend = em.codedeploy_backend(region)
    with em.LOCK:
        groups = [g for apps in backend.deployment_groups.values() for g in apps.values()]
        if any(str(g.deployment_config_name) == name for g in groups):
            raise em.AwsError(400, "DeploymentConfigInUseException", "The deployment configuration is still in use.")
        # AWS answers success for a configuration that does not exist (nothing documented otherwise).
        CUSTOM_CONFIGS.pop(name, None)
    return {}


# ---------------------------------------------------------------------------------------------
# The CodeDeploy engine
# ---------------------------------------------------------------------------------------------

LIFECYCLE = ("Start", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "End")
HOOKED = ("BeforeAllowTraffic", "AfterAllowTraffic")
ID_ALPHABET = string.ascii_uppercase + string.digits


def new_deployment_id(backend: Any) -> str:
    """AWS-shaped: `d-` and 9 upper-case letters or digits."""
    while True:
        candidate = "d-" + "".join(random.choice(ID_ALPHABET) for _ in range(9))
        if candidate not in backend.deployments:
            return candidate


def rekey(backend: Any, deployment: Any) -> str:
    """Give a moto deployment (UUID id) an AWS-shaped id."""
    with em.LOCK:
        new_id = new_deployment_id(backend)
        backend.deployments.pop(deployment.deployment_id, None)
        deployment.deployment_id = new_id
        backend.deployments[new_id] = deployment
    return new_id


class Interrupted(Exception):
    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "stop" | "alarm" | "failure" | "gone"
        self.code = code
        self.message = message


class Run:
    """One deployment the engine runs."""

    def __init__(self, region: str, deployment: Any, rollback_of: str | None) -> None:
        self.region = region
        self.deployment = deployment
        self.rollback_of = rollback_of
        self.events = {name: {"lifecycleEventName": name, "status": "Pending"} for name in LIFECYCLE}
        self.stop_request: dict | None = None
        self.target_status = "Pending"
        self.last_updated = time.time()
        self.finished = False

    @property
    def id(self) -> str:
        return self.deployment.deployment_id

    def event(self, name: str, status: str, diagnostics: dict | None = None) -> None:
        with em.LOCK:
            entry = self.events[name]
            if status == "InProgress":
                entry["startTime"] = time.time()
            elif status in ("Succeeded", "Failed", "Skipped"):
                entry.setdefault("startTime", time.time())
                entry["endTime"] = time.time()
            entry["status"] = status
            if diagnostics:
                entry["diagnostics"] = diagnostics
            self.last_updated = time.time()

    def lifecycle_events(self) -> list[dict]:
        with em.LOCK:
            return [dict(self.events[name]) for name in LIFECYCLE]


class Engine:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self._ticker: threading.Thread | None = None

    # -- what the engine runs ---------------------------------------------------------------

    def run_of(self, deployment_id: str) -> Run | None:
        with em.LOCK:
            for run in self.runs.values():
                if run.deployment.deployment_id == deployment_id:
                    return run
        return None

    def manages(self, deployment: Any) -> bool:
        return self.run_of(deployment.deployment_id) is not None

    def start(self, region: str, deployment: Any, rollback_of: str | None = None) -> Run:
        run = Run(region, deployment, rollback_of)
        with em.LOCK:
            self.runs[deployment.deployment_id] = run
        threading.Thread(target=self._run, args=(run,), daemon=True, name=f"deployment-{deployment.deployment_id}").start()
        self.ensure_ticker()
        return run

    def ensure_ticker(self) -> None:
        with em.LOCK:
            if self._ticker is None or not self._ticker.is_alive():
                import alarms

                self._ticker = threading.Thread(target=alarms.tick_forever, daemon=True, name="engine-ticker")
                self._ticker.start()

    # -- CreateDeployment ---------------------------------------------------------------------

    def create_deployment(self, region: str, req: dict) -> dict:
        backend = em.codedeploy_backend(region)
        app_name = req.get("applicationName")
        group_name = req.get("deploymentGroupName")
        if not app_name:
            raise em.AwsError(400, "ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
        if app_name not in backend.applications:
            raise em.AwsError(400, "ApplicationDoesNotExistException", f"The application {app_name} does not exist with the user or AWS account.")
        if not group_name:
            raise em.AwsError(400, "DeploymentGroupNameRequiredException", "The deployment group name was not specified.")
        group = backend.deployment_groups.get(app_name, {}).get(group_name)
        if group is None:
            raise em.AwsError(400, "DeploymentGroupDoesNotExistException", f"The deployment group {group_name} does not exist with the user or AWS account.")
        platform = backend.applications[app_name].compute_platform
        revision = req.get("revision")
        if not revision:
            raise em.AwsError(400, "RevisionRequiredException", "The revision ID was not specified.")
        if platform != "Lambda":
            # Not the engine's business: moto's CreateDeployment (stays Created), as before.
            return {"deploymentId": backend.create_deployment(application_name=app_name, deployment_group_name=group_name, revision=revision, deployment_config_name=req.get("deploymentConfigName"), description=req.get("description"))}
        if revision.get("revisionType") == "S3":
            # AWS reads the AppSpec from the bucket; this emulator does not (yet).
            raise em.AwsError(400, "InvalidRevisionException", "S3 revisions are not served by this emulator: pass the AppSpec as AppSpecContent or String.")
        if revision.get("revisionType") not in ("AppSpecContent", "String"):
            raise em.AwsError(400, "InvalidRevisionException", "A Lambda deployment's revision must be AppSpecContent, String or S3.")
        spec = em.appspec_of(revision)
        if not isinstance(spec, dict):
            raise em.AwsError(400, "InvalidRevisionException", "The AppSpec must be a JSON or YAML object.")
        config_name = req.get("deploymentConfigName") or group.deployment_config_name
        routing_of(config_name, platform)  # DeploymentConfigDoesNotExistException
        description = req.get("description")
        if description is not None and len(description) > 512:
            raise em.AwsError(400, "DescriptionTooLongException", "The description is too long.")
        with em.LOCK:
            for other in backend.deployments.values():
                if other.application_name == app_name and other.deployment_group_name == group_name and other.status in em.IN_FLIGHT and self.manages(other):
                    raise em.AwsError(400, "DeploymentLimitExceededException", f"The Deployment Group '{group_name}' already has an active Deployment '{other.deployment_id}'")
            temp_id = backend.create_deployment(
                application_name=app_name,
                deployment_group_name=group_name,
                revision=revision,
                deployment_config_name=config_name,
                description=description,
                auto_rollback_configuration=req.get("autoRollbackConfiguration"),
                override_alarm_configuration=req.get("overrideAlarmConfiguration"),
            )
            deployment = backend.deployments[temp_id]
            deployment_id = rekey(backend, deployment)
            deployment.deployment_overview = {**deployment.deployment_overview, "Pending": 1}
            self.start(region, deployment)
        return {"deploymentId": deployment_id}

    # -- configuration a run reads --------------------------------------------------------------

    @staticmethod
    def _auto_rollback(deployment: Any) -> dict:
        config = deployment.auto_rollback_configuration
        if config is None:
            config = deployment.deployment_group.auto_rollback_configuration
        return config or {}

    def rolls_back_on(self, deployment: Any, event: str) -> bool:
        config = self._auto_rollback(deployment)
        return bool(config.get("enabled")) and event in (config.get("events") or [])

    @staticmethod
    def alarm_configuration(deployment: Any) -> dict:
        override = getattr(deployment, "override_alarm_configuration", None)
        config = override if isinstance(override, dict) and override else deployment.deployment_group.alarm_configuration
        if config is None:
            return {}
        if not isinstance(config, dict):  # moto's AlarmConfiguration object
            return {"enabled": config.enabled, "alarms": config.alarms, "ignorePollAlarmFailure": config.ignore_poll_alarm_failure}
        return config

    # -- StopDeployment -------------------------------------------------------------------------

    def request_stop(self, run: Run, auto_rollback: bool | None) -> dict:
        with COND:
            if run.deployment.status not in em.IN_FLIGHT or run.finished:
                raise em.AwsError(400, "DeploymentAlreadyCompletedException", f"The deployment {run.id} is already completed.")
            if auto_rollback is None:
                rollback = self.rolls_back_on(run.deployment, "DEPLOYMENT_STOP_ON_REQUEST")
            else:
                rollback = auto_rollback
            run.stop_request = {"rollback": bool(rollback) and run.rollback_of is None}
            em.STATE.stopped.append({"deploymentId": run.id, "autoRollbackEnabled": bool(auto_rollback)})
            COND.notify_all()
        if rollback:
            return {"status": "Pending", "statusMessage": "Stopping Pending. Stopping to roll back."}
        return {"status": "Pending", "statusMessage": "Stopping Pending."}

    # -- the run ------------------------------------------------------------------------------

    def _check(self, run: Run, monitor_alarms: bool = True) -> None:
        """Raise Interrupted when the run must stop: a stop request, an alarm, or a deployment
        someone else finished (the control plane, a rollback)."""
        d = run.deployment
        if d.status not in ("Created", "InProgress"):
            raise Interrupted("gone", "", f"status set to {d.status} from outside the engine")
        if run.stop_request is not None:
            raise Interrupted("stop", "MANUAL_STOP", "The deployment was stopped by a StopDeployment request.")
        if monitor_alarms and run.rollback_of is None:
            alarm = self._alarm_in_alarm(run)
            if alarm is not None:
                raise alarm

    def _alarm_in_alarm(self, run: Run) -> Interrupted | None:
        config = self.alarm_configuration(run.deployment)
        if not config.get("enabled"):
            return None
        from moto.cloudwatch.models import cloudwatch_backends

        alarms = cloudwatch_backends[em.DEFAULT_ACCOUNT][run.region].alarms
        for entry in config.get("alarms") or []:
            name = entry.get("name") if isinstance(entry, dict) else str(entry)
            alarm = alarms.get(name)
            if alarm is None:
                if config.get("ignorePollAlarmFailure"):
                    continue
                return Interrupted("failure", "ALARM_ACTIVE", f"The alarm {name} could not be read (it does not exist) and ignorePollAlarmFailure is false.")
            if alarm.state_value == "ALARM":
                return Interrupted("alarm", "ALARM_ACTIVE", f"One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <{name}>")
        return None

    def _wait(self, run: Run, seconds: float, done=None, monitor_alarms: bool = True) -> bool:
        """Wait `seconds` real seconds, or until `done()`; check interruptions throughout.
        Returns True when `done()` became true."""
        deadline = time.time() + seconds
        with COND:
            while True:
                self._check(run, monitor_alarms)
                if done is not None and done():
                    return True
                remaining = deadline - time.time()
                if remaining <= 0:
                    return False
                COND.wait(min(remaining, SETTINGS.tick))

    def _set_alias(self, run: Run, info: dict, version: str, weights: dict) -> None:
        with em.LOCK:
            self._check(run, monitor_alarms=False)
            alias = em.lambda_backend(run.region).get_alias(info["functionAlias"], info["functionName"])
            alias.update(None, version, {"AdditionalVersionWeights": weights} if weights else {})
            alias.revision_id = str(uuid.uuid4())
            run.last_updated = time.time()

    def _hook(self, run: Run, event: str, function: str | None) -> None:
        """A lifecycle event with its hook: invoke it asynchronously, wait for its report."""
        run.event(event, "InProgress")
        if not function:
            # A guess: an event without a hook is reported Succeeded (not Skipped).
            run.event(event, "Succeeded")
            return
        execution = em.HookExecution(run.id, event)
        with em.LOCK:
            em.STATE.hook_executions[execution.id] = execution
        run.hook_execution = execution
        if not function_exists(run.region, function):
            run.event(event, "Failed", {"errorCode": "ScriptMissing", "message": f"The hook function {function} does not exist.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "HOOK_EXECUTION_FAILURE", f"The {event} hook function {function} does not exist.")
        payload = json.dumps({"DeploymentId": run.id, "LifecycleEventHookExecutionId": execution.id}).encode()
        invoke_async(run.region, function, None, payload, f"codedeploy {event} {run.id}")
        reported = self._wait(run, SETTINGS.scaled(SETTINGS.hook_timeout), done=lambda: execution.status != "Pending")
        if not reported:
            run.event(event, "Failed", {"errorCode": "ScriptTimedOut", "message": "The lifecycle event hook timed out: no PutLifecycleEventHookExecutionStatus within one hour.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "TIMEOUT", f"The {event} lifecycle event hook {function} did not report a status within the hook timeout.")
        if execution.status != "Succeeded":
            run.event(event, "Failed", {"errorCode": "ScriptFailed", "message": "The hook reported Failed.", "scriptName": function, "logTail": ""})
            raise Interrupted("failure", "HOOK_EXECUTION_FAILURE", f"The {event} lifecycle event hook {function} reported Failed.")
        run.event(event, "Succeeded")

    def _allow_traffic(self, run: Run, info: dict) -> None:
        run.event("AllowTraffic", "InProgress")
        current, target = info["currentVersion"], info["targetVersion"]
        if run.rollback_of is not None:
            # A guess: a rollback deployment restores all at once, whatever the configuration.
            routing = {"type": "AllAtOnce"}
        else:
            routing = routing_of(run.deployment.deployment_config_name, "Lambda")
        if routing["type"] == "TimeBasedCanary":
            canary = routing["timeBasedCanary"]
            self._set_alias(run, info, current, {target: round(canary["canaryPercentage"] / 100.0, 4)})
            self._wait(run, SETTINGS.scaled(canary["canaryInterval"] * 60))
        elif routing["type"] == "TimeBasedLinear":
            linear = routing["timeBasedLinear"]
            shifted = linear["linearPercentage"]
            while shifted < 100:
                self._set_alias(run, info, current, {target: round(shifted / 100.0, 4)})
                self._wait(run, SETTINGS.scaled(linear["linearInterval"] * 60))
                shifted += linear["linearPercentage"]
        self._set_alias(run, info, target, {})
        run.event("AllowTraffic", "Succeeded")

    def _validate(self, run: Run, info: dict) -> None:
        backend = em.lambda_backend(run.region)
        try:
            alias = backend.get_alias(info["functionAlias"], info["functionName"])
        except Exception:
            raise Interrupted("failure", "INVALID_LAMBDA_FUNCTION", f"The alias {info['functionAlias']} of function {info['functionName']} does not exist.")
        for version in (info["currentVersion"], info["targetVersion"]):
            try:
                backend._lambdas.get_function_by_name_or_arn_with_qualifier(info["functionName"], version)
            except Exception:
                raise Interrupted("failure", "INVALID_LAMBDA_FUNCTION", f"Version {version} of function {info['functionName']} does not exist.")
        if run.rollback_of is None and str(alias.function_version) != info["currentVersion"]:
            raise Interrupted(
                "failure",
                "INVALID_LAMBDA_CONFIGURATION",
                f"The deployment failed because the AWS Lambda function's alias version ({alias.function_version}) does not match the current version in AppSpec ({info['currentVersion']}).",
            )

    def _run(self, run: Run) -> None:
        d = run.deployment
        try:
            with em.LOCK:
                if d.status == "Created":
                    d.status = "InProgress"
                    d.start_time = now_naive()
                elif d.status != "InProgress":
                    return
                d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, "InProgress": 1}
                run.target_status = "InProgress"
            spec = em.appspec_of(d.revision)
            info = em.lambda_function_info(run.region, d)
            hooks: dict[str, str] = {}
            for entry in spec.get("Hooks") or []:
                if isinstance(entry, dict):
                    hooks.update({str(k): str(v) for k, v in entry.items()})
            run.event("Start", "InProgress")
            self._check(run)
            self._validate(run, info)
            run.event("Start", "Succeeded")
            self._hook(run, "BeforeAllowTraffic", hooks.get("BeforeAllowTraffic"))
            self._allow_traffic(run, info)
            self._hook(run, "AfterAllowTraffic", hooks.get("AfterAllowTraffic"))
            run.event("End", "InProgress")
            with em.LOCK:
                self._check(run, monitor_alarms=False)
                run.event("End", "Succeeded")
                self._finish(run, "Succeeded", None)
        except Interrupted as stop:
            self._interrupted(run, stop)
        except em.AwsError as err:
            self._interrupted(run, Interrupted("failure", "INVALID_REVISION", err.message))
        except Exception as exc:  # an engine bug must not leave a deployment InProgress forever
            print(f"engine: deployment {d.deployment_id} failed internally: {exc!r}", file=sys.stderr)
            self._interrupted(run, Interrupted("failure", "INTERNAL_ERROR", f"emulator engine error: {exc!r}"))
        finally:
            notify()

    def _finish(self, run: Run, status: str, error: dict | None) -> None:
        d = run.deployment
        with em.LOCK:
            d.status = status
            d.complete_time = now_naive()
            if error:
                d.shiftguard_error = error
            run.target_status = {"Succeeded": "Succeeded", "Failed": "Failed", "Stopped": "Failed"}[status]
            d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, run.target_status: 1}
            run.finished = True
            run.last_updated = time.time()
            for name, entry in run.events.items():
                if entry["status"] in ("Pending", "InProgress"):
                    # A guess: events that never ran are Skipped, the one that was running Failed.
                    entry["status"] = "Failed" if entry["status"] == "InProgress" else "Skipped"
            if run.rollback_of is not None:
                word = {"Succeeded": "succeeded.", "Failed": f"failed: {(error or {}).get('message', '')}", "Stopped": "was stopped."}[status]
                em._note_rollback(run.rollback_of, run.region, f"Rollback deployment {d.deployment_id} {word}")

    def _interrupted(self, run: Run, stop: Interrupted) -> None:
        d = run.deployment
        with em.LOCK:
            if stop.kind == "gone" or d.status not in ("Created", "InProgress"):
                # Someone else (the control plane, start_rollback) finished it.
                run.finished = True
                if run.target_status in ("Pending", "InProgress"):
                    run.target_status = em.target_status(d.status)
                return
            status = "Failed" if stop.kind == "failure" else "Stopped"
            error = {"code": stop.code, "message": stop.message}
            rollback = False
            if run.rollback_of is None:
                if stop.kind == "stop":
                    rollback = bool(run.stop_request and run.stop_request.get("rollback"))
                elif stop.kind == "alarm":
                    rollback = self.rolls_back_on(d, "DEPLOYMENT_STOP_ON_ALARM")
                else:
                    rollback = self.rolls_back_on(d, "DEPLOYMENT_FAILURE")
            if rollback:
                d.shiftguard_error = error
                run.finished = True
                run.target_status = "Failed"
                for entry in run.events.values():
                    if entry["status"] in ("Pending", "InProgress"):
                        entry["status"] = "Failed" if entry["status"] == "InProgress" else "Skipped"
                try:
                    em.start_rollback(run.region, d, status, True, 0.0)
                except em.AwsError as err:
                    print(f"engine: rollback of {d.deployment_id} failed: {err.message}", file=sys.stderr)
                    self._finish(run, status, error)
                d.deployment_overview = {**{k: 0 for k in d.deployment_overview}, "Failed": 1}
            else:
                self._finish(run, status, error)


ENGINE = Engine()


def start_rollback_run(region: str, original: Any, rollback: Any) -> bool:
    """Called by `start_rollback`: when the engine runs `original` (or is on), the engine runs
    the rollback deployment too (its own hooks, the alias restored). Returns whether it did."""
    if not (ENGINE.manages(original) or SETTINGS.enabled):
        return False
    rekey(em.codedeploy_backend(region), rollback)
    with em.LOCK:
        original.rollback_info = {**em.rollback_info_of(original), "rollbackDeploymentId": rollback.deployment_id, "rollbackMessage": f"Rollback deployment {rollback.deployment_id} is in progress."}
    ENGINE.start(region, rollback, rollback_of=original.deployment_id)
    return True


def target_view(deployment_id: str) -> dict | None:
    run = ENGINE.run_of(deployment_id)
    if run is None:
        return None
    return {"status": run.target_status, "lifecycleEvents": run.lifecycle_events(), "lastUpdatedAt": run.last_updated}


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/engine":
        if method == "POST":
            SETTINGS.update(body or {})
            if SETTINGS.enabled:
                ENGINE.ensure_ticker()
        return 200, SETTINGS.to_json()
    if path == "/_shiftguard/lambda/bindings":
        if method == "POST":
            return 200, bind(body or {})
        if method == "DELETE":
            return 200, {"removed": unbind(body or {})}
        with em.LOCK:
            return 200, list(BINDINGS)
    if path == "/_shiftguard/lambda/invocations":
        if method == "DELETE":
            with em.LOCK:
                INVOCATIONS.clear()
            return 200, {"invocations": 0}
        with em.LOCK:
            out = list(INVOCATIONS)
        if "function" in query:
            out = [i for i in out if i["function"] == query["function"][0]]
        return 200, out
    return None
