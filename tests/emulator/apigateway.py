"""API Gateway (REST APIs, restJson1) for the emulator: stage canaries as the API reference and the
developer guide (*Create / Update / Promote / Turn off a canary release*) describe them.

moto 5.2.5 has no canary at all. It ignores `canarySettings` on CreateDeployment and CreateStage;
UpdateStage ignores `/canarySettings/percentTraffic`, and `/canarySettings/deploymentId` (any path
containing `/deploymentId`) *replaces the stage's own deployment*; a deployment to an existing stage
replaces the whole stage (its variables, description, tags are lost); stages have no `createdDate`
or `lastUpdatedDate`; CreateStage accepts a deployment id that does not exist; CreateRestApi answers
200 (the model says 201); answers are labelled text/html. Fixed here:

* a stage canary kept on moto's `Stage` (`shiftguard_canary`) and answered as `canarySettings
  {percentTraffic (double), deploymentId, stageVariableOverrides, useStageCache}` by GetStage,
  GetStages, UpdateStage and CreateStage; a stage without a canary has no `canarySettings` member;
* CreateDeployment with `canarySettings` (the stage must exist; the new deployment becomes the
  canary's, the stage keeps its own), CreateStage with `canarySettings`;
* UpdateStage: the canary's patch paths, all-or-nothing, value validation (BadRequestException 400),
  the canary promotion copies; the other paths go on to moto's own patching;
* `createdDate` / `lastUpdatedDate` (epoch seconds, as the guide's examples) on every stage;
* operation names for every API Gateway request (from botocore's model), so that faults can be armed
  and the call log filtered per operation.

What is documented and what is guessed: `MODELLED.md` ("API Gateway stage canaries").
"""

from __future__ import annotations

import copy
import math
import re
import time
from typing import Any

from errors import AwsError
from state import DEFAULT_ACCOUNT, LOCK

# ---------------------------------------------------------------------------------------------
# Knowing which operation a request is: every operation of botocore's `apigateway` model
# ---------------------------------------------------------------------------------------------

_ROUTES: list[tuple[str, Any, str | None, str]] | None = None


def _routes() -> list[tuple[str, Any, str | None, str]]:
    """(method, path regex, required query key or None, operation) for every operation, the most
    literal paths first (`/restapis/{id}/stages` before `/restapis/{id}`'s siblings of equal
    length never collide: literal segments differ)."""
    global _ROUTES
    if _ROUTES is None:
        import conformance

        service = conformance.model("apigateway")
        routes = []
        for name in service.operation_names:
            http = service.operation_model(name).http
            uri, _, query = http["requestUri"].partition("?")
            parts = [p for p in uri.split("/") if p]
            pattern = "".join(
                f"/(?P<{p[1:-1].rstrip('+')}>.+)" if p.endswith("+}") else f"/(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else "/" + re.escape(p)
                for p in parts
            )
            literal = sum(1 for p in parts if not p.startswith("{"))
            routes.append((literal, len(parts), http["method"], re.compile(f"^{pattern or '/'}/?$"), query.split("=", 1)[0] or None, name))
        # Query-qualified variants (`POST /restapis?mode=import`) before the plain ones.
        routes.sort(key=lambda r: (r[4] is None, -r[0], -r[1]))
        _ROUTES = [(m, rx, q, name) for _, _, m, rx, q, name in routes]
    return _ROUTES


def route(method: str, path: str, query_string: str) -> tuple[str | None, dict]:
    from urllib.parse import parse_qs, unquote

    query = parse_qs(query_string or "")
    for m, rx, needs, name in _routes():
        if m != method or (needs is not None and needs not in query):
            continue
        found = rx.match(path)
        if found:
            return name, {k: unquote(v) for k, v in found.groupdict().items()}
    return None, {}


# ---------------------------------------------------------------------------------------------
# moto's objects
# ---------------------------------------------------------------------------------------------


def backend(region: str) -> Any:
    from moto.apigateway.models import apigateway_backends

    return apigateway_backends[DEFAULT_ACCOUNT][region]


