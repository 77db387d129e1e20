"""`POST /_shiftguard/iam/stack`: a synthesized template's roles made real in the emulator, their
intrinsic functions resolved against its resources, and strict IAM holding each function to exactly
its statements. The real template is the CDK app's `ShiftGuardRehearsal` (the demo's world), which
`make emulator-test` synthesizes first."""

from __future__ import annotations

import copy
import json
import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import make_function, unique

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REHEARSAL = os.path.join(ROOT, "target", "cdk.out", "ShiftGuardRehearsal.template.json")


def client_as(emulator, service, creds):
    return boto3.client(service, endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds.get("SessionToken"),
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def checkout_as_operator(emulator):
    """A Lambda client as the operator (allowed everything), and the function `checkout` the
    rehearsal stack names (made by the first test that needs it, shared by the others)."""
    admin = client_as(emulator, "lambda", emulator.control("POST", "/_shiftguard/iam/operator"))
    try:
        admin.get_function(FunctionName="checkout")
    except ClientError:
        make_function(admin, "checkout")
    return admin


def rehearsal() -> dict:
    if not os.path.exists(REHEARSAL):
        pytest.fail(f"{REHEARSAL} is missing: synthesize the CDK app first (make cdk-synth)")
    with open(REHEARSAL, encoding="utf-8") as f:
        return json.load(f)


def test_intrinsic_functions_resolve_as_cloudformation_does(emulator):
    stack = unique("Intrinsics")
    template = {
        "Parameters": {"Alias": {"Type": "String", "Default": "live"}, "Other": {"Type": "String"}},
        "Conditions": {"Prod": {"Fn::Equals": [{"Ref": "Alias"}, "live"]}},
        "Resources": {
            "App": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "intrinsics-app", "Role": "arn:aws:iam::123456789012:role/x"}},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            "Policy": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": [
                {"Effect": "Allow", "Action": "lambda:GetAlias", "Resource": {"Fn::Join": [":", [{"Fn::GetAtt": ["App", "Arn"]}, {"Ref": "Alias"}]]}},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}},
                {"Effect": "Allow", "Action": "logs:FilterLogEvents",
                 "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${App}:*"}},
                {"Effect": "Allow", "Action": "lambda:InvokeFunction",
                 "Resource": {"Fn::Select": [1, {"Fn::Split": [",", "a,arn:aws:lambda:us-east-1:123456789012:function:x,b"]}]}},
                {"Effect": "Allow", "Action": {"Fn::If": ["Prod", "lambda:UpdateAlias", {"Ref": "AWS::NoValue"}]}, "Resource": "*"},
            ]}}},
            "Checker": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]},
                                                                         "Environment": {"Variables": {"APP": {"Ref": "App"}, "OTHER": {"Ref": "Other"}}}}},
        },
    }
    out = emulator.control("POST", "/_shiftguard/iam/stack", {"template": template, "stack": stack})
    (name, fn), = out["functions"].items()
    assert name.startswith(f"{stack}-Checker-"), name
    resources = [s["Resource"] for s in fn["statements"]]
    assert resources[0] == "arn:aws:lambda:us-east-1:123456789012:function:intrinsics-app:live"
    assert resources[1].startswith(f"arn:aws:sqs:us-east-1:123456789012:{stack}-Queue-")
    assert resources[2] == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/intrinsics-app:*"
    assert resources[3] == "arn:aws:lambda:us-east-1:123456789012:function:x"
    assert fn["statements"][4]["Action"] == "lambda:UpdateAlias"
    assert fn["environment"] == {"APP": "intrinsics-app"}
    assert "Other" in fn["environmentUnresolved"]["OTHER"] and "no value given" in fn["environmentUnresolved"]["OTHER"]


