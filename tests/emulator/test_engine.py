"""The CodeDeploy engine: Lambda deployments that run themselves (hooks, traffic shifting per
configuration, alarms, automatic rollback, StopDeployment), seen through boto3."""

from __future__ import annotations

import re
import threading
import time

import pytest
from conftest import bare_function, unique, wait_for


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
        bare_function(clients.lam, name)
        emulator.bind(name, runtime_api.endpoint)

        def handler(payload, event=event):
            assert set(payload) == {"DeploymentId", "LifecycleEventHookExecutionId"}
            status = decide(event, payload)
            if status:
                clients.cd.put_lifecycle_event_hook_execution_status(deploymentId=payload["DeploymentId"], lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"], status=status)
            return {"reported": status}

        runtime_api.handlers[name] = handler


def test_all_at_once_runs_hooks_on_bound_processes_and_shifts(emulator, engine, clients, runtime_api, lambda_app):
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce")
    hooks = {"BeforeAllowTraffic": unique("CodeDeployHook_pre"), "AfterAllowTraffic": unique("CodeDeployHook_post")}
    reporting_hooks(emulator, runtime_api, clients, hooks)
    dep = app.deploy(hooks)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", dep)
    info = wait_for(lambda: finished(clients.cd, dep), what="the deployment to finish")
    assert info["status"] == "Succeeded", info
    assert info["creator"] == "user"
    assert alias_state(clients.lam, app.fn) == (app.v2, {})
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
    assert dep in clients.cd.list_deployments(applicationName=app.app, deploymentGroupName=app.group)["deployments"]
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


LINEAR_25 = {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1}}

# One row per deployment configuration: the configuration (a predefined name, or the routing of a
# custom one CreateDeploymentConfig makes), the time scale, the revision's kind, and the new
# version's weights, in order, before it takes all the traffic (CodeDeploy's alias shape: the old
# version primary, the new one in AdditionalVersionWeights).
SHIFTS = [
    pytest.param("CodeDeployDefault.LambdaCanary10Percent5Minutes", 300, "String", [0.1], id="canary 10% for 5 minutes (1 s)"),
    pytest.param(LINEAR_25, 120, "AppSpecContent", [0.25, 0.5, 0.75], id="custom linear 25% every minute (0.5 s)"),
]


@pytest.mark.parametrize("config, time_scale, kind, weights", SHIFTS)
def test_traffic_shifts_in_codedeploys_alias_shape(emulator, engine, clients, lambda_app, config, time_scale, kind, weights):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": time_scale})
    name = config
    if isinstance(config, dict):
        name = unique("custom")
        clients.cd.create_deployment_config(deploymentConfigName=name, computePlatform="Lambda", trafficRoutingConfig=config)
        got = clients.cd.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
        assert got["trafficRoutingConfig"] == config
        assert got["computePlatform"] == "Lambda"
        assert name in clients.cd.list_deployment_configs()["deploymentConfigsList"]
    app = lambda_app(config=name)
    stop = threading.Event()
    seen, thread = watch_alias(clients.lam, app.fn, stop)
    dep = app.deploy(kind=kind)
    info = wait_for(lambda: finished(clients.cd, dep), what="the deployment")
    stop.set()
    thread.join()
    if seen[-1] != alias_state(clients.lam, app.fn):  # the watcher may stop before its last poll
        seen.append(alias_state(clients.lam, app.fn))
    assert info["status"] == "Succeeded"
    assert seen == [(app.v1, {}), *[(app.v1, {app.v2: w}) for w in weights], (app.v2, {})]
    if isinstance(config, dict):
        with pytest.raises(clients.cd.exceptions.DeploymentConfigInUseException):
            clients.cd.delete_deployment_config(deploymentConfigName=name)


