"""The Lambda API the extension answers or corrects: UpdateAlias with the checks AWS makes
(RevisionId, weights, versions), Invoke for functions with a binding or a behaviour
(`lambda_invocations`) and its invocation types, `X-Amz-Executed-Version` and the log lines of
moto's own (echo) Invoke answers, and TagResource / UntagResource with the documented limits and
HTTP 204 (`tags`). Which request is which operation: `ROUTES`.

Published versions that keep their own code and hash are a patch of moto's models
(`moto_patches._lambda_versions_keep_their_code`)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs

import cloudwatch_logs
from errors import AwsError
from lambda_invocations import BEHAVIOURS, BINDINGS, NUMERIC_VERSION, binding_for, function_exists, invoke, invoke_async, resolve_version, split_function
from state import DEFAULT_ACCOUNT, LOCK, lambda_backend
from tags import MAX_TAGS, tag_problem, user_tag_count

ROUTES = [
    ("POST", r"^/2017-03-31/tags/(?P<arn>.+)$", "TagResource"),
    ("DELETE", r"^/2017-03-31/tags/(?P<arn>.+)$", "UntagResource"),
    ("GET", r"^/2017-03-31/tags/(?P<arn>.+)$", "ListTags"),
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


def lambda_update_alias(region: str, params: dict, req: dict) -> tuple[int, dict]:
    from moto.awslambda.exceptions import UnknownFunctionException

    backend = lambda_backend(region)
    fn_name, _ = split_function(params["fn"])
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
    alias = lambda_backend(region).get_alias(params["alias"], split_function(params["fn"])[0])
    with LOCK:
        alias.update(None, fault.get("function_version", alias.function_version), fault.get("routing_config", alias.routing_config))
        alias.revision_id = str(uuid.uuid4())


def invoke_target(region: str, params: dict, query: dict) -> tuple[str, str | None]:
    """(function name, qualifier) of an Invoke: FunctionName may be a name, `NAME:QUALIFIER`, or a
    full or partial function ARN with or without a qualifier; `?Qualifier=` is the other way."""
    return split_function(params["fn"], (query.get("Qualifier") or [None])[0])


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
        if not function_exists(region, f"{fn_name}:{qualifier}" if qualifier else fn_name):
            raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}" + (f":{qualifier}" if qualifier else ""))
        if kind == "DryRun":
            return 204, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
        request_id = invoke_async(region, fn_name, qualifier, req_body, "Invoke")
        return 202, {"x-amzn-RequestId": request_id}, b""
    bound = any(b["function"] == fn_name for b in BINDINGS)
    if not bound and not any(f == fn_name for f, _ in BEHAVIOURS):
        return None
    try:
        lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        version = resolve_version(region, fn_name, qualifier)
    except Exception:
        raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}:{qualifier}")
    behaviour = BEHAVIOURS.get((fn_name, version)) or BEHAVIOURS.get((fn_name, "*"))
    if behaviour is None and binding_for(fn_name, qualifier, version) is None:
        return None
    # The version picked above is the one that runs (an alias's weighted pick happens once).
    # (InvocationType=Event is answered synchronously here, as before the engine.)
    result = invoke(region, fn_name, qualifier, req_body, "Invoke", version=version)
    # The request id of the answer is the invocation's (the one in its log lines).
    headers = {"X-Amz-Executed-Version": result["executedVersion"], "Content-Type": "application/json", "x-amzn-RequestId": result["requestId"]}
    if result["functionError"]:
        headers["X-Amz-Function-Error"] = result["functionError"]
    if (log_type or "").lower() == "tail":
        headers["X-Amz-Log-Result"] = cloudwatch_logs.tail(result["logMessages"])
    return 200, headers, result["payload"]


def executed_version_and_logs(region: str, params: dict, environ: dict, code: int, headers: list, started: float | None) -> list:
    """moto's own Invoke answer (the echo): Lambda reports the version that ran on every Invoke
    (moto never does); when the function ran, Lambda's log lines for it, and the answer's request
    id is the invocation's. Returns the answer's headers."""
    try:
        fn_name, qualifier = invoke_target(region, params, parse_qs(environ.get("QUERY_STRING", "")))
        version = resolve_version(region, fn_name, qualifier)
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
    return headers


# ---------------------------------------------------------------------------------------------
# Tags: moto stores them; the documented limits and the 204 are checked and answered here
# ---------------------------------------------------------------------------------------------


# A function ARN as the Lambda API's patterns have it, optionally qualified by a version or alias.
LAMBDA_ARN = re.compile(r"^arn:(aws[a-zA-Z-]*):lambda:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):function:([a-zA-Z0-9-_]{1,64})(?::(\$LATEST|[a-zA-Z0-9-_]{1,128}))?$")


def _lambda_error(code: str, message: str, status: int = 400) -> AwsError:
    return AwsError(status, code, message)


def _lambda_tags_of(region: str, arn: str) -> dict:
    try:
        return lambda_backend(region).list_tags(arn)
    except Exception:
        # moto's answer for an ARN that names no function (its text).
        raise _lambda_error("ResourceNotFoundException", f"Function not found: {arn}", 404)


def _unqualified(arn: str) -> None:
    found = LAMBDA_ARN.match(arn)
    if found and found.group(5):
        # "Lambda does not support adding tags to aliases or versions" (ListTags API reference).
        raise _lambda_error("InvalidParameterValueException", f"Tags apply to the function, not to a version or alias: {arn}")


def lambda_tag_resource(region: str, params: dict, req: dict) -> tuple[int, None]:
    arn = params["arn"]
    _unqualified(arn)
    tags = req.get("Tags")
    if not isinstance(tags, dict):
        raise _lambda_error("InvalidParameterValueException", "Tags must be a map of tag keys to values")
    for k, v in tags.items():
        problem = tag_problem(k, v)
        if problem:
            raise _lambda_error("InvalidParameterValueException", problem[0].upper() + problem[1:])
    with LOCK:
        current = _lambda_tags_of(region, arn)
        merged = {**current, **tags}
        if user_tag_count(merged) > MAX_TAGS:
            raise _lambda_error("InvalidParameterValueException", f"A function can have at most {MAX_TAGS} tags; this would make {user_tag_count(merged)}")
        lambda_backend(region).tag_resource(arn, tags)
    return 204, None


def lambda_untag_resource(region: str, params: dict, req: dict) -> tuple[int, None]:
    arn = params["arn"]
    _unqualified(arn)
    keys = (params.get("_query") or {}).get("tagKeys")
    if not keys:
        raise _lambda_error("InvalidParameterValueException", "tagKeys must name at least one tag key")
    with LOCK:
        _lambda_tags_of(region, arn)
        lambda_backend(region).untag_resource(arn, keys)
    return 204, None


EXTENDED: dict[tuple[str, str], Callable[[str, dict, dict], tuple[int, Any]]] = {
    ("lambda", "UpdateAlias"): lambda_update_alias,
    ("lambda", "TagResource"): lambda_tag_resource,
    ("lambda", "UntagResource"): lambda_untag_resource,
}
