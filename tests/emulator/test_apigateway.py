"""API Gateway REST API stage canaries through the emulator (boto3, restJson1): what the rollback
function reads with GetStage and writes with UpdateStage, the documented canary lifecycle (create
with CreateDeployment / CreateStage / a patch, update, promote, remove), the errors, and a throttled
call that the SDK retries."""

from __future__ import annotations

import json
import math
import time

import boto3
import pytest
from botocore.config import Config
from conftest import unique

PERCENT = "/canarySettings/percentTraffic"


class Api:
    """An API Gateway client that keeps the raw body of every answer (`last`)."""

    def __init__(self, client):
        self.client = client
        self.bodies: list[bytes] = []
        client.meta.events.register("after-call.apigateway", lambda http_response, **_: self.bodies.append(http_response.content))

    @property
    def last(self) -> dict:
        return json.loads(self.bodies[-1])

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def apigw(emulator):
    return Api(emulator.client("apigateway"))


@pytest.fixture
def api(apigw):
    """A REST API with one MOCK method, deployed to stage `prod` (no canary)."""
    created = apigw.create_rest_api(name=unique("api"))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201  # moto answered 200
    api_id = created["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    base = apigw.create_deployment(restApiId=api_id, stageName="prod", variables={"sv0": "val0", "sv1": "val1"})["id"]
    return {"id": api_id, "base": base, "stage": dict(restApiId=api_id, stageName="prod")}


def canary_deployment(apigw, api, percent=10.0, **extra):
    settings = {"percentTraffic": percent, **extra}
    return apigw.create_deployment(restApiId=api["id"], stageName="prod", canarySettings=settings)["id"]


def patch(apigw, api, *ops):
    # (op, path, value); a value of None is left out (boto3 refuses a null string).
    return apigw.update_stage(**api["stage"], patchOperations=[{k: v for k, v in zip(("op", "path", "value"), op) if v is not None} for op in ops])


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


# ---- Reading and rolling back a canary --------------------------------------------------------


def test_canary_deployment_on_an_existing_stage_is_what_get_stage_reads(apigw, api):
    canary = canary_deployment(apigw, api, 10.0, stageVariableOverrides={"sv1": "val2", "sv2": "val3"})
    stage = apigw.get_stage(**api["stage"])
    wire = apigw.last
    # The stage keeps its deployment and variables; the new deployment is the canary's.
    assert stage["deploymentId"] == api["base"] and stage["variables"] == {"sv0": "val0", "sv1": "val1"}
    assert stage["canarySettings"] == {"percentTraffic": 10.0, "deploymentId": canary, "useStageCache": False, "stageVariableOverrides": {"sv1": "val2", "sv2": "val3"}}
    # On the wire: percentTraffic a JSON number (a double), times epoch seconds.
    assert isinstance(wire["canarySettings"]["percentTraffic"], float)
    assert isinstance(wire["createdDate"], int) and isinstance(wire["lastUpdatedDate"], int)
    assert wire["cacheClusterStatus"] == "NOT_AVAILABLE"
    listed = [s for s in apigw.get_stages(restApiId=api["id"])["item"] if s["stageName"] == "prod"]
    assert listed[0]["canarySettings"]["deploymentId"] == canary


def test_update_stage_to_zero_percent_keeps_the_canary_deployment(apigw, api):
    canary = canary_deployment(apigw, api, 10.0)
    before = apigw.get_stage(**api["stage"])
    started = int(time.time())
    updated = patch(apigw, api, ("replace", PERCENT, "0"))
    wire = apigw.last
    # UpdateStage answers the updated Stage.
    assert updated["canarySettings"]["percentTraffic"] == 0.0 and wire["canarySettings"]["percentTraffic"] == 0.0
    assert isinstance(wire["canarySettings"]["percentTraffic"], float)
    assert updated["canarySettings"]["deploymentId"] == canary and updated["deploymentId"] == api["base"]
    assert started <= wire["lastUpdatedDate"] <= int(time.time())
    # Read again (the rollback function's verification): the same.
    again = apigw.get_stage(**api["stage"])
    assert again["canarySettings"] == {**before["canarySettings"], "percentTraffic": 0.0}
    assert again["createdDate"] == before["createdDate"]
    # Idempotent: 0 again is fine.
    assert patch(apigw, api, ("replace", PERCENT, "0.0"))["canarySettings"]["percentTraffic"] == 0.0


def test_last_updated_date_moves_and_created_date_stays(apigw, api):
    canary_deployment(apigw, api, 5.0)
    created = apigw.get_stage(**api["stage"])
    wait = math.floor(time.time()) + 1.02 - time.time()  # into the next whole second
    time.sleep(wait)
    patch(apigw, api, ("replace", PERCENT, "0"))
    got = apigw.last
    assert got["createdDate"] == created["createdDate"].timestamp()
    assert got["lastUpdatedDate"] > created["lastUpdatedDate"].timestamp()
    assert apigw.get_stage(**api["stage"])["lastUpdatedDate"].timestamp() == got["lastUpdatedDate"]


def test_stage_without_canary_answers_without_canary_settings(apigw, api):
    stage = apigw.get_stage(**api["stage"])
    assert "canarySettings" not in stage and "canarySettings" not in apigw.last
    assert stage["deploymentId"] == api["base"]
    assert all("canarySettings" not in s for s in apigw.get_stages(restApiId=api["id"])["item"])


# ---- The documented canary lifecycle ----------------------------------------------------------


def test_canary_patch_paths_promotion_and_removal(apigw, api):
    canary = canary_deployment(apigw, api, 10.0, stageVariableOverrides={"var1": "a", "var2": "b"})
    out = patch(
        apigw, api,
        ("replace", PERCENT, "25.5"),
        ("replace", "/canarySettings/useStageCache", "true"),
        ("replace", "/canarySettings/stageVariableOverrides/newVar", "newVal"),
        ("replace", "/canarySettings/stageVariableOverrides/var2", "val4"),
        ("remove", "/canarySettings/stageVariableOverrides/var1", None),
    )
    assert out["canarySettings"] == {"percentTraffic": 25.5, "deploymentId": canary, "useStageCache": True, "stageVariableOverrides": {"var2": "val4", "newVar": "newVal"}}
    # The canary may point at another deployment of the API (here the stage's own).
    assert patch(apigw, api, ("replace", "/canarySettings/deploymentId", api["base"]))["canarySettings"]["deploymentId"] == api["base"]
    patch(apigw, api, ("replace", "/canarySettings/deploymentId", canary))
    # Promotion (developer guide): the canary's deployment and overrides onto the stage, 0%.
    promoted = apigw.update_stage(**api["stage"], patchOperations=[
        {"op": "copy", "path": "/deploymentId", "from": "/canarySettings/deploymentId"},
        {"op": "replace", "path": PERCENT, "value": "0.0"},
        {"op": "copy", "path": "/variables", "from": "/canarySettings/stageVariableOverrides"},
    ])
    assert promoted["deploymentId"] == canary and promoted["canarySettings"]["percentTraffic"] == 0.0
    assert promoted["variables"] == {"sv0": "val0", "sv1": "val1", "var2": "val4", "newVar": "newVal"}
    # Turning the canary off removes canarySettings; the stage keeps its deployment.
    removed = patch(apigw, api, ("remove", "/canarySettings", None))
    assert "canarySettings" not in removed and "canarySettings" not in apigw.last
    stage = apigw.get_stage(**api["stage"])
    assert "canarySettings" not in stage and stage["deploymentId"] == canary
    # Removing again (no canary): nothing to do.
    assert "canarySettings" not in patch(apigw, api, ("remove", "/canarySettings", None))


def test_patching_a_stage_without_canary_creates_one_on_the_stage_deployment(apigw, api):
    out = patch(apigw, api, ("replace", PERCENT, "15.0"))
    assert out["canarySettings"] == {"percentTraffic": 15.0, "deploymentId": api["base"], "useStageCache": False}
    # A later canary deployment replaces the canary's deployment, keeps its other settings.
    canary = canary_deployment(apigw, api, 20.0)
    assert apigw.get_stage(**api["stage"])["canarySettings"] == {"percentTraffic": 20.0, "deploymentId": canary, "useStageCache": False}


def test_create_stage_with_canary_settings(apigw, api):
    canary = canary_deployment(apigw, api, 1.0)
    name = unique("beta")
    created = apigw.create_stage(restApiId=api["id"], stageName=name, deploymentId=api["base"], canarySettings={"percentTraffic": 50.0, "deploymentId": canary})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["canarySettings"] == {"percentTraffic": 50.0, "deploymentId": canary, "useStageCache": False}
    plain = apigw.create_stage(restApiId=api["id"], stageName=unique("gamma"), deploymentId=api["base"])
    assert "canarySettings" not in plain
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_stage(restApiId=api["id"], stageName=unique("s"), deploymentId=api["base"], canarySettings={"percentTraffic": 150.0})
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_stage(restApiId=api["id"], stageName=unique("s"), deploymentId="nosuchdep1")
    with pytest.raises(apigw.exceptions.ConflictException):
        apigw.create_stage(restApiId=api["id"], stageName=name, deploymentId=api["base"])


# ---- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        ("replace", PERCENT, "100.5"),
        ("replace", PERCENT, "-0.1"),
        ("replace", PERCENT, "ten"),
        ("replace", PERCENT, ""),
        ("replace", PERCENT, "NaN"),
        ("replace", PERCENT, "1e400"),
        ("replace", PERCENT, None),
        ("remove", PERCENT, None),
        ("replace", "/canarySettings/useStageCache", "maybe"),
        ("replace", "/canarySettings/deploymentId", "nosuchdep1"),
        ("replace", "/canarySettings/bogus", "1"),
        ("replace", "/canarySettings", "{}"),
        ("jump", PERCENT, "1"),
    ],
)
def test_invalid_canary_patches_are_bad_requests_and_change_nothing(apigw, api, op):
    canary = canary_deployment(apigw, api, 10.0)
    before = apigw.get_stage(**api["stage"])
    with pytest.raises(apigw.exceptions.ClientError) as caught:
        # A valid operation first: the request is all or nothing.
        patch(apigw, api, ("replace", PERCENT, "0"), op)
    assert error_of(caught) == (400, "BadRequestException")
    after = apigw.get_stage(**api["stage"])
    assert after["canarySettings"] == before["canarySettings"] and after["canarySettings"]["deploymentId"] == canary
    assert after["lastUpdatedDate"] == before["lastUpdatedDate"]


