"""The IAM a synthesized CloudFormation template gives its functions, made real in the emulator.

`POST /_shiftguard/iam/stack` takes a template (the CDK's `cdk.out/*.template.json`, or the SAM
nested application's translated template), resolves the intrinsic functions its roles' policies use
against the emulator's own resources, creates each function's role in the emulator's IAM with
exactly those statements, assumes it, and answers the credentials: a binary run with them can do
what the deployed function could do, and nothing more (with `POST /_shiftguard/iam
{"enforce": true, "strict": true}`).

Resolution, as CloudFormation does it at deploy time: `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
`Fn::Select`, `Fn::Split`, `Fn::If` (on the template's conditions: `Fn::Equals`, `Fn::Not`,
`Fn::And`, `Fn::Or`, `Condition`), the pseudo parameters, and parameters (given, else their
defaults). A resource's physical name is its naming property (`FunctionName`, `AlarmName`, …) or,
where the template leaves it to CloudFormation, a name made from the stack and the logical id;
VPC Lattice ids are assigned by the service, so a Lattice resource is found in the emulator by its
`Name` (a listener within its service). A reference that cannot be resolved (a Lattice resource not
created yet, a `Lambda::Version` whose number only a deployment knows) is an error naming it when
it is needed — unless the caller gives the value (`resources`), or, for policy resources, asks for
`"unresolved": "placeholder"`, where the ARN keeps a marker that matches no real resource (a
statement about a resource that does not exist grants nothing), and the answer lists each one.

Each function's statements are recorded (`GET /_shiftguard/iam/stack-roles`): the emulator notes,
for every call an assumed stack role makes, the statement that allowed it (`GET
/_shiftguard/iam/usage`; appended to `$SHIFTGUARD_IAM_USAGE` as JSON lines when set), from which
`tests/iam_report.py` writes the least-privilege report.

`POST /_shiftguard/iam/operator` answers the keys of an IAM user allowed everything: the test driver's
own identity under strict IAM (it sets the world up; the binaries run as their roles).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import threading
from typing import Any

import state
from state import DEFAULT_ACCOUNT, LOCK, lattice_backend

PARTITION = "aws"
_LOCK = threading.Lock()
#: role ARN → {"stack", "function", "logicalId", "role", "statements": [...]}.
ROLES: dict[str, dict] = {}
#: One entry per authorized call of a stack role: {"stack", "function", "action", "resources", "statement", "allowed"}.
USAGE: list[dict] = []
_NO_VALUE = object()


class Unresolvable(ValueError):
    """A reference the emulator cannot resolve; the message names it."""


def _name_from(stack: str, logical: str, limit: int = 64) -> str:
    """A CloudFormation-style generated name: stack-logical-SUFFIX, within the service's limit."""
    suffix = hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest()[:12].upper()
    head = f"{stack}-{logical}"[: max(1, limit - len(suffix) - 1)]
    return f"{head}-{suffix}"