def test_a_lattice_resource_is_found_by_name_or_named_as_missing(emulator, clients):
    name = unique("svc")
    template = {"Resources": {
        "Service": {"Type": "AWS::VpcLattice::Service", "Properties": {"Name": name}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Policy": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "vpc-lattice:GetService", "Resource": {"Fn::GetAtt": ["Service", "Arn"]}}]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": unique("fn"), "Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
    }}
    with pytest.raises(AssertionError) as missing:
        emulator.control("POST", "/_shiftguard/iam/stack", {"template": template, "stack": unique("Lat")})
    assert "400" in str(missing.value) and name in str(missing.value) and "no such resource in the emulator" in str(missing.value)
    placeholder = emulator.control("POST", "/_shiftguard/iam/stack", {"template": template, "stack": unique("Lat"), "unresolved": "placeholder"})
    assert len(placeholder["unresolved"]) == 1 and name in placeholder["unresolved"][0]
    (fn,) = placeholder["functions"].values()
    assert "shiftguard-unresolved-Service" in fn["statements"][0]["Resource"]
    arn = clients.lattice.create_service(name=name)["arn"]
    (fn,) = emulator.control("POST", "/_shiftguard/iam/stack", {"template": template, "stack": unique("Lat")})["functions"].values()
    assert fn["statements"][0]["Resource"] == arn


def test_the_rehearsal_rollback_role_may_restore_live_and_nothing_else(emulator, clients, strict):
    """The demo's rollback, as the construct deploys it: UpdateAlias on checkout:live is allowed;
    moving the stable pointer `blue` (which rollback only reads) is denied with the message naming
    the action and the resource, and a caller without known keys is refused outright."""
    admin = checkout_as_operator(emulator)
    fn = "checkout"
    version = admin.publish_version(FunctionName=fn)["Version"]
    for alias in ("live", "blue"):
        try:
            admin.create_alias(FunctionName=fn, Name=alias, FunctionVersion=version)
        except ClientError:
            pass
    rehearsal()
    out = emulator.control("POST", "/_shiftguard/iam/stack", {"templatePath": REHEARSAL,
                                                              "functions": ["checkout_rollback"], "unresolved": "placeholder"})
    rollback = out["functions"]["checkout_rollback"]
    assert any("orders" in u for u in out["unresolved"]), out["unresolved"]  # the Lattice service is not in this world
    lam = client_as(emulator, "lambda", rollback["credentials"])
    current = lam.get_alias(FunctionName=fn, Name="live")
    lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=version, RevisionId=current["RevisionId"])
    with pytest.raises(ClientError) as denied:
        lam.update_alias(FunctionName=fn, Name="blue", FunctionVersion=version)
    message = denied.value.response["Error"]["Message"]
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "lambda:UpdateAlias" in message and f"function:{fn}:blue" in message, message
    stranger = client_as(emulator, "lambda", {"AccessKeyId": "AKIDUNKNOWN", "SecretAccessKey": "x"})
    with pytest.raises(ClientError) as refused:
        stranger.get_alias(FunctionName=fn, Name="live")
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    used = [u for u in emulator.control("GET", "/_shiftguard/iam/usage") if u["function"] == "checkout_rollback"]
    assert [(u["action"], u["allowed"]) for u in used[-3:]] == [("lambda:GetAlias", True), ("lambda:UpdateAlias", True), ("lambda:UpdateAlias", False)]
    assert used[-2]["sid"] is not None and used[-1]["sid"] is None


def test_the_settings_file_in_a_layer_is_read_as_the_function_reads_it(emulator):
    """The construct ships check sets and target maps in a layer file (Lambda's environment holds
    4 KB): the loader finds the file in the cloud assembly, points SHIFTGUARD_CONFIG_FILE at it (a
    binary run here reads it) and gives the settings as the function sees them."""
    rehearsal()
    out = emulator.control("POST", "/_shiftguard/iam/stack", {"templatePath": REHEARSAL, "unresolved": "placeholder",
                                                              "functions": ["checkout_rollback", "CodeDeployHook_checkout_post_traffic"]})
    rollback = out["functions"]["checkout_rollback"]
    assert os.path.isfile(rollback["settingsFile"]) and rollback["settingsFile"].endswith("shiftguard/rollback.json")
    assert rollback["environment"]["SHIFTGUARD_CONFIG_FILE"] == rollback["settingsFile"]
    assert "ROLLBACK_TARGETS" not in rollback["environment"]
    targets = json.loads(rollback["settings"]["ROLLBACK_TARGETS"])
    assert {"type": "lambda-alias", "function": "checkout", "alias": "live"}.items() <= targets[0]["targets"][0].items(), targets
    # The Lattice ids are deploy-time values (${SG_n} in the file), resolved as the function would.
    lattice = [t for m in targets for t in m["targets"] if t["type"] == "lattice-listener"]
    assert lattice and all(not t["service"].startswith("${") for t in lattice), lattice
    post = out["functions"]["CodeDeployHook_checkout_post_traffic"]
    assert json.loads(post["settings"]["HOOK_CHECKS"])["checks"], post["settings"]
    assert post["settings"]["STABLE_ALIAS"] == "blue" and "SHIFTGUARD_CONFIG_FILE" not in post["settings"]
    # Without the assembly (an inline template), the file cannot be read: said, not guessed.
    with open(REHEARSAL, encoding="utf-8") as f:
        inline = emulator.control("POST", "/_shiftguard/iam/stack", {"template": json.load(f), "unresolved": "placeholder",
                                                                     "functions": ["checkout_rollback"]})
    fn = inline["functions"]["checkout_rollback"]
    assert fn["settingsFile"] is None and "ROLLBACK_TARGETS" not in fn["settings"]
    assert "SHIFTGUARD_CONFIG_FILE" in fn["settingsUnresolved"]


