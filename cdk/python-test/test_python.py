"""shiftguard-cdk from Python (make cdk-python): the jsii-built wheel, installed into this venv.

- The wheel's embedded npm package: the assembly (.jsii), the modules, the configuration schema
  byte for byte, ajv bundled with exactly what it needs.
- app.py (the pack test's app, the Protect and Lattice example stacks, the rest of the API)
  synthesizes the same cloud assembly as its TypeScript twins (cdk/test/python-twins.ts): compare.py.
- A typo raises RuntimeError with the message TypeScript's Error has; what jsii cannot type in
  Python (string literal types, dicts in union-of-structs positions) is refused at the call.
"""
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CDK = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import compare  # noqa: E402

STACKS = ["Tiny", "ShiftGuardProtectExample", "ShiftGuardLatticeExample", "Surface"]
EXAMPLES = {"ShiftGuardProtectExample", "ShiftGuardLatticeExample"}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cdk-python")


@pytest.fixture(scope="session")
def assemblies(work):
    """(TypeScript's, Python's) cloud assemblies of the same stacks, synthesized side by side."""
    ts, py = str(work / "ts.out"), str(work / "py.out")
    runs = [
        subprocess.Popen(["node", os.path.join(CDK, "dist", "test", "python-twins.js"), ts, str(work / "zips")],
                         cwd=CDK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen([sys.executable, os.path.join(HERE, "app.py"), py, str(work / "zips")],
                         cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    for run, what in zip(runs, ("TypeScript twins (node dist/test/python-twins.js)", "Python app (app.py)")):
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, f"{what} failed:\n{out}"
    return ts, py


def test_aws_cdk_lib_versions_agree():
    """Both sides run one aws-cdk-lib: its own handlers' assets are then the same too."""
    with open(os.path.join(CDK, "node_modules", "aws-cdk-lib", "package.json")) as f:
        npm = json.load(f)["version"]
    assert importlib.metadata.version("aws-cdk-lib") == npm, (
        "cdk/package.json's aws-cdk-lib devDependency and cdk/python-test/requirements.txt must pin the same version")


def test_the_wheel_requires_the_peer_floor():
    with open(os.path.join(CDK, "package.json")) as f:
        peer = json.load(f)["peerDependencies"]["aws-cdk-lib"]
    assert peer.startswith("^")
    requires = importlib.metadata.requires("shiftguard-cdk")
    assert f"aws-cdk-lib<3.0.0,>=" + peer[1:] in [r.replace(" ", "") for r in requires], requires
    # The floor is what this venv runs: the Python side tests the oldest aws-cdk-lib it accepts.
    assert importlib.metadata.version("aws-cdk-lib") == peer[1:]


def _closure(name):
    """The packages `name` needs at run time, itself included, as cdk/package-lock.json installs them."""
    with open(os.path.join(CDK, "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    found, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n not in found:
            found.add(n)
            todo.extend(lock.get(f"node_modules/{n}", {}).get("dependencies", {}))
    return sorted(found)


def test_the_wheels_npm_package():
    """What the jsii runtime loads: the library's modules, .jsii, the schema, ajv bundled."""
    import shiftguard_cdk._jsii as embedded
    folder = os.path.dirname(embedded.__file__)
    [tarball] = [f for f in os.listdir(folder) if f.endswith(".jsii.tgz")]
    with tarfile.open(os.path.join(folder, tarball)) as tar:
        names = [n.removeprefix("package/") for n in tar.getnames()]
        schema = tar.extractfile("package/schema/shiftguard.schema.json").read()
        assembly = json.loads(tar.extractfile("package/.jsii").read())
    with open(os.path.join(CDK, "schema", "shiftguard.schema.json"), "rb") as f:
        assert schema == f.read(), "the wheel's schema is not the committed one"
    modules = sorted(f[:-3] for f in os.listdir(os.path.join(CDK, "lib")) if f.endswith(".ts") and f not in ("stacks.ts", "rehearsal.ts"))
    own = sorted(n for n in names if not n.startswith("node_modules/"))
    assert own == sorted([".jsii", "LICENSE", "README.md", "package.json", "schema/shiftguard.schema.json",
                          *[f"dist/lib/{m}.{ext}" for m in modules for ext in ("js", "d.ts")]])
    bundled = sorted({n.split("/")[1] for n in names if n.startswith("node_modules/")})
    assert bundled == _closure("ajv")
    assert assembly["name"] == "shiftguard-cdk"
    assert list(assembly.get("bundled", {})) == ["ajv"]


@pytest.mark.parametrize("stack", STACKS)
def test_same_stack_as_typescript(assemblies, stack):
    ts, py = assemblies
    differences = compare.stack_differences(ts, py, stack)
    assert not differences, f"{stack}: Python's synthesis differs from TypeScript's:\n" + "\n".join(differences)


def test_the_assemblies_hold_exactly_these_stacks(assemblies):
    ts, py = assemblies
    assert sorted(compare.stacks(ts)) == sorted(compare.stacks(py)) == sorted(STACKS)
    # What the stacks have (a comparison of two empty things proves nothing).
    with open(os.path.join(py, "ShiftGuardLatticeExample.template.json")) as f:
        kinds = [r["Type"] for r in json.load(f)["Resources"].values()]
    assert kinds.count("AWS::StepFunctions::StateMachine") == 1
    with open(os.path.join(py, "ShiftGuardProtectExample.template.json")) as f:
        kinds = [r["Type"] for r in json.load(f)["Resources"].values()]
    assert kinds.count("AWS::CodeDeploy::DeploymentGroup") == 2


# What follows runs in this process: one jsii runtime for every call.
from aws_cdk import App, Stack  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
import shiftguard_cdk as sg  # noqa: E402


def _guard(work, stack_id="T"):
    from app import stand_in_assets
    stack = Stack(App(), stack_id)
    return stack, sg.ShiftGuard(stack, "ShiftGuard", asset_dir=stand_in_assets(str(work / "zips")), architecture=lambda_.Architecture.X86_64)


def _function(stack, name):
    return lambda_.Function(stack, name, runtime=lambda_.Runtime.NODEJS_LATEST, handler="index.handler",
                            code=lambda_.Code.from_inline("exports.handler = async () => 1"))


def _message(error):
    """The JavaScript Error's message from the RuntimeError jsii raises (`Error: <message>`)."""
    text = str(error)
    assert text.startswith("Error: "), text
    return text[len("Error: "):]


def test_a_typo_raises_the_message_typescript_gets(work):
    """The pack test's typo app (protect() with `timout` and `invok`): the same lines as TypeScript's Error."""
    typescript = subprocess.run(["node", os.path.join(CDK, "dist", "test", "python-twins.js"), "--typo", str(work / "zips")],
                                cwd=CDK, capture_output=True, text=True, check=True).stdout
    stack, guard = _guard(work, "Typo")
    with pytest.raises(RuntimeError) as raised:
        guard.protect(_function(stack, "cart"),
                      pre_traffic=sg.HookChecks(checks=[{"name": "smoke", "kind": "invoke", "timout": "5s"}]),
                      post_traffic=sg.HookChecks(checks=[{"name": "alias-smoke", "kind": "invok"}]))
    assert _message(raised.value) == typescript
    assert typescript.splitlines() == [
        'ShiftGuard protect(cart): preTraffic.checks[0]: unknown setting "timout" (an invoke check has: name, kind, expect, payload, backoff, functions, required, retries, timeout)',
        'ShiftGuard protect(cart): postTraffic.checks[0].kind: "invok" is not a check kind (invoke, http, burst, metrics, compare, logs, artifact)',
    ]


def test_dicts_where_structs_are_expected(work):
    """The README's caveat. A struct class refuses an unknown keyword argument, and so does a
    struct's field given as a dict (converted by its class). Elsewhere — a union of structs (a
    rollback or rollout target), a list of structs (steps), a struct passed positionally — a dict
    reaches the construct with only the fields jsii matches by their camelCase names: any other key
    is dropped before validation can see it. A check, free-form JSON, keeps every key and is
    validated whole."""
    stack, guard = _guard(work)
    with pytest.raises(TypeError, match="unexpected keyword argument 'stable_alais'"):
        sg.AliasRolloutTarget(type="lambda-alias", function="f", alias="live", stable_alais="blue")
    with pytest.raises(TypeError, match="unexpected keyword argument 'concurency'"):
        guard.protect(_function(stack, "fn"), pre_traffic={"checks": [{"name": "x", "kind": "invoke"}], "concurency": 2})
    targets = {
        "camelCase": {"type": "lambda-alias", "function": "f", "alias": "live", "stableAlias": "blue"},
        "snake_case": {"type": "lambda-alias", "function": "f", "alias": "live", "stable_alias": "blue"},
        "misspelt": {"type": "lambda-alias", "function": "f", "alias": "live", "stableAlais": "blue"},
    }
    plans = {k: json.loads(guard.rollout(k, target=t, steps=[{"weight": 50, "bak": "5m"}, {"weight": 100}], alarms=["a"]).plan_json)
             for k, t in targets.items()}
    assert plans["camelCase"]["target"] == targets["camelCase"]
    assert plans["snake_case"]["target"] == plans["misspelt"]["target"] == {"type": "lambda-alias", "function": "f", "alias": "live"}
    assert plans["camelCase"]["steps"] == [{"weight": 50}, {"weight": 100}]  # `bak` dropped too
    with pytest.raises(RuntimeError) as raised:
        guard.add_checks("pre-traffic", sg.HookChecks(checks=[{"name": "x", "kind": "invoke", "time_out": "5s"}]))
    assert 'checks[0]: unknown setting "time_out"' in _message(raised.value)


def test_string_literal_types_are_checked_at_the_call(work):
    """jsii has no string literal types: `phase` and every `type` are plain strings in Python."""
    _, guard = _guard(work)
    with pytest.raises(RuntimeError) as raised:
        guard.add_checks("pre_traffic", sg.HookChecks(checks=[{"name": "x", "kind": "invoke"}]))
    assert _message(raised.value) == 'ShiftGuard addChecks("pre_traffic"): phase: expected pre-traffic or post-traffic, got "pre_traffic"'
    with pytest.raises(RuntimeError) as raised:
        guard.add_rollback_mapping(alarms=["a"], targets=[sg.LambdaAliasTarget(type="lambda_alias", function="f", alias="live")])
    assert '"lambda_alias" is not a rollback target type' in _message(raised.value)
    with pytest.raises(RuntimeError) as raised:
        guard.rollout("r", target=sg.AliasRolloutTarget(type="lambda_alias", function="f", alias="live"),
                      steps=[sg.RolloutStep(weight=100)], alarms=["a"])
    assert "ShiftGuard rollout 'r': target.type: " in _message(raised.value)


def test_rollout_plan_is_json_in_python(work):
    """Rollout.plan is TypeScript only (a union of structs cannot come back): plan_json instead."""
    from aws_cdk import Duration
    _, guard = _guard(work)
    rollout = guard.rollout("r", target=sg.AliasRolloutTarget(type="lambda-alias", function="f", alias="live", stable_alias="blue"),
                            steps=[sg.RolloutStep(weight=10, bake=Duration.minutes(5)), sg.RolloutStep(weight=100, bake="90s")],
                            alarms=["a"])
    assert isinstance(rollout, sg.Rollout)
    assert not hasattr(rollout, "plan")
    assert rollout.plan_json == json.dumps({
        "target": {"type": "lambda-alias", "function": "f", "alias": "live", "stableAlias": "blue"},
        "steps": [{"weight": 10, "bake": "5m"}, {"weight": 100, "bake": "90s"}],
        "alarms": ["a"],
    }, separators=(",", ":"))
    assert "Shift.AwsError" in sg.Rollout.RETRYABLE_ERRORS and sg.Rollout.REFUSED_ERRORS == ["Shift.InvalidPlan", "Shift.Refused"]


def test_the_readmes_python_snippet(work):
    """cdk/README.md "Python": its snippet, run in a stack with its `api` and `ci_role` made for it
    (and its asset directory: relative paths are the jsii runtime's, resolved from where the app
    started), synthesizes a canary and a rollout."""
    import re
    from aws_cdk import aws_iam as iam
    from app import stand_in_assets
    with open(os.path.join(CDK, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("\n## Python\n"):]
    section = section[:section.index("\n## ", 1)]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)
    written = 'asset_dir="../shiftguard/target/lambda"'
    assert written in snippet
    assets = stand_in_assets(str(work / "readme" / "shiftguard" / "target" / "lambda"))
    stack = Stack(App(), "Readme")
    api = lambda_.Function(stack, "api", function_name="api", runtime=lambda_.Runtime.NODEJS_LATEST, handler="index.handler",
                           code=lambda_.Code.from_inline("exports.handler = async () => 1"))
    ci_role = iam.Role(stack, "ci", assumed_by=iam.AccountRootPrincipal())
    exec(compile(snippet.replace(written, f"asset_dir={assets!r}"), "cdk/README.md (Python)", "exec"),
         {"self": stack, "api": api, "ci_role": ci_role})
    template = stack.node.root.synth().get_stack_by_name("Readme").template
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert kinds.count("AWS::CodeDeploy::DeploymentGroup") == 1 and kinds.count("AWS::StepFunctions::StateMachine") == 1
    alarms = [r["Properties"]["AlarmName"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert "api-live-error-rate" in alarms  # the rollout's alarm is one protect() made
