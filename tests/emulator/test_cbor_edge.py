"""CodeDeploy over Smithy RPC v2 CBOR, the protocol botocore's model lists first: a request
serialized and signed as a CBOR client does (botocore's own serializer and SigV4), answered in CBOR
that botocore's CBOR parser reads — timestamps as timestamps, errors with their codes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, prepare_request_dict
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from conftest import unique

MODEL = botocore.session.get_session().get_service_model("codedeploy")


def cbor_call(emulator, operation: str, params: dict) -> tuple[int, dict, dict]:
    op = MODEL.operation_model(operation)
    request = create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op)
    prepare_request_dict(request, endpoint_url=emulator.url)
    aws = AWSRequest(method=request["method"], url=request["url"], data=request["body"], headers=request["headers"])
    SigV4Auth(Credentials("local", "local"), "codedeploy", "us-east-1").add_auth(aws)
    prepared = aws.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body, method=prepared.method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(http) as resp:
            status, headers, body = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, body = err.code, dict(err.headers), err.read()
    parsed = create_parser("smithy-rpc-v2-cbor").parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)
    return status, headers, parsed


def test_a_cbor_client_creates_reads_and_gets_errors(emulator):
    app = unique("cbor")
    assert cbor_call(emulator, "CreateApplication", {"applicationName": app, "computePlatform": "Lambda"})[0] == 200
    status, headers, got = cbor_call(emulator, "GetApplication", {"applicationName": app})
    assert status == 200 and headers.get("smithy-protocol") == "rpc-v2-cbor" and headers.get("Content-Type") == "application/cbor"
    assert got["application"]["applicationName"] == app
    assert isinstance(got["application"]["createTime"], datetime)
    cbor_call(emulator, "CreateDeploymentGroup", {
        "applicationName": app, "deploymentGroupName": "g", "serviceRoleArn": "arn:aws:iam::123456789012:role/r",
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}})
    spec = json.dumps({"version": 0.0, "Resources": [{"f": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "f", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]})
    status, _, created = cbor_call(emulator, "CreateDeployment", {
        "applicationName": app, "deploymentGroupName": "g",
        "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": spec}}})
    assert status == 200, created
    # The extension's own answer (GetDeployment is patched), through the transcoder.
    status, _, info = cbor_call(emulator, "GetDeployment", {"deploymentId": created["deploymentId"]})
    assert status == 200 and info["deploymentInfo"]["deploymentId"] == created["deploymentId"]
    assert isinstance(info["deploymentInfo"]["createTime"], datetime)
    status, _, err = cbor_call(emulator, "GetDeployment", {"deploymentId": "d-AAAAAAAAA"})
    assert status == 400 and err["Error"]["Code"] == "DeploymentDoesNotExistException", err