def _moto_error(exc: Exception) -> AwsError:
    """moto's API Gateway exceptions carry their code and status; others become a 400."""
    code = getattr(exc, "error_type", None)
    status = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    if code == "ValidationException":
        # Not an API Gateway error: BadRequestException is the modeled "invalid input".
        code, status = "BadRequestException", 400
    if not isinstance(code, str) or not isinstance(status, int):
        return AwsError(400, "BadRequestException", message)
    return AwsError(status, code, message)


def rest_api(region: str, api_id: str) -> Any:
    api = backend(region).apis.get(api_id)
    if api is None:
        raise AwsError(404, "NotFoundException", "Invalid Rest API Id specified")
    return api


def stage_of(region: str, api_id: str, stage_name: str) -> Any:
    stage = rest_api(region, api_id).stages.get(stage_name)
    if stage is None:
        raise AwsError(404, "NotFoundException", "Invalid stage identifier specified")
    return stage


def now() -> int:
    # Epoch seconds, whole (the developer guide's examples: "lastUpdatedDate": 1511309280).
    return int(time.time())


def touch(stage: Any) -> None:
    stage.shiftguard_updated = now()


def canary_of(stage: Any) -> dict | None:
    return getattr(stage, "shiftguard_canary", None)


def canary_settings(canary: dict) -> dict:
    """The wire form of a canary: CanarySettings. Overrides are left out when there are none (a
    guess: the guide shows `"stageVariableOverrides": null` once, which SDKs read as absent)."""
    out: dict = {
        "percentTraffic": float(canary["percentTraffic"]),
        "deploymentId": canary["deploymentId"],
        "useStageCache": bool(canary["useStageCache"]),
    }
    if canary.get("stageVariableOverrides"):
        out["stageVariableOverrides"] = dict(canary["stageVariableOverrides"])
    return out


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def bad(message: str) -> AwsError:
    # The messages are ours: AWS documents the 0.0-100.0 range, not its wording.
    return AwsError(400, "BadRequestException", message)


def percent(value: Any, field: str = "percentTraffic") -> float:
    """A canary's share of traffic: a number 0.0-100.0 inclusive (API reference: "The percent
    (0-100) of traffic"; the guide: "between 0.0 and 100.0, inclusive"). In a patch it is a string."""
    if isinstance(value, str):
        text = value.strip()
        if not NUMBER.match(text):
            raise bad(f"Invalid {field} {value!r}: must be a number between 0.0 and 100.0")
        number = float(text)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise bad(f"Invalid {field} {value!r}: must be a number between 0.0 and 100.0")
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        raise bad(f"Invalid {field} {value!r}: must be between 0.0 and 100.0")
    return number


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad(f"Invalid {field} {value!r}: must be true or false")


def overrides(value: Any, field: str = "stageVariableOverrides") -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad(f"Invalid {field}: must be a map of strings to strings")
    return dict(value)


def deployment_id(api: Any, value: Any) -> str:
    """A deployment of this API. A guess at the error: an id that names no deployment is a bad value
    (BadRequestException); AWS documents that the canary points at a deployment, not the error."""
    if not isinstance(value, str) or value not in api.deployments:
        raise bad(f"Invalid deployment id specified: {value!r} is not a deployment of REST API {api.id}")
    return value


def checked_canary(api: Any, given: Any, stage_deployment: str, current: dict | None, with_deployment: bool) -> dict:
    """A canary from `canarySettings` input (CanarySettings on CreateStage, DeploymentCanarySettings
    on CreateDeployment). Members not given keep the stage's current canary's values; for a new
    canary `percentTraffic` 0.0, `useStageCache` false, no overrides, and the stage's own deployment
    (all guesses: the reference gives no defaults)."""
    if not isinstance(given, dict):
        raise bad("Invalid canarySettings: must be an object")
    allowed = {"percentTraffic", "stageVariableOverrides", "useStageCache"} | ({"deploymentId"} if with_deployment else set())
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise bad(f"Invalid canarySettings: no member {unknown[0]!r}")
    canary = dict(current) if current else {"percentTraffic": 0.0, "deploymentId": stage_deployment, "stageVariableOverrides": {}, "useStageCache": False}
    if given.get("percentTraffic") is not None:
        canary["percentTraffic"] = percent(given["percentTraffic"])
    if "stageVariableOverrides" in given:
        canary["stageVariableOverrides"] = overrides(given["stageVariableOverrides"])
    if given.get("useStageCache") is not None:
        canary["useStageCache"] = boolean(given["useStageCache"], "useStageCache")
    if with_deployment and given.get("deploymentId") is not None:
        canary["deploymentId"] = deployment_id(api, given["deploymentId"])
    return canary


