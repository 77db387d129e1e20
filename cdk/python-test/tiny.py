"""The pack test's app (cdk/test/pack.test.ts), in Python: one function protected by ShiftGuard
(canary deployment, hooks, alarms, rollback, dashboard), an alias rollout and a Lattice rollout,
and the user's own role allowed to start the Lattice one. Its TypeScript twin is `tiny` in
cdk/test/python-twins.ts."""
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from shiftguard_cdk import (
    AliasRolloutTarget, HookChecks, LatticeRolloutTarget, ProtectAlarms, RolloutStep, ShiftGuard,
)


def tiny(app: App, asset_dir: str) -> Stack:
    stack = Stack(app, "Tiny")
    api = lambda_.Function(
        stack, "api",
        function_name="api", runtime=lambda_.Runtime.NODEJS_LATEST, handler="index.handler",
        code=lambda_.Code.from_inline('exports.handler = async () => ({ statusCode: 200, body: "ok" })'),
    )
    guard = ShiftGuard(stack, "ShiftGuard", asset_dir=asset_dir, architecture=lambda_.Architecture.X86_64)
    # A struct parameter in last position takes keyword arguments; a check is the hooks' JSON (a dict).
    guard.protect(
        api,
        alias="live",
        pre_traffic=HookChecks(checks=[{"name": "smoke", "kind": "invoke", "payload": {"path": "/health"}, "expect": {"status": 200}}]),
        post_traffic=HookChecks(checks=[{"name": "alias-smoke", "kind": "invoke", "expect": {"status": 200}}]),
        alarms=ProtectAlarms(error_rate=0.01, p99_ms=800),
    )
    guard.rollout(
        "api",
        target=AliasRolloutTarget(type="lambda-alias", function="api", alias="live"),
        steps=[RolloutStep(weight=10, bake="5m"), RolloutStep(weight=100, bake="5m")],
        alarms=["api-live-error-rate"],
    )
    lattice = guard.rollout(
        "orders",
        target=LatticeRolloutTarget(
            type="lattice-listener", service="svc-0orders0000000000", listener="listener-0orders0000000000",
            production_target_group="tg-0production000000", canary_target_group="tg-0canary0000000000",
        ),
        steps=[RolloutStep(weight=50, bake="5m"), RolloutStep(weight=100)],
        alarms=["orders-5xx"],
    )
    # The user's own role: allowed to start the Lattice rollout, and a wildcard of the user's own.
    deployer = iam.Role(stack, "deployer", assumed_by=iam.AccountRootPrincipal())
    lattice.grant_start(deployer)
    deployer.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::artifacts/*"]))
    return stack
