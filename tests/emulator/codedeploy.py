"""The CodeDeploy operations moto lacks or gets wrong, for the Lambda compute platform:
ListDeploymentTargets, GetDeploymentTarget, BatchGetDeploymentTargets, GetApplicationRevision,
StopDeployment, PutLifecycleEventHookExecutionStatus, the deployment id checks of GetDeployment
and BatchGetDeployments, CreateDeployment when the engine runs it (`engine.py`), and the
deployment configurations (`deployment_configs.py`). Everything else is moto's.

Test controls (`/_shiftguard/codedeploy/...`): a deployment's status, creator, create time,
rollbackInfo and stop behaviour; CodeDeploy rolling a deployment back on its own; hook executions
made by hand; the StopDeployment calls seen (MODELLED.md, "Test controls")."""

from __future__ import annotations

import re
import time
from datetime import timezone
from typing import Any, Callable

import deployment_configs
import engine
from codedeploy_model import (
    IN_FLIGHT,
    ROLLBACK_INFO_MEMBERS,
    any_deployment,
    check_deployment_id,
    lambda_deployment,
    lambda_function_info,
    note_rollback,
    rollback_info_of,
    target_status,
)
from engine_settings import SETTINGS, notify
from errors import AwsError
from state import DEFAULT_ACCOUNT, LOCK, STATE, HookExecution, codedeploy_backend, epoch_seconds, now_iso, parse_time, utc_now_naive


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
    if not SETTINGS.enabled:
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
            engine.start_rollback(
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
            note_rollback(
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
    notify()
    return {"lifecycleEventHookExecutionId": hook_id}


OPS: dict[str, Callable[[str, dict], dict | None]] = {
    "ListDeploymentTargets": cd_list_deployment_targets,
    "GetDeploymentTarget": cd_get_deployment_target,
    "BatchGetDeploymentTargets": cd_batch_get_deployment_targets,
    "GetDeployment": cd_get_deployment,
    "BatchGetDeployments": cd_batch_get_deployments,
    "CreateDeployment": cd_create_deployment,
    "CreateDeploymentConfig": deployment_configs.cd_create_deployment_config,
    "GetDeploymentConfig": deployment_configs.cd_get_deployment_config,
    "ListDeploymentConfigs": deployment_configs.cd_list_deployment_configs,
    "DeleteDeploymentConfig": deployment_configs.cd_delete_deployment_config,
    "GetApplicationRevision": cd_get_application_revision,
    "StopDeployment": cd_stop_deployment,
    "PutLifecycleEventHookExecutionStatus": cd_put_hook_status,
}


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


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
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
        # Every field checked before anything changes: a bad field changes nothing. A creator of
        # "codeDeployRollback" is the deployment CodeDeploy creates to roll back another.
        changes = {attr: body[key] for key, attr in (("status", "status"), ("creator", "creator")) if key in body}
        if "createTime" in body:
            changes["create_time"] = parse_time(body["createTime"])
        if "rollbackInfo" in body:
            changes["rollback_info"] = checked_rollback_info(body["rollbackInfo"])
        for attr, value in changes.items():
            setattr(deployment, attr, value)
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
            rollback = engine.start_rollback(region, original, original_status, restore, restore_delay)
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
    if path == "/_shiftguard/codedeploy/stopped":
        return 200, STATE.stopped
    return None