@pytest.mark.parametrize("name, routing", [
    ("CodeDeployDefault.LambdaCanary10Percent5Minutes", ("TimeBasedCanary", 10, 5)),
    ("CodeDeployDefault.LambdaCanary10Percent10Minutes", ("TimeBasedCanary", 10, 10)),
    ("CodeDeployDefault.LambdaCanary10Percent15Minutes", ("TimeBasedCanary", 10, 15)),
    ("CodeDeployDefault.LambdaCanary10Percent30Minutes", ("TimeBasedCanary", 10, 30)),
    ("CodeDeployDefault.LambdaLinear10PercentEvery1Minute", ("TimeBasedLinear", 10, 1)),
    ("CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", ("TimeBasedLinear", 10, 2)),
    ("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", ("TimeBasedLinear", 10, 3)),
    ("CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", ("TimeBasedLinear", 10, 10)),
    ("CodeDeployDefault.LambdaAllAtOnce", ("AllAtOnce", None, None)),
])
def test_predefined_lambda_configs_exist(clients, name, routing):
    info = clients.cd.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
    config = info["trafficRoutingConfig"]
    assert config["type"] == routing[0]
    if routing[0] == "TimeBasedCanary":
        assert config["timeBasedCanary"] == {"canaryPercentage": routing[1], "canaryInterval": routing[2]}
    if routing[0] == "TimeBasedLinear":
        assert config["timeBasedLinear"] == {"linearPercentage": routing[1], "linearInterval": routing[2]}


def test_hook_that_never_reports_fails_at_the_timeout_and_rollback_runs_its_own_hooks(emulator, engine, clients, runtime_api, lambda_app):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 3600})  # the 1-hour hook timeout -> 1 s
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce", rollback_events=["DEPLOYMENT_FAILURE"])
    hooks = {"BeforeAllowTraffic": unique("CodeDeployHook_pre")}

    def decide(event, payload):
        # Silent for the original deployment; reports for the rollback deployment.
        creator = clients.cd.get_deployment(deploymentId=payload["DeploymentId"])["deploymentInfo"]["creator"]
        return "Succeeded" if creator == "codeDeployRollback" else None

    reporting_hooks(emulator, runtime_api, clients, hooks, decide)
    started = time.time()
    dep = app.deploy(hooks)
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
    assert alias_state(clients.lam, app.fn) == (app.v1, {})
    # The rollback deployment invoked the hook too (the second invocation), and reported.
    assert [r["payload"]["DeploymentId"] for r in runtime_api.received] == [dep, rollback_id]
    assert "succeeded" in deployment(clients.cd, dep)["rollbackInfo"]["rollbackMessage"]
    target_id = clients.cd.list_deployment_targets(deploymentId=dep)["targetIds"][0]
    events = {e["lifecycleEventName"]: e["status"] for e in clients.cd.get_deployment_target(deploymentId=dep, targetId=target_id)["deploymentTarget"]["lambdaTarget"]["lifecycleEvents"]}
    assert events["BeforeAllowTraffic"] == "Failed" and events["AllowTraffic"] == "Skipped"


def test_hook_reporting_failed_fails_without_rollback_when_not_configured(emulator, engine, clients, runtime_api, lambda_app):
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce")
    hooks = {"AfterAllowTraffic": unique("CodeDeployHook_post")}
    reporting_hooks(emulator, runtime_api, clients, hooks, lambda event, payload: "Failed")
    dep = app.deploy(hooks)
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert "rollbackInfo" not in info
    # After AllowTraffic: the alias stays on the new version (nothing rolls it back).
    assert alias_state(clients.lam, app.fn) == (app.v2, {})


def alarm_goes_off(clients, alarm, deployment_id):
    clients.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")


def stop_deployment(auto_rollback):
    def stop(clients, alarm, deployment_id):
        # StopDeployment answers Pending: the engine stops the deployment on its next tick.
        assert clients.cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=auto_rollback)["status"] == "Pending"
    return stop


