"""Knowing which operation a request is: the service and Region from the SigV4 scope, the
operation from `X-Amz-Target`, a Smithy RPC v2 CBOR path, a REST route (each service's `ROUTES`:
`lambda_service`, `lattice`, `apigateway.route`) or a query `Action`. Faults, the call log,
conformance and IAM all go by this name."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote

import apigateway
import lambda_service
import lattice


SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


#: Smithy RPC v2 CBOR: `POST /service/{service}/operation/{operation}`.
CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")


def route(routes: list, method: str, path: str) -> tuple[str | None, dict]:
    for m, pattern, op in routes:
        if m == method:
            found = re.match(pattern, path)
            if found:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
    return None, {}


def identify(environ: dict, body: bytes) -> tuple[str, str, str, dict]:
    """(service, region, operation, path parameters) of a request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = SCOPE.search(auth)
    region, service = (scope.group(1), scope.group(2)) if scope else ("us-east-1", "unknown")
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    cbor = CBOR_PATH.match(path)
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return service, region, cbor.group("operation"), {"cbor": True}
    if target:
        return service, region, target.split(".")[-1], {}
    if service == "lambda":
        op, params = route(lambda_service.ROUTES, method, path)
        return service, region, op or f"{method} {path}", params
    if service == "vpc-lattice":
        op, params = route(lattice.ROUTES, method, path)
        return service, region, op or f"{method} {path}", params
    if service == "apigateway":
        # Every REST API operation of botocore's model (API Gateway V2 shares the signing name: its
        # `/v2/...` paths stay "METHOD PATH").
        op, params = apigateway.route(method, path, environ.get("QUERY_STRING", ""))
        return service, region, op or f"{method} {path}", params
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        if action:
            return service, region, action, {}
    return service, region, f"{method} {path}", {}
