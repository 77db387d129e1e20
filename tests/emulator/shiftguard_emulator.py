"""ShiftGuard's local AWS endpoint: moto server plus the operations moto lacks.

moto serves every operation it implements unchanged. This WSGI layer sits in front of it and adds:

* the operations ShiftGuard needs that moto does not implement, with the request/response shapes and
  error codes of the AWS API references (CodeDeploy, Lambda, VPC Lattice);
* `RevisionId` checking and weight validation on Lambda `UpdateAlias`;
* fault injection on any operation (throttling, HTTP 500, latency, a concurrent writer) and a log of
  every call, both driven over HTTP under `/_shiftguard/`, so that tests in any language can use them;
* CodeDeploy's rollback deployments: new deployments (creator `codeDeployRollback`, `rollbackInfo`
  both ways) made by `StopDeployment(autoRollbackEnabled)` or by the control plane
  (`POST /_shiftguard/codedeploy/deployments/{id}/rollback`).

* (opt-in) the engine: CodeDeploy Lambda deployments that run themselves, CloudWatch alarms that
  evaluate and notify, SNS delivering to Lambda, functions bound to a local Lambda Runtime API
  endpoint, time compression (`engine.py`, `alarms.py`; `POST /_shiftguard/engine`, `--engine`,
  `SHIFTGUARD_ENGINE=1`);
* model conformance against botocore's service models, strict with `SHIFTGUARD_STRICT=1`/`--strict`
  (`conformance.py`, `GET /_shiftguard/conformance`);
* Lambda's log lines in CloudWatch Logs for every invocation, and FilterLogEvents with the
  documented filter pattern syntax and pagination (`cloudwatch_logs.py`);
* published Lambda versions that keep their own code hash, code and description, image functions'
  `ResolvedImageUri` (`_lambda_versions_keep_their_code`);
* CloudWatch GetMetricData per period as documented, over JSON and CBOR (`cloudwatch_metrics.py`);
* API Gateway REST API stage canaries (`canarySettings` on CreateDeployment, CreateStage, GetStage,
  UpdateStage's canary patch paths) and operation names for every API Gateway request
  (`apigateway.py`);
* VPC Lattice RegisterTargets / DeregisterTargets / ListTargets (one target per LAMBDA target group,
  target statuses), Lattice tags on any resource ARN, Lambda tag limits (`lattice.py`).

Which of these behaviours AWS documents and which are our guesses: `MODELLED.md` beside this file.
Its own tests: `make emulator-test` (pytest, `test_*.py` here).

Run: `python shiftguard_emulator.py [--host 127.0.0.1] [--port 0] [--engine] [--time-scale N] [--strict] [--seed-sample]`
(`--seed-sample`: the sample application `sample.py` describes, and how to run each function against it). It prints one line,
`SHIFTGUARD_EMULATOR_READY http://HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import sys

# Run as a script, this module is `__main__`; the engine modules import it as `shiftguard_emulator`
# and must get this very module (one STATE, one LOCK), not a second copy.
sys.modules.setdefault("shiftguard_emulator", sys.modules[__name__])

import argparse
import copy
import hashlib
import json
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs, quote, unquote

import yaml
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

DEFAULT_ACCOUNT = "123456789012"
#: Where this emulator serves (set once serving): modules that set state up through the API use it.
SELF_URL = ""
LOCK = threading.RLock()


# ---------------------------------------------------------------------------------------------
# Errors in each service's wire protocol
# ---------------------------------------------------------------------------------------------


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        # Error members bound to headers (API Gateway's `retryAfterSeconds` is `Retry-After`).
        self.headers = headers or {}


def error_response(service: str, err: AwsError) -> tuple[int, dict, dict]:
    headers = {"x-amzn-ErrorType": err.code, "Content-Type": "application/json"}
    if service in ("codedeploy", "logs"):
        # awsJson1_1: the code travels in `__type`.
        body = {"__type": err.code, "message": err.message}
        headers["Content-Type"] = "application/x-amz-json-1.1"
    elif service == "lambda":
        body = {"Type": "User", "Message": err.message, "message": err.message}
    else:
        body = {"message": err.message}
    body.update(err.extra)
    headers.update(err.headers)
    return err.status, headers, body


def throttling_error(service: str) -> AwsError:
    if service == "lambda":
        return AwsError(
            429,
            "TooManyRequestsException",
            "Rate exceeded",
            {"Reason": "CallerRateLimitExceeded"},
            # `retryAfterSeconds` is bound to the Retry-After header in Lambda's model.
            headers={"Retry-After": "1"},
        )
    if service == "codedeploy":
        return AwsError(400, "ThrottlingException", "Rate exceeded")
    if service == "apigateway":
        # API Gateway's modeled throttle: TooManyRequestsException, HTTP 429, `retryAfterSeconds` in
        # the `Retry-After` header (botocore's model; the value 1 is ours). The AWS SDKs (boto3's
        # standard retries, the Rust SDK's error classifier) retry it as throttling.
        return AwsError(429, "TooManyRequestsException", "Too Many Requests", headers={"Retry-After": "1"})
    return AwsError(429, "ThrottlingException", "Rate exceeded")


def internal_error(service: str) -> AwsError:
    if service == "lambda":
        return AwsError(500, "ServiceException", "The AWS Lambda service encountered an internal error.")
    if service == "vpc-lattice":
        return AwsError(500, "InternalServerException", "An unexpected error occurred.")
    return AwsError(500, "InternalFailure", "The request processing has failed because of an unknown error.")


# ---------------------------------------------------------------------------------------------
# Knowing which operation a request is
# ---------------------------------------------------------------------------------------------

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")

LAMBDA_ROUTES = [
    ("GET", r"^/2015-03-31/functions/(?P<fn>[^/]+)/aliases/(?P<alias>[^/]+)/?$", "GetAlias"),
    ("PUT", r"^/2015-03-31/functions/(?P<fn>[^/]+)/aliases/(?P<alias>[^/]+)/?$", "UpdateAlias"),
    ("DELETE", r"^/2015-03-31/functions/(?P<fn>[^/]+)/aliases/(?P<alias>[^/]+)/?$", "DeleteAlias"),
    ("POST", r"^/2015-03-31/functions/(?P<fn>[^/]+)/aliases/?$", "CreateAlias"),
    ("GET", r"^/2015-03-31/functions/(?P<fn>[^/]+)/aliases/?$", "ListAliases"),
    ("POST", r"^/2015-03-31/functions/(?P<fn>[^/]+)/versions/?$", "PublishVersion"),
    ("GET", r"^/2015-03-31/functions/(?P<fn>[^/]+)/versions/?$", "ListVersionsByFunction"),
    ("POST", r"^/2015-03-31/functions/(?P<fn>[^/]+)/invocations/?$", "Invoke"),
    ("GET", r"^/2015-03-31/functions/(?P<fn>[^/]+)/configuration/?$", "GetFunctionConfiguration"),
    ("PUT", r"^/2015-03-31/functions/(?P<fn>[^/]+)/configuration/?$", "UpdateFunctionConfiguration"),
    ("PUT", r"^/2015-03-31/functions/(?P<fn>[^/]+)/code/?$", "UpdateFunctionCode"),
    ("GET", r"^/2015-03-31/functions/(?P<fn>[^/]+)/?$", "GetFunction"),
    ("DELETE", r"^/2015-03-31/functions/(?P<fn>[^/]+)/?$", "DeleteFunction"),
    ("POST", r"^/2015-03-31/functions/?$", "CreateFunction"),
    ("GET", r"^/2015-03-31/functions/?$", "ListFunctions"),
]

LATTICE_ROUTES = [
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules/(?P<rule>[^/]+)$", "GetRule"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules/(?P<rule>[^/]+)$", "UpdateRule"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "ListRules"),
    ("POST", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "CreateRule"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)/rules$", "BatchUpdateRule"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)$", "GetListener"),
    ("PATCH", r"^/services/(?P<svc>[^/]+)/listeners/(?P<lis>[^/]+)$", "UpdateListener"),
    ("GET", r"^/services/(?P<svc>[^/]+)/listeners$", "ListListeners"),
    ("POST", r"^/services/(?P<svc>[^/]+)/listeners$", "CreateListener"),
    ("GET", r"^/services/(?P<svc>[^/]+)$", "GetService"),
    ("POST", r"^/services$", "CreateService"),
    ("POST", r"^/targetgroups$", "CreateTargetGroup"),
    ("GET", r"^/targetgroups/(?P<tg>[^/]+)$", "GetTargetGroup"),
    ("POST", r"^/targetgroups/(?P<tg>[^/]+)/registertargets$", "RegisterTargets"),
    ("POST", r"^/servicenetworks$", "CreateServiceNetwork"),
]


def lattice_arns_to_ids(environ: dict) -> None:
    """VPC Lattice identifiers may be ids or ARNs (`...:service/svc-…`, `.../listener/listener-…`,
    `.../rule/rule-…`, `...:targetgroup/tg-…`). An ARN in the URI (slashes percent-encoded) is
    replaced by the id it ends with, so routing and moto see ids."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    raw_path, _, raw_query = raw.partition("?")
    if "arn%3a" not in raw_path.lower() and "arn:" not in raw_path:
        return
    if raw_path.startswith("/tags/"):
        # TagResource / UntagResource / ListTagsForResource: the ARN is the resource's name, kept
        # whole (`lattice.py`).
        return
    segments = []
    for segment in raw_path.split("/"):
        value = unquote(segment)
        if value.startswith("arn:"):
            value = value.rstrip("/").rsplit("/", 1)[-1]
        segments.append(value)
    path = "/".join(segments)
    environ["PATH_INFO"] = path
    rebuilt = quote(path, safe="/:$-_.~") + (f"?{raw_query}" if raw_query else "")
    environ["RAW_URI"] = environ["REQUEST_URI"] = rebuilt


def route(routes: list, method: str, path: str) -> tuple[str | None, dict]:
    for m, pattern, op in routes:
        if m == method:
            found = re.match(pattern, path)
            if found:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
    return None, {}