# ---------------------------------------------------------------------------------------------
# UpdateStage's patch operations
# ---------------------------------------------------------------------------------------------

CANARY = "/canarySettings"


def _unescape(token: str) -> str:
    # JSON Pointer (the API reference: "/" in a name is written "~1"; RFC 6901: "~" is "~0").
    return token.replace("~1", "/").replace("~0", "~")


def _new_canary(stage: Any) -> dict:
    """A canary made by patching a stage that has none: it points at the stage's own deployment
    (documented: the guide's update-stage example answers `canarySettings.deploymentId` = the stage's
    `deploymentId`); `percentTraffic` 0.0 and `useStageCache` false until patched (guesses)."""
    return {"percentTraffic": 0.0, "deploymentId": stage.deployment_id, "stageVariableOverrides": {}, "useStageCache": False}


def apply_canary_op(api: Any, stage: Any, op: dict) -> bool:
    """Applies one patch operation if it concerns the canary; False: not a canary operation."""
    kind, path, source = op.get("op"), op.get("path") or "", op.get("from")
    if kind == "copy" and isinstance(source, str) and source.startswith(CANARY):
        # Promotion (documented): copy the canary's deployment to the stage, its overrides onto the
        # stage's variables ("copy any canary-bound stage variables to the corresponding
        # stage-bound ones": merged, the overrides win).
        canary = canary_of(stage)
        if canary is None:
            raise bad(f"Cannot copy from {source}: the stage has no canary settings")
        if source == f"{CANARY}/deploymentId" and path == "/deploymentId":
            stage.deployment_id = canary["deploymentId"]
        elif source == f"{CANARY}/stageVariableOverrides" and path == "/variables":
            stage.variables = {**(stage.variables or {}), **canary.get("stageVariableOverrides", {})}
        else:
            raise bad(f"Invalid patch operation: cannot copy from {source} to {path}")
        return True
    if path != CANARY and not path.startswith(CANARY + "/"):
        return False
    rest = path[len(CANARY) :]
    if rest == "":
        if kind != "remove":
            raise bad(f"Invalid patch operation {kind!r} on {path}: only remove is supported")
        # "Turn off a canary release ... set the canarySettings to null to remove it from the stage."
        # On a stage without a canary: nothing to do (a guess; AWS documents no error).
        stage.shiftguard_canary = None
        return True
    member, _, name = rest[1:].partition("/")
    if member == "stageVariableOverrides" and name:
        variable = _unescape(name)
        if kind == "replace":
            value = op.get("value")
            if not isinstance(value, str):
                raise bad(f"Invalid patch operation on {path}: a value is required")
            canary = canary_of(stage) or _new_canary(stage)
            canary["stageVariableOverrides"] = {**canary.get("stageVariableOverrides", {}), variable: value}
            stage.shiftguard_canary = canary
        elif kind == "remove":
            canary = canary_of(stage)
            if canary is not None:  # no canary or no such override: nothing to remove (a guess)
                canary["stageVariableOverrides"] = {k: v for k, v in canary.get("stageVariableOverrides", {}).items() if k != variable}
        else:
            raise bad(f"Invalid patch operation {kind!r} on {path}: only replace and remove are supported")
        return True
    if name or member not in ("percentTraffic", "deploymentId", "useStageCache"):
        raise bad(f"Invalid patch path {path}")
    if kind != "replace":
        raise bad(f"Invalid patch operation {kind!r} on {path}: only replace is supported")
    value = op.get("value")
    if member == "percentTraffic":
        checked: Any = percent(value)
    elif member == "useStageCache":
        checked = boolean(value, "useStageCache")
    else:
        checked = deployment_id(api, value)
    canary = canary_of(stage) or _new_canary(stage)
    canary[member] = checked
    stage.shiftguard_canary = canary
    return True


