"""Fidelity fixes (each an AWS-documented behaviour the emulator got wrong), the extension
operations' documented errors, strict model conformance, and the control plane existing tests use."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from conftest import LambdaApp, make_function, unique


def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


# ---- Lambda ----------------------------------------------------------------------------------


# How an Invoke names what it runs (function `fn` with versions 1 and 2, alias `live` on 1), and the
# version Lambda reports in X-Amz-Executed-Version.
INVOKE_TARGETS = [
    pytest.param(lambda fn: {"FunctionName": fn, "Qualifier": "live"}, "1", id="alias as Qualifier"),
    pytest.param(lambda fn: {"FunctionName": fn, "Qualifier": "2"}, "2", id="version as Qualifier"),
    pytest.param(lambda fn: {"FunctionName": f"{fn}:live"}, "1", id="NAME:ALIAS"),
    pytest.param(lambda fn: {"FunctionName": fn}, "$LATEST", id="unqualified"),
]


@pytest.mark.parametrize("target, executed", INVOKE_TARGETS)
def test_executed_version_on_every_invoke_through_alias_or_version(clients, target, executed):
    fn = unique("plain")
    assert make_function(clients.lam, fn) == ["1", "2"]
    assert clients.lam.invoke(**target(fn), Payload=b"{}")["ExecutedVersion"] == executed


def test_qualified_function_arn_is_name_and_qualifier(emulator, clients):
    fn = unique("arn")
    v1, v2 = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, response={"version": "one"})
    emulator.behaviour(fn, v2, response={"version": "two"})
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{fn}"
    out = clients.lam.invoke(FunctionName=f"{arn}:live", Payload=b"{}")
    assert json.loads(out["Payload"].read()) == {"version": "one"} and out["ExecutedVersion"] == v1
    out = clients.lam.invoke(FunctionName=f"{arn}:{v2}", Payload=b"{}")
    assert json.loads(out["Payload"].read()) == {"version": "two"} and out["ExecutedVersion"] == v2
    # UpdateAlias by function ARN.
    clients.lam.update_alias(FunctionName=arn, Name="live", FunctionVersion=v1, RoutingConfig={"AdditionalVersionWeights": {v2: 0.5}})
    with pytest.raises(clients.lam.exceptions.ResourceNotFoundException):
        clients.lam.invoke(FunctionName=f"{arn}:nope", Payload=b"{}")


def test_get_alias_answers_200(clients):
    fn = unique("alias")
    make_function(clients.lam, fn)
    assert status_of(clients.lam.get_alias(FunctionName=fn, Name="live")) == 200


@pytest.mark.parametrize("request_, error", [
    pytest.param({"Name": "live", "FunctionVersion": "2", "RevisionId": "stale"}, "PreconditionFailedException", id="stale RevisionId"),
    pytest.param({"Name": "live", "RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}}, "InvalidParameterValueException", id="weight over 1"),
    pytest.param({"Name": "nope", "FunctionVersion": "2"}, "ResourceNotFoundException", id="no such alias"),
    pytest.param({"Name": "live", "FunctionVersion": "99"}, "ResourceNotFoundException", id="no such version"),
])
def test_update_alias_documented_errors(clients, request_, error):
    fn = unique("ua")
    assert make_function(clients.lam, fn) == ["1", "2"]
    with pytest.raises(getattr(clients.lam.exceptions, error)):
        clients.lam.update_alias(FunctionName=fn, **request_)
    assert clients.lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "1"  # nothing changed


# ---- CodeDeploy ------------------------------------------------------------------------------


@pytest.fixture
def manual_deployment(emulator, clients):
    """A Lambda deployment made with the engine off (moto's UUID id), InProgress by hand."""
    app = LambdaApp(clients)
    dep = app.deploy()
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "InProgress"})
    return {"id": dep, "fn": app.fn, "app": app.app, "group": app.group, "v1": app.v1, "v2": app.v2}


