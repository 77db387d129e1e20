"""IAM enforced (`POST /_shiftguard/iam {"enforce": true}`): a caller with an assumed role's keys
gets exactly what its role's policies allow, with each service's documented AccessDenied naming
the action and the resource; unknown keys keep full access unless strict. Off again afterwards."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from conftest import make_function, unique


def role_client(emulator, service, statements):
    iam = boto3.client("iam", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    sts = boto3.client("sts", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    name = unique("role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{name}", RoleSessionName="fn")["Credentials"]
    return name, boto3.client(service, endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                              aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
                              config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def test_an_assumed_role_gets_what_its_policy_allows_and_nothing_else(emulator, clients, enforced):
    fn = unique("iam")
    v1, _ = make_function(clients.lam, fn)
    alias = f"arn:aws:lambda:us-east-1:123456789012:function:{fn}:live"
    role, lam = role_client(emulator, "lambda", [{"Effect": "Allow", "Action": "lambda:GetAlias", "Resource": alias}])
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == v1
    with pytest.raises(lam.exceptions.ClientError) as denied:
        lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=v1)
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDeniedException"
    message = error["Error"]["Message"]
    assert f"assumed-role/{role}/fn is not authorized to perform: lambda:UpdateAlias on resource: {alias}" in message, message
    assert message.endswith("because no identity-based policy allows the lambda:UpdateAlias action")
    # Unknown keys (every existing test's) keep full access unless strict.
    clients.lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=v1)
    recorded = [c for c in emulator.control("GET", "/_shiftguard/calls") if c.get("iam")]
    assert {"action": "lambda:UpdateAlias", "decision": "implicit-deny"}.items() <= recorded[-1]["iam"].items()


def test_the_construct_tag_condition_lets_rollback_write_its_record_only(emulator, clients, enforced):
    fn = unique("tags")
    make_function(clients.lam, fn)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{fn}"
    _, lam = role_client(emulator, "lambda", [
        {"Effect": "Allow", "Action": "lambda:TagResource", "Resource": arn,
         "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["shiftguard:restored:*"]}}}])
    lam.tag_resource(Resource=arn, Tags={"shiftguard:restored:live": "at=1 alarm=1 by=a"})
    with pytest.raises(lam.exceptions.ClientError) as denied:
        lam.tag_resource(Resource=arn, Tags={"shiftguard:rollout:live": "id=x"})
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_codedeploy_denies_with_its_documented_shape(emulator, enforced):
    _, cd = role_client(emulator, "codedeploy", [{"Effect": "Allow", "Action": "codedeploy:GetDeployment", "Resource": "*"}])
    with pytest.raises(cd.exceptions.ClientError) as denied:
        cd.list_applications()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "codedeploy:ListApplications" in denied.value.response["Error"]["Message"]


def test_strict_refuses_unknown_keys(emulator, clients, enforced):
    emulator.control("POST", "/_shiftguard/iam", {"strict": True})
    with pytest.raises(clients.lam.exceptions.ClientError) as refused:
        clients.lam.list_functions()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    emulator.control("POST", "/_shiftguard/iam", {"strict": False})
    clients.lam.list_functions()


def test_describe_alarms_over_cbor_is_judged_on_the_alarms_named(emulator, enforced, tmp_path):
    """shift reads its plan's alarms with the Rust SDK, which speaks CBOR to CloudWatch: the
    alarms in the body are the resources, as the construct grants them."""
    from test_metric_data import cbor_client

    allowed = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-canary-5xx"
    _, base = role_client(emulator, "sts", [{"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": allowed}])
    creds = base._request_signer._credentials
    cw = cbor_client(emulator, tmp_path)
    cw._request_signer._credentials = creds
    cw.describe_alarms(AlarmNames=["orders-canary-5xx"])
    with pytest.raises(cw.exceptions.ClientError) as denied:
        cw.describe_alarms(AlarmNames=["someone-elses-alarm"])
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "cloudwatch:DescribeAlarms" in str(denied.value)
