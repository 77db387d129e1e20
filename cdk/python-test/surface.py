"""The rest of the construct's API from Python, beside the pack app and the examples: every
ShiftGuard prop, the three rollback target types (a nested struct: codeDeploy), addChecks with
functions, addRollbackMapping, addCheckedFunction, protect() with its other options, an alias
rollout with checks before and after (a secret header, its environment, a notification topic),
grantStart, and the values other languages read (planJson, Rollout.RETRYABLE_ERRORS) as stack
outputs. Its TypeScript twin is `surface` in cdk/test/python-twins.ts."""
from aws_cdk import App, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from shiftguard_cdk import (
    AliasRolloutTarget, ApiGatewayCanaryTarget, CheckedFunction, CodeDeployGroupRef, HookChecks,
    LambdaAliasTarget, ProtectAlarms, RollbackMapping, Rollout, RolloutChecks, RolloutStep, ShiftGuard,
)


def surface(app: App, asset_dir: str) -> Stack:
    stack = Stack(app, "Surface")
    alarm_topic = sns.Topic(stack, "alarm-topic")
    notify = sns.Topic(stack, "notify")
    guard = ShiftGuard(
        stack, "ShiftGuard",
        asset_dir=asset_dir,
        architecture=lambda_.Architecture.X86_64,
        hook_name_prefix="CodeDeployHook_surface",
        checked_functions=[CheckedFunction(function_name="checkout", alias="live", application="checkout",
                                           deployment_group="checkout-live", log_group_name="/custom/checkout")],
        pre_traffic_checks=HookChecks(concurrency=2, checks=[{"name": "health", "kind": "invoke", "expect": {"status": 200}}]),
        post_traffic_checks=HookChecks(checks=[{"name": "new-vs-old", "kind": "metrics", "window": "15m", "maxErrorRate": 0.05}]),
        rollback_targets=[RollbackMapping(alarms=["checkout-errors"], targets=[
            LambdaAliasTarget(type="lambda-alias", function="checkout", alias="live", stable_alias="blue",
                              code_deploy=CodeDeployGroupRef(application="checkout", deployment_group="checkout-live")),
            ApiGatewayCanaryTarget(type="apigateway-canary", rest_api="a1b2c3d4e5", stage="prod"),
        ])],
        alarm_topics=[alarm_topic],
        allow_direct_alarm_actions=True,
        rollback_reserved_concurrency=3,
        log_retention=logs.RetentionDays.ONE_WEEK,
        dry_run=True,
        stable_alias="blue",
        allow_skip=True,
        shift_timeout=Duration.minutes(3),
    )
    guard.add_checks("post-traffic", HookChecks(checks=[
        {"name": "public-endpoint", "kind": "http", "url": "https://api.example.com/health", "expect": {"status": 200, "maxLatencyMs": 1500}},
    ]), ["checkout"])
    guard.add_rollback_mapping(alarms=["pricing-errors"], targets=[
        LambdaAliasTarget(type="lambda-alias", function="pricing", alias="live", stable_version="3"),
    ])
    guard.add_checked_function(function_name="pricing", alias="live", application="pricing", deployment_group="pricing-live")

    cart = lambda_.Function(stack, "cart", function_name="cart", runtime=lambda_.Runtime.NODEJS_LATEST, handler="index.handler",
                            code=lambda_.Code.from_inline("exports.handler = async () => 1"), timeout=Duration.seconds(5))
    extra = cloudwatch.Alarm(stack, "cart-throttles", alarm_name="cart-throttles", metric=cart.metric_throttles(),
                             threshold=1, evaluation_periods=1)
    protected = guard.protect(
        cart,
        alias="prod",
        pre_traffic=HookChecks(checks=[{"name": "smoke", "kind": "invoke", "payload": {"path": "/"}, "expect": {"status": 200}}]),
        post_traffic=HookChecks(checks=[{"name": "smoke", "kind": "invoke", "expect": {"status": 200}}]),
        alarms=ProtectAlarms(error_rate=0.05, period=Duration.minutes(2), evaluation_periods=4, datapoints_to_alarm=3),
        extra_alarms=[extra],
        deployment_group_name="cart-prod",
        alarm_name_prefix="cart",
        log_group_name="/custom/cart",
        dashboard_name="cart-canary",
    )
    rollout = guard.rollout(
        "checkout",
        target=AliasRolloutTarget(type="lambda-alias", function="checkout", alias="live", stable_version="1", stable_alias="blue"),
        steps=[RolloutStep(weight=5, bake=Duration.seconds(90)), RolloutStep(weight=50, bake="10m"), RolloutStep(weight=100)],
        alarms=[protected.alias_error_rate, "checkout-errors"],
        checks=RolloutChecks(
            before=HookChecks(concurrency=2, checks=[{"name": "health", "kind": "invoke", "expect": {"status": 200}}]),
            after=HookChecks(checks=[{"name": "public-endpoint", "kind": "http", "url": "https://api.example.com/health",
                                      "secretHeaders": {"Authorization": "HEALTH_CHECK_TOKEN"}, "expect": {"status": 200}}]),
        ),
        environment={"HEALTH_CHECK_TOKEN": "{{resolve:secretsmanager:health-token}}"},
        notification_topic=notify,
        timeout=Duration.hours(2),
        tracing=False,
        output=False,
        log_retention=logs.RetentionDays.ONE_WEEK,
        state_machine_name="checkout-rollout",
    )
    releaser = iam.Role(stack, "releaser", assumed_by=iam.AccountRootPrincipal())
    rollout.grant_start(releaser)
    CfnOutput(stack, "plan", value=rollout.plan_json)
    CfnOutput(stack, "retryable", value=",".join(Rollout.RETRYABLE_ERRORS))
    CfnOutput(stack, "refused", value=",".join(Rollout.REFUSED_ERRORS))
    CfnOutput(stack, "shift", value=guard.shift.function_name)
    CfnOutput(stack, "rollback-target", value=f"{protected.rollback_target.function}:{protected.rollback_target.alias}")
    return stack
