"""Identity-based IAM policy evaluation, as the IAM User Guide documents it ("Policy evaluation
logic", "IAM JSON policy elements: Condition operators"), for the emulator to authorize calls.

moto's own authorization cannot serve here (it sees only the calls that reach moto, authorizes
every resource as "*", knows `StringEquals` only, and treats `NotResource` as permitting): see
MODELLED.md. This module is pure: `evaluate(policies, action, resources, context)` → a `Decision`.

Rules implemented:
- An explicit `Deny` in any statement that applies wins; otherwise an `Allow` that applies
  allows; otherwise the call is implicitly denied.
- `Action` / `NotAction`: case-insensitive, `*` and `?` wildcards. `Resource` / `NotResource`:
  case-sensitive wildcards; every resource of the request must be allowed.
- `Condition`: every operator block and every key in it must hold (AND); the values listed for a
  key are alternatives (OR). Operators: String(Not)Equals[IgnoreCase], String(Not)Like,
  Arn(Not)Equals, Arn(Not)Like, Bool, Null, Numeric*; the `IfExists` suffix; the `ForAllValues:`
  and `ForAnyValue:` set qualifiers. A key missing from the request: a positive operator fails, a
  negated one holds (the guide: "...the condition returns true" for negated operators when the key
  is absent — documented for StringNotEquals and friends), `IfExists` holds, `ForAllValues` holds,
  `ForAnyValue` fails.
- Not modelled (none of ShiftGuard's policies use them): policy variables (`${aws:username}`),
  `Principal` (resource-based policies), permission boundaries, SCPs, session policies. Where the
  guide is silent on a detail it is said so next to the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: "allowed", "explicit-deny" or "implicit-deny".
    reason: str
    #: The statement that decided (the Deny, or the first Allow), for the call log and reports.
    statement: dict | None = None
    #: The resource that was not allowed (for the AccessDenied message), if any.
    resource: str | None = None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, case_sensitive: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, text, flags | re.DOTALL) is not None


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(_glob(p, action, case_sensitive=False) for p in patterns)


def _resource_matches(patterns: Iterable[str], resource: str) -> bool:
    return any(p == "*" or _glob(p, resource, case_sensitive=True) for p in patterns)


def _arn_like(pattern: str, arn: str) -> bool:
    # ArnLike compares the six colon-separated parts of an ARN one by one (wildcards inside a part
    # do not cross a colon); the resource part keeps its own colons.
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return _glob(pattern, arn, case_sensitive=True)
    return all(_glob(p, a, case_sensitive=True) for p, a in zip(p_parts, a_parts))


def _number(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# operator -> (test of one request value against one policy value, negated?)
_OPERATORS = {
    "StringEquals": (lambda r, p: r == p, False),
    "StringNotEquals": (lambda r, p: r == p, True),
    "StringEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), True),
    "StringLike": (lambda r, p: _glob(p, r, case_sensitive=True), False),
    "StringNotLike": (lambda r, p: _glob(p, r, case_sensitive=True), True),
    "ArnEquals": (lambda r, p: r == p, False),
    "ArnNotEquals": (lambda r, p: r == p, True),
    "ArnLike": (lambda r, p: _arn_like(p, r), False),
    "ArnNotLike": (lambda r, p: _arn_like(p, r), True),
    "Bool": (lambda r, p: str(r).lower() == str(p).lower(), False),
    "NumericEquals": (lambda r, p: _number(r) is not None and _number(r) == _number(p), False),
    "NumericNotEquals": (lambda r, p: _number(r) is not None and _number(r) == _number(p), True),
    "NumericLessThan": (lambda r, p: None not in (_number(r), _number(p)) and _number(r) < _number(p), False),
    "NumericLessThanEquals": (lambda r, p: None not in (_number(r), _number(p)) and _number(r) <= _number(p), False),
    "NumericGreaterThan": (lambda r, p: None not in (_number(r), _number(p)) and _number(r) > _number(p), False),
    "NumericGreaterThanEquals": (lambda r, p: None not in (_number(r), _number(p)) and _number(r) >= _number(p), False),
}


class UnsupportedCondition(ValueError):
    """A condition operator this evaluator does not know: refused loudly, never guessed."""


def _condition_holds(operator: str, key: str, policy_values: list, context: dict) -> bool:
    qualifier = None
    if ":" in operator and operator.split(":", 1)[0] in ("ForAllValues", "ForAnyValue"):
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    # Condition keys are case-insensitive (the guide: "Condition key names are not case-sensitive").
    present = next((k for k in context if k.lower() == key.lower()), None)
    request = _as_list(context[present]) if present is not None else None
    if operator == "Null":
        # Null: true when the key is absent (policy value "true") or present ("false").
        want_absent = str(policy_values[0]).lower() == "true" if policy_values else True
        return (request is None or request == []) == want_absent
    if operator not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator!r} is not modelled by the emulator")
    test, negated = _OPERATORS[operator]
    values = [str(v) for v in policy_values]

    def one(r: Any) -> bool:
        matched = any(test(str(r), p) for p in values)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        # Every request value matches: vacuously true for a missing or empty key.
        return all(one(r) for r in request or [])
    if qualifier == "ForAnyValue":
        return any(one(r) for r in request or [])
    if request is None or request == []:
        return if_exists or negated
    # A single-valued key given as a list (the guide warns against it) is read as "any value".
    return any(one(r) for r in request)


def _conditions_hold(condition: dict | None, context: dict) -> bool:
    for operator, keys in (condition or {}).items():
        for key, values in keys.items():
            if not _condition_holds(operator, key, _as_list(values), context):
                return False
    return True


def _element_holds(statement: dict, element: str, matches: Callable[[list, str], bool], value: str) -> bool:
    """`Action`/`NotAction`, `Resource`/`NotResource`: the statement names the element and `value`
    matches it, or names its `Not` form and `value` does not; naming neither, it applies to nothing
    (an identity-based statement names Resource or NotResource)."""
    if element in statement:
        return matches(_as_list(statement[element]), value)
    if f"Not{element}" in statement:
        return not matches(_as_list(statement[f"Not{element}"]), value)
    return False


def _applies(statement: dict, action: str, resource: str, context: dict) -> bool:
    return (_element_holds(statement, "Action", _action_matches, action)
            and _element_holds(statement, "Resource", _resource_matches, resource)
            and _conditions_hold(statement.get("Condition"), context))


def statements(policies: Iterable[dict]) -> list[dict]:
    """Every statement of policy documents (`{"Version", "Statement": [...] | {...}}`)."""
    out: list[dict] = []
    for policy in policies:
        out.extend(_as_list(policy.get("Statement")))
    return out


def evaluate(policies: Iterable[dict], action: str, resources: list[str], context: dict | None = None) -> Decision:
    """Whether identity policies allow `action` on every one of `resources` with the request
    context (`aws:TagKeys`, `aws:RequestTag/K`, `aws:ResourceTag/K`, …)."""
    context = context or {}
    all_statements = statements(policies)
    first_allow: dict | None = None
    for resource in resources or ["*"]:
        allow = None
        for s in all_statements:
            if not _applies(s, action, resource, context):
                continue
            if s.get("Effect") == "Deny":
                return Decision(False, "explicit-deny", s, resource)
            if s.get("Effect") == "Allow" and allow is None:
                allow = s
        if allow is None:
            return Decision(False, "implicit-deny", None, resource)
        first_allow = first_allow or allow
    return Decision(True, "allowed", first_allow)


def denied_message(principal_arn: str, action: str, decision: Decision) -> str:
    """The AccessDenied message AWS writes for identity-based policies."""
    resource = decision.resource or "*"
    if decision.reason == "explicit-deny":
        return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} with an explicit deny in an identity-based policy"
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"


# ---- Authorizing requests (off unless enabled: POST /_shiftguard/iam {"enforce": true}) ---------

import json as _json
import threading as _threading
from urllib.parse import parse_qs as _parse_qs, unquote as _unquote

#: `enforce`: authorize callers whose access key belongs to an IAM user or an assumed role;
#: `strict`: refuse callers with unknown keys too (otherwise they keep full access).
#: enforce: authorize calls; strict: unknown keys are refused; operatorKeys: access keys allowed
#: everything (a test driver's own identity, e.g. the Rust harness's fixed test key).
SETTINGS: dict = {"enforce": False, "strict": False, "operatorKeys": []}
_LOCK = _threading.Lock()
_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


@dataclass(frozen=True)
class Principal:
    arn: str
    policies: tuple


def _documents(entity: Any) -> list[dict]:
    docs = []
    for text in getattr(entity, "policies", {}).values():
        docs.append(_json.loads(text) if isinstance(text, str) else text)
    for managed in getattr(entity, "managed_policies", {}).values():
        for version in getattr(managed, "versions", []) or []:
            if getattr(version, "is_default", False):
                doc = version.document
                docs.append(_json.loads(doc) if isinstance(doc, str) else doc)
    return docs


def principal_of(access_key_id: str, account: str) -> Principal | None:
    """The IAM user or assumed role an access key belongs to (moto's IAM and STS state)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    iam = iam_backends[account]["global"]
    for user in iam.users.values():
        if any(k.access_key_id == access_key_id for k in user.access_keys):
            docs = _documents(user)
            for group in iam.groups.values():
                if user in getattr(group, "users", []):
                    docs += _documents(group)
            return Principal(user.arn, tuple(docs))
    assumed = sts_backends[account]["global"].get_assumed_role_from_access_key(access_key_id)
    if assumed is not None:
        role = next((r for r in iam.roles.values() if r.arn == assumed.role_arn), None)
        docs = _documents(role) if role is not None else []
        return Principal(assumed.arn, tuple(docs))
    return None


def _lambda_arn(region: str, account: str, fn: str, qualifier: str | None = None) -> str:
    fn = _unquote(fn)
    if fn.startswith("arn:"):
        return fn if qualifier is None else f"{fn}:{qualifier}"
    name, _, q = fn.partition(":")
    q = qualifier or q or None
    return f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{q}" if q else "")


def request_of(service: str, region: str, account: str, operation: str, params: dict, body: bytes, path: str, query: dict,
               group_of_deployment: Any = None) -> tuple[str, list[str], dict]:
    """(IAM action, resource ARNs, request context) of a call: the Service Authorization
    Reference's action names and resource types for the operations ShiftGuard's functions call;
    any other operation is `service:Operation` on `*`."""
    req: dict = {}
    if body and service in ("codedeploy", "logs", "monitoring"):
        try:
            if params.get("cbor"):
                import cbor2  # the Rust SDK's CloudWatch protocol (smithy-rpc-v2-cbor)

                req = cbor2.loads(body)
            else:
                req = _json.loads(body)
        except Exception:  # an unreadable body is judged on "*" (the service refuses it anyway)
            req = {}
        if not isinstance(req, dict):
            req = {}
    context: dict = {}
    if service == "lambda":
        fn = params.get("fn")
        qualifier = (query.get("Qualifier") or [None])[0]
        if operation in ("GetAlias", "UpdateAlias", "DeleteAlias") and fn:
            return f"lambda:{operation}", [_lambda_arn(region, account, fn, _unquote(params["alias"]))], context
        if operation == "Invoke" and fn:
            return "lambda:InvokeFunction", [_lambda_arn(region, account, fn, qualifier)], context
        if operation in ("GetFunctionConfiguration", "GetFunction", "DeleteFunction") and fn:
            return f"lambda:{operation}", [_lambda_arn(region, account, fn, qualifier)], context
        if fn:
            return f"lambda:{operation}", [_lambda_arn(region, account, fn)], context
        if path.startswith("/2017-03-31/tags/"):
            arn = _unquote(path[len("/2017-03-31/tags/"):])
            if operation == "TagResource" or operation.startswith("POST"):
                keys = list((_json.loads(body or b"{}").get("Tags") or {}).keys())
                return "lambda:TagResource", [arn], {"aws:TagKeys": keys}
            if operation == "UntagResource" or operation.startswith("DELETE"):
                return "lambda:UntagResource", [arn], {"aws:TagKeys": query.get("tagKeys", [])}
            return "lambda:ListTags", [arn], context
        return f"lambda:{operation}", ["*"], context
    if service == "vpc-lattice":
        base = f"arn:aws:vpc-lattice:{region}:{account}:"
        if "rule" in params:
            return f"vpc-lattice:{operation}", [f"{base}service/{params['svc']}/listener/{params['lis']}/rule/{params['rule']}"], context
        if "lis" in params:
            return f"vpc-lattice:{operation}", [f"{base}service/{params['svc']}/listener/{params['lis']}"], context
        if "tg" in params:
            return f"vpc-lattice:{operation}", [f"{base}targetgroup/{params['tg']}"], context
        if path.startswith("/tags/"):
            arn = _unquote(path[len("/tags/"):])
            if operation.startswith("POST") or operation == "TagResource":
                keys = list((_json.loads(body or b"{}").get("tags") or {}).keys())
                return "vpc-lattice:TagResource", [arn], {"aws:TagKeys": keys}
            if operation.startswith("DELETE") or operation == "UntagResource":
                return "vpc-lattice:UntagResource", [arn], {"aws:TagKeys": query.get("tagKeys", [])}
            return "vpc-lattice:ListTagsForResource", [arn], context
        return f"vpc-lattice:{operation}", ["*"], context
    if service == "codedeploy":
        def group(app: str, name: str) -> str:
            return f"arn:aws:codedeploy:{region}:{account}:deploymentgroup:{app}/{name}"
        if operation == "ListDeployments" and req.get("applicationName") and req.get("deploymentGroupName"):
            return "codedeploy:ListDeployments", [group(req["applicationName"], req["deploymentGroupName"])], context
        ids = req.get("deploymentIds") or ([req["deploymentId"]] if req.get("deploymentId") else [])
        if ids and group_of_deployment is not None:
            groups = [g for g in (group_of_deployment(region, d) for d in ids) if g]
            if groups:
                return f"codedeploy:{operation}", [group(*g) for g in groups], context
        if operation == "GetApplicationRevision" and req.get("applicationName"):
            return "codedeploy:GetApplicationRevision", [f"arn:aws:codedeploy:{region}:{account}:application:{req['applicationName']}"], context
        return f"codedeploy:{operation}", ["*"], context
    if service == "monitoring":
        if operation == "DescribeAlarms":
            names = req.get("AlarmNames") or []
            return "cloudwatch:DescribeAlarms", [f"arn:aws:cloudwatch:{region}:{account}:alarm:{n}" for n in names] or [f"arn:aws:cloudwatch:{region}:{account}:alarm:*"], context
        return f"cloudwatch:{operation}", ["*"], context
    if service == "logs":
        # Log-group actions are authorized on the group's ARN as DescribeLogGroups writes it,
        # `…:log-group:NAME:*` (the reference's examples grant `log-group:NAME:*`, which a bare
        # `log-group:NAME` would not match; the reference is not explicit about the trailing `:*`).
        name = req.get("logGroupName")
        ident = req.get("logGroupIdentifier")
        if ident and ident.startswith("arn:"):
            arn = ident if ident.endswith(":*") else f"{ident}:*"
            return f"logs:{operation}", [arn], context
        name = name or ident
        if name:
            return f"logs:{operation}", [f"arn:aws:logs:{region}:{account}:log-group:{name}:*"], context
        return f"logs:{operation}", ["*"], context
    if service == "sns":
        # Topic actions (Publish, ListSubscriptionsByTopic, Subscribe, GetTopicAttributes…) are
        # authorized on the topic (Service Authorization Reference, Amazon SNS: resource type topic).
        form = _parse_qs(body.decode("utf-8", "replace")) if body else {}
        topic = (form.get("TopicArn") or form.get("TargetArn") or ["*"])[0]
        return f"sns:{operation}", [topic], context
    if service == "apigateway":
        verb = {"GetStage": "GET", "UpdateStage": "PATCH"}.get(operation)
        if verb and params.get("restapi_id") and params.get("stage_name"):
            return f"apigateway:{verb}", [f"arn:aws:apigateway:{region}::/restapis/{params['restapi_id']}/stages/{params['stage_name']}"], context
        return f"apigateway:{operation}", ["*"], context
    return f"{service}:{operation}", ["*"], context


def access_key_of(environ: dict) -> str | None:
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else None


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    """`GET|POST /_shiftguard/iam {"enforce"?, "strict"?, "operatorKeys"?}`: the settings above."""
    if path == "/_shiftguard/iam":
        if method == "POST":
            for key in ("enforce", "strict"):
                if key in body:
                    if not isinstance(body[key], bool):
                        raise ValueError(f"{key}: expected true or false")
                    SETTINGS[key] = body[key]
            if "operatorKeys" in body:
                keys = body["operatorKeys"]
                if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                    raise ValueError("operatorKeys: expected a list of access key ids")
                SETTINGS["operatorKeys"] = list(keys)
        return 200, dict(SETTINGS)
    return None