def identify(environ: dict, body: bytes) -> tuple[str, str, str, dict]:
    """(service, region, operation, path parameters) of a request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = SCOPE.search(auth)
    region, service = (scope.group(1), scope.group(2)) if scope else ("us-east-1", "unknown")
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    cbor = CBOR_PATH.match(path)
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return service, region, cbor.group("operation"), {"cbor": True}
    if target:
        return service, region, target.split(".")[-1], {}
    if service == "lambda":
        op, params = route(LAMBDA_ROUTES, method, path)
        return service, region, op or f"{method} {path}", params
    if service == "vpc-lattice":
        op, params = route(LATTICE_ROUTES, method, path)
        return service, region, op or f"{method} {path}", params
    if service == "apigateway":
        # Every REST API operation of botocore's model (API Gateway V2 shares the signing name: its
        # `/v2/...` paths stay "METHOD PATH").
        op, params = apigateway.route(method, path, environ.get("QUERY_STRING", ""))
        return service, region, op or f"{method} {path}", params
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        if action:
            return service, region, action, {}
    return service, region, f"{method} {path}", {}


# ---------------------------------------------------------------------------------------------
# Faults and the call log
# ---------------------------------------------------------------------------------------------


class Faults:
    """Faults armed by tests: each matches a service and operation and fires `count` times (-1: always),
    after letting `skip` matching calls through (default 0)."""

    def __init__(self) -> None:
        self.armed: list[dict] = []

    def arm(self, spec: dict) -> None:
        for key in ("service", "operation", "kind"):
            if not isinstance(spec.get(key), str):
                raise ValueError(f"fault needs a string '{key}'")
        if spec["kind"] not in ("throttle", "error500", "latency", "concurrent_alias_update", "error", "overwritten"):
            raise ValueError(f"unknown fault kind {spec['kind']!r}")
        spec.setdefault("count", 1)
        self.armed.append(spec)

    def take(self, service: str, operation: str) -> list[dict]:
        fired = []
        with LOCK:
            for spec in self.armed:
                if spec["service"] == service and spec["operation"] == operation and spec["count"] != 0:
                    # `skip`: let this many matching calls through first (e.g. fail the second read).
                    if spec.get("skip", 0) > 0:
                        spec["skip"] -= 1
                        continue
                    if spec["count"] > 0:
                        spec["count"] -= 1
                    fired.append(dict(spec))
            self.armed = [s for s in self.armed if s["count"] != 0]
        return fired


FAULTS = Faults()
CALLS: list[dict] = []


# ---------------------------------------------------------------------------------------------
# State the extension keeps beside moto's backends
# ---------------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def utc_now_naive() -> datetime:
    """moto keeps deployment times as naive UTC datetimes (and compares them with
    `createTimeRange`): every time the extension stores on a moto object is one too."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def epoch_seconds(value: datetime) -> float:
    # `.timestamp()` on a naive datetime would read it as local time; moto's are UTC.
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def parse_time(value: Any) -> datetime:
    """A time a test sends: epoch seconds, or ISO 8601 (without an offset: UTC). Naive UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
    raise ValueError(f"a time must be epoch seconds or an ISO 8601 string, not {value!r}")


def codedeploy_backend(region: str):
    from moto.codedeploy.models import codedeploy_backends

    return codedeploy_backends[DEFAULT_ACCOUNT][region]


def lambda_backend(region: str):
    # With `use_docker: false` moto keeps Lambda state in a different backend: ask moto which.
    from moto.awslambda.utils import get_backend

    return get_backend(DEFAULT_ACCOUNT, region)


def lattice_backend(region: str):
    from moto.vpclattice.models import vpclattice_backends

    return vpclattice_backends[DEFAULT_ACCOUNT][region]


class HookExecution:
    def __init__(self, deployment_id: str, lifecycle_event: str) -> None:
        self.id = str(uuid.uuid4())
        self.deployment_id = deployment_id
        self.lifecycle_event = lifecycle_event
        self.status = "Pending"
        # Reports CodeDeploy accepted (at most one) and those it refused as already completed.
        self.reports: list[dict] = []
        self.rejected: list[dict] = []


class State:
    def __init__(self) -> None:
        # deployment id -> {"auto_rollback": bool, "rollback_delay": float}
        self.codedeploy_behaviour: dict[str, dict] = {}
        self.hook_executions: dict[str, HookExecution] = {}
        self.default_rule_ids: dict[str, str] = {}
        self.rule_times: dict[str, tuple[str, str]] = {}
        self.stopped: list[dict] = []

    def default_rule_id(self, listener_id: str) -> str:
        with LOCK:
            if listener_id not in self.default_rule_ids:
                self.default_rule_ids[listener_id] = f"rule-{uuid.uuid4().hex[:17]}"
            return self.default_rule_ids[listener_id]


STATE = State()


# ---------------------------------------------------------------------------------------------
# CodeDeploy: the Lambda compute platform's view of a deployment
# ---------------------------------------------------------------------------------------------

IN_FLIGHT = {"Created", "Queued", "InProgress", "Baking", "Ready"}


def appspec_of(revision: dict) -> dict:
    """The AppSpec of a Lambda revision: `appSpecContent.content` or `string.content`, JSON or YAML."""
    content = None
    if revision.get("revisionType") == "AppSpecContent":
        content = (revision.get("appSpecContent") or {}).get("content")
    elif revision.get("revisionType") == "String":
        content = (revision.get("string") or {}).get("content")
    if not content:
        raise AwsError(400, "InvalidRevisionException", "The revision has no AppSpec content.")
    try:
        return yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise AwsError(400, "InvalidRevisionException", f"The AppSpec is not valid JSON or YAML: {exc}")


def lambda_function_info(region: str, deployment) -> dict:
    spec = appspec_of(deployment.revision)
    for resource in spec.get("Resources") or []:
        for _, body in resource.items():
            if body.get("Type") == "AWS::Lambda::Function":
                props = body.get("Properties") or {}
                info = {
                    "functionName": props.get("Name"),
                    "functionAlias": props.get("Alias"),
                    "currentVersion": str(props.get("CurrentVersion")),
                    "targetVersion": str(props.get("TargetVersion")),
                    "targetVersionWeight": 0.0,
                }
                try:
                    alias = lambda_backend(region).get_alias(info["functionAlias"], info["functionName"])
                    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights")) or {}
                    if alias.function_version == info["targetVersion"]:
                        info["targetVersionWeight"] = 1.0 - sum(float(w) for w in weights.values())
                    else:
                        info["targetVersionWeight"] = float(weights.get(info["targetVersion"], 0.0))
                except Exception:
                    pass
                return info
    raise AwsError(400, "InvalidRevisionException", "The AppSpec names no AWS::Lambda::Function resource.")


# AWS deployment ids are `d-` and 9 upper-case letters or digits; moto's are UUIDs (kept valid:
# deployments made while the engine is off, which existing tests pass back, have them).
DEPLOYMENT_ID = re.compile(r"^(d-[A-Z0-9]{9}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def check_deployment_id(deployment_id: Any) -> None:
    if not deployment_id:
        raise AwsError(400, "DeploymentIdRequiredException", "At least one deployment ID must be specified.")
    if not isinstance(deployment_id, str) or not DEPLOYMENT_ID.match(deployment_id):
        raise AwsError(400, "InvalidDeploymentIdException", f"Specified DeploymentId is not in the valid format: {deployment_id}")


def any_deployment(region: str, deployment_id: str | None):
    """A deployment of any compute platform (DeploymentDoesNotExistException otherwise)."""
    check_deployment_id(deployment_id)
    deployment = codedeploy_backend(region).deployments.get(deployment_id)
    if deployment is None:
        raise AwsError(400, "DeploymentDoesNotExistException", f"The deployment {deployment_id} does not exist with the user or AWS account.")
    return deployment


def lambda_deployment(region: str, deployment_id: str | None):
    check_deployment_id(deployment_id)
    backend = codedeploy_backend(region)
    deployment = backend.deployments.get(deployment_id)
    if deployment is None:
        raise AwsError(
            400,
            "DeploymentDoesNotExistException",
            f"The deployment {deployment_id} does not exist with the user or AWS account.",
        )
    if deployment.application.compute_platform != "Lambda":
        raise AwsError(
            400,
            "UnsupportedActionForDeploymentTypeException",
            "This operation is supported only for deployments on the Lambda compute platform.",
        )
    return deployment


# GetDeploymentTarget's `lambdaTarget.status` is a TargetStatus (Pending, InProgress, Succeeded,
# Failed, Skipped, Unknown, Ready), never a DeploymentStatus: the deployment's status is mapped.
TARGET_STATUS = {
    "Created": "Pending",
    "Queued": "Pending",
    "InProgress": "InProgress",
    "Baking": "InProgress",
    "Ready": "Ready",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    # A guess: AWS does not document what a stopped Lambda deployment's target reports. The target
    # was mid-shift and never finished, so Failed (Skipped would claim it was never started).
    "Stopped": "Failed",
}


def target_status(deployment_status: str) -> str:
    return TARGET_STATUS.get(deployment_status, "Unknown")


def cd_list_deployment_targets(region: str, req: dict) -> dict:
    # ListDeploymentTargets serves every compute platform (UnsupportedActionForDeploymentType is
    # not among its modelled errors): an EC2/on-premises or ECS deployment lists its instance or
    # task-set targets. The emulator models no instances, so such a deployment lists none.
    if any_deployment(region, req.get("deploymentId")).application.compute_platform != "Lambda":
        return {"targetIds": []}
    deployment = lambda_deployment(region, req.get("deploymentId"))
    info = lambda_function_info(region, deployment)
    return {"targetIds": [f"{info['functionName']}:{info['functionAlias']}"]}


def _lambda_target(region: str, deployment: Any, target_id: str) -> dict:
    info = lambda_function_info(region, deployment)
    if target_id != f"{info['functionName']}:{info['functionAlias']}":
        raise AwsError(400, "DeploymentTargetDoesNotExistException", f"The target {target_id} does not exist.")
    view = engine.target_view(deployment.deployment_id)
    if view is not None:
        # A deployment the engine runs: its own per-target lifecycle events.
        status, events, updated = view["status"], view["lifecycleEvents"], view["lastUpdatedAt"]
    else:
        # Hook executions a test made by hand: Pending until reported, then Succeeded/Failed.
        executions = [h for h in STATE.hook_executions.values() if h.deployment_id == deployment.deployment_id]
        status, updated = target_status(deployment.status), time.time()
        events = [{"lifecycleEventName": h.lifecycle_event, "status": h.status} for h in executions]
    return {
        "deploymentTargetType": "LambdaTarget",
        "lambdaTarget": {
            "deploymentId": deployment.deployment_id,
            "targetId": target_id,
            "targetArn": f"arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{target_id}",
            "status": status,
            "lastUpdatedAt": updated,
            "lifecycleEvents": events,
            "lambdaFunctionInfo": info,
        },
    }


def cd_get_deployment_target(region: str, req: dict) -> dict:
    target_id = req.get("targetId")
    if any_deployment(region, req.get("deploymentId")).application.compute_platform != "Lambda":
        # No instances are modelled (see ListDeploymentTargets): every target id is unknown.
        if not target_id:
            raise AwsError(400, "DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
        raise AwsError(400, "DeploymentTargetDoesNotExistException", f"The target {target_id} does not exist.")
    deployment = lambda_deployment(region, req.get("deploymentId"))
    if not target_id:
        raise AwsError(400, "DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
    return {"deploymentTarget": _lambda_target(region, deployment, target_id)}


def cd_batch_get_deployment_targets(region: str, req: dict) -> dict:
    deployment = lambda_deployment(region, req.get("deploymentId"))
    target_ids = req.get("targetIds")
    if not target_ids:
        raise AwsError(400, "DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
    if len(target_ids) > 25:
        raise AwsError(400, "DeploymentTargetListSizeExceededException", "The maximum number of targets that can be associated with a deployment (25) was exceeded.")
    return {"deploymentTargets": [_lambda_target(region, deployment, t) for t in target_ids]}


def cd_get_deployment(region: str, req: dict) -> None:
    """Checks the id moto does not check; moto answers."""
    check_deployment_id(req.get("deploymentId"))
    return None


def cd_batch_get_deployments(region: str, req: dict) -> None:
    ids = req.get("deploymentIds") or []
    # An empty list: moto answers an empty deploymentsInfo, as before (what AWS answers is not
    # documented; ShiftGuard's rollback may ask with none).
    if len(ids) > 25:
        raise AwsError(400, "BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (25) was exceeded.")
    for deployment_id in ids:
        check_deployment_id(deployment_id)
    return None


def cd_create_deployment(region: str, req: dict) -> dict | None:
    """With the engine on, CreateDeployment on a Lambda group starts a deployment that runs
    itself; off, moto's (the deployment stays Created)."""
    if not engine.SETTINGS.enabled:
        return None
    return engine.ENGINE.create_deployment(region, req)