# Every operation that takes a deployment id, as a call on (client, id).
BY_DEPLOYMENT_ID = [
    pytest.param(lambda cd, dep: cd.get_deployment(deploymentId=dep), id="GetDeployment"),
    pytest.param(lambda cd, dep: cd.batch_get_deployments(deploymentIds=[dep]), id="BatchGetDeployments"),
    pytest.param(lambda cd, dep: cd.stop_deployment(deploymentId=dep), id="StopDeployment"),
    pytest.param(lambda cd, dep: cd.list_deployment_targets(deploymentId=dep), id="ListDeploymentTargets"),
    pytest.param(lambda cd, dep: cd.get_deployment_target(deploymentId=dep, targetId="x:y"), id="GetDeploymentTarget"),
    pytest.param(lambda cd, dep: cd.batch_get_deployment_targets(deploymentId=dep, targetIds=["x:y"]), id="BatchGetDeploymentTargets"),
    pytest.param(lambda cd, dep: cd.put_lifecycle_event_hook_execution_status(deploymentId=dep, lifecycleEventHookExecutionId="x", status="Succeeded"),
                 id="PutLifecycleEventHookExecutionStatus"),
]


@pytest.mark.parametrize("bad", ["not-a-deployment", "d-123", "d-abcdefghi", "D-ABCDEFGHI"])
@pytest.mark.parametrize("call", BY_DEPLOYMENT_ID)
def test_malformed_deployment_ids_are_invalid_deployment_id(clients, call, bad):
    with pytest.raises(clients.cd.exceptions.InvalidDeploymentIdException):
        call(clients.cd, bad)


@pytest.mark.parametrize("dep", ["d-ABCDEFGHI", "00000000-0000-0000-0000-000000000000"])
@pytest.mark.parametrize("call", [BY_DEPLOYMENT_ID[0], BY_DEPLOYMENT_ID[2]])
def test_well_formed_unknown_ids_do_not_exist(clients, call, dep):
    with pytest.raises(clients.cd.exceptions.DeploymentDoesNotExistException):
        call(clients.cd, dep)


def test_codedeploy_extension_documented_errors(emulator, clients, manual_deployment):
    cd, dep = clients.cd, manual_deployment["id"]
    target = clients.cd.list_deployment_targets(deploymentId=dep)["targetIds"][0]
    assert target == f"{manual_deployment['fn']}:live"
    with pytest.raises(cd.exceptions.DeploymentTargetDoesNotExistException):
        cd.get_deployment_target(deploymentId=dep, targetId="other:live")
    with pytest.raises(cd.exceptions.DeploymentTargetListSizeExceededException):
        cd.batch_get_deployment_targets(deploymentId=dep, targetIds=[target] * 26)
    with pytest.raises(cd.exceptions.InvalidLifecycleEventHookExecutionIdException):
        cd.put_lifecycle_event_hook_execution_status(deploymentId=dep, lifecycleEventHookExecutionId="nope", status="Succeeded")
    execution = emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}/hook-executions", {"lifecycleEvent": "BeforeAllowTraffic"})["lifecycleEventHookExecutionId"]
    with pytest.raises(cd.exceptions.InvalidLifecycleEventHookExecutionStatusException):
        cd.put_lifecycle_event_hook_execution_status(deploymentId=dep, lifecycleEventHookExecutionId=execution, status="InProgress")
    cd.put_lifecycle_event_hook_execution_status(deploymentId=dep, lifecycleEventHookExecutionId=execution, status="Succeeded")
    with pytest.raises(cd.exceptions.LifecycleEventAlreadyCompletedException):
        cd.put_lifecycle_event_hook_execution_status(deploymentId=dep, lifecycleEventHookExecutionId=execution, status="Failed")
    assert emulator.control("GET", f"/_shiftguard/codedeploy/hook-executions/{execution}")["status"] == "Succeeded"
    got = cd.get_deployment_target(deploymentId=dep, targetId=target)["deploymentTarget"]["lambdaTarget"]
    assert got["status"] == "InProgress"
    assert got["lifecycleEvents"] == [{"lifecycleEventName": "BeforeAllowTraffic", "status": "Succeeded"}]
    with pytest.raises(cd.exceptions.ApplicationDoesNotExistException):
        cd.get_application_revision(applicationName=unique("none"), revision={"revisionType": "String", "string": {"content": "{}"}})
    with pytest.raises(cd.exceptions.RevisionDoesNotExistException):
        cd.get_application_revision(applicationName=manual_deployment["app"], revision={"revisionType": "String", "string": {"content": "{}"}})
    # Existing control paths keep working: StopDeployment (engine off) stops at once.
    assert cd.stop_deployment(deploymentId=dep)["status"] == "Succeeded"
    with pytest.raises(cd.exceptions.DeploymentAlreadyCompletedException):
        cd.stop_deployment(deploymentId=dep)
    assert emulator.control("GET", "/_shiftguard/codedeploy/stopped")[-1] == {"deploymentId": dep, "autoRollbackEnabled": False}