class Resolver:
    def __init__(self, template: dict, stack: str, region: str, account: str, parameters: dict | None = None,
                 resources: dict | None = None, placeholder: bool = False) -> None:
        self.template = template
        self.res = template.get("Resources") or {}
        self.stack = stack
        self.region = region
        self.account = account
        self.parameters = parameters or {}
        self.given = resources or {}
        self.placeholder = placeholder
        self.unresolved: list[str] = []
        self._attrs: dict[str, dict] = {}

    # -- intrinsic functions ---------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attr(logical, self.resolve(attr))
            if key == "Fn::Join":
                sep, parts = arg
                return self.resolve(sep).join(str(p) for p in self.resolve(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = arg
                items = self.resolve(items)
                return items[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text).split(self.resolve(sep))
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key.startswith("Fn::"):
                raise Unresolvable(f"{key} is not modelled (the emulator resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If)")
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        spec = (self.template.get("Conditions") or {}).get(name)
        if spec is None:
            raise Unresolvable(f"condition {name}: not in the template")
        return self._truth(spec)

    def _truth(self, spec: Any) -> bool:
        (key, arg), = spec.items()
        if key == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(a) for a in arg)
        if key == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        raise Unresolvable(f"condition function {key} is not modelled")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def one(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.attr(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": PARTITION,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.stack,
                  "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{self.account}:stack/{self.stack}/shiftguard-emulator",
                  "AWS::NotificationARNs": []}
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        params = self.template.get("Parameters") or {}
        if name in params:
            if name in self.parameters:
                return self.parameters[name]
            if "Default" in params[name]:
                return params[name]["Default"]
            raise Unresolvable(f"parameter {name}: no value given and no default")
        return self.attr(name, "Ref")

    # -- physical resources ----------------------------------------------------------------
    def attr(self, logical: str, attr: str) -> Any:
        given = self.given.get(logical) or {}
        if attr in given:
            return given[attr]
        if logical not in self.res:
            raise Unresolvable(f"{logical}: no such resource or parameter in the template")
        if logical not in self._attrs:
            try:
                self._attrs[logical] = self._physical(logical, self.res[logical])
            except Unresolvable as exc:
                if not self.placeholder:
                    raise
                self.unresolved.append(str(exc))
                # ARN-shaped (IAM refuses a policy whose resource is not an ARN), matching nothing real.
                marker = f"shiftguard-unresolved-{logical}"
                service = {"AWS::VpcLattice": "vpc-lattice", "AWS::Lambda": "lambda"}.get(
                    self.res[logical]["Type"].rsplit("::", 1)[0], self.res[logical]["Type"].split("::")[1].lower())
                arn = f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{marker}"
                self._attrs[logical] = {"Ref": arn, "Arn": arn, "Id": marker}
        attrs = self._attrs[logical]
        if attr not in attrs:
            raise Unresolvable(f"{logical} ({self.res[logical]['Type']}): attribute {attr} is not modelled (known: {', '.join(sorted(attrs))})")
        return attrs[attr]

    def _prop(self, r: dict, name: str) -> Any:
        value = (r.get("Properties") or {}).get(name)
        return None if value is None else self.resolve(value)

    def _physical(self, logical: str, r: dict) -> dict:
        t = r["Type"]
        reg, acct = self.region, self.account
        named = lambda prop, limit=64: self._prop(r, prop) or _name_from(self.stack, logical, limit)  # noqa: E731
        if t == "AWS::Lambda::Function":
            name = named("FunctionName")
            arn = f"arn:{PARTITION}:lambda:{reg}:{acct}:function:{name}"
            return {"Ref": name, "Arn": arn}
        if t == "AWS::Lambda::Alias":
            fn = self._function_arn(self._prop(r, "FunctionName"))
            arn = f"{fn}:{self._prop(r, 'Name')}"
            return {"Ref": arn, "AliasArn": arn}
        if t == "AWS::Lambda::Version":
            raise Unresolvable(f"{logical} (AWS::Lambda::Version): its number is known only once deployed; give it in `resources` "
                               f'(e.g. {{"{logical}": {{"Ref": "arn:…:function:NAME:2", "Version": "2"}}}})')
        if t == "AWS::IAM::Role":
            name = named("RoleName")
            return {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{acct}:role/{name}", "RoleId": "AROA" + hashlib.sha1(name.encode()).hexdigest()[:17].upper()}
        if t == "AWS::IAM::ManagedPolicy":
            name = named("ManagedPolicyName", 128)
            arn = f"arn:{PARTITION}:iam::{acct}:policy/{name}"
            return {"Ref": arn, "PolicyArn": arn}
        if t == "AWS::Logs::LogGroup":
            name = named("LogGroupName", 512)
            return {"Ref": name, "Arn": f"arn:{PARTITION}:logs:{reg}:{acct}:log-group:{name}:*"}
        if t == "AWS::SQS::Queue":
            name = named("QueueName", 80)
            return {"Ref": f"https://sqs.{reg}.amazonaws.com/{acct}/{name}", "QueueUrl": f"https://sqs.{reg}.amazonaws.com/{acct}/{name}",
                    "QueueName": name, "Arn": f"arn:{PARTITION}:sqs:{reg}:{acct}:{name}"}
        if t == "AWS::KMS::Key":
            key = str(__import__("uuid").uuid5(__import__("uuid").NAMESPACE_URL, f"{self.stack}/{logical}"))
            return {"Ref": key, "KeyId": key, "Arn": f"arn:{PARTITION}:kms:{reg}:{acct}:key/{key}"}
        if t == "AWS::SNS::Topic":
            name = named("TopicName", 256)
            arn = f"arn:{PARTITION}:sns:{reg}:{acct}:{name}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}
        if t == "AWS::CloudWatch::Alarm":
            name = named("AlarmName", 255)
            return {"Ref": name, "Arn": f"arn:{PARTITION}:cloudwatch:{reg}:{acct}:alarm:{name}"}
        if t == "AWS::CodeDeploy::Application":
            return {"Ref": named("ApplicationName", 100)}
        if t == "AWS::CodeDeploy::DeploymentGroup":
            return {"Ref": named("DeploymentGroupName", 100)}
        if t == "AWS::StepFunctions::StateMachine":
            name = named("StateMachineName", 80)
            arn = f"arn:{PARTITION}:states:{reg}:{acct}:stateMachine:{name}"
            return {"Ref": arn, "Arn": arn, "Name": name}
        if t in ("AWS::VpcLattice::Service", "AWS::VpcLattice::TargetGroup", "AWS::VpcLattice::ServiceNetwork", "AWS::VpcLattice::Listener"):
            return self._lattice(logical, r)
        raise Unresolvable(f"{logical} ({t}): the emulator does not model this resource type's physical ids; give them in `resources`")

    def _function_arn(self, fn: str) -> str:
        return fn if fn.startswith("arn:") else f"arn:{PARTITION}:lambda:{self.region}:{self.account}:function:{fn}"

    def _lattice(self, logical: str, r: dict) -> dict:
        t = r["Type"]
        name = self._prop(r, "Name")
        what = f"{logical} ({t} named {name!r})"
        if not name:
            raise Unresolvable(f"{logical} ({t}): has no Name; the emulator finds Lattice resources by name: give its ids in `resources`")
        backend = lattice_backend(self.region)
        with LOCK:
            if t == "AWS::VpcLattice::Service":
                found = [s for s in backend.services.values() if s.name == name]
            elif t == "AWS::VpcLattice::TargetGroup":
                found = [g for g in backend.target_groups.values() if g.name == name]
            elif t == "AWS::VpcLattice::ServiceNetwork":
                found = [n for n in backend.service_networks.values() if n.name == name]
            else:
                service = str(self._prop(r, "ServiceIdentifier")).rsplit("/", 1)[-1]
                found = [x for x in backend.listeners.values() if x.name == name and service in (getattr(x, "service_id", None), getattr(x, "service_identifier", None), x.arn.split("/")[1])]
        if not found:
            raise Unresolvable(f"{what}: no such resource in the emulator (create it before loading the template)")
        if len(found) > 1:
            raise Unresolvable(f"{what}: {len(found)} resources have this name in the emulator; give the ids in `resources`")
        return {"Ref": found[0].arn, "Arn": found[0].arn, "Id": found[0].id}


# ---------------------------------------------------------------------------------------------
# Functions, their roles and statements
# ---------------------------------------------------------------------------------------------


def _refers_to(roles: Any, logical: str) -> bool:
    return any(isinstance(x, dict) and x.get("Ref") == logical for x in (roles or []))


def _aws_managed(arn: str) -> dict:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    name = arn.rsplit("/", 1)[-1]
    data = json.loads(aws_managed_policies_data)
    if name not in data:
        raise Unresolvable(f"managed policy {arn}: not an AWS managed policy the emulator knows")
    return data[name]["Document"]


def function_roles(template: dict, resolver: Resolver) -> list[dict]:
    """Each Lambda function of the template: name, logical id, role, and its statements, resolved,
    in the template's order (each statement keeps the policy it came from)."""
    res = template.get("Resources") or {}
    out = []
    for logical, r in res.items():
        if r.get("Type") not in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            continue
        role = (r.get("Properties") or {}).get("Role")
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            continue  # a role from outside the template: nothing here says what it may do
        role_logical = role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]
        role_props = res.get(role_logical, {}).get("Properties") or {}
        documents: list[tuple[str, Any]] = []
        for p in role_props.get("Policies") or []:
            documents.append((f"{role_logical}/{p.get('PolicyName')}", p["PolicyDocument"]))
        for other_logical, other in res.items():
            if other.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and _refers_to((other.get("Properties") or {}).get("Roles"), role_logical):
                documents.append((other_logical, other["Properties"]["PolicyDocument"]))
        for arn in role_props.get("ManagedPolicyArns") or []:
            if isinstance(arn, dict) and "Ref" in arn and res.get(arn["Ref"], {}).get("Type") == "AWS::IAM::ManagedPolicy":
                documents.append((arn["Ref"], res[arn["Ref"]]["Properties"]["PolicyDocument"]))
            else:
                resolved = resolver.resolve(arn)
                documents.append((resolved, _aws_managed(resolved)))
        statements = []
        for source, doc in documents:
            doc = resolver.resolve(doc)
            for i, s in enumerate(doc.get("Statement") if isinstance(doc.get("Statement"), list) else [doc.get("Statement")]):
                statements.append({**s, "Sid": s.get("Sid") or f"{source}#{i}"})
        out.append({"logicalId": logical, "function": resolver.attr(logical, "Ref"), "roleLogicalId": role_logical,
                    "role": resolver.attr(role_logical, "Ref"), "statements": statements,
                    "environment": ((r.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}})
    return out


def _environment(resolver: Resolver, variables: dict) -> tuple[dict, dict]:
    env, unresolved = {}, {}
    for k, v in variables.items():
        try:
            env[k] = str(resolver.resolve(v))
        except Unresolvable as exc:
            unresolved[k] = str(exc)
    return env, unresolved


SETTINGS_FILE_VAR = "SHIFTGUARD_CONFIG_FILE"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Z0-9_]+)\}")