def test_a_removed_statement_is_the_access_denied(emulator, clients, strict):
    """The same call, the same role, one statement fewer: denied, naming what was needed."""
    template = rehearsal()
    checkout_as_operator(emulator)
    trimmed = copy.deepcopy(template)
    removed = 0
    for r in trimmed["Resources"].values():
        if r["Type"] == "AWS::IAM::Policy" and "rollback" in json.dumps(r["Properties"]["Roles"]):
            before = r["Properties"]["PolicyDocument"]["Statement"]
            kept = [s for s in before if s["Action"] != "lambda:ListTags"]
            removed += len(before) - len(kept)
            r["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed == 1
    for which, expect_denied in ((template, False), (trimmed, True)):
        out = emulator.control("POST", "/_shiftguard/iam/stack", {"template": which, "stack": "ShiftGuardRehearsalTrimmed" if expect_denied else "ShiftGuardRehearsal",
                                                                  "functions": ["checkout_rollback"], "unresolved": "placeholder"})
        lam = client_as(emulator, "lambda", out["functions"]["checkout_rollback"]["credentials"])
        arn = "arn:aws:lambda:us-east-1:123456789012:function:checkout"
        if expect_denied:
            with pytest.raises(ClientError) as denied:
                lam.list_tags(Resource=arn)
            assert "lambda:ListTags" in denied.value.response["Error"]["Message"] and arn in denied.value.response["Error"]["Message"]
        else:
            lam.list_tags(Resource=arn)


def test_the_sam_applications_translated_template_holds_rollback_and_post_traffic_to_their_grants(emulator, strict, monkeypatch):
    """The SAM nested application (examples/sam/shiftguard), translated as `sam deploy` would,
    its parameters given as a user's template gives them: rollback may restore `live` and only
    read the stable alias; post-traffic may move (and create) the stable alias."""
    import sys as _sys

    _sys.path.insert(0, os.path.join(ROOT, "examples", "sam"))
    import check_sam  # the repository's own SAM translation (aws-sam-translator, offline)

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator resolves pseudo parameters
    failures: list[str] = []
    template = check_sam.translate(check_sam.NESTED, failures)
    assert not failures, failures
    parameters = {"ArtifactsBucket": "artifacts", "PreTrafficKey": "pre.zip", "PostTrafficKey": "post.zip",
                  "RollbackKey": "rollback.zip", "FunctionName": "checkout", "FunctionAlias": "live",
                  "StableAlias": "blue", "CodeDeployApplication": "checkout-app",
                  "PreTrafficChecks": '{"checks":[{"name":"a","kind":"invoke"}]}',
                  "PostTrafficChecks": '{"checks":[{"name":"a","kind":"invoke"}]}',
                  "RollbackTargets": "[]", "RollbackStageArns": "", "NotifyTopicArn": "", "AlarmTopicKmsKeyId": ""}
    out = emulator.control("POST", "/_shiftguard/iam/stack", {"template": template, "stack": unique("SamApp"),
                                                              "parameters": parameters, "unresolved": "placeholder"})
    assert {"checkout_rollback", "CodeDeployHook_checkout_post_traffic", "CodeDeployHook_checkout_pre_traffic"} <= set(out["functions"])
    admin = checkout_as_operator(emulator)
    fn = "checkout"
    version = admin.publish_version(FunctionName=fn)["Version"]
    try:
        admin.create_alias(FunctionName=fn, Name="blue", FunctionVersion=version)
    except ClientError:
        pass
    rollback = client_as(emulator, "lambda", out["functions"]["checkout_rollback"]["credentials"])
    current = rollback.get_alias(FunctionName=fn, Name="live")
    rollback.update_alias(FunctionName=fn, Name="live", FunctionVersion=version, RevisionId=current["RevisionId"])
    rollback.get_alias(FunctionName=fn, Name="blue")
    with pytest.raises(ClientError) as denied:
        rollback.update_alias(FunctionName=fn, Name="blue", FunctionVersion=version)
    assert "lambda:UpdateAlias" in denied.value.response["Error"]["Message"]
    post = client_as(emulator, "lambda", out["functions"]["CodeDeployHook_checkout_post_traffic"]["credentials"])
    post.update_alias(FunctionName=fn, Name="blue", FunctionVersion=version)
    admin.delete_alias(FunctionName=fn, Name="blue")
    post.create_alias(FunctionName=fn, Name="blue", FunctionVersion=version)  # CreateAlias on the function
    with pytest.raises(ClientError):
        post.update_alias(FunctionName=fn, Name="live", FunctionVersion=version)