def test_control_plane_rollback_keeps_its_shape_with_the_engine_off(emulator, clients, manual_deployment):
    dep = manual_deployment["id"]
    out = emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}/rollback", {"originalStatus": "Failed"})
    assert out["status"] == "Succeeded"
    summary = emulator.control("GET", f"/_shiftguard/codedeploy/deployments/{dep}")
    assert summary["status"] == "Failed" and summary["rollbackInfo"]["rollbackDeploymentId"] == out["rollbackDeploymentId"]
    alias = clients.lam.get_alias(FunctionName=manual_deployment["fn"], Name="live")
    assert alias["FunctionVersion"] == manual_deployment["v1"]


def test_deployment_config_documented_errors(clients):
    cd = clients.cd
    name = unique("cfg")
    cd.create_deployment_config(deploymentConfigName=name, computePlatform="Lambda", trafficRoutingConfig={"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 2}})
    with pytest.raises(cd.exceptions.DeploymentConfigAlreadyExistsException):
        cd.create_deployment_config(deploymentConfigName=name, computePlatform="Lambda", trafficRoutingConfig={"type": "AllAtOnce"})
    with pytest.raises(cd.exceptions.InvalidTrafficRoutingConfigurationException):
        cd.create_deployment_config(deploymentConfigName=unique("cfg"), computePlatform="Lambda", trafficRoutingConfig={"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 0, "canaryInterval": 2}})
    with pytest.raises(cd.exceptions.DeploymentConfigDoesNotExistException):
        cd.get_deployment_config(deploymentConfigName=unique("none"))
    with pytest.raises(cd.exceptions.InvalidOperationException):
        cd.delete_deployment_config(deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce")
    cd.delete_deployment_config(deploymentConfigName=name)
    with pytest.raises(cd.exceptions.DeploymentConfigDoesNotExistException):
        cd.get_deployment_config(deploymentConfigName=name)


# CreateDeployment requests the engine refuses, built from a LambdaApp, and the documented error.
REFUSED_DEPLOYMENTS = [
    pytest.param(lambda app: dict(applicationName=unique("none"), deploymentGroupName=app.group, revision=app.revision()),
                 "ApplicationDoesNotExistException", id="no such application"),
    pytest.param(lambda app: dict(applicationName=app.app, deploymentGroupName=unique("none"), revision=app.revision()),
                 "DeploymentGroupDoesNotExistException", id="no such group"),
    pytest.param(lambda app: dict(applicationName=app.app, deploymentGroupName=app.group, revision=app.revision(), deploymentConfigName=unique("none")),
                 "DeploymentConfigDoesNotExistException", id="no such configuration"),
    pytest.param(lambda app: dict(applicationName=app.app, deploymentGroupName=app.group,
                                  revision={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "YAML"}}),
                 "InvalidRevisionException", id="S3 revision"),
    pytest.param(lambda app: dict(applicationName=app.app, deploymentGroupName=app.group), "RevisionRequiredException", id="no revision"),
]


@pytest.mark.parametrize("request_, error", REFUSED_DEPLOYMENTS)
def test_engine_create_deployment_documented_errors(emulator, engine, clients, lambda_app, request_, error):
    app = lambda_app()
    with pytest.raises(getattr(clients.cd.exceptions, error)):
        clients.cd.create_deployment(**request_(app))
    assert clients.cd.list_deployments(applicationName=app.app, deploymentGroupName=app.group)["deployments"] == []


# ---- VPC Lattice -----------------------------------------------------------------------------


@pytest.fixture
def listener(clients):
    lattice = clients.lattice
    service = lattice.create_service(name=unique("svc"))
    tg1 = lattice.create_target_group(name=unique("tg"), type="LAMBDA")
    tg2 = lattice.create_target_group(name=unique("tg"), type="LAMBDA")
    created = lattice.create_listener(
        serviceIdentifier=service["id"], name=unique("lis"), protocol="HTTPS", port=443,
        defaultAction={"forward": {"targetGroups": [{"targetGroupIdentifier": tg1["id"], "weight": 100}]}},
    )
    return {"service": service, "listener": created, "tg1": tg1, "tg2": tg2,
            "ids": dict(serviceIdentifier=service["id"], listenerIdentifier=created["id"])}


def test_lattice_arns_are_identifiers(clients, listener):
    lattice = clients.lattice
    svc_arn, lis_arn = listener["service"]["arn"], listener["listener"]["arn"]
    assert lattice.get_service(serviceIdentifier=svc_arn)["id"] == listener["service"]["id"]
    assert lattice.get_listener(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn)["id"] == listener["listener"]["id"]
    action = {"forward": {"targetGroups": [{"targetGroupIdentifier": listener["tg1"]["arn"], "weight": 90}, {"targetGroupIdentifier": listener["tg2"]["arn"], "weight": 10}]}}
    lattice.update_listener(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn, defaultAction=action)
    rule = lattice.create_rule(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn, name=unique("rule"), priority=5, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/x"}}}}, action=action)
    assert lattice.get_rule(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn, ruleIdentifier=rule["arn"])["id"] == rule["id"]
    assert lattice.update_rule(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn, ruleIdentifier=rule["arn"], priority=6)["priority"] == 6
    assert lattice.list_rules(serviceIdentifier=svc_arn, listenerIdentifier=lis_arn)["items"]
    assert lattice.get_target_group(targetGroupIdentifier=listener["tg1"]["arn"])["id"] == listener["tg1"]["id"]


def test_lattice_arns_reach_the_same_resources_as_ids(clients, listener):
    """ARN and id name the same resource: a write by ARN is read back by id and the other way."""
    lattice = clients.lattice
    svc, lis = listener["service"], listener["listener"]
    action = {"forward": {"targetGroups": [{"targetGroupIdentifier": listener["tg1"]["id"], "weight": 70}, {"targetGroupIdentifier": listener["tg2"]["id"], "weight": 30}]}}
    updated = lattice.update_listener(serviceIdentifier=svc["arn"], listenerIdentifier=lis["arn"], defaultAction=action)
    assert updated["id"] == lis["id"] and updated["arn"] == lis["arn"]
    assert lattice.get_listener(serviceIdentifier=svc["id"], listenerIdentifier=lis["id"])["defaultAction"] == action
    by_arn = lattice.get_listener(serviceIdentifier=svc["arn"], listenerIdentifier=lis["arn"])
    assert by_arn["defaultAction"] == action and by_arn["arn"] == lis["arn"]
    rule = lattice.create_rule(serviceIdentifier=svc["id"], listenerIdentifier=lis["id"], name=unique("rule"), priority=7, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/y"}}}}, action={"fixedResponse": {"statusCode": 404}})
    listed = lattice.list_rules(serviceIdentifier=svc["arn"], listenerIdentifier=lis["arn"])["items"]
    assert {i["id"] for i in listed if not i["isDefault"]} == {rule["id"]} and sum(i["isDefault"] for i in listed) == 1
    service = lattice.get_service(serviceIdentifier=svc["arn"])
    assert (service["id"], service["arn"]) == (svc["id"], svc["arn"])
    group = lattice.get_target_group(targetGroupIdentifier=listener["tg2"]["arn"])
    assert (group["id"], group["arn"]) == (listener["tg2"]["id"], listener["tg2"]["arn"])
    with pytest.raises(lattice.exceptions.ResourceNotFoundException):
        lattice.get_listener(serviceIdentifier=svc["arn"], listenerIdentifier=lis["arn"].rsplit("/", 1)[0] + "/listener-0000000000000000")


def test_lattice_list_rules_pages(clients, listener):
    lattice = clients.lattice
    ids = listener["ids"]
    action = {"fixedResponse": {"statusCode": 404}}
    for priority in (1, 2, 3):
        lattice.create_rule(**ids, name=unique("rule"), priority=priority, match={"httpMatch": {"pathMatch": {"match": {"prefix": f"/{priority}"}}}}, action=action)
    seen, token, pages = [], None, 0
    while True:
        page = lattice.list_rules(**ids, maxResults=2, **({"nextToken": token} if token else {}))
        pages += 1
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 2 and len(seen) == 4 and len(set(seen)) == 4  # 3 rules and the default
    with pytest.raises(lattice.exceptions.ValidationException):
        lattice.list_rules(**ids, nextToken="garbage")


def test_lattice_rule_priority_range_and_uniqueness(clients, listener):
    lattice = clients.lattice
    ids = listener["ids"]
    action = {"fixedResponse": {"statusCode": 404}}

    def rule(priority):
        return lattice.create_rule(**ids, name=unique("rule"), priority=priority, match={"httpMatch": {"pathMatch": {"match": {"prefix": "/p"}}}}, action=action)

    high = rule(2000)
    low = rule(150)
    with pytest.raises(lattice.exceptions.ConflictException):
        rule(2000)
    with pytest.raises(lattice.exceptions.ConflictException):
        lattice.update_rule(**ids, ruleIdentifier=low["id"], priority=2000)
    assert lattice.update_rule(**ids, ruleIdentifier=low["id"], priority=1999)["priority"] == 1999
    assert high["priority"] == 2000
    failed = lattice.batch_update_rule(**ids, rules=[{"ruleIdentifier": low["id"], "priority": 2000}])
    assert failed["unsuccessful"][0]["failureCode"] == "ConflictException"


def _default_rule(lattice, ids):
    return [i for i in lattice.list_rules(**ids)["items"] if i["isDefault"]][0]["id"]


# Calls on (client, the listener's ids) the Lattice extension refuses, and the documented error.
LATTICE_REFUSALS = [
    pytest.param(lambda vl, ids: vl.update_listener(serviceIdentifier=ids["serviceIdentifier"], listenerIdentifier="listener-0000000000000000",
                                                    defaultAction={"fixedResponse": {"statusCode": 404}}),
                 "ResourceNotFoundException", id="UpdateListener of no listener"),
    pytest.param(lambda vl, ids: vl.get_rule(**ids, ruleIdentifier="rule-0000000000000000"), "ResourceNotFoundException", id="GetRule of no rule"),
    pytest.param(lambda vl, ids: vl.update_listener(**ids, defaultAction={"forward": {"targetGroups": [{"targetGroupIdentifier": "tg-0000000000000000", "weight": 1}]}}),
                 "ResourceNotFoundException", id="forward to no target group"),
    pytest.param(lambda vl, ids: vl.update_rule(**ids, ruleIdentifier=_default_rule(vl, ids), priority=3), "ValidationException", id="UpdateRule of the default rule"),
    pytest.param(lambda vl, ids: vl.register_targets(targetGroupIdentifier="tg-0000000000000000", targets=[{"id": "arn:aws:lambda:us-east-1:123456789012:function:x"}]),
                 "ResourceNotFoundException", id="RegisterTargets of no target group"),
]


@pytest.mark.parametrize("call, error", LATTICE_REFUSALS)
def test_lattice_extension_documented_errors(clients, listener, call, error):
    lattice = clients.lattice
    ids = listener["ids"]
    with pytest.raises(getattr(lattice.exceptions, error)):
        call(lattice, ids)
    assert lattice.get_listener(**ids)["defaultAction"] == listener["listener"]["defaultAction"]  # nothing changed


# ---- Strict conformance ----------------------------------------------------------------------


def test_strict_mode_turns_an_off_model_answer_into_a_500_naming_the_member(emulator, clients, manual_deployment):
    dep = manual_deployment["id"]
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "Bogus"})
    with pytest.raises(clients.cd.exceptions.ClientError) as caught:
        clients.cd.get_deployment(deploymentId=dep)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    message = caught.value.response["Error"]["Message"]
    assert "GetDeployment" in message and "deploymentInfo.status" in message and "Bogus" in message
    found = emulator.control("GET", "/_shiftguard/conformance")
    assert found["strict"] is True
    assert any("deploymentInfo.status" in m["problem"] for m in found["mismatches"])
    # Recorded mismatches are cleared so the autouse check passes: this one was on purpose.
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "Stopped"})
    emulator.control("DELETE", "/_shiftguard/conformance")


# ---- Lambda Invoke: invocation types and throttling (issue 20) ------------------------------


def _invocations(emulator, fn):
    return emulator.control("GET", f"/_shiftguard/lambda/invocations?function={fn}")


def _wait_for(condition, seconds=10.0):
    import time

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def test_an_event_invocation_answers_202_empty_and_runs_in_the_background(emulator, clients):
    """Lambda developer guide, asynchronous invocation: 202, no payload; the function runs later."""
    fn = unique("event")
    v1, _ = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, response={"ok": True}, delay_ms=300)
    out = clients.lam.invoke(FunctionName=fn, Qualifier=v1, InvocationType="Event", Payload=b'{"n": 1}')
    assert status_of(out) == 202
    assert out["Payload"].read() == b""
    assert "FunctionError" not in out
    # Answered before the function finished (it takes 300 ms), then it ran.
    assert _invocations(emulator, fn) == []
    ran = _wait_for(lambda: _invocations(emulator, fn))
    assert json.loads(ran[0]["payload"]) == {"n": 1}


def test_an_event_invocation_that_errors_is_retried_twice(emulator, clients, engine):
    """Asynchronous invocation: a function error is retried twice (1 and 2 minutes later; the
    engine's time scale compresses the waits)."""
    fn = unique("retried")
    v1, _ = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, function_error="Unhandled", response={"errorMessage": "no"})
    assert status_of(clients.lam.invoke(FunctionName=fn, Qualifier=v1, InvocationType="Event", Payload=b"{}")) == 202
    attempts = _wait_for(lambda: (lambda i: i if len(i) == 3 else None)(_invocations(emulator, fn)), seconds=15)
    assert [a["functionError"] for a in attempts] == ["Unhandled"] * 3