def _settings_file(template: dict, logical: str, env: dict, assembly_dir: str | None) -> str | None:
    """The local copy of the settings file a function of the construct reads (`/opt/...` from one
    of its layers: cdk/lib/settings.ts): the layer's asset in the cloud assembly (`asset.HASH`)."""
    wanted = env.get(SETTINGS_FILE_VAR)
    if wanted is None:
        return None
    if not assembly_dir:
        return None  # reported in settingsUnresolved by _settings
    props = (template["Resources"][logical].get("Properties") or {})
    relative = wanted[len("/opt/"):] if wanted.startswith("/opt/") else wanted
    for layer in props.get("Layers") or []:
        res = (template.get("Resources") or {}).get(layer.get("Ref") if isinstance(layer, dict) else None) or {}
        key = ((res.get("Properties") or {}).get("Content") or {}).get("S3Key")
        if res.get("Type") == "AWS::Lambda::LayerVersion" and isinstance(key, str):
            path = os.path.join(assembly_dir, "asset." + key.removesuffix(".zip"), relative)
            if os.path.exists(path):
                return path
    raise ValueError(f"{logical}: {wanted} is in none of its layers' assets under {assembly_dir} (synthesize again: make cdk-synth)")


def _settings(env: dict, path: str | None) -> tuple[dict, dict]:
    """The function's settings as it reads them (common/src/env.rs, Environment): the environment
    and its settings file, `${NAME}` put back; and what could not be (name -> why)."""
    settings = {k: v for k, v in env.items() if k != SETTINGS_FILE_VAR}
    unresolved: dict = {}
    if path is None:
        if SETTINGS_FILE_VAR in env:
            unresolved[SETTINGS_FILE_VAR] = f"{env[SETTINGS_FILE_VAR]} is in a layer: give templatePath or assemblyDir to read it"
        return settings, unresolved
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("version") != 1 or not isinstance(doc.get("environment"), dict):
        raise ValueError(f"{path}: expected {{\"version\": 1, \"environment\": {{...}}}}")
    for name, value in doc["environment"].items():
        if name in settings:
            raise ValueError(f"{path}: {name} is set both in the environment and in the settings file")
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        missing = [m.group(1) for m in _REFERENCE.finditer(text) if m.group(1) and m.group(1) not in env]
        if missing:
            unresolved[name] = f"refers to ${{{missing[0]}}}, which is not resolved here"
            continue
        settings[name] = _REFERENCE.sub(lambda m: "${" if m.group(1) is None else env[m.group(1)], text)
    return settings, unresolved


