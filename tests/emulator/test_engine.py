"""The CodeDeploy engine: Lambda deployments that run themselves (hooks, traffic shifting per
configuration, alarms, automatic rollback, StopDeployment), seen through boto3."""

from __future__ import annotations

import re
import threading
import time

import pytest
from conftest import appspec, make_function, make_group, unique, wait_for


def deployment(cd, deployment_id):
    return cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def finished(cd, deployment_id):
    info = deployment(cd, deployment_id)
    return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None


def alias_state(lam, fn, alias="live"):
    got = lam.get_alias(FunctionName=fn, Name=alias)
    return got["FunctionVersion"], (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def reporting_hooks(emulator, runtime_api, clients, names, decide=lambda event, payload: "Succeeded"):
    """Hook functions bound to the fake Runtime API that report through the CodeDeploy API, like
    ShiftGuard's hook binaries. `decide` returns Succeeded, Failed or None (never report)."""
    for event, name in names.items():
        clients.lam.create_function(FunctionName=name, Runtime="provided.al2023", Role="arn:aws:iam::123456789012:role/shiftguard-lambda-role", Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        emulator.control("POST", "/_shiftguard/lambda/bindings", {"function": name, "endpoint": runtime_api.endpoint, "name": name})

        def handler(payload, event=event):
            assert set(payload) == {"DeploymentId", "LifecycleEventHookExecutionId"}
            status = decide(event, payload)
            if status:
                clients.cd.put_lifecycle_event_hook_execution_status(deploymentId=payload["DeploymentId"], lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"], status=status)
            return {"reported": status}

        runtime_api.handlers[name] = handler


def test_all_at_once_runs_hooks_on_bound_processes_and_shifts(emulator, engine, clients, runtime_api):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    hooks = {"BeforeAllowTraffic": unique("CodeDeployHook_pre"), "AfterAllowTraffic": unique("CodeDeployHook_post")}
    reporting_hooks(emulator, runtime_api, clients, hooks)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaAllAtOnce")
    created = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2, hooks)}})
    dep = created["deploymentId"]
    assert re.fullmatch(r"d-[A-Z0-9]{9}", dep)
    info = wait_for(lambda: finished(clients.cd, dep), what="the deployment to finish")
    assert info["status"] == "Succeeded", info
    assert info["creator"] == "user"
    assert alias_state(clients.lam, fn) == (v2, {})
    # Each hook ran once, in order, as a real process, with exactly the hook event.
    assert [r["name"] for r in runtime_api.received] == [hooks["BeforeAllowTraffic"], hooks["AfterAllowTraffic"]]
    targets = clients.cd.list_deployment_targets(deploymentId=dep)["targetIds"]
    target = clients.cd.get_deployment_target(deploymentId=dep, targetId=targets[0])["deploymentTarget"]["lambdaTarget"]
    assert target["status"] == "Succeeded"
    assert [(e["lifecycleEventName"], e["status"]) for e in target["lifecycleEvents"]] == [
        ("Start", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
        ("End", "Succeeded"),
    ]
    batch = clients.cd.batch_get_deployment_targets(deploymentId=dep, targetIds=targets)["deploymentTargets"]
    assert batch[0]["lambdaTarget"]["status"] == "Succeeded"
    assert dep in clients.cd.list_deployments(applicationName=app, deploymentGroupName=group)["deployments"]
    assert clients.cd.batch_get_deployments(deploymentIds=[dep])["deploymentsInfo"][0]["status"] == "Succeeded"


def watch_alias(lam, fn, stop):
    seen = [alias_state(lam, fn)]

    def loop():
        while not stop.is_set():
            state = alias_state(lam, fn)
            if not seen or seen[-1] != state:
                seen.append(state)
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return seen, thread


def test_canary_writes_codedeploys_alias_shape(emulator, engine, clients):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 300})  # 5 minutes -> 1 s
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaCanary10Percent5Minutes")
    stop = threading.Event()
    seen, thread = watch_alias(clients.lam, fn, stop)
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "String", "string": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    info = wait_for(lambda: finished(clients.cd, dep), what="the canary")
    stop.set()
    thread.join()
    if seen[-1] != alias_state(clients.lam, fn):  # the watcher may stop before its last poll
        seen.append(alias_state(clients.lam, fn))
    assert info["status"] == "Succeeded"
    assert seen == [(v1, {}), (v1, {v2: 0.1}), (v2, {})]