def update_stage(region: str, params: dict, req: dict) -> tuple[int, dict]:
    """UpdateStage: every operation applied to a copy of the stage, then committed at once (a bad
    operation changes nothing); answers the updated Stage."""
    api = rest_api(region, params["restapi_id"])
    ops = req.get("patchOperations") or []
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad("Invalid patchOperations: must be a list of patch operations")
    with LOCK:
        stage = stage_of(region, params["restapi_id"], params["stage_name"])
        work = copy.deepcopy(stage)
        for op in ops:
            if op.get("op") not in ("add", "remove", "replace", "move", "copy", "test"):
                raise bad(f"Invalid patch operation {op.get('op')!r}: must be one of add, remove, replace, move, copy, test")
            if apply_canary_op(api, work, op):
                continue
            try:
                work.apply_operations([op])  # moto's patching for every other path
            except AwsError:
                raise
            except Exception as exc:
                raise _moto_error(exc)
        if ops:
            touch(work)
        # Committed in place (moto's GetStage reads without the lock: never an empty stage).
        stage.__dict__.update(work.__dict__)
        for gone in set(stage.__dict__) - set(work.__dict__):
            delattr(stage, gone)
        return 200, stage.to_json()


# ---------------------------------------------------------------------------------------------
# CreateDeployment and CreateStage
# ---------------------------------------------------------------------------------------------


def create_deployment(region: str, params: dict, req: dict) -> tuple[int, dict]:
    """CreateDeployment. With `canarySettings` ("you cannot specify any non-existing stage name when
    creating a canary release deployment. You will get an error and API Gateway will not create any
    canary release deployment"): the new deployment becomes the stage canary's deployment, the stage
    keeps its own. Without, on a stage that has a canary: refused ("you must always specify
    canarySettings as an input, until the canary is disabled on that stage"; "The stage cannot be
    associated with any non-canary deployment until the canary settings are removed"). The error
    codes of both refusals are guesses."""
    api = rest_api(region, params["restapi_id"])
    stage_name = req.get("stageName")
    given = req.get("canarySettings")
    variables = req.get("variables")
    if variables is not None:
        overrides(variables, "variables")
    with LOCK:
        stage = api.stages.get(stage_name) if stage_name else None
        canary = None
        if given is not None:
            if not stage_name:
                raise bad("A canary release deployment needs the stageName of an existing stage")
            if stage is None:
                raise AwsError(404, "NotFoundException", "Invalid stage identifier specified")
            canary = checked_canary(api, given, stage.deployment_id, canary_of(stage), with_deployment=False)
        elif stage is not None and canary_of(stage) is not None:
            raise bad(f"Stage {stage_name} has canary settings: a deployment to it must specify canarySettings until the canary is removed")
        try:
            # A canary deployment does not touch the stage's own deployment: moto makes it stage-less.
            deployment = backend(region).create_deployment(api.id, None if canary else stage_name, req.get("description") or "", variables)
        except Exception as exc:
            raise _moto_error(exc)
        if canary is not None:
            deployment.stage_name = stage_name
            canary["deploymentId"] = deployment.id
            stage.shiftguard_canary = canary
            if variables:
                # A guess: `variables` ("the stage variables for the Stage resource that is
                # associated with the new deployment") are merged into the stage's.
                stage.variables = {**(stage.variables or {}), **variables}
            touch(stage)
        elif stage is None and stage_name and req.get("stageDescription"):
            api.stages[stage_name].description = req["stageDescription"]
    return 201, deployment.to_json()


CREATE_STAGE_MEMBERS = ("description", "cacheClusterEnabled", "cacheClusterSize", "tags", "tracingEnabled")


