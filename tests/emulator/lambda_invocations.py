"""Running a Lambda function, whoever asks (Invoke, a CodeDeploy hook, an SNS delivery, an alarm
action): through a binding to a local Lambda Runtime API endpoint (e.g. `cargo lambda watch`, a
real process), else a behaviour a test set (`POST /_shiftguard/lambda/behaviour`; moto without
Docker only echoes), else moto's echo. Every invocation resolves the version that runs (an alias's
weighted pick), writes Lambda's log lines (`cloudwatch_logs`), publishes the `AWS/Lambda` metrics
and is recorded (`GET /_shiftguard/lambda/invocations`). Asynchronous invocations retry as Lambda
does, on the engine's clock.

Test controls: `/_shiftguard/lambda/behaviour`, `/_shiftguard/lambda/bindings`,
`/_shiftguard/lambda/invocations` (MODELLED.md, "Control paths added")."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import cloudwatch_logs
from engine_settings import SETTINGS
from errors import AwsError
from state import DEFAULT_ACCOUNT, LOCK, lambda_backend, records_view


NUMERIC_VERSION = re.compile(r"^[0-9]+$")


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


def resolve_version(region: str, fn_name: str, qualifier: str | None) -> str:
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
    with LOCK:
        BINDINGS[:] = [b for b in BINDINGS if (b["function"], b["qualifier"]) != (function, qualifier)]
        BINDINGS.append(binding)
    return binding


def unbind(body: dict) -> int:
    with LOCK:
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
    with LOCK:
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
        lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        version = version or resolve_version(region, fn_name, qualifier)
    except Exception:
        suffix = f":{qualifier}" if qualifier else ""
        raise AwsError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{fn_name}{suffix}")
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
            behaviour = BEHAVIOURS.get((fn_name, version)) or BEHAVIOURS.get((fn_name, "*")) or {}
            if behaviour:
                error, body = run_behaviour(behaviour, payload, outcome)
                record["via"] = "behaviour"
            else:
                error, body = None, payload  # moto without Docker echoes the payload
                record["via"] = "echo"
    except BaseException:
        cloudwatch_logs.release(sandbox)
        raise
    ended = time.time()
    emit_lambda_metrics(region, fn_name, qualifier, version, error is not None, (ended - started) * 1000.0)
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
    with LOCK:
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
            except AwsError as err:
                print(f"async invocation of {function} failed: {err.code}: {err.message}", file=sys.stderr)
                return
            if result["functionError"] is None:
                return

    threading.Thread(target=attempt, daemon=True, name=f"invoke-{function}").start()
    return request_id


def function_exists(region: str, function: str) -> bool:
    fn_name, qualifier = split_function(function)
    try:
        lambda_backend(region)._lambdas.get_function_by_name_or_arn_with_qualifier(fn_name, qualifier)
        return True
    except Exception:
        return False


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


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/lambda/behaviour" and method == "POST":
        # How a function (or one version of it) behaves when invoked.
        function, version = body["function"], str(body.get("version", "*"))
        BEHAVIOURS[(function, version)] = checked_behaviour(body)
        return 200, {"function": function, "version": version}
    if path == "/_shiftguard/lambda/bindings":
        if method == "POST":
            return 200, bind(body or {})
        if method == "DELETE":
            return 200, {"removed": unbind(body or {})}
        with LOCK:
            return 200, list(BINDINGS)
    if path == "/_shiftguard/lambda/invocations":
        return records_view(method, query, INVOCATIONS, "invocations", {"function": "function"})
    return None
