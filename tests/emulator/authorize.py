"""IAM at the emulator's edge (MODELLED.md, "IAM"): when enforced, every call's access key is
resolved to an IAM user or an assumed role and the call is judged by `iam.evaluate` on the action
and resources `iam.request_of` reads from it; a denial is each service's own AccessDenied
(`errors.access_denied`). Stack roles' calls are recorded with the statement that allowed them
(`stacks.record`)."""

from __future__ import annotations

from urllib.parse import parse_qs

import iam
import stacks
from errors import AwsError, access_denied
from state import DEFAULT_ACCOUNT, codedeploy_backend


def _deployment_group_of(region: str, deployment_id: str) -> tuple[str, str] | None:
    deployment = codedeploy_backend(region).deployments.get(deployment_id)
    return (deployment.application_name, deployment.deployment_group_name) if deployment is not None else None


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