def test_custom_linear_config(emulator, engine, clients):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 120})  # 1 minute -> 0.5 s
    fn, app, group, config = unique("app"), unique("cd"), unique("dg"), unique("linear")
    v1, v2 = make_function(clients.lam, fn)
    clients.cd.create_deployment_config(deploymentConfigName=config, computePlatform="Lambda", trafficRoutingConfig={"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1}})
    got = clients.cd.get_deployment_config(deploymentConfigName=config)["deploymentConfigInfo"]
    assert got["trafficRoutingConfig"] == {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1}}
    assert got["computePlatform"] == "Lambda"
    assert config in clients.cd.list_deployment_configs()["deploymentConfigsList"]
    make_group(clients.cd, app, group, config)
    stop = threading.Event()
    seen, thread = watch_alias(clients.lam, fn, stop)
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    info = wait_for(lambda: finished(clients.cd, dep), what="the linear deployment")
    stop.set()
    thread.join()
    if seen[-1] != alias_state(clients.lam, fn):  # the watcher may stop before its last poll
        seen.append(alias_state(clients.lam, fn))
    assert info["status"] == "Succeeded"
    assert seen == [(v1, {}), (v1, {v2: 0.25}), (v1, {v2: 0.5}), (v1, {v2: 0.75}), (v2, {})]
    with pytest.raises(clients.cd.exceptions.DeploymentConfigInUseException):
        clients.cd.delete_deployment_config(deploymentConfigName=config)


def test_predefined_lambda_configs_exist(clients):
    for name, routing in {
        "CodeDeployDefault.LambdaCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
        "CodeDeployDefault.LambdaCanary10Percent10Minutes": ("TimeBasedCanary", 10, 10),
        "CodeDeployDefault.LambdaCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
        "CodeDeployDefault.LambdaCanary10Percent30Minutes": ("TimeBasedCanary", 10, 30),
        "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": ("TimeBasedLinear", 10, 1),
        "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": ("TimeBasedLinear", 10, 2),
        "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
        "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": ("TimeBasedLinear", 10, 10),
        "CodeDeployDefault.LambdaAllAtOnce": ("AllAtOnce", None, None),
    }.items():
        info = clients.cd.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
        config = info["trafficRoutingConfig"]
        assert config["type"] == routing[0]
        if routing[0] == "TimeBasedCanary":
            assert config["timeBasedCanary"] == {"canaryPercentage": routing[1], "canaryInterval": routing[2]}
        if routing[0] == "TimeBasedLinear":
            assert config["timeBasedLinear"] == {"linearPercentage": routing[1], "linearInterval": routing[2]}


def test_hook_that_never_reports_fails_at_the_timeout_and_rollback_runs_its_own_hooks(emulator, engine, clients, runtime_api):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 3600})  # the 1-hour hook timeout -> 1 s
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    hooks = {"BeforeAllowTraffic": unique("CodeDeployHook_pre")}

    def decide(event, payload):
        # Silent for the original deployment; reports for the rollback deployment.
        creator = clients.cd.get_deployment(deploymentId=payload["DeploymentId"])["deploymentInfo"]["creator"]
        return "Succeeded" if creator == "codeDeployRollback" else None

    reporting_hooks(emulator, runtime_api, clients, hooks, decide)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaAllAtOnce", rollback_events=["DEPLOYMENT_FAILURE"])
    started = time.time()
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2, hooks)}})["deploymentId"]
    info = wait_for(lambda: finished(clients.cd, dep), what="the timeout")
    assert 0.9 <= time.time() - started < 10
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "TIMEOUT"
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = wait_for(lambda: finished(clients.cd, rollback_id), what="the rollback deployment")
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == dep
    assert re.fullmatch(r"d-[A-Z0-9]{9}", rollback_id)
    assert alias_state(clients.lam, fn) == (v1, {})
    # The rollback deployment invoked the hook too (the second invocation), and reported.
    assert [r["payload"]["DeploymentId"] for r in runtime_api.received] == [dep, rollback_id]
    assert "succeeded" in deployment(clients.cd, dep)["rollbackInfo"]["rollbackMessage"]
    target_id = clients.cd.list_deployment_targets(deploymentId=dep)["targetIds"][0]
    events = {e["lifecycleEventName"]: e["status"] for e in clients.cd.get_deployment_target(deploymentId=dep, targetId=target_id)["deploymentTarget"]["lambdaTarget"]["lifecycleEvents"]}
    assert events["BeforeAllowTraffic"] == "Failed" and events["AllowTraffic"] == "Skipped"