def cd_get_application_revision(region: str, req: dict) -> dict:
    backend = codedeploy_backend(region)
    name = req.get("applicationName")
    if not name:
        raise AwsError(400, "ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
    # ApplicationName: 1 to 100 characters (the model's constraint); beyond it, the documented
    # InvalidApplicationNameException rather than "does not exist".
    if not isinstance(name, str) or len(name) > 100:
        raise AwsError(400, "InvalidApplicationNameException", "The application name was specified in an invalid format.")
    if name not in backend.applications:
        raise AwsError(400, "ApplicationDoesNotExistException", f"The application {name} does not exist with the user or AWS account.")
    revision = req.get("revision")
    if not revision:
        raise AwsError(400, "RevisionRequiredException", "The revision ID was not specified.")
    for deployment in backend.deployments.values():
        if deployment.application_name == name and _same_revision(deployment.revision, revision):
            return {
                "applicationName": name,
                "revision": deployment.revision,
                "revisionInfo": {
                    "description": deployment.description or "",
                    "deploymentGroups": [deployment.deployment_group_name],
                    "firstUsedTime": epoch_seconds(deployment.create_time),
                    "lastUsedTime": epoch_seconds(deployment.create_time),
                    "registerTime": epoch_seconds(deployment.create_time),
                },
            }
    raise AwsError(400, "RevisionDoesNotExistException", "The named revision does not exist with the user or AWS account.")


def _same_revision(stored: dict, asked: dict) -> bool:
    if stored.get("revisionType") != asked.get("revisionType"):
        return False
    kind = {"AppSpecContent": "appSpecContent", "String": "string"}.get(stored.get("revisionType"))
    if kind is None:
        return stored == asked
    # AWS identifies content revisions by their SHA-256; the content itself is as good here.
    want = asked.get(kind) or {}
    have = stored.get(kind) or {}
    if want.get("sha256") and have.get("sha256"):
        return want["sha256"] == have["sha256"]
    return want.get("content") == have.get("content")


# ---- CodeDeploy's rollback deployments -------------------------------------------------------
#
# "Rolled-back deployments are technically new deployments, with new deployment IDs" (CodeDeploy
# user guide, *Redeploy and roll back a deployment*). The triggering deployment's `rollbackInfo`
# names the rollback (`rollbackDeploymentId`, `rollbackMessage`); the rollback deployment's names
# the deployment it rolls back (`rollbackTriggeringDeploymentId`) and its `creator` is
# `codeDeployRollback`. Both are moto `DeploymentInfo` objects, so every CodeDeploy operation
# (ListDeployments, GetDeployment, BatchGetDeployments, ListDeploymentTargets, GetDeploymentTarget,
# GetApplicationRevision) serves the rollback deployment like any other.

ROLLBACK_INFO_MEMBERS = ("rollbackDeploymentId", "rollbackTriggeringDeploymentId", "rollbackMessage")


def rollback_info_of(deployment: Any) -> dict:
    """The deployment's `rollbackInfo` (moto's `DeploymentInfo` has no such attribute: the
    extension keeps it as `deployment.rollback_info`)."""
    return getattr(deployment, "rollback_info", None) or {}


def rollback_revision(original: Any) -> dict:
    """The revision of the deployment that rolls `original` back: its AppSpec with each Lambda
    resource's CurrentVersion and TargetVersion swapped, so the rollback deployment's "current"
    is the version being rolled away from and its "target" the version it restores.

    A guess: AWS does not document what a Lambda rollback deployment's AppSpec or
    `lambdaFunctionInfo` report (re-check against a real account). Hooks are kept as they were:
    ShiftGuard's hooks expect to be invoked for rollback deployments too."""
    spec = copy.deepcopy(appspec_of(original.revision))
    swapped = 0
    for resource in spec.get("Resources") or []:
        for body in resource.values():
            if isinstance(body, dict) and body.get("Type") == "AWS::Lambda::Function":
                props = body.setdefault("Properties", {})
                current, target = props.get("CurrentVersion"), props.get("TargetVersion")
                props["CurrentVersion"] = None if target is None else str(target)
                props["TargetVersion"] = None if current is None else str(current)
                swapped += 1
    if not swapped:
        raise AwsError(400, "InvalidRevisionException", "The AppSpec names no AWS::Lambda::Function resource.")
    content = json.dumps(spec)
    # The same kind of revision as the original, so that a caller reading `appSpecContent` (or
    # `string`) of one reads the other the same way.
    kind = "String" if original.revision.get("revisionType") == "String" else "AppSpecContent"
    member = {"AppSpecContent": "appSpecContent", "String": "string"}[kind]
    return {"revisionType": kind, member: {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}}


def _note_rollback(triggering_id: str | None, region: str, message: str) -> None:
    """`rollbackMessage` on the triggering deployment follows the rollback (the API reference:
    "whether the deployment can't be rolled back, is in progress, failed, or succeeded")."""
    triggering = codedeploy_backend(region).deployments.get(triggering_id or "")
    if triggering is not None:
        triggering.rollback_info = {**rollback_info_of(triggering), "rollbackMessage": message}


def start_rollback(region: str, original: Any, original_status: str, restore: bool, restore_delay: float) -> Any:
    """What CodeDeploy does when it rolls `original` back (StopDeployment with auto-rollback, an
    alarm, a failed hook): `original` ends with `original_status`, and a new deployment, created by
    `codeDeployRollback`, puts the alias back on the original's CurrentVersion with no weights
    after `restore_delay` seconds, then succeeds. `restore=False`: it stays InProgress and never
    touches the alias (CodeDeploy slow or stuck). Returns the rollback deployment."""
    backend = codedeploy_backend(region)
    with LOCK:
        if original.status not in IN_FLIGHT:
            raise AwsError(400, "DeploymentAlreadyCompletedException", f"The deployment {original.deployment_id} is already completed.")
        # Everything that can fail is done before anything changes.
        revision = rollback_revision(original)
        rollback_id = backend.create_deployment(
            application_name=original.application_name,
            deployment_group_name=original.deployment_group_name,
            revision=revision,
            # A guess: the rollback is assumed to use the original's deployment configuration.
            deployment_config_name=original.deployment_config_name,
        )
        rollback = backend.deployments[rollback_id]
        rollback.creator = "codeDeployRollback"
        rollback.status = "InProgress"
        rollback.start_time = rollback.create_time
        rollback.rollback_info = {"rollbackTriggeringDeploymentId": original.deployment_id}
        original.status = original_status
        original.complete_time = utc_now_naive()
        # The message text is ours; AWS documents only what it describes.
        original.rollback_info = {
            **rollback_info_of(original),
            "rollbackDeploymentId": rollback_id,
            "rollbackMessage": f"Rollback deployment {rollback_id} is in progress.",
        }
        # The engine runs the rollback deployment (its own hooks, then the alias restored) when it
        # runs the original or is on; `restore`/`restore_delay` are then not used.
        if engine.start_rollback_run(region, original, rollback):
            return rollback
    if restore:
        if restore_delay > 0:
            timer = threading.Timer(restore_delay, finish_rollback, args=(region, rollback))
            timer.daemon = True
            timer.start()
        else:
            finish_rollback(region, rollback)
    return rollback


def finish_rollback(region: str, rollback: Any) -> None:
    """The rollback deployment's one step: the alias back on the version it restores, no weights."""
    with LOCK:
        if rollback.status != "InProgress":
            return  # stopped (or set by a test) meanwhile: CodeDeploy would not touch the alias
        triggering_id = rollback_info_of(rollback).get("rollbackTriggeringDeploymentId")
        try:
            info = lambda_function_info(region, rollback)
            alias = lambda_backend(region).get_alias(info["functionAlias"], info["functionName"])
        except Exception as exc:  # the function or alias went away: the rollback fails
            rollback.status = "Failed"
            rollback.complete_time = utc_now_naive()
            _note_rollback(triggering_id, region, f"Rollback deployment {rollback.deployment_id} failed: {exc}")
            return
        alias.update(None, info["targetVersion"], {})
        alias.revision_id = str(uuid.uuid4())
        rollback.status = "Succeeded"
        rollback.complete_time = utc_now_naive()
        _note_rollback(triggering_id, region, f"Rollback deployment {rollback.deployment_id} succeeded.")


def cd_stop_deployment(region: str, req: dict) -> dict:
    deployment = lambda_deployment(region, req.get("deploymentId"))
    run = engine.ENGINE.run_of(deployment.deployment_id)
    if run is not None:
        # The engine's deployment: answers Pending, the engine stops it (and rolls back) next tick.
        return engine.ENGINE.request_stop(run, req.get("autoRollbackEnabled"))
    auto_rollback = bool(req.get("autoRollbackEnabled"))
    with LOCK:
        if deployment.status not in IN_FLIGHT:
            raise AwsError(
                400,
                "DeploymentAlreadyCompletedException",
                f"The deployment {deployment.deployment_id} is already completed.",
            )
        # A rollback deployment is stopped like any other (AWS documents nothing more specific),
        # including, with auto-rollback, being rolled back itself; its pending restore is dropped.
        if auto_rollback:
            # StopDeployment answers Pending: the stop completes with the rollback deployment.
            # Behaviour `auto_rollback: false` (set on the stopped deployment) is a CodeDeploy that
            # never restores: the rollback deployment exists but stays InProgress.
            behaviour = STATE.codedeploy_behaviour.get(deployment.deployment_id, {})
            start_rollback(
                region,
                deployment,
                original_status="Stopped",
                restore=bool(behaviour.get("auto_rollback", True)),
                restore_delay=float(behaviour.get("rollback_delay", 0.0)),
            )
        else:
            deployment.status = "Stopped"
            deployment.complete_time = utc_now_naive()
        if deployment.creator == "codeDeployRollback":
            _note_rollback(
                rollback_info_of(deployment).get("rollbackTriggeringDeploymentId"),
                region,
                f"Rollback deployment {deployment.deployment_id} was stopped.",
            )
        STATE.stopped.append({"deploymentId": deployment.deployment_id, "autoRollbackEnabled": auto_rollback})
    if auto_rollback:
        return {"status": "Pending", "statusMessage": "Stopping Pending. Stopping to roll back."}
    return {"status": "Succeeded", "statusMessage": "Stopped."}


def cd_put_hook_status(region: str, req: dict) -> dict:
    deployment = lambda_deployment(region, req.get("deploymentId"))
    hook_id = req.get("lifecycleEventHookExecutionId")
    status = req.get("status")
    execution = STATE.hook_executions.get(hook_id or "")
    if execution is None or execution.deployment_id != deployment.deployment_id:
        raise AwsError(
            400,
            "InvalidLifecycleEventHookExecutionIdException",
            "A lifecycle event hook is invalid. Review the hooks section in your AppSpec file.",
        )
    if status not in ("Succeeded", "Failed"):
        raise AwsError(
            400,
            "InvalidLifecycleEventHookExecutionStatusException",
            "The result of a Lambda validation function that verifies a lifecycle event is invalid. It should return Succeeded or Failed.",
        )
    with LOCK:
        if execution.status != "Pending":
            execution.rejected.append({"status": status, "time": now_iso()})
            raise AwsError(
                400,
                "LifecycleEventAlreadyCompletedException",
                "An attempt to return the status of an already completed lifecycle event occurred.",
            )
        execution.status = status
        execution.reports.append({"status": status, "time": now_iso()})
    engine.notify()
    return {"lifecycleEventHookExecutionId": hook_id}


# CloudWatch Logs operations the extension answers itself (`cloudwatch_logs.py`).
LOGS_OPS: dict[str, Callable[[str, dict], dict]] = {
    "FilterLogEvents": lambda region, req: cloudwatch_logs.filter_log_events(region, req),
}


CODEDEPLOY_OPS: dict[str, Callable[[str, dict], dict | None]] = {
    "ListDeploymentTargets": cd_list_deployment_targets,
    "GetDeploymentTarget": cd_get_deployment_target,
    "BatchGetDeploymentTargets": cd_batch_get_deployment_targets,
    "GetDeployment": cd_get_deployment,
    "BatchGetDeployments": cd_batch_get_deployments,
    "CreateDeployment": cd_create_deployment,
    "CreateDeploymentConfig": lambda region, req: engine.cd_create_deployment_config(region, req),
    "GetDeploymentConfig": lambda region, req: engine.cd_get_deployment_config(region, req),
    "ListDeploymentConfigs": lambda region, req: engine.cd_list_deployment_configs(region, req),
    "DeleteDeploymentConfig": lambda region, req: engine.cd_delete_deployment_config(region, req),
    "GetApplicationRevision": cd_get_application_revision,
    "StopDeployment": cd_stop_deployment,
    "PutLifecycleEventHookExecutionStatus": cd_put_hook_status,
}


# ---------------------------------------------------------------------------------------------
# Lambda: UpdateAlias with the checks AWS makes
# ---------------------------------------------------------------------------------------------

NUMERIC_VERSION = re.compile(r"^[0-9]+$")


def lambda_update_alias(region: str, params: dict, req: dict) -> tuple[int, dict]:
    from moto.awslambda.exceptions import UnknownFunctionException

    backend = lambda_backend(region)
    fn_name, _ = engine.split_function(params["fn"])
    try:
        alias = backend.get_alias(params["alias"], fn_name)
    except Exception:
        raise AwsError(404, "ResourceNotFoundException", f"Alias not found: {params['alias']}")
    version = req.get("FunctionVersion")
    routing = req.get("RoutingConfig")
    weights = (routing or {}).get("AdditionalVersionWeights") or {}

    def version_exists(v: str) -> bool:
        try:
            backend._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, v)
            return True
        except (UnknownFunctionException, Exception):
            return False

    if version is not None and not version_exists(version):
        raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}:{version}")
    primary = version if version is not None else alias.function_version
    if weights:
        if len(weights) > 1:
            raise AwsError(400, "InvalidParameterValueException", "Number of items in AdditionalVersionWeights cannot be greater than 1")
        for v, w in weights.items():
            if not NUMERIC_VERSION.match(str(v)):
                raise AwsError(400, "InvalidParameterValueException", f"Invalid version {v} in AdditionalVersionWeights; $LATEST is not supported")
            if not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
                raise AwsError(400, "InvalidParameterValueException", f"Invalid weight {w}: weights must be between 0.0 and 1.0")
            if str(v) == str(primary):
                raise AwsError(400, "InvalidParameterValueException", "Primary and additional version cannot be the same")
            if not version_exists(str(v)):
                raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}:{v}")
        if primary == "$LATEST":
            raise AwsError(400, "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to more than 1 version")
    with LOCK:
        revision = req.get("RevisionId")
        if revision and revision != alias.revision_id:
            raise AwsError(
                412,
                "PreconditionFailedException",
                "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id",
            )
        alias.update(req.get("Description"), version, routing if routing is not None else None)
        alias.revision_id = str(uuid.uuid4())
        return 200, alias.to_json()


