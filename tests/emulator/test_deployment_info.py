"""CodeDeploy `deploymentInfo.description` and `creator` in GetDeployment and BatchGetDeployments:
deployments left to tests (engine off), deployments the engine runs, their rollback deployments,
and answers the extension patches (rollbackInfo, errorInformation)."""

from __future__ import annotations

from conftest import make_group, unique, wait_for


def both_views(cd, deployment_id):
    one = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    batch = cd.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"]
    assert len(batch) == 1 and batch[0]["deploymentId"] == deployment_id
    return one, batch[0]


def test_description_and_creator_with_the_engine_off(emulator, clients, lambda_app):
    cd = clients.cd
    app = lambda_app()
    text = "ShiftGuard canary: checkout build 102 (commit 0123abc)"
    dep = app.deploy(description=text)
    for info in both_views(cd, dep):
        assert info["description"] == text and info["creator"] == "user"
    # Set by the control plane: still there, beside the patched members.
    emulator.control("POST", f"/_shiftguard/codedeploy/deployments/{dep}", {"status": "InProgress", "rollbackInfo": {"rollbackMessage": "nothing yet"}})
    for info in both_views(cd, dep):
        assert info["description"] == text and info["rollbackInfo"] == {"rollbackMessage": "nothing yet"}
    assert emulator.control("GET", f"/_shiftguard/codedeploy/deployments/{dep}")["description"] == text
    # Stopped with auto-rollback: the rollback deployment is CodeDeploy's.
    cd.stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    original, _ = both_views(cd, dep)
    assert original["description"] == text and original["status"] == "Stopped"
    rollback, batch = both_views(cd, original["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["creator"] == batch["creator"] == "codeDeployRollback"
    # A guess: the rollback deployment has no description of its own (left out).
    assert "description" not in rollback
    # Without a description: the member is left out (not null, not "").
    plain = app.deploy()
    for info in both_views(cd, plain):
        assert "description" not in info and info["creator"] == "user"


def test_description_of_deployments_the_engine_runs(emulator, engine, clients, lambda_app):
    cd = clients.cd
    app = lambda_app(config="CodeDeployDefault.LambdaAllAtOnce")
    text = "canary of build 7"
    dep = app.deploy(description=text)
    info = wait_for(lambda: cd.get_deployment(deploymentId=dep)["deploymentInfo"]["status"] == "Succeeded" and cd.get_deployment(deploymentId=dep)["deploymentInfo"])
    assert info["description"] == text and info["creator"] == "user"
    _, batch = both_views(cd, dep)
    assert batch["description"] == text and batch["creator"] == "user"
    # A hook that does not exist fails the deployment: errorInformation is patched in, the description stays.
    make_group(cd, app.app, app.group + "-b", "CodeDeployDefault.LambdaAllAtOnce", rollback_events=["DEPLOYMENT_FAILURE"])
    clients.lam.update_alias(FunctionName=app.fn, Name="live", FunctionVersion=app.v1)
    failing = app.deploy({"BeforeAllowTraffic": unique("missing-hook")}, group=app.group + "-b", description="will fail")
    failed = wait_for(lambda: (lambda i: i if i["status"] in ("Failed", "Stopped") else None)(cd.get_deployment(deploymentId=failing)["deploymentInfo"]), what="the failure")
    assert failed["description"] == "will fail" and failed["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    rollback = wait_for(lambda: (lambda i: i if i["status"] in ("Succeeded", "Failed") else None)(cd.get_deployment(deploymentId=rollback_id)["deploymentInfo"]), what="the rollback")
    assert rollback["creator"] == "codeDeployRollback" and "description" not in rollback