def test_a_dry_run_answers_204_and_runs_nothing(emulator, clients):
    fn = unique("dry")
    v1, _ = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, response={"ok": True})
    out = clients.lam.invoke(FunctionName=fn, Qualifier=v1, InvocationType="DryRun")
    assert status_of(out) == 204
    assert _invocations(emulator, fn) == []
    with pytest.raises(clients.lam.exceptions.ResourceNotFoundException):
        clients.lam.invoke(FunctionName=unique("missing"), InvocationType="DryRun")


def test_a_throttled_invoke_carries_retry_after(emulator, clients):
    """Lambda's TooManyRequestsException carries a Retry-After header (seconds)."""
    fn = unique("throttled")
    make_function(clients.lam, fn)
    # Every attempt the client makes is throttled; what is left is cleared for the tests after.
    emulator.control("POST", "/_shiftguard/faults", {"service": "lambda", "operation": "Invoke", "kind": "throttle", "count": 10})
    try:
        with pytest.raises(clients.lam.exceptions.TooManyRequestsException) as raised:
            clients.lam.invoke(FunctionName=fn, Payload=b"{}")
    finally:
        emulator.control("DELETE", "/_shiftguard/faults")
    headers = raised.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["retry-after"]) >= 1


# ---- More documented refusals (issue 20) ------------------------------------------------------


