"""Offline checks of the SAM example: cfn-lint, then aws-sam-translator, then the translated
template must have the CodeDeploy application, the deployment group (with the alarms and hooks)
and the alias's CodeDeploy UpdatePolicy. Exits non-zero on any failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline, there are none to resolve."""

    def load(self):
        return {}


def main() -> int:
    # The translator fills pseudo parameters from the session; offline, name a region.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    failures = []
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    if lint.returncode != 0:
        failures.append(f"cfn-lint:\n{lint.stdout}{lint.stderr}")
    else:
        print("cfn-lint: template.yaml passes")

    sam = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    # Local CodeUris are uploaded by `sam package`; offline, stand in an S3 location.
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(resource["Properties"].get("CodeUri"), str):
            resource["Properties"]["CodeUri"] = "s3://example-bucket/checkout.zip"
    try:
        cfn = transform(sam, {}, NoManagedPolicies())
    except InvalidDocumentException as exc:
        failures.append("aws-sam-translator: " + "; ".join(str(e) for e in exc.causes))
        cfn = {"Resources": {}}
    resources = cfn["Resources"]
    by_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}
    apps = by_type("AWS::CodeDeploy::Application")
    groups = by_type("AWS::CodeDeploy::DeploymentGroup")
    aliases = by_type("AWS::Lambda::Alias")
    checks = [
        ("a CodeDeploy application", len(apps) == 1),
        ("a deployment group", len(groups) == 1),
        ("the deployment group has the alarms", any(len(g["Properties"].get("AlarmConfiguration", {}).get("Alarms", [])) == 2 for g in groups.values())),
        ("the deployment group uses the canary config", any("Canary10Percent5Minutes" in json.dumps(g["Properties"].get("DeploymentConfigName")) for g in groups.values())),
        ("the alias `live` has a CodeDeploy UpdatePolicy with both hooks", any(
            a.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate", {}).get("BeforeAllowTrafficHook")
            and a["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"].get("AfterAllowTrafficHook")
            for a in aliases.values())),
        ("rollback is subscribed to the alarm topic", any(
            r["Type"] == "AWS::SNS::Subscription" and r["Properties"].get("Protocol") == "lambda" for r in resources.values())),
        ("rollback has reserved concurrency", any(
            r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("ReservedConcurrentExecutions") == 5 for r in resources.values())),
        ("rollback has an on-failure destination", bool(by_type("AWS::Lambda::EventInvokeConfig"))),
        ("the API stage has a canary", any("CanarySetting" in json.dumps(r.get("Properties", {})) for r in [*by_type("AWS::ApiGateway::Stage").values(), *by_type("AWS::ApiGateway::Deployment").values()])),
        ("rollback's targets include the stage canary, with the permission to patch it", "apigateway-canary" in json.dumps(by_type("AWS::Lambda::Function")) and "apigateway:PATCH" in json.dumps(by_type("AWS::IAM::Role"))),
    ]
    for what, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} translated template: {what}")
        if not ok:
            failures.append(what)
    if failures:
        print("\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