# One row per way a running canary ends early: what stops it, whether the group watches an alarm
# (and which auto-rollback events it has), the errorInformation code, and whether a rollback
# deployment puts the alias back on the old version (else it stays where the canary left it).
STOPS = [
    pytest.param(alarm_goes_off, True, ["DEPLOYMENT_STOP_ON_ALARM"], "ALARM_ACTIVE", True, id="alarm, rollback on alarm"),
    pytest.param(stop_deployment(True), False, None, "MANUAL_STOP", True, id="StopDeployment with rollback"),
    pytest.param(stop_deployment(False), False, None, "MANUAL_STOP", False, id="StopDeployment without rollback"),
]


@pytest.mark.parametrize("stop, watched, rollback_events, code, rolled_back", STOPS)
def test_a_running_canary_stops_and_rolls_back_as_configured(emulator, engine, clients, lambda_app, stop, watched, rollback_events, code, rolled_back):
    alarm = unique("alarm") if watched else None
    if watched:
        emulator.control("POST", "/_shiftguard/engine", {"alarmEvaluation": False})  # the test sets the state
    app = lambda_app(config="CodeDeployDefault.LambdaCanary10Percent30Minutes", alarms=[alarm] if watched else None, rollback_events=rollback_events)
    if watched:
        clients.cw.put_metric_alarm(AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold", Dimensions=[{"Name": "FunctionName", "Value": app.fn}])
    dep = app.deploy()
    wait_for(lambda: alias_state(clients.lam, app.fn) == (app.v1, {app.v2: 0.1}), what="the canary shift")
    # A second deployment on the group while this one runs: refused.
    with pytest.raises(clients.cd.exceptions.DeploymentLimitExceededException):
        app.deploy()
    stop(clients, alarm, dep)
    info = wait_for(lambda: finished(clients.cd, dep), what="the stop")
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == code
    if rolled_back:
        rollback = wait_for(lambda: finished(clients.cd, info["rollbackInfo"]["rollbackDeploymentId"]))
        assert rollback["status"] == "Succeeded" and rollback["creator"] == "codeDeployRollback"
        assert alias_state(clients.lam, app.fn) == (app.v1, {})
    else:
        assert "rollbackInfo" not in info
        assert alias_state(clients.lam, app.fn) == (app.v1, {app.v2: 0.1})
    with pytest.raises(clients.cd.exceptions.DeploymentAlreadyCompletedException):
        clients.cd.stop_deployment(deploymentId=dep)


def test_alias_moved_behind_codedeploys_back_fails_the_deployment(emulator, engine, clients, lambda_app):
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce", versions=3)
    clients.lam.update_alias(FunctionName=app.fn, Name="live", FunctionVersion="3")
    dep = app.deploy()
    info = wait_for(lambda: finished(clients.cd, dep))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert alias_state(clients.lam, app.fn) == ("3", {})


def test_engine_off_deployments_stay_where_tests_put_them(emulator, clients, lambda_app):
    app = lambda_app(config="CodeDeployDefault.LambdaCanary10Percent5Minutes")
    dep = app.deploy()
    assert re.fullmatch(r"[0-9a-f-]{36}", dep)  # moto's UUIDs, which existing tests pass back
    time.sleep(0.3)
    assert deployment(clients.cd, dep)["status"] == "Created"
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "InProgress"})
    time.sleep(0.2)
    assert deployment(clients.cd, dep)["status"] == "InProgress"
    assert alias_state(clients.lam, app.fn) == (app.v1, {})
    answer = clients.cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    assert answer["status"] == "Pending"
    info = deployment(clients.cd, dep)
    assert info["status"] == "Stopped"
    rollback = deployment(clients.cd, info["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["status"] == "Succeeded"


@pytest.mark.parametrize("bad", [{"timeScale": 0}, {"enabled": "yes"}, {"bogus": 1}])
def test_engine_settings_are_checked(emulator, bad):
    settings = emulator.control("GET", "/_shiftguard/engine")
    assert set(settings) == {"enabled", "timeScale", "alarmEvaluation", "hookTimeoutSeconds", "tickSeconds"}
    with pytest.raises(AssertionError, match="400"):
        emulator.control("POST", "/_shiftguard/engine", bad)
    assert emulator.control("GET", "/_shiftguard/engine") == settings  # a refused setting changes nothing
