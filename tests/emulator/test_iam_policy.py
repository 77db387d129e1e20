"""The emulator's identity-policy evaluator (`iam.py`), by the IAM User Guide's rules, including
the statements ShiftGuard's construct writes (tag-key conditions on the restore record and the
rollout marker, resources scoped to functions, aliases, listeners)."""

from __future__ import annotations

import pytest

import iam
from iam import UnsupportedCondition, denied_message, evaluate

FN = "arn:aws:lambda:us-east-1:123456789012:function:checkout"
LISTENER = "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-1/listener/listener-1"


def policy(*statements):
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


def allow(action, resource, condition=None, **more):
    s = {"Effect": "Allow", "Action": action, "Resource": resource, **more}
    if condition:
        s["Condition"] = condition
    return s


@pytest.mark.parametrize("statements, action, resources, context, want", [
    # Action: case-insensitive, wildcards.
    ([allow("lambda:GetAlias", FN)], "lambda:GetAlias", [FN], {}, "allowed"),
    ([allow("lambda:getalias", FN)], "lambda:GetAlias", [FN], {}, "allowed"),
    ([allow("lambda:Get*", FN)], "lambda:GetAlias", [FN], {}, "allowed"),
    ([allow("lambda:Get?lias", FN)], "lambda:GetAlias", [FN], {}, "allowed"),
    ([allow("lambda:GetAlias", FN)], "lambda:UpdateAlias", [FN], {}, "implicit-deny"),
    # Resource: case-sensitive wildcards; every resource of the request.
    ([allow("lambda:GetAlias", f"{FN}:*")], "lambda:GetAlias", [f"{FN}:live"], {}, "allowed"),
    ([allow("lambda:GetAlias", f"{FN}:*")], "lambda:GetAlias", [FN], {}, "implicit-deny"),
    ([allow("lambda:GetAlias", FN.upper())], "lambda:GetAlias", [FN], {}, "implicit-deny"),
    ([allow("lambda:GetAlias", [FN, f"{FN}:*"])], "lambda:GetAlias", [FN, f"{FN}:live"], {}, "allowed"),
    ([allow("lambda:GetAlias", FN)], "lambda:GetAlias", [FN, f"{FN}:live"], {}, "implicit-deny"),
    # $ and . are literal characters, not regular expression syntax.
    ([allow("lambda:GetFunction", f"{FN}:$LATEST")], "lambda:GetFunction", [f"{FN}:$LATEST"], {}, "allowed"),
    ([allow("lambda:GetFunction", "arn:aws:lambda:us-east-1:123456789012:function:a.b")], "lambda:GetFunction",
     ["arn:aws:lambda:us-east-1:123456789012:function:aXb"], {}, "implicit-deny"),
    # An explicit Deny wins over any Allow.
    ([allow("lambda:*", "*"), {"Effect": "Deny", "Action": "lambda:UpdateAlias", "Resource": f"{FN}:live"}],
     "lambda:UpdateAlias", [f"{FN}:live"], {}, "explicit-deny"),
    ([allow("lambda:*", "*"), {"Effect": "Deny", "Action": "lambda:UpdateAlias", "Resource": f"{FN}:live"}],
     "lambda:UpdateAlias", [f"{FN}:blue"], {}, "allowed"),
    # NotAction / NotResource.
    ([{"Effect": "Allow", "NotAction": "lambda:Delete*", "Resource": "*"}], "lambda:GetAlias", [FN], {}, "allowed"),
    ([{"Effect": "Allow", "NotAction": "lambda:Delete*", "Resource": "*"}], "lambda:DeleteFunction", [FN], {}, "implicit-deny"),
    ([allow("lambda:*", "*"), {"Effect": "Deny", "Action": "lambda:*", "NotResource": f"{FN}*"}],
     "lambda:GetAlias", ["arn:aws:lambda:us-east-1:123456789012:function:other"], {}, "explicit-deny"),
    ([allow("lambda:*", "*"), {"Effect": "Deny", "Action": "lambda:*", "NotResource": f"{FN}*"}],
     "lambda:GetAlias", [FN], {}, "allowed"),
])
def test_actions_resources_and_effects(statements, action, resources, context, want):
    assert evaluate(policy(*statements), action, resources, context).reason == want


RESTORE_RECORD = allow("lambda:TagResource", FN, {"ForAllValues:StringLike": {"aws:TagKeys": ["shiftguard:restored:*"]}})
MARKER = allow("vpc-lattice:TagResource", LISTENER, {"ForAllValues:StringLike": {"aws:TagKeys": ["shiftguard:rollout"]}})