def test_a_forward_to_several_groups_needs_every_weight(clients, listener):
    """WeightedTargetGroup.weight: required when a forward names several target groups."""
    lattice = clients.lattice
    ids = listener["ids"]
    groups = [listener["tg1"]["id"], listener["tg2"]["id"]]
    with pytest.raises(lattice.exceptions.ValidationException) as raised:
        lattice.update_listener(**ids, defaultAction={"forward": {"targetGroups": [
            {"targetGroupIdentifier": groups[0], "weight": 90}, {"targetGroupIdentifier": groups[1]}]}})
    assert "targetGroups[1].weight" in str(raised.value)
    # One group alone needs no weight; several with weights are fine.
    lattice.update_listener(**ids, defaultAction={"forward": {"targetGroups": [{"targetGroupIdentifier": groups[0]}]}})
    lattice.update_listener(**ids, defaultAction={"forward": {"targetGroups": [
        {"targetGroupIdentifier": groups[0], "weight": 90}, {"targetGroupIdentifier": groups[1], "weight": 10}]}})


def test_an_application_name_beyond_the_model_is_invalid_not_missing(clients):
    with pytest.raises(clients.cd.exceptions.InvalidApplicationNameException):
        clients.cd.get_application_revision(applicationName="a" * 101, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}})
    with pytest.raises(clients.cd.exceptions.ApplicationDoesNotExistException):
        clients.cd.get_application_revision(applicationName=unique("nope"), revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}})


