"""cdk/lib/stacks.ts's ProtectExampleStack and LatticeExampleStack, ported to Python: two protect()
calls sharing check sets; a Lattice rollout with a productionAlias, Duration bakes, IAlarm alarms,
a checkFunction and checks, and a rollback mapping given to the constructor."""
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_vpclattice as vpclattice
from shiftguard_cdk import (
    HookChecks, LatticeListenerTarget, LatticeRolloutTarget, ProtectAlarms, RollbackMapping,
    RolloutCheckFunction, RolloutChecks, RolloutStep, ShiftGuard,
)

SAMPLE_APP = """exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ status: 'ok', path: event.path ?? event.rawPath ?? '/' }),
});"""


def sample_function(scope, name, architecture):
    log_group = logs.LogGroup(scope, f"{name}-logs", log_group_name=f"/aws/lambda/{name}",
                              retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY)
    role = iam.Role(scope, f"{name}-role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]))
    return lambda_.Function(scope, name, function_name=name, runtime=lambda_.Runtime.NODEJS_LATEST,
                            architecture=architecture, handler="index.handler",
                            code=lambda_.Code.from_inline(SAMPLE_APP), role=role, log_group=log_group,
                            timeout=Duration.seconds(10))


# The hooks' checks as in stacks.ts: a check is free-form JSON, a dict.
PRE_CHECKS = HookChecks(concurrency=4, checks=[
    {"name": "health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"}, "expect": {"status": 200}, "timeout": "5s", "retries": 1},
    {"name": "burst", "kind": "burst", "requests": 50, "concurrency": 10, "target": {"invoke": {"payload": {"httpMethod": "GET", "path": "/health"}, "expect": {"status": 200}}}, "timeout": "60s"},
])
POST_CHECKS = HookChecks(checks=[
    {"name": "alias-health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"}, "expect": {"status": 200}},
    {"name": "new-vs-old", "kind": "metrics", "window": "10m", "minSamples": 50, "maxErrorRateMultiple": 2.0, "inconclusive": "fail"},
])


class ProtectExampleStack(Stack):
    def __init__(self, scope, id, *, asset_dir, architecture):
        super().__init__(scope, id)
        self.shiftguard = ShiftGuard(self, "ShiftGuard", asset_dir=asset_dir, architecture=architecture,
                                     hook_name_prefix="CodeDeployHook_shop")
        self.cart = self.shiftguard.protect(sample_function(self, "cart", architecture), alias="live",
                                            pre_traffic=PRE_CHECKS, post_traffic=POST_CHECKS,
                                            alarms=ProtectAlarms(error_rate=0.01, p99_ms=800))
        self.pricing = self.shiftguard.protect(sample_function(self, "pricing", architecture), alias="live",
                                               deployment_config=codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
                                               pre_traffic=PRE_CHECKS, post_traffic=POST_CHECKS)


class LatticeExampleStack(Stack):
    def __init__(self, scope, id, *, asset_dir, architecture):
        super().__init__(scope, id)
        app = sample_function(self, "orders", architecture)
        production = lambda_.Version(self, "production-version", lambda_=app, description="production", removal_policy=RemovalPolicy.RETAIN)
        canary = app.current_version
        network = vpclattice.CfnServiceNetwork(self, "network", name="orders-network", auth_type="AWS_IAM")
        service = vpclattice.CfnService(self, "service", name="orders", auth_type="AWS_IAM")
        vpclattice.CfnServiceNetworkServiceAssociation(self, "association", service_network_identifier=network.attr_id, service_identifier=service.attr_id)
        live = lambda_.Alias(self, "live", alias_name="live", version=production)

        def target_group(name, target):
            target.add_permission(f"{name}-lattice", principal=iam.ServicePrincipal("vpc-lattice.amazonaws.com"))
            return vpclattice.CfnTargetGroup(self, name, name=f"orders-{name}", type="LAMBDA",
                                             config=vpclattice.CfnTargetGroup.TargetGroupConfigProperty(lambda_event_structure_version="V2"),
                                             targets=[vpclattice.CfnTargetGroup.TargetProperty(id=target.function_arn)])

        production_group = target_group("production", live)
        canary_group = target_group("canary", canary)
        listener = vpclattice.CfnListener(
            self, "listener", service_identifier=service.attr_id, name="orders-https", protocol="HTTPS", port=443,
            default_action=vpclattice.CfnListener.DefaultActionProperty(forward=vpclattice.CfnListener.ForwardProperty(target_groups=[
                vpclattice.CfnListener.WeightedTargetGroupProperty(target_group_identifier=production_group.attr_id, weight=100),
                vpclattice.CfnListener.WeightedTargetGroupProperty(target_group_identifier=canary_group.attr_id, weight=0),
            ])))
        # In a union-of-structs position (a rollback target, a rollout target) give the struct class:
        # a plain dict there is passed on as JSON, keys as written.
        self.shiftguard = ShiftGuard(self, "ShiftGuard", asset_dir=asset_dir, architecture=architecture,
                                     hook_name_prefix="CodeDeployHook_orders",
                                     rollback_targets=[RollbackMapping(
                                         alarms=["orders-canary-5xx", "orders-canary-latency"],
                                         targets=[LatticeListenerTarget(type="lattice-listener", service=service.attr_id, listener=listener.attr_id,
                                                                        production_target_group=production_group.attr_id)])])
        dims = {"TargetGroup": canary_group.attr_arn}
        alarms = [
            cloudwatch.Alarm(self, "canary-5xx", alarm_name="orders-canary-5xx",
                             metric=cloudwatch.Metric(namespace="AWS/VpcLattice", metric_name="HTTPCode_5XX_Count", statistic="Sum", period=Duration.minutes(1), dimensions_map=dims),
                             threshold=5, evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                             comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD),
            cloudwatch.Alarm(self, "canary-latency", alarm_name="orders-canary-latency",
                             metric=cloudwatch.Metric(namespace="AWS/VpcLattice", metric_name="RequestTime", statistic="p99", period=Duration.minutes(1), dimensions_map=dims),
                             threshold=1000, evaluation_periods=2, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.shiftguard.alarm_topic))
        self.rollout = self.shiftguard.rollout(
            "orders",
            target=LatticeRolloutTarget(type="lattice-listener", service=service.attr_id, listener=listener.attr_id,
                                        production_target_group=production_group.attr_id, canary_target_group=canary_group.attr_id,
                                        production_alias=live),
            steps=[RolloutStep(weight=w, bake=Duration.minutes(5)) for w in (10, 25, 50, 100)],
            alarms=alarms,
            check_function=RolloutCheckFunction(function=app.function_name, version=canary.version, current_version=production.version),
            checks=RolloutChecks(before=HookChecks(checks=[{"name": "health", "kind": "invoke", "payload": {"httpMethod": "GET", "path": "/health"}, "expect": {"status": 200}, "timeout": "5s"}])),
            state_machine_name="orders-rollout",
        )