def concurrent_alias_update(region: str, params: dict, fault: dict) -> None:
    """Another writer changes the alias between the caller's read and its write."""
    alias = lambda_backend(region).get_alias(params["alias"], engine.split_function(params["fn"])[0])
    with LOCK:
        alias.update(None, fault.get("function_version", alias.function_version), fault.get("routing_config", alias.routing_config))
        alias.revision_id = str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# VPC Lattice: listener default action and listener rules
# ---------------------------------------------------------------------------------------------


def _lattice_listener(region: str, params: dict):
    from moto.vpclattice.exceptions import ResourceNotFoundException

    try:
        return lattice_backend(region).get_listener(params["svc"], params["lis"])
    except ResourceNotFoundException:
        raise AwsError(404, "ResourceNotFoundException", f"Listener {params['lis']} not found", {"resourceId": params["lis"], "resourceType": "LISTENER"})


def _validate_action(region: str, action: Any, field: str) -> None:
    if not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in ("forward", "fixedResponse"):
        raise AwsError(400, "ValidationException", f"{field} must have exactly one of forward or fixedResponse", {"reason": "fieldValidationFailed", "fieldList": [{"name": field, "message": "invalid action"}]})
    if "fixedResponse" in action:
        code = (action["fixedResponse"] or {}).get("statusCode")
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise AwsError(400, "ValidationException", f"{field}.fixedResponse.statusCode must be 100-599", {"reason": "fieldValidationFailed"})
        return
    groups = (action["forward"] or {}).get("targetGroups")
    if not isinstance(groups, list) or not 1 <= len(groups) <= 10:
        raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups must hold 1 to 10 target groups", {"reason": "fieldValidationFailed"})
    backend = lattice_backend(region)
    # WeightedTargetGroup.weight is "only required if you specify multiple target groups for a
    # forward action" (VPC Lattice API reference): several groups, every one weighted.
    if len(groups) > 1:
        unweighted = [i for i, g in enumerate(groups) if g.get("weight") is None]
        if unweighted:
            raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups[{unweighted[0]}].weight is required when a forward names several target groups",
                           {"reason": "fieldValidationFailed", "fieldList": [{"name": f"{field}.forward.targetGroups[{unweighted[0]}].weight", "message": "required with several target groups"}]})
    for i, group in enumerate(groups):
        weight = group.get("weight")
        if weight is not None and (not isinstance(weight, int) or not 0 <= weight <= 999):
            raise AwsError(400, "ValidationException", f"{field}.forward.targetGroups[{i}].weight must be 0-999", {"reason": "fieldValidationFailed"})
        ident = group.get("targetGroupIdentifier", "")
        tg_id = ident.rsplit("/", 1)[-1]
        if tg_id not in backend.target_groups:
            raise AwsError(404, "ResourceNotFoundException", f"Target group {ident} not found", {"resourceId": ident, "resourceType": "TARGET_GROUP"})


def _rules_of(region: str, listener) -> list:
    return sorted(
        (r for r in lattice_backend(region).rules.values() if r.listener_identifier in (listener.id, listener.arn)),
        key=lambda r: r.priority,
    )


def _rule_times(rule) -> tuple[str, str]:
    with LOCK:
        return STATE.rule_times.setdefault(rule.id, (now_iso(), now_iso()))


def _touch_rule(rule) -> None:
    with LOCK:
        created, _ = STATE.rule_times.get(rule.id, (now_iso(), now_iso()))
        STATE.rule_times[rule.id] = (created, now_iso())


def _default_rule(listener) -> dict:
    rule_id = STATE.default_rule_id(listener.id)
    return {
        "arn": f"{listener.arn}/rule/{rule_id}",
        "id": rule_id,
        "name": "default",
        "isDefault": True,
        "action": listener.default_action,
        "createdAt": listener.createdAt,
        "lastUpdatedAt": listener.last_updated_at,
    }


def _rule_dict(listener, rule) -> dict:
    created, updated = _rule_times(rule)
    return {
        "arn": f"{listener.arn}/rule/{rule.id}",
        "id": rule.id,
        "name": rule.name,
        "priority": rule.priority,
        "isDefault": False,
        "action": rule.action,
        "match": rule.match,
        "createdAt": created,
        "lastUpdatedAt": updated,
    }