def test_deployment_targets_of_an_ec2_deployment_are_listed_not_refused(clients):
    """ListDeploymentTargets serves every compute platform (its modelled errors do not include
    UnsupportedActionForDeploymentType): an EC2/on-premises deployment lists its instances — none
    here, the emulator models no instances — and a target id of it does not exist."""
    import uuid as _uuid

    app = f"ec2-{_uuid.uuid4().hex[:8]}"
    clients.cd.create_application(applicationName=app, computePlatform="Server")
    clients.cd.create_deployment_group(applicationName=app, deploymentGroupName="g", serviceRoleArn="arn:aws:iam::123456789012:role/r")
    deployment = clients.cd.create_deployment(applicationName=app, deploymentGroupName="g", revision={
        "revisionType": "S3", "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"}})["deploymentId"]
    assert clients.cd.list_deployment_targets(deploymentId=deployment)["targetIds"] == []
    with pytest.raises(ClientError) as missing:
        clients.cd.get_deployment_target(deploymentId=deployment, targetId="i-0123456789abcdef0")
    assert missing.value.response["Error"]["Code"] == "DeploymentTargetDoesNotExistException"


def test_batch_update_rule_takes_one_to_ten_updates_as_modelled(clients, listener):
    """botocore's model bounds BatchUpdateRule's `rules` to 1..10 (SDKs check only the minimum)."""
    lattice = clients.lattice
    ids = listener["ids"]
    action = {"fixedResponse": {"statusCode": 404}}
    rules = [lattice.create_rule(**ids, name=unique("rule"), priority=p, match={"httpMatch": {"pathMatch": {"match": {"prefix": f"/{p}"}}}},
                                 action=action)["id"] for p in range(1, 12)]
    updates = [{"ruleIdentifier": r, "action": {"fixedResponse": {"statusCode": 503}}} for r in rules]
    done = lattice.batch_update_rule(**ids, rules=updates[:10])
    assert len(done["successful"]) == 10 and not done["unsuccessful"]
    with pytest.raises(lattice.exceptions.ValidationException):
        lattice.batch_update_rule(**ids, rules=updates)