def _local_client(service: str) -> Any:
    import boto3

    # IAM and STS are never authorized by the emulator: any key sets roles up.
    return boto3.client(service, endpoint_url=state.SELF_URL, region_name="us-east-1",
                        aws_access_key_id="shiftguard-stack-loader", aws_secret_access_key="x")


def load_stack(body: dict) -> dict:
    if "template" in body:
        template = body["template"]
        if not isinstance(template, dict):
            raise ValueError("template: expected the template as a JSON object")
    elif "templatePath" in body:
        path = body["templatePath"]
        try:
            with open(path, encoding="utf-8") as f:
                template = json.load(f)
        except OSError as exc:
            raise ValueError(f"templatePath: cannot read {path}: {exc.strerror} (synthesize it first: make cdk-synth)") from None
    else:
        raise ValueError("template or templatePath: expected the synthesized template (object) or the path of its file")
    assembly_dir = body.get("assemblyDir") or (os.path.dirname(os.path.abspath(body["templatePath"])) if "templatePath" in body else None)
    stack = body.get("stack") or os.path.basename(str(body.get("templatePath", "stack"))).split(".")[0]
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", stack):
        raise ValueError(f"stack: expected a stack name (letters, digits, -), got {stack!r}")
    unresolved_mode = body.get("unresolved", "error")
    if unresolved_mode not in ("error", "placeholder"):
        raise ValueError("unresolved: expected \"error\" or \"placeholder\"")
    region = body.get("region", "us-east-1")
    resolver = Resolver(template, stack, region, DEFAULT_ACCOUNT, body.get("parameters"), body.get("resources"),
                        placeholder=unresolved_mode == "placeholder")
    wanted = body.get("functions")
    if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted)):
        raise ValueError("functions: expected a list of function names or logical ids")
    try:
        functions = function_roles(template, resolver)
    except Unresolvable as exc:
        raise ValueError(f"cannot resolve the template's IAM: {exc}") from None
    if wanted is not None:
        missing = [w for w in wanted if not any(w in (f["function"], f["logicalId"]) for f in functions)]
        if missing:
            raise ValueError(f"functions: {', '.join(missing)} not in the template (it has {', '.join(f['function'] for f in functions)})")
        functions = [f for f in functions if f["function"] in wanted or f["logicalId"] in wanted]
    iam_client, sts = _local_client("iam"), _local_client("sts")
    out = {}
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for f in functions:
        role_name = f["role"]
        try:
            iam_client.get_role(RoleName=role_name)
            for name in iam_client.list_role_policies(RoleName=role_name)["PolicyNames"]:
                iam_client.delete_role_policy(RoleName=role_name, PolicyName=name)
        except iam_client.exceptions.NoSuchEntityException:
            iam_client.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)
        document = {"Version": "2012-10-17", "Statement": f["statements"]}
        if f["statements"]:
            try:
                iam_client.put_role_policy(RoleName=role_name, PolicyName="stack", PolicyDocument=json.dumps(document))
            except iam_client.exceptions.ClientError as exc:
                raise ValueError(f"{f['function']}: IAM refused its policy: {exc}") from None
        role_arn = f"arn:{PARTITION}:iam::{DEFAULT_ACCOUNT}:role/{role_name}"
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=str(f["function"])[:64], DurationSeconds=43200)["Credentials"]
        env, env_unresolved = _environment(resolver, f["environment"])
        settings_path = _settings_file(template, f["logicalId"], env, assembly_dir)
        settings, settings_unresolved = _settings(env, settings_path)
        if settings_path is not None:
            env[SETTINGS_FILE_VAR] = settings_path  # the binary reads the file, run here
        with _LOCK:
            ROLES[role_arn] = {"stack": stack, "function": f["function"], "logicalId": f["logicalId"], "role": role_name,
                               "statements": copy.deepcopy(f["statements"])}
        out[f["function"]] = {"logicalId": f["logicalId"], "roleArn": role_arn,
                              "credentials": {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                                              "SessionToken": creds["SessionToken"]},
                              "statements": f["statements"], "environment": env, "environmentUnresolved": env_unresolved,
                              "settings": settings, "settingsUnresolved": {**env_unresolved, **settings_unresolved},
                              "settingsFile": settings_path}
    return {"stack": stack, "functions": out, "unresolved": resolver.unresolved}


