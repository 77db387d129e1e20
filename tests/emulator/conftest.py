"""pytest fixtures: one emulator process for the session (port 0, strict conformance on), boto3
clients on it, builders for Lambda functions, CodeDeploy groups and the two together
(`LambdaApp`, the `lambda_app` fixture), and a fake Lambda Runtime API endpoint (what `cargo lambda
watch` serves) running in the test process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE = "arn:aws:iam::123456789012:role/shiftguard-lambda-role"


class Emulator:
    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url = url
        self.process = process

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read()!r}")

    def behaviour(self, function: str, version: str | None = None, **fields: Any) -> Any:
        """How `function` (or one version of it) answers Invoke: `POST /_shiftguard/lambda/behaviour`."""
        return self.control("POST", "/_shiftguard/lambda/behaviour", {"function": function, **({"version": version} if version is not None else {}), **fields})

    def bind(self, function: str, endpoint: str, name: str | None = None, **fields: Any) -> Any:
        """`function` runs as a process behind a local Runtime API endpoint: `POST /_shiftguard/lambda/bindings`."""
        return self.control("POST", "/_shiftguard/lambda/bindings", {"function": function, "endpoint": endpoint, "name": name or function, **fields})

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            # No retries: a 500 (strict conformance) must fail the test that caused it.
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )


@pytest.fixture(scope="session")
def emulator() -> Any:
    env = {**os.environ, "SHIFTGUARD_STRICT": "1"}
    env.pop("SHIFTGUARD_ENGINE", None)
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "shiftguard_emulator.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("SHIFTGUARD_EMULATOR_READY "):
        process.kill()
        raise RuntimeError(f"emulator did not start: {line!r} {process.stderr.read()}")
    emu = Emulator(line.split()[1], process)
    # Drain stderr so the process never blocks on a full pipe; keep it for failures.
    emu.stderr_lines = []

    def drain() -> None:
        for text in process.stderr:
            emu.stderr_lines.append(text)

    threading.Thread(target=drain, daemon=True).start()
    yield emu
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(autouse=True)
def conformance_clean(emulator: Emulator) -> Any:
    """Every test ends without an enforced off-model answer (strict mode also makes them 500s)."""
    emulator.control("DELETE", "/_shiftguard/conformance")
    yield
    found = emulator.control("GET", "/_shiftguard/conformance")
    enforced = [m for m in found["mismatches"] if m["enforced"]]
    assert not enforced, f"off-model answers: {enforced}"


@pytest.fixture
def engine(emulator: Emulator) -> Any:
    """The engine on (time scale 600 unless a test changes it), off again afterwards."""
    settings = emulator.control("POST", "/_shiftguard/engine", {"enabled": True, "timeScale": 600, "alarmEvaluation": True, "hookTimeoutSeconds": 3600})
    yield settings
    emulator.control("POST", "/_shiftguard/engine", {"enabled": False, "timeScale": 1, "alarmEvaluation": True, "hookTimeoutSeconds": 3600})
    emulator.control("DELETE", "/_shiftguard/lambda/bindings")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def zip_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {marker}\n")
    return buf.getvalue()


#: The smallest valid zip (an empty archive): the code of functions whose code never runs here.
EMPTY_ZIP = b"PK\x05\x06" + b"\0" * 18


def bare_function(lam: Any, name: str) -> str:
    """A function with `$LATEST` only, its code an empty zip. Returns its ARN."""
    return lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Code={"ZipFile": EMPTY_ZIP})["FunctionArn"]


def make_function(lam: Any, name: str, versions: int = 2, alias: str | None = "live") -> list[str]:
    """A function with `versions` published versions and an alias on version 1."""
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Code={"ZipFile": zip_bytes("v0")})
    published = []
    for i in range(versions):
        if i:
            lam.update_function_code(FunctionName=name, ZipFile=zip_bytes(f"v{i}"))
        published.append(lam.publish_version(FunctionName=name)["Version"])
    if alias:
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=published[0])
    return published


def appspec(function: str, alias: str, current: str, target: str, hooks: dict | None = None) -> str:
    spec: dict = {
        "version": 0.0,
        "Resources": [{"fn": {"Type": "AWS::Lambda::Function", "Properties": {"Name": function, "Alias": alias, "CurrentVersion": current, "TargetVersion": target}}}],
    }
    if hooks:
        spec["Hooks"] = [{k: v} for k, v in hooks.items()]
    return json.dumps(spec)


def revision(function: str, alias: str, current: str, target: str, hooks: dict | None = None, kind: str = "AppSpecContent") -> dict:
    """A Lambda deployment's revision: the AppSpec as `AppSpecContent` or `String`."""
    member = {"AppSpecContent": "appSpecContent", "String": "string"}[kind]
    return {"revisionType": kind, member: {"content": appspec(function, alias, current, target, hooks)}}


