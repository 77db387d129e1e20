"""The WSGI layer in front of moto: every request is named (`routing`), logged (`faults.CALLS`),
authorized when IAM is enforced (`authorize`), exposed to the faults tests armed, answered by the
extension where it models the operation (each service's module: `codedeploy`, `lambda_service`,
`lattice`, `lattice_targets`, `apigateway`, `cloudwatch_logs`, `cloudwatch_metrics` for CBOR) or
else by moto, fixed where moto's answer is off (`_fix`), and checked against botocore's model
(`conformance`). `/_shiftguard/...` goes to the control plane (`control_plane`); CodeDeploy spoken
in CBOR is transcoded at the edge (`cbor_edge`)."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs

import apigateway
import authorize
import cbor_edge
import cloudwatch_logs
import cloudwatch_metrics
import codedeploy
import conformance
import control_plane
import lambda_service
import lattice
import lattice_targets
import routing
from errors import REASONS, AwsError, error_response, internal_error, throttling_error
from faults import CALLS, FAULTS
from state import LOCK

# The extension's answers, by (service, operation): handlers `(region, params, request) -> (status,
# body)`, or None to let moto answer.
EXTENDED: dict[tuple[str, str], Callable[[str, dict, dict], Any]] = {
    **lambda_service.EXTENDED,
    **lattice.EXTENDED,
    **apigateway.EXTENDED,
    **lattice_targets.EXTENDED,
}


# moto's answers the extension patches: checked strictly like the extension's own.
PATCHED = apigateway.PATCHED | {
    ("codedeploy", "GetDeployment"),
    ("codedeploy", "BatchGetDeployments"),
    ("lambda", "GetAlias"),
    # Versions keep their own code, hash and description (`moto_patches._lambda_versions_keep_their_code`).
    ("lambda", "GetFunction"),
    ("lambda", "GetFunctionConfiguration"),
    ("lambda", "PublishVersion"),
    # Per-period series (`cloudwatch_metrics`), over the JSON protocol too.
    ("monitoring", "GetMetricData"),
}


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
        edge = routing.CBOR_PATH.match(path)
        if edge and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            scope = routing.SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if scope and scope.group(2) in cbor_edge.TARGET_PREFIX:
                # A CBOR client of a service served over JSON 1.1 (CodeDeploy): transcoded.
                return cbor_edge.transcode(self, environ, body, scope.group(2), edge.group("operation"), start_response)
        if path.startswith("/_shiftguard/"):
            try:
                parsed = json.loads(body) if body else {}
                status, out = control_plane.control(environ["REQUEST_METHOD"], path, parsed, parse_qs(environ.get("QUERY_STRING", "")))
            except (ValueError, KeyError) as exc:
                status, out = 400, {"message": str(exc)}
            except AwsError as err:
                status, out = err.status, {"code": err.code, "message": err.message}
            return self._reply(start_response, status, {"Content-Type": "application/json"}, out)

        scope = routing.SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope and scope.group(2) == "vpc-lattice":
            lattice.lattice_arns_to_ids(environ)
            path = environ.get("PATH_INFO", "/")
        service, region, operation, params = routing.identify(environ, body)
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
        denied = authorize.authorize(environ, body, service, region, operation, params, call)
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
            headers = lambda_service.executed_version_and_logs(region, params, environ, code, headers, started)
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
                    lambda_service.concurrent_alias_update(region, params, fault)
                elif kind == "overwritten" and (service, operation) == ("vpc-lattice", "UpdateListener"):
                    # Another writer puts the listener's default action back right after this
                    # write succeeds: the caller's read-back sees its write lost.
                    listener = lattice.lattice_listener(region, params)
                    previous = listener.default_action
                    handled = EXTENDED[(service, operation)](region, params, json.loads(body or b"{}"))
                    with LOCK:
                        listener.default_action = previous
                    return self._reply(start_response, handled[0], {"Content-Type": "application/json"}, handled[1])
            if params.get("cbor") and service == "monitoring":
                # The extension's own answers (enforced); other operations answer "not served".
                self._local.extension = operation in ("PutMetricData", "GetMetricData")
                status, headers, data = cloudwatch_metrics.cloudwatch_cbor(region, operation, body)
                start_response(f"{status} OK", list(headers.items()) + [("Content-Length", str(len(data)))])
                return [data]
            if service == "lambda" and operation == "Invoke":
                handled = lambda_service.lambda_invoke(region, params, body, parse_qs(environ.get("QUERY_STRING", "")), environ.get("HTTP_X_AMZ_LOG_TYPE"),
                                        environ.get("HTTP_X_AMZ_INVOCATION_TYPE"))
                if handled is not None:
                    self._local.extension = True
                    status, headers, data = handled
                    start_response(f"{status} {REASONS.get(status, 'OK')}", list(headers.items()) + [("Content-Length", str(len(data)))])
                    return [data]
            if service == "codedeploy" and operation in codedeploy.OPS:
                self._local.extension = True
                req = json.loads(body or b"{}")
                out = codedeploy.OPS[operation](region, req)
                if out is not None:
                    return self._reply(start_response, 200, {"Content-Type": "application/x-amz-json-1.1"}, out)
                self._local.extension = False
            if service == "logs" and operation in cloudwatch_logs.OPS:
                self._local.extension = True
                out = cloudwatch_logs.OPS[operation](region, json.loads(body or b"{}"))
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