def test_hook_reporting_failed_fails_without_rollback_when_not_configured(emulator, engine, clients, runtime_api):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    hooks = {"AfterAllowTraffic": unique("CodeDeployHook_post")}
    reporting_hooks(emulator, runtime_api, clients, hooks, lambda event, payload: "Failed")
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaAllAtOnce")
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2, hooks)}})["deploymentId"]
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert "rollbackInfo" not in info
    # After AllowTraffic: the alias stays on the new version (nothing rolls it back).
    assert alias_state(clients.lam, fn) == (v2, {})


def test_alarm_stops_the_deployment_and_rolls_back(emulator, engine, clients):
    emulator.control("POST", "/_shiftguard/engine", {"alarmEvaluation": False})  # the test sets the state
    fn, app, group, alarm = unique("app"), unique("cd"), unique("dg"), unique("alarm")
    v1, v2 = make_function(clients.lam, fn)
    clients.cw.put_metric_alarm(AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", Dimensions=[{"Name": "FunctionName", "Value": fn}])
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaCanary10Percent30Minutes", alarms=[alarm], rollback_events=["DEPLOYMENT_STOP_ON_ALARM"])
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    wait_for(lambda: alias_state(clients.lam, fn) == (v1, {v2: 0.1}), what="the canary shift")
    clients.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    info = wait_for(lambda: finished(clients.cd, dep), what="the alarm stop")
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    rollback = wait_for(lambda: finished(clients.cd, info["rollbackInfo"]["rollbackDeploymentId"]))
    assert rollback["status"] == "Succeeded"
    assert alias_state(clients.lam, fn) == (v1, {})


def test_stop_deployment_answers_pending_then_stops_and_rolls_back(emulator, engine, clients):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    wait_for(lambda: alias_state(clients.lam, fn) == (v1, {v2: 0.1}))
    answer = clients.cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    assert answer["status"] == "Pending"
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    rollback = wait_for(lambda: finished(clients.cd, info["rollbackInfo"]["rollbackDeploymentId"]))
    assert rollback["status"] == "Succeeded" and rollback["creator"] == "codeDeployRollback"
    assert alias_state(clients.lam, fn) == (v1, {})
    with pytest.raises(clients.cd.exceptions.DeploymentAlreadyCompletedException):
        clients.cd.stop_deployment(deploymentId=dep)


def test_stop_without_rollback_leaves_the_alias(emulator, engine, clients):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    wait_for(lambda: alias_state(clients.lam, fn) == (v1, {v2: 0.1}))
    # A second deployment on the group while this one runs: refused.
    with pytest.raises(clients.cd.exceptions.DeploymentLimitExceededException):
        clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})
    assert clients.cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=False)["status"] == "Pending"
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Stopped" and "rollbackInfo" not in info
    assert alias_state(clients.lam, fn) == (v1, {v2: 0.1})


def test_alias_moved_behind_codedeploys_back_fails_the_deployment(emulator, engine, clients):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn, versions=3)[:2]
    clients.lam.update_alias(FunctionName=fn, Name="live", FunctionVersion="3")
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaAllAtOnce")
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert alias_state(clients.lam, fn) == ("3", {})


def test_engine_off_deployments_stay_where_tests_put_them(emulator, clients):
    fn, app, group = unique("app"), unique("cd"), unique("dg")
    v1, v2 = make_function(clients.lam, fn)
    make_group(clients.cd, app, group, "CodeDeployDefault.LambdaCanary10Percent5Minutes")
    dep = clients.cd.create_deployment(applicationName=app, deploymentGroupName=group, revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(fn, "live", v1, v2)}})["deploymentId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", dep)  # moto's UUIDs, which existing tests pass back
    time.sleep(0.3)
    assert deployment(clients.cd, dep)["status"] == "Created"
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "InProgress"})
    time.sleep(0.2)
    assert deployment(clients.cd, dep)["status"] == "InProgress"
    assert alias_state(clients.lam, fn) == (v1, {})
    answer = clients.cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    assert answer["status"] == "Pending"
    info = deployment(clients.cd, dep)
    assert info["status"] == "Stopped"
    rollback = deployment(clients.cd, info["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["status"] == "Succeeded"


def test_engine_settings_are_checked(emulator):
    settings = emulator.control("GET", "/_shiftguard/engine")
    assert set(settings) == {"enabled", "timeScale", "alarmEvaluation", "hookTimeoutSeconds", "tickSeconds"}
    for bad in ({"timeScale": 0}, {"enabled": "yes"}, {"bogus": 1}):
        with pytest.raises(AssertionError, match="400"):
            emulator.control("POST", "/_shiftguard/engine", bad)