@pytest.mark.parametrize("value", ["0", "100", "100.0", "0.001", "12.5"])
def test_percent_traffic_bounds_are_inclusive(apigw, api, value):
    assert patch(apigw, api, ("replace", PERCENT, value))["canarySettings"]["percentTraffic"] == float(value)


ZERO = [{"op": "replace", "path": PERCENT, "value": "0"}]


@pytest.mark.parametrize("call", [
    pytest.param(lambda apigw, api: apigw.get_stage(restApiId=api["id"], stageName="nope"), id="GetStage of no stage"),
    pytest.param(lambda apigw, api: apigw.update_stage(restApiId=api["id"], stageName="nope", patchOperations=ZERO), id="UpdateStage of no stage"),
    pytest.param(lambda apigw, api: apigw.get_stage(restApiId="nosuchapi1", stageName="prod"), id="GetStage of no API"),
    pytest.param(lambda apigw, api: apigw.update_stage(restApiId="nosuchapi1", stageName="prod", patchOperations=ZERO), id="UpdateStage of no API"),
    pytest.param(lambda apigw, api: apigw.get_stages(restApiId="nosuchapi1"), id="GetStages of no API"),
])
def test_unknown_api_or_stage_is_not_found(apigw, api, call):
    with pytest.raises(apigw.exceptions.NotFoundException) as caught:
        call(apigw, api)
    assert error_of(caught) == (404, "NotFoundException")