def lattice_update_listener(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = _lattice_listener(region, params)
    action = req.get("defaultAction")
    if action is None:
        raise AwsError(400, "ValidationException", "defaultAction is required", {"reason": "fieldValidationFailed"})
    _validate_action(region, action, "defaultAction")
    with LOCK:
        listener.default_action = action
        listener.last_updated_at = now_iso()
    out = listener.to_dict()
    out.pop("createdAt", None)
    out.pop("lastUpdatedAt", None)
    return 200, out


def lattice_list_rules(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = _lattice_listener(region, params)
    query = params.get("_query") or {}
    items = [
        {k: v for k, v in _rule_dict(listener, r).items() if k not in ("action", "match")}
        for r in _rules_of(region, listener)
    ]
    default = _default_rule(listener)
    items.append({k: v for k, v in default.items() if k != "action"})
    # maxResults 1-100 (the model); nextToken is opaque to callers: here the next item's index.
    raw_max = (query.get("maxResults") or [None])[0]
    try:
        max_results = 100 if raw_max is None else int(raw_max)
    except ValueError:
        max_results = 0
    if not 1 <= max_results <= 100:
        raise AwsError(400, "ValidationException", "maxResults must be 1-100", {"reason": "fieldValidationFailed", "fieldList": [{"name": "maxResults", "message": "must be 1-100"}]})
    token = (query.get("nextToken") or [None])[0]
    start = 0
    if token is not None:
        match = re.match(r"^rules-(\d+)$", token)
        if not match or int(match.group(1)) >= len(items):
            raise AwsError(400, "ValidationException", "The nextToken is invalid", {"reason": "other"})
        start = int(match.group(1))
    page = items[start : start + max_results]
    out: dict = {"items": page}
    if start + max_results < len(items):
        out["nextToken"] = f"rules-{start + max_results}"
    return 200, out


def _find_rule(region: str, listener, rule_ident: str):
    rule_id = rule_ident.rsplit("/", 1)[-1]
    if rule_id == STATE.default_rule_ids.get(listener.id):
        return None
    for rule in _rules_of(region, listener):
        if rule.id == rule_id:
            return rule
    raise AwsError(404, "ResourceNotFoundException", f"Rule {rule_ident} not found", {"resourceId": rule_ident, "resourceType": "RULE"})


def lattice_get_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = _lattice_listener(region, params)
    rule = _find_rule(region, listener, params["rule"])
    return 200, (_default_rule(listener) if rule is None else _rule_dict(listener, rule))


def _update_rule(region: str, listener, ident: str, req: dict) -> dict:
    rule = _find_rule(region, listener, ident)
    if rule is None:
        raise AwsError(400, "ValidationException", "The default rule of a listener cannot be updated with UpdateRule; use UpdateListener", {"reason": "other"})
    if "action" in req:
        _validate_action(region, req["action"], "action")
    priority = req.get("priority")
    check_rule_priority(region, listener, priority, rule)
    with LOCK:
        if "action" in req:
            rule.action = req["action"]
        if "match" in req:
            rule.match = req["match"]
        if priority is not None:
            rule.priority = priority
        _touch_rule(rule)
    out = _rule_dict(listener, rule)
    for k in ("createdAt", "lastUpdatedAt", "isDefault"):
        out.pop(k, None)
    return out


def check_rule_priority(region: str, listener: Any, priority: Any, rule: Any = None) -> None:
    """A rule's priority: 1-2000 (the API reference), unique among the listener's rules."""
    if priority is None:
        return
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 2000:
        raise AwsError(400, "ValidationException", "priority must be 1-2000", {"reason": "fieldValidationFailed", "fieldList": [{"name": "priority", "message": "must be 1-2000"}]})
    for other in _rules_of(region, listener):
        if other is not rule and other.priority == priority:
            # A guess at the code: AWS documents uniqueness, not the error it answers (ConflictException
            # is the operation's modeled conflict).
            raise AwsError(409, "ConflictException", f"A rule with priority {priority} already exists on listener {listener.id}", {"resourceId": other.id, "resourceType": "RULE"})


def lattice_create_rule(region: str, params: dict, req: dict) -> tuple[int, dict] | None:
    """Checks moto does not make (priority range and uniqueness); moto creates the rule."""
    listener = _lattice_listener(region, params)
    check_rule_priority(region, listener, req.get("priority"))
    return None


def lattice_update_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = _lattice_listener(region, params)
    return 200, _update_rule(region, listener, params["rule"], req)


def lattice_batch_update_rule(region: str, params: dict, req: dict) -> tuple[int, dict]:
    listener = _lattice_listener(region, params)
    rules = req.get("rules")
    # botocore's model bounds `rules` to 1..10 (the API reference's prose has said 5): the model is
    # what SDKs validate against, so the emulator follows it.
    if not isinstance(rules, list) or not 1 <= len(rules) <= 10:
        raise AwsError(400, "ValidationException", "rules must hold 1 to 10 rule updates", {"reason": "fieldValidationFailed"})
    successful, unsuccessful = [], []
    for update in rules:
        ident = update.get("ruleIdentifier", "")
        try:
            successful.append(_update_rule(region, listener, ident, update))
        except AwsError as err:
            unsuccessful.append({"ruleIdentifier": ident, "failureCode": err.code, "failureMessage": err.message})
    return 200, {"successful": successful, "unsuccessful": unsuccessful}


# ---------------------------------------------------------------------------------------------
# Lambda: Invoke with function behaviour set by tests (moto without Docker only echoes)
# ---------------------------------------------------------------------------------------------

# (function, version or "*") -> {"response", "function_error", "delay_ms", "timeout_ms",
#                               "fail_if_payload_contains", "error_response", "log_lines",
#                               "max_memory_used_mb"}
# `log_lines` (list of strings): what the function itself logs, each string one log event written
# between Lambda's START line and its END/REPORT lines (`cloudwatch_logs`), verbatim but for
# `{requestId}`, replaced by the invocation's request id.
# `max_memory_used_mb` (integer): the REPORT line's "Max Memory Used" (default 20, capped at the
# function's MemorySize).
BEHAVIOUR_FIELDS = ("response", "function_error", "delay_ms", "timeout_ms", "fail_if_payload_contains", "error_response", "log_lines", "max_memory_used_mb")
BEHAVIOURS: dict[tuple[str, str], dict] = {}


def checked_behaviour(body: dict) -> dict:
    """The behaviour fields of a `POST /_shiftguard/lambda/behaviour` body (ValueError: 400)."""
    behaviour = {k: body[k] for k in BEHAVIOUR_FIELDS if k in body}
    lines = behaviour.get("log_lines")
    if lines is not None and (not isinstance(lines, list) or not all(isinstance(line, str) for line in lines)):
        raise ValueError("log_lines must be a list of strings")
    used = behaviour.get("max_memory_used_mb")
    if used is not None and (isinstance(used, bool) or not isinstance(used, int) or used < 0):
        raise ValueError("max_memory_used_mb must be a non-negative integer")
    return behaviour


def _resolve_version(region: str, fn_name: str, qualifier: str | None) -> str:
    """The version an invocation runs: a version, $LATEST, or an alias's weighted pick."""
    import random

    backend = lambda_backend(region)
    if not qualifier or qualifier == "$LATEST" or NUMERIC_VERSION.match(qualifier):
        return qualifier or "$LATEST"
    alias = backend.get_alias(qualifier, fn_name)
    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights")) or {}
    roll = random.random()
    for version, weight in weights.items():
        if roll < float(weight):
            return str(version)
        roll -= float(weight)
    return alias.function_version


def run_behaviour(behaviour: dict, req_body: bytes, outcome: dict | None = None) -> tuple[str | None, bytes]:
    """A canned behaviour's answer: (function error or None, payload). `outcome`, when given, is
    told whether the invocation timed out (`timedOut`, `timeoutSeconds`)."""
    delay = float(behaviour.get("delay_ms", 0)) / 1000.0
    timeout = float(behaviour.get("timeout_ms", 3000)) / 1000.0
    error = behaviour.get("function_error")
    if delay >= timeout:
        if outcome is not None:
            outcome.update({"timedOut": True, "timeoutSeconds": timeout})
        time.sleep(timeout)
        body = {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {uuid.uuid4()} Error: Task timed out after {timeout:.2f} seconds"}
        return "Unhandled", json.dumps(body).encode()
    time.sleep(delay)
    body = behaviour.get("response", json.loads(req_body or b"null"))
    # A version that is fine on some requests and broken on others (e.g. /health passes,
    # /checkout fails): fails the invocations whose payload contains this text.
    trigger = behaviour.get("fail_if_payload_contains")
    if trigger is not None and trigger in (req_body or b"").decode("utf-8", "replace"):
        error = "Unhandled"
        body = behaviour.get("error_response", {"errorType": "Error", "errorMessage": f"request failed ({trigger})"})
    return error, json.dumps(body).encode()


def invoke_target(region: str, params: dict, query: dict) -> tuple[str, str | None]:
    """(function name, qualifier) of an Invoke: FunctionName may be a name, `NAME:QUALIFIER`, or a
    full or partial function ARN with or without a qualifier; `?Qualifier=` is the other way."""
    return engine.split_function(params["fn"], (query.get("Qualifier") or [None])[0])


INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


def lambda_invoke(region: str, params: dict, req_body: bytes, query: dict, log_type: str | None = None,
                  invocation_type: str | None = None) -> tuple[int, dict, bytes] | None:
    """Invoke for functions with a binding (a real process) or a canned behaviour; others go on to
    moto (which echoes), with `X-Amz-Executed-Version` added on the way back. `Event` answers 202
    with no payload and runs the function in the background (Lambda's retries: twice, 1 and 2
    minutes later, scaled); `DryRun` answers 204 once the function exists (Lambda developer guide,
    Invoke), for every function."""
    fn_name, qualifier = invoke_target(region, params, query)
    kind = invocation_type or "RequestResponse"
    if kind not in INVOCATION_TYPES:
        raise AwsError(400, "InvalidParameterValueException", f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
    if kind != "RequestResponse":
        if not engine.function_exists(region, f"{fn_name}:{qualifier}" if qualifier else fn_name):
            raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}" + (f":{qualifier}" if qualifier else ""))
        if kind == "DryRun":
            return 204, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
        request_id = engine.invoke_async(region, fn_name, qualifier, req_body, "Invoke")
        return 202, {"x-amzn-RequestId": request_id}, b""
    bound = any(b["function"] == fn_name for b in engine.BINDINGS)
    if not bound and not any(f == fn_name for f, _ in BEHAVIOURS):
        return None
    try:
        lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        version = _resolve_version(region, fn_name, qualifier)
    except Exception:
        raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}:{qualifier}")
    behaviour = BEHAVIOURS.get((fn_name, version)) or BEHAVIOURS.get((fn_name, "*"))
    if behaviour is None and engine.binding_for(fn_name, qualifier, version) is None:
        return None
    # The version picked above is the one that runs (an alias's weighted pick happens once).
    # (InvocationType=Event is answered synchronously here, as before the engine.)
    result = engine.invoke(region, fn_name, qualifier, req_body, "Invoke", version=version)
    # The request id of the answer is the invocation's (the one in its log lines).
    headers = {"X-Amz-Executed-Version": result["executedVersion"], "Content-Type": "application/json", "x-amzn-RequestId": result["requestId"]}
    if result["functionError"]:
        headers["X-Amz-Function-Error"] = result["functionError"]
    if (log_type or "").lower() == "tail":
        headers["X-Amz-Log-Result"] = cloudwatch_logs.tail(result["logMessages"])
    return 200, headers, result["payload"]


def emit_lambda_metrics(region: str, fn_name: str, qualifier: str | None, version: str, failed: bool, duration_ms: float) -> None:
    """What Lambda publishes for every invocation: Invocations, Errors and Duration in AWS/Lambda,
    per function, per alias/version (`Resource`) and per `ExecutedVersion`."""
    from moto.cloudwatch.models import cloudwatch_backends

    cw = cloudwatch_backends[DEFAULT_ACCOUNT][region]
    dimension_sets = [[{"Name": "FunctionName", "Value": fn_name}]]
    if qualifier:
        dimension_sets.append([{"Name": "FunctionName", "Value": fn_name}, {"Name": "Resource", "Value": f"{fn_name}:{qualifier}"}])
        dimension_sets.append(
            [
                {"Name": "FunctionName", "Value": fn_name},
                {"Name": "Resource", "Value": f"{fn_name}:{qualifier}"},
                {"Name": "ExecutedVersion", "Value": version},
            ]
        )
    data = []
    for dims in dimension_sets:
        data.append({"MetricName": "Invocations", "Value": 1.0, "Unit": "Count", "Dimensions": dims})
        data.append({"MetricName": "Errors", "Value": 1.0 if failed else 0.0, "Unit": "Count", "Dimensions": dims})
        data.append({"MetricName": "Duration", "Value": duration_ms, "Unit": "Milliseconds", "Dimensions": dims})
    try:
        cw.put_metric_data("AWS/Lambda", data)
    except Exception as exc:  # metrics are best effort, as in Lambda
        print(f"metric emission failed: {exc!r}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# CloudWatch over Smithy RPC v2 CBOR (what the AWS SDK for Rust sends; moto speaks query/JSON)
# ---------------------------------------------------------------------------------------------

CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")


def _naive_utc(value: Any) -> Any:
    """moto keeps naive UTC datetimes; CBOR timestamps decode as aware ones."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dict):
        return {k: _naive_utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_naive_utc(v) for v in value]
    return value


def _aware_utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, list):
        return [_aware_utc(v) for v in value]
    return value


def cloudwatch_cbor(region: str, operation: str, body: bytes) -> tuple[int, dict, bytes]:
    import cbor2
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[DEFAULT_ACCOUNT][region]
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}

    def reply(status: int, payload: dict) -> tuple[int, dict, bytes]:
        out = dict(headers)
        if status >= 400:
            # CloudWatch is awsQueryCompatible: over JSON and CBOR its errors also carry the query
            # protocol's code and fault in `x-amzn-query-error` (`Code;Sender`), which SDKs read
            # for the error code (the Rust SDK: aws_query_compatible_errors).
            code = str(payload.get("__type", "")).rsplit("#", 1)[-1]
            out["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
        return status, out, cbor2.dumps(payload, datetime_as_timestamp=True, timezone=timezone.utc)

    try:
        req = _naive_utc(cbor2.loads(body)) if body else {}
        if operation == "PutMetricData":
            backend.put_metric_data(req["Namespace"], req.get("MetricData", []))
            return reply(200, {})
        if operation == "GetMetricData":
            results = backend.get_metric_data(
                queries=req.get("MetricDataQueries", []),
                start_time=req["StartTime"],
                end_time=req["EndTime"],
                scan_by=req.get("ScanBy") or "TimestampDescending",
            )
            return reply(
                200,
                {
                    "MetricDataResults": [
                        {
                            "Id": r["id"],
                            "Label": r["label"],
                            # Timestamps[x] is Values[x]: a period without a value has neither.
                            "Timestamps": _aware_utc([t for t, v in zip(r["timestamps"], r["values"]) if v is not None]),
                            "Values": [float(v) for v in r["values"] if v is not None],
                            "StatusCode": r["status_code"],
                        }
                        for r in results
                    ],
                    "Messages": [],
                },
            )
        if operation == "PutMetricAlarm":
            # The members shift's tests and users' own scripts send; metric-math alarms
            # (`Metrics`) are served over JSON only.
            if req.get("Metrics"):
                return reply(400, {"__type": "com.amazonaws.cloudwatch#UnknownOperationException", "message": "PutMetricAlarm with Metrics is served over JSON only by this emulator"})
            backend.put_metric_alarm(
                name=req["AlarmName"], namespace=req.get("Namespace"), metric_name=req.get("MetricName"),
                comparison_operator=req["ComparisonOperator"], evaluation_periods=req["EvaluationPeriods"],
                period=req.get("Period"), threshold=req.get("Threshold"), statistic=req.get("Statistic"),
                description=req.get("AlarmDescription"), dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in req.get("Dimensions", [])],
                alarm_actions=req.get("AlarmActions", []), datapoints_to_alarm=req.get("DatapointsToAlarm"),
                extended_statistic=req.get("ExtendedStatistic"), ok_actions=req.get("OKActions", []),
                insufficient_data_actions=req.get("InsufficientDataActions", []), unit=req.get("Unit"),
                actions_enabled=req.get("ActionsEnabled", True), treat_missing_data=req.get("TreatMissingData"),
            )
            return reply(200, {})
        if operation == "SetAlarmState":
            if req["AlarmName"] not in backend.alarms:
                return reply(404, {"__type": "com.amazonaws.cloudwatch#ResourceNotFound", "message": f"Alarm {req['AlarmName']} not found"})
            backend.set_alarm_state(req["AlarmName"], req["StateReason"], req.get("StateReasonData"), req["StateValue"])
            return reply(200, {})
        if operation == "DescribeAlarms":
            # AlarmNames (up to 100) or every alarm; AlarmTypes defaults to metric alarms only, as
            # documented. Composite alarms are not modelled: asked for, none is returned.
            names = req.get("AlarmNames")
            alarms = list(backend.get_alarms_by_alarm_names(names) if names else backend.describe_alarms())
            if req.get("StateValue"):
                alarms = [a for a in alarms if a.state_value == req["StateValue"]]
            types = req.get("AlarmTypes") or ["MetricAlarm"]
            metric = []
            for a in alarms if "MetricAlarm" in types else []:
                item = {
                    "AlarmName": a.name, "AlarmArn": a.alarm_arn, "StateValue": a.state_value,
                    "StateReason": a.state_reason or "", "ActionsEnabled": bool(a.actions_enabled),
                    "AlarmActions": list(a.alarm_actions or []), "OKActions": list(a.ok_actions or []),
                    "InsufficientDataActions": list(a.insufficient_data_actions or []),
                    "ComparisonOperator": a.comparison_operator, "EvaluationPeriods": int(a.evaluation_periods),
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in (a.dimensions or [])],
                }
                for key, value in (("MetricName", a.metric_name), ("Namespace", a.namespace), ("Statistic", a.statistic),
                                   ("Period", a.period), ("Threshold", a.threshold), ("AlarmDescription", a.description)):
                    if value is not None:
                        item[key] = value
                if a.state_updated_timestamp is not None:
                    item["StateUpdatedTimestamp"] = _aware_utc(a.state_updated_timestamp)
                metric.append(item)
            return reply(200, {"MetricAlarms": metric, "CompositeAlarms": []})
        return reply(400, {"__type": "com.amazonaws.cloudwatch#UnknownOperationException", "message": f"{operation} is not served over CBOR by this emulator"})
    except KeyError as exc:
        # A guess at the code for a missing member (a validation error any operation may answer).
        return reply(400, {"__type": "com.amazonaws.cloudwatch#ValidationError", "message": f"1 validation error detected: Value null at {exc} failed to satisfy constraint: Member must not be null"})
    except Exception as exc:  # moto's validation errors carry AWS codes
        code = getattr(exc, "error_type", None) or getattr(exc, "code", None) or "InvalidParameterValue"
        return reply(400, {"__type": f"com.amazonaws.cloudwatch#{code}", "message": str(getattr(exc, "message", exc))})


def _percentile_statistics() -> None:
    """CloudWatch answers percentile statistics (`p99`, `p95.5`); moto returns nothing for them."""
    from moto.cloudwatch import models

    original = models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = re.match(r"^p(\d+(\.\d+)?)$", stat)
        if not match:
            return original(self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = max(1, -(-float(match.group(1)) * len(values) // 100))
        return values[int(min(rank, len(values))) - 1]

    models.Statistics.get_statistics_for_type = get_statistics_for_type


def image_repository(uri: str) -> str:
    """An image URI without its tag or digest (`123.dkr.ecr.r.amazonaws.com/repo:v1` -> `…/repo`)."""
    base = uri.split("@", 1)[0]
    head, _, last = base.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_digest(region: str, uri: str) -> str:
    """The digest (64 hex) an image URI resolves to: the one it names (`…@sha256:<hex>`), else the
    image moto's ECR holds under that repository and tag, else one made up from the URI (a guess:
    the stand-in for a registry this emulator does not have)."""
    if "@" in uri:
        digest = uri.split("@", 1)[1].lower()
        if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return digest[len("sha256:") :]
    # `<registry>/<repository path>[:tag]`: the repository may have slashes (`team/svc`).
    path = uri.split("@", 1)[0].split("/", 1)[-1]
    head, _, last = path.rpartition("/")
    name, _, tag = last.partition(":")
    repo = f"{head}/{name}" if head else name
    try:
        from moto.ecr.models import ecr_backends

        found = ecr_backends[DEFAULT_ACCOUNT][region].batch_get_image(repository_name=repo, image_ids=[{"imageTag": tag or "latest"}])["images"]
        if found:
            return found[0].image_id["imageDigest"].split(":", 1)[-1]
    except Exception:
        pass
    return hashlib.sha256(uri.encode()).hexdigest()


def _lambda_versions_keep_their_code() -> None:
    """Published versions are snapshots (Lambda developer guide, *Lambda function versions*: "a
    version includes ... the function code and all associated dependencies ... the function
    settings"). moto 5.2.5 copies `$LATEST` shallowly, so a version shared the `Code` dict with
    `$LATEST`: after UpdateFunctionCode an older version's GetFunction showed the new `ImageUri`
    (and S3 location). Also fixed here:

    * PublishVersion after UpdateFunctionCode with the same bytes and no configuration change
      returns the latest version ("Lambda doesn't publish a version if the function's
      configuration and code haven't changed since the last version"); moto published another;
    * image functions: `CodeSha256` is the image digest and `Code.ResolvedImageUri` is
      `<repository>@sha256:<digest>`; moto hashed the URI text and built `ResolvedImageUri` by
      cutting at the first `:` (broken for a URI that names a digest)."""
    from moto.awslambda import models

    storage = models.LambdaStorage
    if getattr(storage.publish_version, "shiftguard", False):
        return
    original_publish = storage.publish_version
    original_update_configuration = models.LambdaFunction.update_configuration
    original_set_code = models.LambdaFunction._set_function_code
    original_get_code = models.LambdaFunction.get_code

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        try:
            name = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn).function_name
            group = self._functions.get(name) or {}
        except Exception:
            return original_publish(self, name_or_arn, description)
        latest, versions = group.get("latest"), group.get("versions") or []
        if latest is not None and versions and latest.code_or_config_updated:
            unchanged_code = latest.code_sha_256 == versions[-1].code_sha_256 and latest.code.get("ImageUri") == versions[-1].code.get("ImageUri")
            if unchanged_code and not getattr(latest, "shiftguard_config_changed", False):
                latest.code_or_config_updated = False
        before = len(versions)
        published = original_publish(self, name_or_arn, description)
        if published is not None and len(group.get("versions") or []) > before:
            published.code = copy.deepcopy(published.code)
            if latest is not None:
                latest.shiftguard_config_changed = False
        return published

    def update_configuration(self: Any, config_updates: dict) -> Any:
        self.shiftguard_config_changed = True
        return original_update_configuration(self, config_updates)

    def set_function_code(self: Any, updated_spec: dict) -> None:
        original_set_code(self, updated_spec)
        if "ImageUri" in updated_spec and not (updated_spec is not self.code and updated_spec.get("DryRun")):
            self.code_sha_256 = image_digest(self.region, updated_spec["ImageUri"])

    def get_code(self: Any) -> dict:
        out = original_get_code(self)
        uri = (self.code or {}).get("ImageUri")
        if uri and isinstance(out.get("Code"), dict):
            out["Code"]["ResolvedImageUri"] = f"{image_repository(uri)}@sha256:{self.code_sha_256}"
        return out

    publish_version.shiftguard = True  # type: ignore[attr-defined]
    storage.publish_version = publish_version
    models.LambdaFunction.update_configuration = update_configuration
    models.LambdaFunction._set_function_code = set_function_code
    models.LambdaFunction.get_code = get_code


def _aws_shaped_lattice_ids() -> None:
    """moto makes VPC Lattice ids from a UUID's first 17 characters (dashes included); AWS's are
    the prefix and 17 lower-case letters or digits (`svc-[0-9a-z]{17}` in the model)."""
    from moto.vpclattice import models

    class _Uuid:
        @staticmethod
        def uuid4() -> str:
            return uuid.uuid4().hex

    models.uuid = _Uuid


def _deployment_info_with_rollbacks() -> None:
    """moto answers `"rollbackInfo": {}` for every deployment. GetDeployment and
    BatchGetDeployments (moto's only operations that return a `deploymentInfo`) report the
    deployment's own `rollbackInfo` and `createTime` instead."""
    from moto.codedeploy import responses

    original = responses._deployment_info
    if getattr(original, "shiftguard", False):
        return

    def deployment_info(deployment: Any) -> dict:
        info = original(deployment)
        rollback = {k: v for k, v in rollback_info_of(deployment).items() if k in ROLLBACK_INFO_MEMBERS and v}
        if rollback:
            info["rollbackInfo"] = rollback
        else:
            # AWS's JSON protocols leave out members that are not set; whether CodeDeploy sends
            # an empty `rollbackInfo` for a deployment never involved in a rollback is not
            # documented. Left out here; callers must accept both.
            info.pop("rollbackInfo", None)
        # moto already reports `create_time`; a test may have set it (control plane `createTime`).
        info["createTime"] = deployment.create_time
        error = getattr(deployment, "shiftguard_error", None)
        if error:
            # Why the engine failed or stopped it: ErrorInformation {code (ErrorCode), message}.
            info["errorInformation"] = dict(error)
        return info

    deployment_info.shiftguard = True  # type: ignore[attr-defined]
    # `get_deployment` and `batch_get_deployments` look the function up in the module when called.
    responses._deployment_info = deployment_info


EXTENDED: dict[tuple[str, str], Callable[[str, dict, dict], tuple[int, dict]]] = {
    ("lambda", "UpdateAlias"): lambda_update_alias,
    ("vpc-lattice", "UpdateListener"): lattice_update_listener,
    ("vpc-lattice", "ListRules"): lattice_list_rules,
    ("vpc-lattice", "CreateRule"): lattice_create_rule,
    ("vpc-lattice", "GetRule"): lattice_get_rule,
    ("vpc-lattice", "UpdateRule"): lattice_update_rule,
    ("vpc-lattice", "BatchUpdateRule"): lattice_batch_update_rule,
}


# ---------------------------------------------------------------------------------------------
# The control plane for tests: /_shiftguard/...
# ---------------------------------------------------------------------------------------------


def deployment_summary(deployment: Any) -> dict:
    return {
        "deploymentId": deployment.deployment_id,
        "status": deployment.status,
        "creator": deployment.creator,
        "rollbackInfo": dict(rollback_info_of(deployment)),
        "createTime": deployment.create_time.replace(tzinfo=timezone.utc).isoformat(),
        "description": deployment.description,
    }


def checked_rollback_info(value: Any) -> dict:
    """A `rollbackInfo` a test sets: only RollbackInfo's members, string values (null drops one)."""
    if not isinstance(value, dict):
        raise ValueError("rollbackInfo must be an object")
    unknown = sorted(set(value) - set(ROLLBACK_INFO_MEMBERS))
    if unknown:
        raise ValueError(f"rollbackInfo has no member {unknown[0]!r} (members: {', '.join(ROLLBACK_INFO_MEMBERS)})")
    if any(v is not None and not isinstance(v, str) for v in value.values()):
        raise ValueError("rollbackInfo members are strings")
    return {k: v for k, v in value.items() if v is not None}


def control(method: str, path: str, body: dict, query: dict) -> tuple[int, Any]:
    if path == "/_shiftguard/health":
        return 200, {"ok": True}
    for module in (engine, alarms, conformance, lattice, stacks):
        handled = module.control(method, path, body, query)
        if handled is not None:
            return handled
    if path == "/_shiftguard/iam":
        if method == "POST":
            for key in ("enforce", "strict"):
                if key in body:
                    if not isinstance(body[key], bool):
                        raise ValueError(f"{key}: expected true or false")
                    iam.SETTINGS[key] = body[key]
            if "operatorKeys" in body:
                keys = body["operatorKeys"]
                if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                    raise ValueError("operatorKeys: expected a list of access key ids")
                iam.SETTINGS["operatorKeys"] = list(keys)
        return 200, dict(iam.SETTINGS)
    if path == "/_shiftguard/faults":
        if method == "POST":
            specs = body if isinstance(body, list) else [body]
            for spec in specs:
                FAULTS.arm(spec)
            return 200, {"armed": len(FAULTS.armed)}
        if method == "DELETE":
            with LOCK:
                FAULTS.armed = []
            return 200, {"armed": 0}
        return 200, FAULTS.armed
    if path == "/_shiftguard/calls":
        if method == "DELETE":
            with LOCK:
                CALLS.clear()
            return 200, {"calls": 0}
        with LOCK:
            calls = list(CALLS)
        if "service" in query:
            calls = [c for c in calls if c["service"] == query["service"][0]]
        if "operation" in query:
            calls = [c for c in calls if c["operation"] == query["operation"][0]]
        return 200, calls
    match = re.match(r"^/_shiftguard/codedeploy/deployments/([^/]+)$", path)
    if match and method == "GET":
        region = query.get("region", ["us-east-1"])[0]
        deployment = codedeploy_backend(region).deployments.get(match.group(1))
        if deployment is None:
            return 404, {"message": "no such deployment"}
        return 200, deployment_summary(deployment)
    if match and method == "POST":
        # Play CodeDeploy's part: set a deployment's status and how it behaves when stopped.
        region = body.get("region", "us-east-1")
        deployment = codedeploy_backend(region).deployments.get(match.group(1))
        if deployment is None:
            return 404, {"message": "no such deployment"}
        # Checked before anything changes: a bad field changes nothing.
        create_time = parse_time(body["createTime"]) if "createTime" in body else None
        rollback_info = checked_rollback_info(body["rollbackInfo"]) if "rollbackInfo" in body else None
        if "status" in body:
            deployment.status = body["status"]
        if "creator" in body:
            # e.g. "codeDeployRollback": the deployment CodeDeploy creates to roll back another.
            deployment.creator = body["creator"]
        if create_time is not None:
            deployment.create_time = create_time
        if rollback_info is not None:
            deployment.rollback_info = rollback_info
        behaviour = STATE.codedeploy_behaviour.setdefault(deployment.deployment_id, {})
        for key in ("auto_rollback", "rollback_delay"):
            if key in body:
                behaviour[key] = body[key]
        return 200, {"deploymentId": deployment.deployment_id, "status": deployment.status}
    match = re.match(r"^/_shiftguard/codedeploy/deployments/([^/]+)/rollback$", path)
    if match and method == "POST":
        # Play CodeDeploy rolling a deployment back on its own (an alarm fired, a hook failed).
        region = body.get("region", "us-east-1")
        original_status = body.get("originalStatus", "Stopped")
        if original_status not in ("Stopped", "Failed"):
            raise ValueError("originalStatus must be Stopped or Failed")
        restore = body.get("restore", True)
        if not isinstance(restore, bool):
            raise ValueError("restore must be true or false")
        restore_delay = float(body.get("restoreDelay", 0.0))
        try:
            original = lambda_deployment(region, match.group(1))
            rollback = start_rollback(region, original, original_status, restore, restore_delay)
        except AwsError as err:
            status = {"DeploymentDoesNotExistException": 404, "DeploymentAlreadyCompletedException": 409}.get(err.code, 400)
            return status, {"code": err.code, "message": err.message}
        return 200, {"rollbackDeploymentId": rollback.deployment_id, "status": rollback.status}
    match = re.match(r"^/_shiftguard/codedeploy/deployments/([^/]+)/hook-executions$", path)
    if match and method == "POST":
        execution = HookExecution(match.group(1), body.get("lifecycleEvent", "BeforeAllowTraffic"))
        STATE.hook_executions[execution.id] = execution
        return 200, {"lifecycleEventHookExecutionId": execution.id}
    match = re.match(r"^/_shiftguard/codedeploy/hook-executions/([^/]+)$", path)
    if match and method == "GET":
        execution = STATE.hook_executions.get(match.group(1))
        if execution is None:
            return 404, {"message": "no such hook execution"}
        return 200, {"status": execution.status, "reports": execution.reports, "rejected": execution.rejected, "deploymentId": execution.deployment_id}
    if path == "/_shiftguard/lambda/behaviour" and method == "POST":
        # How a function (or one version of it) behaves when invoked.
        function, version = body["function"], str(body.get("version", "*"))
        BEHAVIOURS[(function, version)] = checked_behaviour(body)
        return 200, {"function": function, "version": version}
    if path == "/_shiftguard/codedeploy/stopped":
        return 200, STATE.stopped
    if path == "/_shiftguard/seed" and method == "GET":
        # What `--seed-sample` created (ids, environment, commands); {} when not seeded.
        return 200, sample.SEEDED
    return 404, {"message": f"unknown control path {path}"}


# ---------------------------------------------------------------------------------------------
# The WSGI layer
# ---------------------------------------------------------------------------------------------


def _deployment_group_of(region: str, deployment_id: str) -> tuple[str, str] | None:
    deployment = codedeploy_backend(region).deployments.get(deployment_id)
    return (deployment.application_name, deployment.deployment_group_name) if deployment is not None else None


def access_denied(service: str, message: str) -> AwsError:
    """AccessDenied as each service answers it (see MODELLED.md, IAM): Lambda, VPC Lattice and API
    Gateway 403 AccessDeniedException; CodeDeploy and CloudWatch Logs (awsJson1_1) 400
    AccessDeniedException; CloudWatch 403 AccessDenied (with the query-compatible header); SNS
    (query protocol) 403 AuthorizationError."""
    if service in ("codedeploy", "logs"):
        return AwsError(400, "AccessDeniedException", message)
    if service == "monitoring":
        return AwsError(403, "AccessDenied", message, headers={"x-amzn-query-error": "AccessDenied;Sender"})
    if service == "sns":
        return AwsError(403, "AuthorizationError", message)
    return AwsError(403, "AccessDeniedException", message)


def authorize(environ: dict, body: bytes, service: str, region: str, operation: str, params: dict, call: dict) -> AwsError | None:
    """IAM, when enforced (`POST /_shiftguard/iam`): the caller's access key → an IAM user or an
    assumed role (moto's IAM and STS state) → its identity policies, evaluated by `iam.evaluate`
    for the call's action and resources. Unknown keys keep full access unless strict. IAM and STS
    themselves are never authorized (tests set principals up through them)."""
    if not iam.SETTINGS["enforce"] or service in ("iam", "sts", "unknown"):
        return None
    key = iam.access_key_of(environ)
    if key and key in iam.SETTINGS["operatorKeys"]:
        # The test driver's own identity (it sets the world up): allowed everything, on the record.
        call["iam"] = {"principal": "operator", "decision": "operator"}
        return None
    principal = iam.principal_of(key, DEFAULT_ACCOUNT) if key else None
    if principal is None:
        if iam.SETTINGS["strict"]:
            call["iam"] = {"principal": None, "decision": "unknown-key"}
            return AwsError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        return None
    action, resources, context = iam.request_of(service, region, DEFAULT_ACCOUNT, operation, params, body, environ.get("PATH_INFO", "/"),
                                                parse_qs(environ.get("QUERY_STRING", "")), group_of_deployment=_deployment_group_of)
    try:
        decision = iam.evaluate(principal.policies, action, resources, context)
    except iam.UnsupportedCondition as exc:
        return AwsError(500, "ShiftGuardEmulatorError", str(exc))
    call["iam"] = {"principal": principal.arn, "action": action, "resources": resources, "decision": decision.reason}
    stacks.record(principal.arn, action, resources, decision.allowed, decision.statement)
    if decision.allowed:
        return None
    return access_denied(service, iam.denied_message(principal.arn, action, decision))


class ShiftGuardEmulator:
    def __init__(self, moto_app: Callable) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if "gzip" in (environ.get("HTTP_CONTENT_ENCODING") or "").lower() and body:
            # SDKs gzip large PutMetricData bodies (CloudWatch's request compression): the
            # extension and moto read them plain.
            import gzip

            try:
                body = gzip.decompress(body)
                environ.pop("HTTP_CONTENT_ENCODING", None)
                environ["CONTENT_LENGTH"] = str(len(body))
            except (OSError, EOFError):
                pass  # not gzip after all: handed on as it came
        path = environ.get("PATH_INFO", "/")
        edge = CBOR_PATH.match(path)
        if edge and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            scope = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if scope and scope.group(2) in cbor_edge.TARGET_PREFIX:
                # A CBOR client of a service served over JSON 1.1 (CodeDeploy): transcoded.
                return cbor_edge.transcode(self, environ, body, scope.group(2), edge.group("operation"), start_response)
        if path.startswith("/_shiftguard/"):
            try:
                parsed = json.loads(body) if body else {}
                status, out = control(environ["REQUEST_METHOD"], path, parsed, parse_qs(environ.get("QUERY_STRING", "")))
            except (ValueError, KeyError) as exc:
                status, out = 400, {"message": str(exc)}
            except AwsError as err:
                status, out = err.status, {"code": err.code, "message": err.message}
            return self._reply(start_response, status, {"Content-Type": "application/json"}, out)

        scope = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope and scope.group(2) == "vpc-lattice":
            lattice_arns_to_ids(environ)
            path = environ.get("PATH_INFO", "/")
        service, region, operation, params = identify(environ, body)
        call = {
            "service": service,
            "operation": operation,
            "path": path,
            "time": time.time(),
            # Bodies let tests check what was sent (e.g. an SNS Publish): small text only.
            "body": body.decode("utf-8", "replace") if len(body) <= 65536 else None,
        }
        with LOCK:
            CALLS.append(call)
        denied = authorize(environ, body, service, region, operation, params, call)
        if denied is not None and params.get("cbor"):
            # CloudWatch over smithy-rpc-v2-cbor: the error in CBOR, the query code in its header.
            import cbor2

            data = cbor2.dumps({"__type": "AccessDeniedException", "message": denied.message})
            start_response(f"{denied.status} {REASONS.get(denied.status, 'Forbidden')}", [
                ("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor"),
                ("x-amzn-query-error", "AccessDenied;Sender"), ("Content-Length", str(len(data)))])
            call["end"] = time.time()
            return [data]
        if denied is not None:
            status, headers, out = error_response(service, denied)
            if service == "sns":
                xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{denied.code}</Code><Message>{denied.message}</Message></Error>"
                       f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
                start_response(f"{status} Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
                call["end"] = time.time()
                return [xml]
            call["end"] = time.time()
            return self._reply(start_response, status, headers, out)
        # The response is materialised so that `end` is when it was ready: round trips on a
        # critical path are calls that do not overlap.
        captured: dict = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, list(headers)
            return lambda data: None

        data = b"".join(self._handle(environ, capture, body, service, region, operation, params))
        status_line, headers = self._fix(service, operation, region, params, environ, captured["status"], captured["headers"], call["time"])
        status_line, headers, data = self._conform(service, operation, status_line, headers, data)
        start_response(status_line, headers)
        call["end"] = time.time()
        return [data]

    def _fix(self, service: str, operation: str, region: str, params: dict, environ: dict, status_line: str, headers: list, started: float | None = None) -> tuple[str, list]:
        """Fidelity fixes on moto's answers."""
        code = int(status_line.split()[0])
        if service == "lambda" and operation == "GetAlias" and code == 201:
            status_line = "200 OK"  # moto answers 201; GetAlias is a 200
        # The extension's Event (202) and DryRun (204) answers ran nothing here: the engine runs an
        # event in the background and writes its log lines itself.
        answered_here = code in (202, 204) and getattr(self._local, "extension", False)
        if service == "lambda" and operation == "Invoke" and code < 300 and not answered_here and not any(k.lower() == "x-amz-executed-version" for k, _ in headers):
            # Lambda reports the version that ran on every Invoke (moto never does).
            try:
                fn_name, qualifier = invoke_target(region, params, parse_qs(environ.get("QUERY_STRING", "")))
                version = _resolve_version(region, fn_name, qualifier)
                headers.append(("X-Amz-Executed-Version", version))
            except Exception:
                version = None
            if version is not None and code in (200, 202):
                # moto's echo ran the function (not a DryRun): Lambda's log lines for it, and the
                # answer's request id is the invocation's.
                request_id = str(uuid.uuid4())
                logged = cloudwatch_logs.record_invocation(region, fn_name, version, request_id, started or time.time(), time.time())
                headers = [(k, v) for k, v in headers if k.lower() not in ("x-amzn-requestid", "x-amz-log-result")]
                headers.append(("x-amzn-RequestId", request_id))
                if code == 200 and (environ.get("HTTP_X_AMZ_LOG_TYPE") or "").lower() == "tail":
                    headers.append(("X-Amz-Log-Result", cloudwatch_logs.tail(logged["messages"])))
        if service == "logs":
            # CloudWatch Logs speaks awsJson1_1; moto labels its answers text/html.
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("Content-Type", "application/x-amz-json-1.1")]
        if service == "apigateway":
            # restJson1; moto labels its JSON answers text/html (exports and SDKs keep their own type)
            # and answers CreateRestApi 200 (the model: 201).
            if any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers):
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("Content-Type", "application/json")]
            fixed = apigateway.success_status(operation, code)
            if fixed != code:
                status_line = f"{fixed} {REASONS.get(fixed, 'Status')}"
        return status_line, headers

    def _conform(self, service: str, operation: str, status_line: str, headers: list, data: bytes) -> tuple[str, list, bytes]:
        if getattr(self._local, "fault", False):
            return status_line, headers, data  # an injected fault is deliberately off-model
        code = int(status_line.split()[0])
        try:
            problems = conformance.check(service, operation, code, dict(headers), data)
        except Exception as exc:  # the checker must never break an answer
            problems = [f"{operation}: conformance check failed: {exc!r}"]
        enforced = bool(getattr(self._local, "extension", False)) or (service, operation) in PATCHED
        conformance.record(service, operation, problems, enforced)
        if problems and enforced and conformance.STRICT:
            message = f"ShiftGuard emulator conformance (strict): {service} {operation} answered off-model: " + "; ".join(problems)
            print(message, file=sys.stderr)
            out = json.dumps({"__type": "ShiftGuardConformanceError", "message": message}).encode()
            return "500 Internal Server Error", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ShiftGuardConformanceError"), ("Content-Length", str(len(out)))], out
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(data)))]
        return status_line, headers, data

    _local = threading.local()

    def _handle(self, environ: dict, start_response: Callable, body: bytes, service: str, region: str, operation: str, params: dict) -> Any:
        self._local.fault = False
        self._local.extension = False
        try:
            for fault in FAULTS.take(service, operation):
                self._local.fault = True
                kind = fault["kind"]
                if kind == "latency":
                    time.sleep(float(fault.get("delay_ms", 1000)) / 1000.0)
                elif kind == "throttle":
                    raise throttling_error(service)
                elif kind == "error500":
                    raise internal_error(service)
                elif kind == "error":
                    raise AwsError(int(fault.get("status", 400)), fault.get("code", "ValidationException"), fault.get("message", "injected"))
                elif kind == "concurrent_alias_update":
                    concurrent_alias_update(region, params, fault)
                elif kind == "overwritten" and (service, operation) == ("vpc-lattice", "UpdateListener"):
                    # Another writer puts the listener's default action back right after this
                    # write succeeds: the caller's read-back sees its write lost.
                    listener = _lattice_listener(region, params)
                    previous = listener.default_action
                    handled = EXTENDED[(service, operation)](region, params, json.loads(body or b"{}"))
                    with LOCK:
                        listener.default_action = previous
                    return self._reply(start_response, handled[0], {"Content-Type": "application/json"}, handled[1])
            if params.get("cbor") and service == "monitoring":
                # The extension's own answers (enforced); other operations answer "not served".
                self._local.extension = operation in ("PutMetricData", "GetMetricData")
                status, headers, data = cloudwatch_cbor(region, operation, body)
                start_response(f"{status} OK", list(headers.items()) + [("Content-Length", str(len(data)))])
                return [data]
            if service == "lambda" and operation == "Invoke":
                handled = lambda_invoke(region, params, body, parse_qs(environ.get("QUERY_STRING", "")), environ.get("HTTP_X_AMZ_LOG_TYPE"),
                                        environ.get("HTTP_X_AMZ_INVOCATION_TYPE"))
                if handled is not None:
                    self._local.extension = True
                    status, headers, data = handled
                    start_response(f"{status} {REASONS.get(status, 'OK')}", list(headers.items()) + [("Content-Length", str(len(data)))])
                    return [data]
            if service == "codedeploy" and operation in CODEDEPLOY_OPS:
                self._local.extension = True
                req = json.loads(body or b"{}")
                out = CODEDEPLOY_OPS[operation](region, req)
                if out is not None:
                    return self._reply(start_response, 200, {"Content-Type": "application/x-amz-json-1.1"}, out)
                self._local.extension = False
            if service == "logs" and operation in LOGS_OPS:
                self._local.extension = True
                out = LOGS_OPS[operation](region, json.loads(body or b"{}"))
                return self._reply(start_response, 200, {"Content-Type": "application/x-amz-json-1.1"}, out)
            handler = EXTENDED.get((service, operation))
            if handler is not None:
                self._local.extension = True
                req = json.loads(body or b"{}")
                handled = handler(region, {**params, "_query": parse_qs(environ.get("QUERY_STRING", ""))}, req)
                if handled is not None:
                    status, out = handled
                    return self._reply(start_response, status, {"Content-Type": "application/json"}, out)
                self._local.extension = False
        except AwsError as err:
            self._local.extension = True
            status, headers, out = error_response(service, err)
            return self._reply(start_response, status, headers, out)

        # moto reads the body itself: hand it back.
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return self.moto_app(environ, start_response)

    @staticmethod
    def _reply(start_response: Callable, status: int, headers: dict, body: Any) -> list[bytes]:
        # No body at all (a 204 such as Lambda's TagResource) when the handler answers None.
        data = b"" if body is None else json.dumps(body, default=str).encode()
        reason = REASONS.get(status, "Status")
        start_response(f"{status} {reason}", list(headers.items()) + [("Content-Length", str(len(data)))])
        return [data]


REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error"}


# moto's answers the extension patches: checked strictly like the extension's own.
PATCHED = {
    ("codedeploy", "GetDeployment"),
    ("codedeploy", "BatchGetDeployments"),
    ("lambda", "GetAlias"),
    # Versions keep their own code, hash and description (`_lambda_versions_keep_their_code`).
    ("lambda", "GetFunction"),
    ("lambda", "GetFunctionConfiguration"),
    ("lambda", "PublishVersion"),
    # Per-period series (`cloudwatch_metrics`), over the JSON protocol too.
    ("monitoring", "GetMetricData"),
}


DEMO_ROLE = "shiftguard-lambda-role"


def seed() -> None:
    """State every session starts with: an execution role Lambda can assume, so that functions
    can be created without an IAM round trip in every test."""
    from moto.iam.models import iam_backends

    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
    )
    iam_backends[DEFAULT_ACCOUNT]["global"].create_role(
        role_name=DEMO_ROLE,
        assume_role_policy_document=policy,
        path="/",
        permissions_boundary=None,
        description="Execution role for functions created in the local emulator",
        tags=[],
        max_session_duration="3600",
    )


def exit_on_signals() -> None:
    """SIGTERM and SIGINT end the process at once (nothing is worth flushing; no request thread,
    ticker or hook invocation in flight may hold it), and so does its parent's death: it was seen
    to outlive a `kill` for minutes — the kill of the process that had started it."""
    import signal

    def stop(signum: int, _frame: Any) -> None:
        print(f"shiftguard emulator: signal {signum}, exiting", file=sys.stderr, flush=True)
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    # The emulator dies with whatever started it (`make emulator`, a test process killed by a
    # timeout, the demo): an orphan would keep its port and CI's output pipe open. Linux only.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        if libc.prctl(1, int(signal.SIGTERM)) == 0 and os.getppid() != parent:  # PR_SET_PDEATHSIG
            os._exit(0)  # the parent was already gone
    except (OSError, AttributeError):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--engine", action="store_true", help="CodeDeploy deployments, alarms and SNS run themselves (also SHIFTGUARD_ENGINE=1)")
    parser.add_argument("--time-scale", type=float, default=None, help="emulated seconds per real second (also SHIFTGUARD_TIME_SCALE)")
    parser.add_argument("--strict", action="store_true", help="off-model answers become HTTP 500 (also SHIFTGUARD_STRICT=1)")
    parser.add_argument("--seed-sample", action="store_true",
                        help="create the sample application the events in events/ name, print how to run each function against it (also SHIFTGUARD_SEED=sample)")
    args = parser.parse_args()
    seed_sample = args.seed_sample or os.environ.get("SHIFTGUARD_SEED", "") == "sample"
    if args.engine:
        engine.SETTINGS.enabled = True
    if args.time_scale is not None:
        engine.SETTINGS.update({"timeScale": args.time_scale})
    if args.strict:
        conformance.STRICT = True

    app = ShiftGuardEmulator(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    exit_on_signals()
    url = f"http://{args.host}:{server.port}"
    global SELF_URL
    SELF_URL = url
    # Lambda without Docker: Invoke echoes the payload (or a canned response) instead of running code.
    from moto.core.models import default_user_config

    default_user_config.setdefault("lambda", {})["use_docker"] = False
    _percentile_statistics()
    cloudwatch_metrics.install()
    _lambda_versions_keep_their_code()
    _deployment_info_with_rollbacks()
    _aws_shaped_lattice_ids()
    apigateway.install()
    alarms.install()
    if engine.SETTINGS.enabled:
        engine.ENGINE.ensure_ticker()
    seed()
    if seed_sample:
        # Seeded through the emulator's own API: it has to be serving first. The ready line stays
        # the first line printed (the tests read it), the instructions follow it.
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        info = sample.seed(url)
        info["iamLine"] = sample.enforce_iam(url, info)
        print(f"SHIFTGUARD_EMULATOR_READY {url}", flush=True)
        print(sample.instructions(info), flush=True)
        try:
            while serving.is_alive():
                serving.join(0.5)
        except KeyboardInterrupt:
            server.shutdown()
        return
    print(f"SHIFTGUARD_EMULATOR_READY {url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


# The engine modules import this one: imported last, once everything they use is defined.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alarms  # noqa: E402
import apigateway  # noqa: E402
import cbor_edge  # noqa: E402
import cloudwatch_logs  # noqa: E402
import cloudwatch_metrics  # noqa: E402
import conformance  # noqa: E402
import engine  # noqa: E402
import iam  # noqa: E402
import lattice  # noqa: E402
import sample  # noqa: E402
import stacks  # noqa: E402

# API Gateway stage canaries (`apigateway.py`): its handlers, and moto answers it patches.
EXTENDED.update(apigateway.EXTENDED)
PATCHED |= apigateway.PATCHED
# VPC Lattice targets and tags, Lambda tag checks (`lattice.py`).
EXTENDED.update(lattice.EXTENDED)
lattice.install()

if __name__ == "__main__":
    sys.exit(main())
