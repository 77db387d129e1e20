"""Offline checks of the SAM templates: ShiftGuard as a nested application
(`shiftguard/template.yaml`) and the example that uses it (`template.yaml`).

For each: cfn-lint, then aws-sam-translator (local CodeUris stood in by S3 locations, no IAM
lookups), then assertions on the translated template. ShiftGuard: its three functions (hooks named
CodeDeployHook_*, code from the artifact parameters), the rollback wiring (alarm topic subscription,
reserved concurrency, two retries, on-failure queue), least-privilege IAM with the stage-canary
statement only when stages are given and rollback's tag statements (ListTags; TagResource for the
restore record's key only), the outputs, the Serverless Application Repository metadata.
The example: exactly one AWS::Serverless::Application (a nested stack of the local template) whose
outputs feed the DeploymentPreference hooks and the alarms' actions, parameters the nested template
declares, the CodeDeploy application and deployment group, the stage canary. Both: no circular
dependency (Ref, GetAtt, Sub and DependsOn anywhere in a resource, UpdatePolicy included, as
CloudFormation reads them). The configuration: SAM has no synth step, so every value the example
and the nested application's README give PreTrafficChecks, PostTrafficChecks and RollbackTargets
(and any default) is validated against the configuration's JSON Schema
(cdk/schema/shiftguard.schema.json, generated from the types the functions parse them with) and
matches its AllowedPattern; a misspelt setting is refused, and the README's command that checks a
value before deploying refuses it too and passes the example's. Both, and the nested templates they name: every local path
(CodeUri, ContentUri, DefinitionUri, an application's Location) exists, and what `sam build` needs
for each function built from a local CodeUri is there (the handler's module, npm's package.json, a
Makefile with the function's target for a provided runtime). With --sam PATH (make sam-test): `sam
build` of the example as shipped, then every invoke check the example gives ShiftGuard (each hook's
`invoke` checks and `burst` targets) run with node against the application as built. Exits non-zero
on any failure."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TEMPLATE = HERE / "template.yaml"
NESTED = HERE / "shiftguard" / "template.yaml"
HOOK_OUTPUTS = {"PreTraffic": "PreTrafficHookName", "PostTraffic": "PostTrafficHookName"}
NESTED_OUTPUTS = [
    "PreTrafficHookName", "PreTrafficHookArn", "PostTrafficHookName", "PostTrafficHookArn",
    "RollbackFunctionName", "RollbackFunctionArn", "AlarmTopicArn", "RollbackFailureQueueArn",
]
NESTED_PARAMETERS = [
    "ArtifactsBucket", "FunctionName", "CodeDeployApplication", "PreTrafficChecks", "PostTrafficChecks",
    "RollbackTargets", "RollbackStageArns", "DryRun",
]
# The configuration's JSON Schema and the nested application's JSON parameters: each is what one
# function reads at start-up, parsed with the types the schema is generated from (its root here).
SCHEMA = ROOT / "cdk" / "schema" / "shiftguard.schema.json"
NESTED_README = NESTED.parent / "README.md"
JSON_PARAMETERS = {"PreTrafficChecks": "checkSet", "PostTrafficChecks": "checkSet", "RollbackTargets": "rollbackMappings"}
SAR_KEYS = ["Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "Labels", "SemanticVersion", "SourceCodeUrl"]


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


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)


def lint(path: Path, failures: list[str]) -> None:
    name = path.relative_to(HERE)
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        failures.append(f"cfn-lint {name}:\n{result.stdout}{result.stderr}")
    else:
        print(f"cfn-lint: {name} passes")


def translate(path: Path, failures: list[str]) -> dict:
    sam = load(path)
    # Local CodeUris are uploaded by `sam package`; offline, stand in an S3 location.
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(resource["Properties"].get("CodeUri"), str):
            resource["Properties"]["CodeUri"] = f"s3://example-bucket/{logical_id}.zip"
    try:
        return transform(sam, {}, NoManagedPolicies())
    except InvalidDocumentException as exc:
        failures.append(f"aws-sam-translator {path.relative_to(HERE)}: " + "; ".join(str(e) for e in exc.causes))
        return {"Resources": {}, "Outputs": {}}


def references(value) -> set[str]:
    """Logical ids (and parameters) a value names through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        for key, v in value.items():
            if key == "Ref" and isinstance(v, str):
                found.add(v)
            elif key == "Fn::GetAtt":
                found.add((v.split(".", 1)[0] if isinstance(v, str) else v[0]))
            elif key == "Fn::Sub":
                text, local = (v, {}) if isinstance(v, str) else (v[0], v[1])
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} - set(local)
                found |= references(local)
            else:
                found |= references(v)
    return found