def test_create_deployment_canary_errors(apigw, api):
    count = len(apigw.get_deployments(restApiId=api["id"])["items"])
    # A canary deployment needs an existing stage; none is created.
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.create_deployment(restApiId=api["id"], stageName="nostage", canarySettings={"percentTraffic": 10.0})
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_deployment(restApiId=api["id"], stageName="prod", canarySettings={"percentTraffic": 101.0})
    assert len(apigw.get_deployments(restApiId=api["id"])["items"]) == count
    with pytest.raises(apigw.exceptions.ClientError):
        apigw.get_stage(restApiId=api["id"], stageName="nostage")
    # A stage with a canary takes only canary deployments until the canary is removed.
    canary_deployment(apigw, api, 10.0)
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_deployment(restApiId=api["id"], stageName="prod")
    patch(apigw, api, ("remove", "/canarySettings", None))
    plain = apigw.create_deployment(restApiId=api["id"], stageName="prod")["id"]
    stage = apigw.get_stage(**api["stage"])
    # A deployment to an existing stage keeps its variables (moto replaced the whole stage).
    assert stage["deploymentId"] == plain and stage["variables"] == {"sv0": "val0", "sv1": "val1"}


# ---- Faults and the call log -----------------------------------------------------------------


def client(emulator, attempts: int):
    """`total_max_attempts`: every attempt, the first included (botocore's `max_attempts` counts
    retries only)."""
    return boto3.client(
        "apigateway", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )


def test_throttling_fault_then_the_sdk_retries(emulator, apigw, api, monkeypatch):
    canary_deployment(apigw, api, 10.0)
    emulator.control("DELETE", "/_shiftguard/faults")
    # What a throttled call answers, seen by a client that makes one attempt.
    emulator.control("POST", "/_shiftguard/faults", {"service": "apigateway", "operation": "UpdateStage", "kind": "throttle", "count": 1})
    once = client(emulator, 1)
    with pytest.raises(once.exceptions.TooManyRequestsException) as caught:
        once.update_stage(**api["stage"], patchOperations=[{"op": "replace", "path": PERCENT, "value": "0"}])
    assert error_of(caught) == (429, "TooManyRequestsException")
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    assert apigw.get_stage(**api["stage"])["canarySettings"]["percentTraffic"] == 10.0  # nothing written

    # An SDK with retries (standard mode; backoff made instant) retries the throttle and succeeds.
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    retrying = client(emulator, 3)
    emulator.control("DELETE", "/_shiftguard/calls")
    emulator.control("POST", "/_shiftguard/faults", [
        {"service": "apigateway", "operation": "GetStage", "kind": "throttle", "count": 1},
        {"service": "apigateway", "operation": "UpdateStage", "kind": "throttle", "count": 1},
    ])
    read = retrying.get_stage(**api["stage"])
    assert read["ResponseMetadata"]["RetryAttempts"] == 1 and read["canarySettings"]["percentTraffic"] == 10.0
    written = retrying.update_stage(**api["stage"], patchOperations=[{"op": "replace", "path": PERCENT, "value": "0"}])
    assert written["ResponseMetadata"]["RetryAttempts"] == 1 and written["canarySettings"]["percentTraffic"] == 0.0
    assert emulator.control("GET", "/_shiftguard/faults") == []
    # The call log names API Gateway operations: the throttled attempt and the retry.
    updates = emulator.control("GET", "/_shiftguard/calls?service=apigateway&operation=UpdateStage")
    assert len(updates) == 2 and all(json.loads(c["body"])["patchOperations"][0]["path"] == PERCENT for c in updates)
    assert len(emulator.control("GET", "/_shiftguard/calls?service=apigateway&operation=GetStage")) == 2
    # The verification read.
    assert retrying.get_stage(**api["stage"])["canarySettings"]["percentTraffic"] == 0.0