def operator() -> dict:
    """An IAM user allowed everything (created once): the test driver's identity under strict IAM."""
    iam_client = _local_client("iam")
    name = "shiftguard-operator"
    try:
        iam_client.get_user(UserName=name)
    except iam_client.exceptions.NoSuchEntityException:
        iam_client.create_user(UserName=name)
        iam_client.put_user_policy(UserName=name, PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    with _LOCK:
        if not hasattr(operator, "keys"):
            key = iam_client.create_access_key(UserName=name)["AccessKey"]
            operator.keys = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}  # type: ignore[attr-defined]
        return dict(operator.keys)  # type: ignore[attr-defined]


def role_of(principal_arn: str) -> dict | None:
    """The stack role an assumed-role session belongs to (arn:aws:sts::ACCT:assumed-role/NAME/SESSION)."""
    m = re.match(r"^arn:[^:]+:sts::(\d+):assumed-role/([^/]+)/", principal_arn or "")
    if not m:
        return None
    return ROLES.get(f"arn:{PARTITION}:iam::{m.group(1)}:role/{m.group(2)}")


def record(principal_arn: str, action: str, resources: list[str], allowed: bool, statement: dict | None) -> None:
    """Notes a stack role's call: which of its statements allowed it (for the least-privilege report)."""
    role = role_of(principal_arn)
    if role is None:
        return
    index = next((i for i, s in enumerate(role["statements"]) if statement is not None and s == statement), None)
    entry = {"stack": role["stack"], "function": role["function"], "action": action, "resources": resources,
             "allowed": allowed, "statement": index, "sid": role["statements"][index]["Sid"] if index is not None else None}
    with _LOCK:
        USAGE.append(entry)
    path = os.environ.get("SHIFTGUARD_IAM_USAGE")
    if path:
        with _LOCK, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/iam/stack" and method == "POST":
        return 200, load_stack(body or {})
    if path == "/_shiftguard/iam/stack-roles":
        with _LOCK:
            return 200, list(ROLES.values())
    if path == "/_shiftguard/iam/usage":
        with _LOCK:
            if method == "DELETE":
                USAGE.clear()
            return 200, list(USAGE)
    if path == "/_shiftguard/iam/operator" and method == "POST":
        return 200, operator()
    return None
