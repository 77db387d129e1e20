"""Errors in each service's wire protocol: `AwsError` (what every handler raises), how each
service writes one (`error_response`), the throttle and internal error faults inject, the
AccessDenied each service answers, and the HTTP reason phrases of the answers."""

from __future__ import annotations


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        # Error members bound to headers (API Gateway's `retryAfterSeconds` is `Retry-After`).
        self.headers = headers or {}


def error_response(service: str, err: AwsError) -> tuple[int, dict, dict]:
    headers = {"x-amzn-ErrorType": err.code, "Content-Type": "application/json"}
    if service in ("codedeploy", "logs"):
        # awsJson1_1: the code travels in `__type`.
        body = {"__type": err.code, "message": err.message}
        headers["Content-Type"] = "application/x-amz-json-1.1"
    elif service == "lambda":
        body = {"Type": "User", "Message": err.message, "message": err.message}
    else:
        body = {"message": err.message}
    body.update(err.extra)
    headers.update(err.headers)
    return err.status, headers, body


def throttling_error(service: str) -> AwsError:
    if service == "lambda":
        return AwsError(
            429,
            "TooManyRequestsException",
            "Rate exceeded",
            {"Reason": "CallerRateLimitExceeded"},
            # `retryAfterSeconds` is bound to the Retry-After header in Lambda's model.
            headers={"Retry-After": "1"},
        )
    if service == "codedeploy":
        return AwsError(400, "ThrottlingException", "Rate exceeded")
    if service == "apigateway":
        # API Gateway's modeled throttle: TooManyRequestsException, HTTP 429, `retryAfterSeconds` in
        # the `Retry-After` header (botocore's model; the value 1 is ours). The AWS SDKs (boto3's
        # standard retries, the Rust SDK's error classifier) retry it as throttling.
        return AwsError(429, "TooManyRequestsException", "Too Many Requests", headers={"Retry-After": "1"})
    return AwsError(429, "ThrottlingException", "Rate exceeded")


def internal_error(service: str) -> AwsError:
    if service == "lambda":
        return AwsError(500, "ServiceException", "The AWS Lambda service encountered an internal error.")
    if service == "vpc-lattice":
        return AwsError(500, "InternalServerException", "An unexpected error occurred.")
    return AwsError(500, "InternalFailure", "The request processing has failed because of an unknown error.")


def access_denied(service: str, message: str) -> AwsError:
    """AccessDenied as each service answers it (see MODELLED.md, IAM): Lambda, VPC Lattice and API
    Gateway 403 AccessDeniedException; CodeDeploy and CloudWatch Logs (awsJson1_1) 400
    AccessDeniedException; CloudWatch 403 AccessDenied (with the query-compatible header); SNS
    (query protocol) 403 AuthorizationError."""
    if service in ("codedeploy", "logs"):
        return AwsError(400, "AccessDeniedException", message)
    if service == "monitoring":
        return AwsError(403, "AccessDenied", message, headers={"x-amzn-query-error": "AccessDenied;Sender"})
    if service == "sns":
        return AwsError(403, "AuthorizationError", message)
    return AwsError(403, "AccessDeniedException", message)


REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error"}