@pytest.mark.parametrize("statement, action, resource, context, want", [
    # The construct's restore-record statement: rollback may write its own record key only.
    (RESTORE_RECORD, "lambda:TagResource", FN, {"aws:TagKeys": ["shiftguard:restored:live"]}, True),
    (RESTORE_RECORD, "lambda:TagResource", FN, {"aws:TagKeys": ["shiftguard:restored:live", "owner"]}, False),
    (RESTORE_RECORD, "lambda:TagResource", FN, {"aws:TagKeys": ["shiftguard:rollout:live"]}, False),
    # ForAllValues holds for a request without the key (the guide's warning, kept as documented).
    (RESTORE_RECORD, "lambda:TagResource", FN, {}, True),
    (MARKER, "vpc-lattice:TagResource", LISTENER, {"aws:TagKeys": ["shiftguard:rollout"]}, True),
    (MARKER, "vpc-lattice:TagResource", LISTENER, {"aws:TagKeys": ["shiftguard:restored"]}, False),
    # ForAnyValue fails without the key.
    (allow("lambda:TagResource", FN, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}), "lambda:TagResource", FN, {}, False),
    (allow("lambda:TagResource", FN, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}), "lambda:TagResource", FN, {"aws:TagKeys": ["b", "a"]}, True),
    # Resource tags, key names case-insensitive, values case-sensitive.
    (allow("lambda:UpdateAlias", FN, {"StringEquals": {"aws:ResourceTag/team": "payments"}}), "lambda:UpdateAlias", FN, {"aws:resourcetag/team": "payments"}, True),
    (allow("lambda:UpdateAlias", FN, {"StringEquals": {"aws:ResourceTag/team": "payments"}}), "lambda:UpdateAlias", FN, {"aws:ResourceTag/team": "Payments"}, False),
    (allow("lambda:UpdateAlias", FN, {"StringEquals": {"aws:ResourceTag/team": "payments"}}), "lambda:UpdateAlias", FN, {}, False),
    # Negated operators hold when the key is absent; IfExists holds when absent.
    (allow("lambda:UpdateAlias", FN, {"StringNotEquals": {"aws:ResourceTag/frozen": "true"}}), "lambda:UpdateAlias", FN, {}, True),
    (allow("lambda:UpdateAlias", FN, {"StringNotEquals": {"aws:ResourceTag/frozen": "true"}}), "lambda:UpdateAlias", FN, {"aws:ResourceTag/frozen": "true"}, False),
    (allow("lambda:UpdateAlias", FN, {"StringEqualsIfExists": {"aws:ResourceTag/team": "payments"}}), "lambda:UpdateAlias", FN, {}, True),
    (allow("lambda:UpdateAlias", FN, {"StringEqualsIfExists": {"aws:ResourceTag/team": "payments"}}), "lambda:UpdateAlias", FN, {"aws:ResourceTag/team": "x"}, False),
    # Values of one key are alternatives; keys and operators must all hold.
    (allow("sns:Publish", "*", {"StringLike": {"aws:ResourceTag/env": ["prod-*", "staging"]}}), "sns:Publish", "arn:t", {"aws:ResourceTag/env": "staging"}, True),
    (allow("sns:Publish", "*", {"StringEquals": {"aws:ResourceTag/a": "1", "aws:ResourceTag/b": "2"}}), "sns:Publish", "arn:t", {"aws:ResourceTag/a": "1"}, False),
    # ArnLike compares ARN parts: a wildcard does not cross a colon.
    (allow("sns:Publish", "*", {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:123456789012:alarm:*"}}), "sns:Publish", "arn:t",
     {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx"}, True),
    (allow("sns:Publish", "*", {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:*"}}), "sns:Publish", "arn:t",
     {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx"}, False),
    # Null and Bool.
    (allow("s3:Get", "*", {"Null": {"aws:ResourceTag/team": "true"}}), "s3:Get", "x", {}, True),
    (allow("s3:Get", "*", {"Null": {"aws:ResourceTag/team": "false"}}), "s3:Get", "x", {}, False),
    (allow("s3:Get", "*", {"Bool": {"aws:SecureTransport": "true"}}), "s3:Get", "x", {"aws:SecureTransport": "true"}, True),
    (allow("s3:Get", "*", {"NumericLessThan": {"s3:max-keys": "10"}}), "s3:Get", "x", {"s3:max-keys": "5"}, True),
])
def test_conditions(statement, action, resource, context, want):
    assert evaluate(policy(statement), action, [resource], context).allowed is want


def test_an_unknown_operator_is_refused_never_guessed():
    with pytest.raises(UnsupportedCondition):
        evaluate(policy(allow("s3:Get", "*", {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})), "s3:Get", ["x"])


def test_the_decision_names_the_statement_and_the_resource_for_the_message():
    deny = {"Effect": "Deny", "Action": "lambda:UpdateAlias", "Resource": f"{FN}:live"}
    d = evaluate(policy(allow("lambda:*", "*"), deny), "lambda:UpdateAlias", [f"{FN}:live"])
    assert d.statement == deny and d.resource == f"{FN}:live"
    role = "arn:aws:sts::123456789012:assumed-role/rollback/shiftguard-rollback"
    assert denied_message(role, "lambda:UpdateAlias", d) == (
        f"User: {role} is not authorized to perform: lambda:UpdateAlias on resource: {FN}:live with an explicit deny in an identity-based policy")
    d = evaluate(policy(allow("lambda:GetAlias", FN)), "lambda:UpdateAlias", [FN])
    assert denied_message(role, "lambda:UpdateAlias", d).endswith("because no identity-based policy allows the lambda:UpdateAlias action")
    assert evaluate(policy(allow("lambda:GetAlias", FN), allow("lambda:Get*", "*")), "lambda:GetAlias", [FN]).statement["Resource"] == FN


@pytest.mark.parametrize("service,operation,body,expected", [
    ("logs", "FilterLogEvents", {"logGroupName": "/aws/lambda/checkout"}, "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/checkout:*"),
    ("logs", "FilterLogEvents", {"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:/x"}, "arn:aws:logs:us-east-1:123456789012:log-group:/x:*"),
    ("codedeploy", "ListDeployments", {"applicationName": "a", "deploymentGroupName": "g"}, "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:a/g"),
    ("codedeploy", "ListDeployments", {}, "*"),
    ("monitoring", "DescribeAlarms", {"AlarmNames": ["x"]}, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"),
])
def test_requests_are_judged_on_the_resources_the_reference_names(service, operation, body, expected):
    import json as _json

    action, resources, _ = iam.request_of(service, "us-east-1", "123456789012", operation, {}, _json.dumps(body).encode(), "/", {})
    assert resources == [expected]
    assert action.endswith(operation)