def cycle(resources: dict) -> list[str] | None:
    """A circular dependency among the resources, as CloudFormation computes them, or None."""
    edges = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        named = references({k: v for k, v in resource.items() if k != "DependsOn"}) | set(depends)
        edges[logical_id] = sorted(named & set(resources))
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state and (found := visit(node)):
            return found
    return None


def statements(role: dict) -> list:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def report(label: str, checks: list[tuple[str, bool]], failures: list[str]) -> None:
    for what, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {label}: {what}")
        if not ok:
            failures.append(f"{label}: {what}")


def check_nested(failures: list[str]) -> dict:
    lint(NESTED, failures)
    sam = load(NESTED)
    cfn = translate(NESTED, failures)
    resources = cfn["Resources"]
    by_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}
    functions = by_type("AWS::Lambda::Function")
    roles = by_type("AWS::IAM::Role")
    sar = sam.get("Metadata", {}).get("AWS::ServerlessRepo::Application", {})
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]
    name_of = lambda f: json.dumps(f["Properties"].get("FunctionName"))
    hooks = {k: f for k, f in functions.items() if "CodeDeployHook_" in name_of(f)}
    rollback = [f for f in functions.values() if "_rollback" in name_of(f)]
    rollback_role = json.dumps(roles.get("RollbackRole", {}))
    post_role = roles.get("PostTrafficHookRole", {"Properties": {}})
    stage_statement = [s for s in statements(roles["RollbackRole"]) if "apigateway:PATCH" in json.dumps(s)] if "RollbackRole" in roles else []
    alias_write = [s for s in statements(post_role) if "lambda:UpdateAlias" in json.dumps(s)]
    rollback_statements = statements(roles["RollbackRole"]) if "RollbackRole" in roles else []
    function_arn = {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${FunctionName}"}
    tag_reads = [s for s in rollback_statements if "lambda:ListTags" in json.dumps(s.get("Action"))]
    tag_writes = [s for s in rollback_statements if "TagResource" in json.dumps(s.get("Action"))]
    lattice_actions = [a for s in rollback_statements for a in ([s.get("Action")] if isinstance(s.get("Action"), str) else s.get("Action") or []) if str(a).startswith("vpc-lattice:")]
    all_actions = json.dumps([statements(r) for r in roles.values()])
    report("shiftguard/template.yaml", [
        ("three functions: two hooks named CodeDeployHook_* and rollback", len(functions) == 3 and len(hooks) == 2 and len(rollback) == 1),
        ("every function's code comes from the ArtifactsBucket parameter", all(
            f["Properties"]["Code"].get("S3Bucket") == {"Ref": "ArtifactsBucket"} for f in functions.values())),
        ("the hooks read HOOK_CHECKS from PreTrafficChecks / PostTrafficChecks", sorted(
            json.dumps(f["Properties"]["Environment"]["Variables"]["HOOK_CHECKS"]) for f in hooks.values()) == [
            '{"Ref": "PostTrafficChecks"}', '{"Ref": "PreTrafficChecks"}']),
        ("the emergency bypass is the AllowSkip parameter (HOOK_ALLOW_SKIP), off by default", all(
            f["Properties"]["Environment"]["Variables"].get("HOOK_ALLOW_SKIP") == {"Ref": "AllowSkip"} for f in hooks.values())
            and sam.get("Parameters", {}).get("AllowSkip", {}).get("Default") == "false"),
        ("rollback reads ROLLBACK_TARGETS and DRY_RUN from the parameters", bool(rollback) and {
            k: rollback[0]["Properties"]["Environment"]["Variables"].get(k) for k in ("ROLLBACK_TARGETS", "DRY_RUN")} == {
            "ROLLBACK_TARGETS": {"Ref": "RollbackTargets"}, "DRY_RUN": {"Ref": "DryRun"}}),
        ("rollback is subscribed to the alarm topic", any(
            r["Type"] == "AWS::SNS::Subscription" and r["Properties"].get("Protocol") == "lambda"
            and r["Properties"].get("TopicArn") == {"Ref": "AlarmTopic"} for r in resources.values())),
        ("rollback has reserved concurrency", bool(rollback) and "ReservedConcurrentExecutions" in rollback[0]["Properties"]),
        ("rollback retries twice, then the failure queue (SQS managed SSE)", any(
            c["Properties"].get("MaximumRetryAttempts") == 2
            and c["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") == {"Fn::GetAtt": ["RollbackFailures", "Arn"]}
            for c in by_type("AWS::Lambda::EventInvokeConfig").values())
            and resources.get("RollbackFailures", {}).get("Properties", {}).get("SqsManagedSseEnabled") is True),
        ("the alarm topic takes an optional KMS key", "KmsMasterKeyId" in resources.get("AlarmTopic", {}).get("Properties", {})),
        ("IAM is scoped to the FunctionName and CodeDeployApplication parameters", all(
            "${FunctionName}" in json.dumps(statements(r)) and "${CodeDeployApplication}" in json.dumps(statements(r)) for r in roles.values())
            and len(roles) == 3),
        ("no wildcard actions", '"lambda:*"' not in all_actions and '"codedeploy:*"' not in all_actions and '"apigateway:*"' not in all_actions),
        ("rollback may GET/PATCH exactly the RollbackStageArns, only when given", len(stage_statement) == 1
            and stage_statement[0].get("Fn::If", [None])[0] == "HasStages"
            and stage_statement[0]["Fn::If"][1]["Resource"] == {"Ref": "RollbackStageArns"}),
        ("the hooks may read the checked function's code hash (GetFunction), no version description, and post-traffic its logs", all(
            "lambda:GetFunctionConfiguration" not in json.dumps(statements(roles[f"{k}Role"])) and "lambda:GetFunction\"" in json.dumps(statements(roles[f"{k}Role"]))
            for k in ("PreTrafficHook", "PostTrafficHook") if f"{k}Role" in roles) and "logs:FilterLogEvents" in json.dumps(statements(post_role))),
        ("post-traffic may write only the StableAlias, only when given", len(alias_write) == 1
            and alias_write[0].get("Fn::If", [None])[0] == "HasStableAlias"),
        ("rollback may publish to NotifyTopicArn only when given", "HasNotifyTopic" in rollback_role),
        ("rollback only reads the StableAlias (GetAlias), never updates it", not any(
            "UpdateAlias" in json.dumps(s) and "${StableAlias}" in json.dumps(s) for s in rollback_statements)
            and any("${StableAlias}" in json.dumps(s) and "lambda:GetAlias" in json.dumps(s) for s in rollback_statements)),
        ("rollback may read the function's tags (the rollout marker, its restore record): ListTags on the unqualified FunctionName", tag_reads == [
            {"Effect": "Allow", "Action": "lambda:ListTags", "Resource": function_arn}]),
        ("rollback may write only its restore record: TagResource on FunctionName, aws:TagKeys shiftguard:restored:* only", tag_writes == [
            {"Effect": "Allow", "Action": "lambda:TagResource", "Resource": function_arn,
             "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["shiftguard:restored:*"]}}}]),
        ("rollback has no VPC Lattice permissions (no Lattice target is parameterised), hence no Lattice tag statements", lattice_actions == []),
        ("the parameters", all(p in sam.get("Parameters", {}) for p in NESTED_PARAMETERS)),
        ("the outputs", all(o in cfn.get("Outputs", {}) for o in NESTED_OUTPUTS)),
        ("Serverless Application Repository metadata", all(sar.get(k) for k in SAR_KEYS)),
        ("its license is the project's (Cargo.toml)", sar.get("SpdxLicenseId") == cargo["license"]),
        ("its SemanticVersion is the project's (Cargo.toml)", sar.get("SemanticVersion") == cargo["version"]),
        ("LicenseUrl and ReadmeUrl name files beside the template", all(
            sar.get(k) and (NESTED.parent / sar[k]).is_file() for k in ("LicenseUrl", "ReadmeUrl"))),
        ("no circular dependency", (c := cycle(resources)) is None or print("  cycle:", " -> ".join(c))),
    ], failures)
    return {"sam": sam, "cfn": cfn}


def check_example(nested: dict, failures: list[str]) -> None:
    lint(TEMPLATE, failures)
    sam = load(TEMPLATE)
    cfn = translate(TEMPLATE, failures)
    resources = cfn["Resources"]
    by_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}
    applications = {k: r for k, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Application"}
    app_id = next(iter(applications), None)
    stacks = by_type("AWS::CloudFormation::Stack")
    stack = stacks.get(app_id, {"Properties": {}})
    passed = stack["Properties"].get("Parameters", {})
    nested_parameters = nested["sam"].get("Parameters", {})
    required = {k for k, p in nested_parameters.items() if "Default" not in p}
    nested_outputs = nested["cfn"].get("Outputs", {})
    groups = by_type("AWS::CodeDeploy::DeploymentGroup")
    aliases = by_type("AWS::Lambda::Alias")
    alarms = by_type("AWS::CloudWatch::Alarm")
    hooks = [a.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate", {}) for a in aliases.values()]
    targets = json.dumps(passed.get("RollbackTargets"))
    report("template.yaml", [
        ("exactly one AWS::Serverless::Application", len(applications) == 1),
        ("it becomes a nested stack of the local ShiftGuard template", len(stacks) == 1
            and (TEMPLATE.parent / str(stack["Properties"].get("TemplateURL"))).resolve() == NESTED),
        ("ShiftGuard's functions live only in the nested application", set(by_type("AWS::Lambda::Function")) == {"Checkout"}),
        ("it passes only parameters ShiftGuard declares, and every required one", set(passed) <= set(nested_parameters) and required <= set(passed)),
        ("the alias `live` has a CodeDeploy UpdatePolicy whose hooks are the application's outputs", len(aliases) == 1 and all(
            h.get(f"{'Before' if when == 'PreTraffic' else 'After'}AllowTrafficHook") == {"Fn::GetAtt": [app_id, f"Outputs.{output}"]}
            and output in nested_outputs for h in hooks for when, output in HOOK_OUTPUTS.items())),
        ("a CodeDeploy application", len(by_type("AWS::CodeDeploy::Application")) == 1),
        ("a deployment group", len(groups) == 1),
        ("the deployment group has the alarms", any(len(g["Properties"].get("AlarmConfiguration", {}).get("Alarms", [])) == 2 for g in groups.values())),
        ("the deployment group uses the canary config", any("Canary10Percent5Minutes" in json.dumps(g["Properties"].get("DeploymentConfigName")) for g in groups.values())),
        ("the IAM scope is the generated CodeDeploy application", passed.get("CodeDeployApplication") == {"Ref": "ServerlessDeploymentApplication"}),
        ("the alarms publish to the application's alarm topic", len(alarms) == 2 and all(
            a["Properties"].get("AlarmActions") == [{"Fn::GetAtt": [app_id, "Outputs.AlarmTopicArn"]}] for a in alarms.values())
            and "AlarmTopicArn" in nested_outputs),
        ("rollback's targets name the alarms", all(a["Properties"]["AlarmName"] in targets for a in alarms.values())),
        ("the API stage has a canary", any("CanarySetting" in json.dumps(r.get("Properties", {})) for r in [*by_type("AWS::ApiGateway::Stage").values(), *by_type("AWS::ApiGateway::Deployment").values()])),
        ("rollback's targets include the stage canary, with its stage ARN for IAM", "apigateway-canary" in targets
            and "/restapis/${CheckoutApi}/stages/prod" in json.dumps(passed.get("RollbackStageArns"))),
        ("the checks are valid JSON", all(_json_ok(passed.get(k)) for k in ("PreTrafficChecks", "PostTrafficChecks", "RollbackTargets"))),
        ("no circular dependency", (c := cycle(resources)) is None or print("  cycle:", " -> ".join(c))),
    ], failures)


def _json_ok(value) -> bool:
    """A parameter's JSON, with ${...} of a Sub stood in by a placeholder."""
    text = value.get("Fn::Sub") if isinstance(value, dict) else value
    if not isinstance(text, str):
        return False
    try:
        json.loads(re.sub(r"\$\{[^}]*\}", "X", text))
        return True
    except ValueError:
        return False


def parameter_text(value) -> str | None:
    """A parameter's value as the function will read it, each ${...} of a Sub stood in by a string."""
    text = value.get("Fn::Sub") if isinstance(value, dict) else value
    if isinstance(text, list):
        text = text[0]
    return re.sub(r"\$\{[^}]*\}", "SUBSTITUTED", text) if isinstance(text, str) else None


def schema_problems(root: str, text: str) -> list[str]:
    """What the functions would refuse in a parameter's value, by the committed schema: one line
    each, with its JSON path; empty when valid."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors({root: value})]


def readme_applications() -> list[tuple[str, dict]]:
    """(where, Parameters) of each AWS::Serverless::Application snippet in the nested application's README."""
    found = []
    text = NESTED_README.read_text()
    for m in re.finditer(r"```yaml\n(.*?)```", text, re.S):
        try:
            doc = yaml.load(m.group(1), Loader=CfnLoader)
        except yaml.YAMLError:
            continue
        for name, resource in (doc.items() if isinstance(doc, dict) else []):
            if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Application":
                found.append((f"shiftguard/README.md:{text[:m.start()].count(chr(10)) + 1} {name}", resource["Properties"]["Parameters"]))
    return found


def readme_command() -> str:
    """The README's command that checks a parameter's value before deploying (the block after its marker)."""
    m = re.search(r"<!-- check-parameters -->\s*```sh\n(.*?)```", NESTED_README.read_text(), re.S)
    return m.group(1).strip() if m else ""


def run_readme_command(command: str, value: str | None = None) -> subprocess.CompletedProcess:
    """The command from the repository's root, with this Python (it has jsonschema), and `value` in
    place of its example's (the last quoted argument) when given."""
    command = re.sub(r"^python3 ", lambda _: f"{sys.executable} ", command)
    if value is not None:
        command = re.sub(r"'[^']*'\s*$", lambda _: shlex.quote(value), command)
    return subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)


def check_parameters(failures: list[str]) -> None:
    """SAM has no synth step: the configuration the example and the README give, against the schema."""
    declared = load(NESTED).get("Parameters", {})
    example = load(TEMPLATE)["Resources"]["ShiftGuard"]["Properties"]["Parameters"]
    applications = [("template.yaml ShiftGuard", example), *readme_applications()]
    checks = [("the nested application's README shows a ShiftGuard application", len(applications) > 1)]
    for name, root in JSON_PARAMETERS.items():
        pattern = declared.get(name, {}).get("AllowedPattern")
        checks.append((f"{name}: an AllowedPattern for its JSON's outer shape, with a ConstraintDescription", pattern is not None
                       and "ConstraintDescription" in declared[name]))
        if "Default" in declared.get(name, {}):
            problems = schema_problems(root, str(declared[name]["Default"]))
            checks.append((f"{name}'s default is a valid {root}" + (f" ({'; '.join(problems)})" if problems else ""), not problems))
        for where, parameters in applications:
            text = parameter_text(parameters.get(name))
            if text is None:
                checks.append((f"{where}: {name} is given", False))
                continue
            problems = schema_problems(root, text)
            checks.append((f"{where}: {name} is a valid {root} by cdk/schema/shiftguard.schema.json" + (f" ({'; '.join(problems)})" if problems else ""), not problems))
            if pattern is not None:
                checks.append((f"{where}: {name} matches its AllowedPattern", re.fullmatch(pattern, text) is not None))
    # The check can fail: the example's PreTrafficChecks with a misspelt setting is refused, naming
    # the check and the setting.
    good = parameter_text(example["PreTrafficChecks"]) or ""
    bad = good.replace('"timeout"', '"timout"', 1)
    checks.append(("a misspelt setting (timout) in the example's PreTrafficChecks is refused, naming the check and the setting", bad != good
                   and any(p.startswith("$.checkSet.checks[0]") and "'timout'" in p for p in schema_problems("checkSet", bad))))
    command = readme_command()
    checks.append(("the README shows the command that checks a value before deploying", bool(command)))
    if command:
        as_written = run_readme_command(command)
        checks.append(("the README's command refuses its example's typo: exit 1, the problem's path and the setting printed",
                       as_written.returncode == 1 and "$.checkSet.checks[0]" in as_written.stdout and "timout" in as_written.stdout))
        for value, exit_code, what in ((good, 0, "passes the example's PreTrafficChecks"), (bad, 1, "refuses the example's PreTrafficChecks with timout")):
            ran = run_readme_command(command, value)
            checks.append((f"the README's command {what} (exit {exit_code})", ran.returncode == exit_code))
            if ran.returncode != exit_code:
                print(ran.stdout + ran.stderr)
    report("configuration", checks, failures)


# The properties of SAM resources that name local files (`sam build` / `sam package` read them).
LOCAL_PATH_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Application": "Location",
}


def local_paths(template: Path) -> list[tuple[Path, str, str, Path]]:
    """(template, resource, property, path) for every local path `template` and the nested templates
    it names give: a string that is no URI (s3://, https://). A function's CodeUri may come from Globals."""
    sam = load(template)
    function_globals = sam.get("Globals", {}).get("Function", {})
    found = []
    for logical_id, resource in sam["Resources"].items():
        prop = LOCAL_PATH_PROPERTIES.get(resource["Type"])
        if prop is None:
            continue
        value = resource.get("Properties", {}).get(prop)
        if value is None and resource["Type"] == "AWS::Serverless::Function":
            value = function_globals.get(prop)
        if isinstance(value, str) and "://" not in value:
            path = (template.parent / value).resolve()
            found.append((template, logical_id, prop, path))
            if resource["Type"] == "AWS::Serverless::Application" and path.is_file():
                found += local_paths(path)
    return found


def build_inputs(template: Path, logical_id: str, code: Path) -> list[tuple[str, bool]]:
    """What `sam build` reads to build a function from a local CodeUri, by runtime."""
    sam = load(template)
    resource = sam["Resources"][logical_id]
    props = {**sam.get("Globals", {}).get("Function", {}), **resource.get("Properties", {})}
    runtime, handler = str(props.get("Runtime", "")), str(props.get("Handler", ""))
    label = f"{logical_id} ({runtime})"
    if runtime.startswith("nodejs"):
        module, _, export = handler.rpartition(".")
        return [
            (f"{label}: package.json, the manifest sam build's npm builder packs", (code / "package.json").is_file()),
            (f"{label}: the handler's module {module}.js|.mjs|.cjs exports {export}", any(
                (code / f"{module}{ext}").is_file() and re.search(rf"\b(exports\.{export}\s*=|export\s+(const|async\s+function|function)\s+{export}\b)",
                                                                   (code / f"{module}{ext}").read_text())
                for ext in (".js", ".mjs", ".cjs"))),
        ]
    if runtime.startswith("python"):
        module, _, function = handler.rpartition(".")
        source = code / (module.replace(".", "/") + ".py")
        return [(f"{label}: the handler's module {source.name} defines {function}", source.is_file()
                 and re.search(rf"^(async\s+)?def\s+{function}\b", source.read_text(), re.M) is not None)]
    if runtime.startswith("provided"):
        makefile = code / "Makefile"
        # Without BuildMethod, sam build also runs make for a provided runtime.
        return [(f"{label}: a Makefile with the target build-{logical_id}", makefile.is_file()
                 and re.search(rf"^build-{logical_id}\s*:", makefile.read_text(), re.M) is not None)]
    return [(f"{label}: no rule here for what sam build needs for this runtime (add one)", False)]


def check_local_paths(failures: list[str]) -> None:
    checks = []
    for template, logical_id, prop, path in local_paths(TEMPLATE):
        name = template.relative_to(HERE)
        shown = os.path.relpath(path, template.parent)
        checks.append((f"{name}: {logical_id}'s {prop} {shown} exists", path.exists()))
        if prop == "CodeUri" and path.is_dir():
            checks += [(f"{name}: {what}", ok) for what, ok in build_inputs(template, logical_id, path)]
    checks.append(("template.yaml names local paths (the checks above ran)", len(checks) > 0))
    report("local paths", checks, failures)


def invoke_checks(passed: dict) -> list[tuple[str, dict, int]]:
    """(name, payload, status) of every invoke check the example gives ShiftGuard: each hook's
    `invoke` checks and the `invoke` targets of its `burst` checks."""
    found = []
    for parameter in ("PreTrafficChecks", "PostTrafficChecks"):
        for check in json.loads(passed[parameter])["checks"]:
            invoke = check if check["kind"] == "invoke" else check.get("target", {}).get("invoke") if check["kind"] == "burst" else None
            if invoke is not None and "status" in invoke.get("expect", {}):
                found.append((f"{parameter} {check['name']}", invoke.get("payload", {}), invoke["expect"]["status"]))
    return found


def check_sam_build(sam_cli: Path, failures: list[str]) -> None:
    """`sam build` of the example as shipped, then its invoke checks against the built application."""
    sam = load(TEMPLATE)
    passed = sam["Resources"]["ShiftGuard"]["Properties"]["Parameters"]
    with tempfile.TemporaryDirectory(prefix="shiftguard-sam-build-") as tmp:
        build_dir = Path(tmp) / "build"
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
        result = subprocess.run(
            [str(sam_cli), "build", "--template-file", str(TEMPLATE), "--base-dir", str(HERE), "--build-dir", str(build_dir),
             "--parameter-overrides", "ShiftGuardArtifacts=example-artifacts"],
            capture_output=True, text=True, env=env, cwd=tmp, timeout=600)
        built = build_dir / "Checkout"
        checks = [("sam build of template.yaml succeeds", result.returncode == 0)]
        if result.returncode != 0:
            print(result.stdout + result.stderr)
        checks.append(("the built function holds the application (Checkout/app.js, package.json)",
                       (built / "app.js").is_file() and (built / "package.json").is_file()))
        cases = invoke_checks(passed)
        checks.append(("the example gives ShiftGuard invoke checks to run", len(cases) > 0))
        if (built / "app.js").is_file() and cases:
            script = ("const { handler } = require(process.argv[1]);"
                      "(async () => { for (const p of JSON.parse(process.argv[2])) console.log(JSON.stringify((await handler(p)).statusCode)); })()"
                      ".catch((e) => { console.error(e); process.exit(1); });")
            ran = subprocess.run(["node", "-e", script, str(built / "app.js"), json.dumps([p for _, p, _ in cases])],
                                 capture_output=True, text=True, timeout=60)
            statuses = [json.loads(line) for line in ran.stdout.split()] if ran.returncode == 0 else []
            if ran.returncode != 0:
                print(ran.stderr)
            for (name, payload, status), got in zip(cases, statuses + [None] * len(cases)):
                checks.append((f"{name}: {json.dumps(payload)} answers {status} (got {got})", got == status))
    report("sam build", checks, failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam", type=Path, help="the sam CLI: also run `sam build` of the example and its invoke checks on the result")
    args = parser.parse_args()
    # The translator fills pseudo parameters from the session; offline, name a region.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    failures: list[str] = []
    nested = check_nested(failures)
    check_example(nested, failures)
    check_parameters(failures)
    check_local_paths(failures)
    if args.sam:
        if not args.sam.is_file():
            print(f"--sam {args.sam}: no such file (make sam-test installs it in .venv-sam)")
            return 2
        check_sam_build(args.sam.resolve(), failures)
    else:
        print("sam build: not run (no --sam; make sam-test gives it)")
    if failures:
        print("\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