def create_stage(region: str, params: dict, req: dict) -> tuple[int, dict]:
    """CreateStage: the deployment must exist (a guess at the code: BadRequestException; moto
    accepted any id); `canarySettings` (CanarySettings) sets the stage's canary."""
    api = rest_api(region, params["restapi_id"])
    name, deployment = req.get("stageName"), req.get("deploymentId")
    if not isinstance(name, str) or not name:
        raise bad("stageName is required")
    with LOCK:
        deployment = deployment_id(api, deployment)
        canary = None
        if req.get("canarySettings") is not None:
            canary = checked_canary(api, req["canarySettings"], deployment, None, with_deployment=True)
        try:
            stage = backend(region).create_stage(
                api.id,
                name,
                deployment,
                variables=req.get("variables") or {},
                description=req.get("description") or "",
                cacheClusterEnabled=req.get("cacheClusterEnabled") or False,
                cacheClusterSize=req.get("cacheClusterSize"),
                tags=req.get("tags"),
                tracing_enabled=req.get("tracingEnabled"),
            )
        except Exception as exc:
            raise _moto_error(exc)
        stage.shiftguard_canary = canary
    return 201, stage.to_json()


EXTENDED = {
    ("apigateway", "CreateDeployment"): create_deployment,
    ("apigateway", "CreateStage"): create_stage,
    ("apigateway", "UpdateStage"): update_stage,
}

# moto's answers whose content this module patches (checked strictly, like the extension's own).
PATCHED = {
    ("apigateway", "GetStage"),
    ("apigateway", "GetStages"),
    ("apigateway", "GetDeployment"),
    ("apigateway", "GetDeployments"),
}


def success_status(operation: str, code: int) -> int:
    """The model's status for a success moto answered 200 (CreateRestApi: 201)."""
    if code != 200:
        return code
    import conformance

    service = conformance.model("apigateway")
    if operation not in service.operation_names:
        return code
    return int(service.operation_model(operation).http.get("responseCode", 200))


# ---------------------------------------------------------------------------------------------
# Patches on moto's models
# ---------------------------------------------------------------------------------------------


def install() -> None:
    from moto.apigateway import models
    from moto.apigateway.utils import ApigwDeploymentIdentifier

    if getattr(models.Stage.to_json, "shiftguard", False):
        return
    original_init = models.Stage.__init__
    original_to_json = models.Stage.to_json
    original_create_deployment = models.RestAPI.create_deployment
    original_deployment_json = models.Deployment.to_json

    def stage_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.shiftguard_canary = None
        self.shiftguard_created = self.shiftguard_updated = now()

    def stage_to_json(self: Any) -> dict:
        out = {k: v for k, v in original_to_json(self).items() if v is not None}
        if out.get("description") == "":
            out.pop("description")  # not set: left out (moto answered "")
        # The guide's stages without a cache answer "cacheClusterStatus": "NOT_AVAILABLE".
        out.setdefault("cacheClusterStatus", "NOT_AVAILABLE")
        created = getattr(self, "shiftguard_created", None) or now()
        out["createdDate"] = created
        out["lastUpdatedDate"] = getattr(self, "shiftguard_updated", None) or created
        canary = canary_of(self)
        if canary is not None:
            out["canarySettings"] = canary_settings(canary)
        return out

    def create_deployment(self: Any, name: str, description: str, stage_variables: Any = None) -> Any:
        stage = self.stages.get(name) if name else None
        if stage is None:
            return original_create_deployment(self, name, description, stage_variables)
        # A deployment to an existing stage moves the stage to it and keeps everything else (moto
        # replaced the stage with a new one); given variables are merged in (a guess).
        deployment_id = ApigwDeploymentIdentifier(self.account_id, self.region_name, stage_name=name).generate(list(self.deployments.keys()))
        deployment = models.Deployment(deployment_id, name, description)
        self.deployments[deployment_id] = deployment
        stage.deployment_id = deployment_id
        if stage_variables:
            stage.variables = {**(stage.variables or {}), **stage_variables}
        touch(stage)
        self.update_integration_mocks(name)
        return deployment

    def deployment_to_json(self: Any) -> dict:
        # Deployment has no `stageName` member; an unset description is left out.
        out = {k: v for k, v in original_deployment_json(self).items() if k != "stageName" and v not in (None, "")}
        return out

    stage_to_json.shiftguard = True  # type: ignore[attr-defined]
    models.Stage.__init__ = stage_init
    models.Stage.to_json = stage_to_json
    models.RestAPI.create_deployment = create_deployment
    models.Deployment.to_json = deployment_to_json