def make_group(cd: Any, app: str, group: str, config: str | None = None, alarms: list[str] | None = None, rollback_events: list[str] | None = None) -> None:
    try:
        cd.create_application(applicationName=app, computePlatform="Lambda")
    except cd.exceptions.ApplicationAlreadyExistsException:
        pass
    kwargs: dict = {"applicationName": app, "deploymentGroupName": group, "serviceRoleArn": ROLE, "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}}
    if config:
        kwargs["deploymentConfigName"] = config
    if alarms:
        kwargs["alarmConfiguration"] = {"enabled": True, "alarms": [{"name": a} for a in alarms]}
    if rollback_events:
        kwargs["autoRollbackConfiguration"] = {"enabled": True, "events": rollback_events}
    cd.create_deployment_group(**kwargs)


class LambdaApp:
    """The world a CodeDeploy test starts from: a function with `versions` published versions and
    alias `live` on version 1 (`make_function`), and a Lambda application with one deployment group
    (`make_group`: configuration, alarms, auto-rollback events). `deploy` makes a deployment from
    `v1` to `v2` (hooks, revision kind and CreateDeployment's other members as given)."""

    def __init__(self, clients: Any, config: str | None = None, alarms: list[str] | None = None, rollback_events: list[str] | None = None,
                 versions: int = 2, fn: str | None = None) -> None:
        self.cd, self.lam = clients.cd, clients.lam
        self.fn, self.app, self.group = fn or unique("app"), unique("cd"), unique("dg")
        self.versions = make_function(self.lam, self.fn, versions)
        self.v1, self.v2 = self.versions[:2]
        make_group(self.cd, self.app, self.group, config, alarms, rollback_events)

    def revision(self, hooks: dict | None = None, kind: str = "AppSpecContent") -> dict:
        return revision(self.fn, "live", self.v1, self.v2, hooks, kind)

    def deploy(self, hooks: dict | None = None, kind: str = "AppSpecContent", group: str | None = None, **members: Any) -> str:
        return self.cd.create_deployment(applicationName=self.app, deploymentGroupName=group or self.group, revision=self.revision(hooks, kind), **members)["deploymentId"]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class FakeRuntimeApi:
    """A local Lambda Runtime API endpoint shaped like `cargo lambda watch`:
    `POST /2015-03-31/functions/{name}/invocations`, 200 with the result or an error payload."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.handlers: dict[str, Callable[[dict], Any]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.strip("/").split("/")
                if len(parts) != 4 or parts[:2] != ["2015-03-31", "functions"] or parts[3] != "invocations":
                    self.send_response(404)
                    self.end_headers()
                    return
                name = parts[2]
                outer.received.append({"name": name, "payload": payload})
                handler = outer.handlers.get(name)
                status, result = 200, payload
                if handler is not None:
                    try:
                        result = handler(payload)
                    except Exception as exc:  # a function error
                        status, result = 500, {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                data = json.dumps(result).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _iam(emulator: Emulator, strict: bool) -> Any:
    emulator.control("POST", "/_shiftguard/iam", {"enforce": True, "strict": strict})
    yield
    emulator.control("POST", "/_shiftguard/iam", {"enforce": False, "strict": False})


@pytest.fixture
def enforced(emulator: Emulator) -> Any:
    """IAM enforced for the test; unknown keys keep full access. Off again afterwards."""
    yield from _iam(emulator, False)


@pytest.fixture
def strict(emulator: Emulator) -> Any:
    """Strict IAM for the test: unknown keys are refused. Off again afterwards."""
    yield from _iam(emulator, True)


@pytest.fixture
def runtime_api() -> Any:
    fake = FakeRuntimeApi()
    yield fake
    fake.close()


@pytest.fixture
def lambda_app(clients: Any) -> Callable[..., LambdaApp]:
    """`lambda_app(config=…, alarms=…, rollback_events=…, versions=…)` builds a `LambdaApp`."""
    return lambda **kwargs: LambdaApp(clients, **kwargs)


@pytest.fixture
def clients(emulator: Emulator) -> Any:
    class C:
        lam = emulator.client("lambda")
        cd = emulator.client("codedeploy")
        cw = emulator.client("cloudwatch")
        sns = emulator.client("sns")
        lattice = emulator.client("vpc-lattice")

    return C
