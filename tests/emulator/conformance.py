"""Checks what the emulator answers against the installed botocore service models.

For JSON services (CodeDeploy and CloudWatch Logs awsJson1_1, Lambda, VPC Lattice and API Gateway restJson1) and
CloudWatch over Smithy RPC v2 CBOR (the body decoded first): a success body against
the operation's output shape (required members present and not null, types, enums, string
patterns/lengths, number ranges, list lengths, members the model does not have), and an error's
code against the operation's modeled errors (plus the errors every AWS service may answer).

Every mismatch is recorded (`GET /_shiftguard/conformance`). In strict mode (`SHIFTGUARD_STRICT=1`,
`--strict`, or `POST /_shiftguard/conformance {"strict": true}`) a mismatch in an answer the
extension produced or patched becomes an HTTP 500 naming the operation and the member; answers moto
produced unchanged are recorded only (`"enforced": false`), since they are moto's to fix.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime
from typing import Any

import botocore.session

LOCK = threading.RLock()
STRICT = (os.environ.get("SHIFTGUARD_STRICT") or "").strip().lower() in ("1", "true", "yes", "on")
MISMATCHES: list[dict] = []
CHECKED = {"count": 0}

SERVICES = {"codedeploy", "lambda", "vpc-lattice", "logs", "monitoring", "apigateway"}
# The SigV4 signing name -> botocore's model name, where they differ.
MODEL_NAMES = {"monitoring": "cloudwatch"}
# Errors any operation may answer (AWS's common errors) besides its modeled ones.
COMMON_ERRORS = {
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "RequestExpired",
    "ValidationError",
}

_session = botocore.session.get_session()
_models: dict[str, Any] = {}
_patterns: dict[str, Any] = {}


def model(service: str) -> Any:
    with LOCK:
        if service not in _models:
            _models[service] = _session.get_service_model(MODEL_NAMES.get(service, service))
        return _models[service]


def _pattern(text: str) -> Any:
    if text not in _patterns:
        try:
            _patterns[text] = re.compile(text)
        except re.error:
            _patterns[text] = None  # a Java-only construct: not checked
    return _patterns[text]


def wire_name(member: Any, name: str) -> str:
    """The member's name in a JSON body: its `locationName` when it has one (API Gateway's list
    members `items` travel as `item`), else its name."""
    return member.serialization.get("name") or name


def wire_members(members: Any) -> dict:
    return {wire_name(m, n): m for n, m in members.items()}


def check_members(value: dict, members: dict, required: list[tuple[str, str]], path: str, problems: list[str],
                  missing: str, unknown: str) -> None:
    """An object's members against its shape's: each required one present (`required`: the name a
    problem gives it, its wire name), each member there known (`members`: wire name -> shape) and
    checked. `missing`, `unknown`: what a problem says of a missing or unknown member."""
    for name, wire in required:
        if value.get(wire) is None:
            problems.append(f"{path}.{name}: {missing}")
    for key, item in value.items():
        member = members.get(key)
        if member is None:
            problems.append(f"{path}.{key}: {unknown}")
            continue
        check_value(member, item, f"{path}.{key}", problems)


def outside(meta, measure):
    """Whether a length, a count or a number is outside the shape's `min`/`max` (botocore metadata)."""
    return "min" in meta and measure < meta["min"] or "max" in meta and measure > meta["max"]


