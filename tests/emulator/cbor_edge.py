"""Smithy RPC v2 CBOR at the edge, for services the emulator serves over JSON 1.1 (CodeDeploy).

botocore's CodeDeploy model lists `smithy-rpc-v2-cbor` first (`"protocols": ["smithy-rpc-v2-cbor",
"json"]`): a client that negotiates the first protocol it supports sends `POST
/service/CodeDeploy_20141006/operation/OP` with `smithy-protocol: rpc-v2-cbor` and a CBOR body.
moto and the extension speak JSON 1.1 for CodeDeploy, so such a request is transcoded on the way in
(CBOR → the same members as JSON, `X-Amz-Target: CodeDeploy_20141006.OP`) and the answer on the way
out (JSON → CBOR, the output shape's timestamps as CBOR tag 1 epoch seconds, as the Smithy RPC v2
CBOR specification requires; errors keep `__type` and their status, with the `smithy-protocol`
header). CloudWatch's CBOR is served natively (`cloudwatch_cbor`): it is not transcoded here.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timezone
from typing import Any, Callable

#: signing name → JSON 1.1 target prefix, for the services transcoded here.
TARGET_PREFIX = {"codedeploy": "CodeDeploy_20141006"}

_MODELS: dict[str, Any] = {}


def _model(service: str) -> Any:
    if service not in _MODELS:
        import botocore.session

        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


def _jsonable(value: Any) -> Any:
    """CBOR values as JSON 1.1 carries them: timestamps as epoch seconds, blobs as base64."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _to_cbor_values(value: Any, shape: Any) -> Any:
    """JSON answer values as the output shape types them in CBOR (timestamps, blobs)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _to_cbor_values(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_to_cbor_values(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _to_cbor_values(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def transcode(app: Callable, environ: dict, body: bytes, service: str, operation: str, start_response: Callable) -> list[bytes]:
    """Serves one CBOR request of `service` through `app` (the emulator) as JSON 1.1."""
    import cbor2

    try:
        request = cbor2.loads(body) if body else {}
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the caller's malformed request
        data = cbor2.dumps({"__type": "SerializationException", "message": f"the request body is not CBOR: {exc}"})
        start_response("400 Bad Request", [("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor"),
                                            ("Content-Length", str(len(data)))])
        return [data]
    as_json = json.dumps(_jsonable(request or {})).encode()
    environ = dict(environ)
    environ["PATH_INFO"] = "/"
    environ["HTTP_X_AMZ_TARGET"] = f"{TARGET_PREFIX[service]}.{operation}"
    environ["CONTENT_TYPE"] = "application/x-amz-json-1.1"
    environ.pop("HTTP_SMITHY_PROTOCOL", None)
    environ.pop("HTTP_ACCEPT", None)
    environ["CONTENT_LENGTH"] = str(len(as_json))
    environ["wsgi.input"] = io.BytesIO(as_json)
    captured: dict = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    chunks = app(environ, capture)
    try:
        answer = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    code = int(captured["status"].split()[0])
    try:
        payload = json.loads(answer) if answer.strip() else {}
    except ValueError:
        payload = {"__type": "InternalFailure", "message": answer.decode("utf-8", "replace")[:500]}
        code = 500
    if code < 300:
        try:
            shape = _model(service).operation_model(operation).output_shape
        except Exception:  # noqa: BLE001 - an operation the model lacks: the values as they are
            shape = None
        payload = _to_cbor_values(payload, shape)
    elif "__type" not in payload:
        error_type = next((v for k, v in captured["headers"] if k.lower() == "x-amzn-errortype"), "InternalFailure")
        payload = {"__type": error_type.split(":")[0], "message": payload.get("message") or payload.get("Message") or ""}
    data = cbor2.dumps(payload, datetime_as_timestamp=True, timezone=timezone.utc)
    keep = [(k, v) for k, v in captured["headers"] if k.lower() in ("x-amzn-requestid", "x-amzn-errortype", "date")]
    start_response(captured["status"], keep + [("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor"),
                                               ("Content-Length", str(len(data)))])
    return [data]
