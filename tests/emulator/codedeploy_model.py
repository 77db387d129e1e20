"""What a CodeDeploy Lambda deployment is, as every CodeDeploy module reads it: its AppSpec and
`lambdaFunctionInfo`, its id (AWS-shaped or moto's UUID), the deployment statuses in flight, the
target status a deployment status maps to, and `rollbackInfo` (the members, the revision of a
rollback deployment, the message on the deployment that was rolled back)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import yaml

from errors import AwsError
from state import codedeploy_backend, lambda_backend


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


def note_rollback(triggering_id: str | None, region: str, message: str) -> None:
    """`rollbackMessage` on the triggering deployment follows the rollback (the API reference:
    "whether the deployment can't be rolled back, is in progress, failed, or succeeded")."""
    triggering = codedeploy_backend(region).deployments.get(triggering_id or "")
    if triggering is not None:
        triggering.rollback_info = {**rollback_info_of(triggering), "rollbackMessage": message}