def check_value(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return
    kind = shape.type_name
    meta = shape.metadata
    expected = JSON_TYPES.get(kind)
    if expected is not None:
        types, what = expected
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            got = type(value).__name__ if isinstance(value, (dict, list)) else f"{type(value).__name__} {value!r}"
            problems.append(f"{path}: expected {what} ({shape.name}), got {got}")
            return
    if kind == "structure":
        required = [(name, wire_name(shape.members[name], name)) for name in shape.required_members]
        check_members(value, wire_members(shape.members), required, path, problems,
                      f"required by {shape.name} but missing", f"{shape.name} has no such member")
    elif kind == "list":
        if outside(meta, len(value)):
            problems.append(f"{path}: {len(value)} items, {shape.name} allows {meta.get('min', 0)}-{meta.get('max', 'any')}")
        for i, item in enumerate(value):
            check_value(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        for key, item in value.items():
            check_value(shape.key, key, f"{path}<key {key}>", problems)
            check_value(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name} ({', '.join(shape.enum)})")
        if outside(meta, len(value)):
            problems.append(f"{path}: length {len(value)} outside {shape.name}'s {meta.get('min', 0)}-{meta.get('max', 'any')}")
        if "pattern" in meta:
            compiled = _pattern(meta["pattern"])
            if compiled is not None and not compiled.search(value):
                problems.append(f"{path}: {value!r} does not match {shape.name}'s pattern {meta['pattern']}")
    elif kind in ("integer", "long", "float", "double"):
        if outside(meta, value):
            problems.append(f"{path}: {value} outside {shape.name}'s range {meta.get('min', '-inf')}-{meta.get('max', 'inf')}")
    elif kind == "timestamp" and isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{path}: {value!r} is not an ISO 8601 timestamp ({shape.name})")
    # blob, document: not checked


# The JSON value each botocore shape type must be, and how a problem names it (a bool is an int
# in Python: refused where a number is expected).
JSON_TYPES = {
    "structure": ((dict,), "an object"),
    "list": ((list,), "a list"),
    "map": ((dict,), "a map"),
    "string": ((str,), "a string"),
    "integer": ((int,), "an integer"),
    "long": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "double": ((int, float), "a number"),
    "boolean": ((bool,), "a boolean"),
    "timestamp": ((int, float, str, datetime), "a timestamp"),
}


def error_code(headers: dict, body: Any) -> str | None:
    code = None
    if isinstance(body, dict):
        code = body.get("__type") or body.get("code")
    lowered = {k.lower(): v for k, v in headers.items()}
    code = code or lowered.get("x-amzn-errortype")
    if not code:
        return None
    return str(code).split(":")[0].split("#")[-1]


def check(service: str, operation: str, status: int, headers: dict, data: bytes) -> list[str]:
    """The ways this answer departs from the model (empty: none found or not checkable)."""
    if service not in SERVICES:
        return []
    svc = model(service)
    if operation not in svc.operation_names:
        return []
    op = svc.operation_model(operation)
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    cbor = content_type.startswith("application/cbor")

    def decode(raw: bytes) -> Any:
        if cbor:
            import cbor2

            return cbor2.loads(raw) if raw else {}
        return json.loads(raw or b"{}")

    if status >= 300:
        try:
            body = decode(data)
        except ValueError:
            return [f"{operation}: HTTP {status} error body is not {'CBOR' if cbor else 'JSON'}"]
        code = error_code(headers, body)
        # An error's code is its shape's name, or (awsQuery-compatible services) its query code.
        modeled = {e.name for e in op.error_shapes} | {e.metadata.get("error", {}).get("code") for e in op.error_shapes} - {None}
        if code is None:
            return [f"{operation}: HTTP {status} without an error code"]
        if code not in modeled and code not in COMMON_ERRORS:
            return [f"{operation}: error {code} is not a modeled error of the operation ({', '.join(sorted(modeled)) or 'none'})"]
        return []
    output = op.output_shape
    if output is None:
        return []
    payload_member = output.serialization.get("payload")
    if payload_member and output.members[payload_member].type_name in ("blob", "string"):
        return []  # e.g. Invoke's Payload: the function's own bytes
    if not cbor and "json" not in content_type and data[:1] not in (b"{", b"["):
        return []
    try:
        body = decode(data)
    except ValueError:
        return [f"{operation}: the body is not {'CBOR' if cbor else 'JSON'}"]
    problems: list[str] = []
    if not isinstance(body, dict):
        return [f"{operation}: the body is not a JSON object"]
    if svc.protocol.startswith("rest"):
        # Members bound to headers, the status code or the URI are not in the body.
        body_members = wire_members({n: m for n, m in output.members.items() if not m.serialization.get("location")})
        wires = (wire_name(output.members[name], name) for name in output.required_members)
        required = [(wire, wire) for wire in wires if wire in body_members]
        check_members(body, body_members, required, operation, problems,
                      "required but missing", f"{output.name} has no such body member")
    else:
        check_value(output, body, operation, problems)
    return problems


def record(service: str, operation: str, problems: list[str], enforced: bool) -> None:
    with LOCK:
        CHECKED["count"] += 1
        for problem in problems:
            MISMATCHES.append({"service": service, "operation": operation, "problem": problem, "enforced": enforced})


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    global STRICT
    if path != "/_shiftguard/conformance":
        return None
    if method == "POST":
        if "strict" in (body or {}):
            if not isinstance(body["strict"], bool):
                raise ValueError("strict must be true or false")
            STRICT = body["strict"]
    if method == "DELETE":
        with LOCK:
            MISMATCHES.clear()
    with LOCK:
        return 200, {"strict": STRICT, "checked": CHECKED["count"], "mismatches": list(MISMATCHES)}
