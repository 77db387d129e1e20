import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as vpclattice from 'aws-cdk-lib/aws-vpclattice';
import { Construct } from 'constructs';
import { ShiftGuard } from './shiftguard';
import type { ShiftGuardStackProps } from './stacks';
import { suppress } from './nag';

/** The REST API id the sequences create their API with (the emulator honours moto's `_custom_id_` tag). */
export const REHEARSAL_API_ID = 'chk0api001';

/**
 * The world `make demo` and the end-to-end sequences (`rollback/shift/tests/one_truth.rs`,
 * `hooks/tests/engine.rs`) rehearse, as a CDK app would deploy it: they run each ShiftGuard binary
 * with the IAM policy this stack's synthesized template gives its function (strict IAM in the
 * emulator), so a call the construct does not grant fails them. The names are theirs
 * (tests/demo/demo.py, rollback/tests/support): `checkout` with aliases `live` and `blue`,
 * CodeDeploy `checkout-app` / `checkout-dg`, alarm `checkout-canary-errors`, the alarm topic
 * `shiftguard-alarms`, the rollout `checkout` of `live`; the Lattice service `orders` (groups
 * `orders-production`, `orders-canary`, listener `orders-https`), alarm `orders-canary-5xx` and the
 * rollout `orders`; the REST API `REHEARSAL_API_ID`'s stage `prod`. Resource ids the emulator
 * assigns (Lattice) are resolved by name when a test loads the template (tests/emulator/stacks.py).
 */
export class RehearsalStack extends Stack {
  public readonly shiftguard: ShiftGuard;

  constructor(scope: Construct, id: string, props: ShiftGuardStackProps) {
    super(scope, id, props);
    const fn = (name: string) => {
      const logGroup = new logs.LogGroup(this, `${name}-logs`, { logGroupName: `/aws/lambda/${name}`, retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
      const role = new iam.Role(this, `${name}-role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
      return new lambda.Function(this, name, {
        functionName: name, runtime: lambda.Runtime.NODEJS_LATEST, architecture: props.architecture, handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ status: "ok" }) });'),
        role, logGroup,
      });
    };

    // The alias scenarios: CodeDeploy shifts `live`; post-traffic moves the stable pointer `blue`.
    const checkout = fn('checkout');
    const live = new lambda.Alias(this, 'live', { aliasName: 'live', version: checkout.currentVersion });
    // The Lattice scenario: production serves `orders:live`, the canary group a version.
    const orders = fn('orders');
    const ordersLive = new lambda.Alias(this, 'orders-live', { aliasName: 'live', version: orders.currentVersion });
    const service = new vpclattice.CfnService(this, 'service', { name: 'orders', authType: 'AWS_IAM' });
    const group = (name: string, target: string) => new vpclattice.CfnTargetGroup(this, name, {
      name: `orders-${name}`, type: 'LAMBDA', config: { lambdaEventStructureVersion: 'V2' }, targets: [{ id: target }],
    });
    const production = group('production', ordersLive.functionArn);
    const canary = group('canary', orders.currentVersion.functionArn);
    const listener = new vpclattice.CfnListener(this, 'listener', {
      serviceIdentifier: service.attrId, name: 'orders-https', protocol: 'HTTPS', port: 443,
      defaultAction: { forward: { targetGroups: [
        { targetGroupIdentifier: production.attrId, weight: 100 },
        { targetGroupIdentifier: canary.attrId, weight: 0 },
      ] } },
    });

    // The alarm topic the demo and the sample application create (`shiftguard-alarms`), by name: the
    // statements about it (rollback's doctor reads its subscriptions) name the topic they use.
    const key = new kms.Key(this, 'alarms-key', { enableKeyRotation: true, description: 'ShiftGuard rehearsal alarm topic', removalPolicy: RemovalPolicy.DESTROY });
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    const alarms = new sns.Topic(this, 'alarms', { topicName: 'shiftguard-alarms', masterKey: key, enforceSSL: true });

    this.shiftguard = new ShiftGuard(this, 'ShiftGuard', {
      assetDir: props.assetDir,
      architecture: props.architecture,
      hookNamePrefix: 'CodeDeployHook_checkout',
      alarmTopics: [alarms],
      checkedFunctions: [{ functionName: 'checkout', alias: 'live', application: 'checkout-app', deploymentGroup: 'checkout-dg' }],
      // The demo's checks (tests/demo/demo.py PRE_CHECKS / POST_CHECKS).
      preTrafficChecks: { concurrency: 3, checks: [
        { name: 'health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' },
          expect: { status: 200, json: { '/body/status': 'ok' }, maxLatencyMs: 2000 }, timeout: '5s', retries: 1, backoff: '100ms' },
        { name: 'burst', kind: 'burst', requests: 20, concurrency: 5, timeout: '20s',
          target: { invoke: { payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 } } } },
      ] },
      postTrafficChecks: { concurrency: 2, checks: [
        { name: 'alias-health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200, json: { '/body/status': 'ok' } }, timeout: '5s' },
        { name: 'new-vs-old', kind: 'metrics', window: '15m', minSamples: 20, maxErrorRate: 0.02, maxErrorRateMultiple: 2.0, inconclusive: 'fail' },
      ] },
      stableAlias: 'blue',
      rollbackTargets: [
        { alarms: ['checkout-canary-errors'], targets: [{ type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue',
          codeDeploy: { application: 'checkout-app', deploymentGroup: 'checkout-dg' } }] },
        { alarms: ['orders-canary-5xx'], targets: [{ type: 'lattice-listener', service: service.attrId, listener: listener.attrId, productionTargetGroup: production.attrId }] },
        { alarms: ['checkout-api-5xx'], targets: [{ type: 'apigateway-canary', restApi: REHEARSAL_API_ID, stage: 'prod' }] },
      ],
    });

    const application = new codedeploy.LambdaApplication(this, 'application', { applicationName: 'checkout-app' });
    const deploymentGroup = new codedeploy.LambdaDeploymentGroup(this, 'deployment-group', {
      application, deploymentGroupName: 'checkout-dg', alias: live,
      deploymentConfig: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
      preHook: this.shiftguard.preTraffic, postHook: this.shiftguard.postTraffic,
      autoRollback: { failedDeployment: true, stoppedDeployment: true },
    });
    suppress(deploymentGroup, [
      { id: 'AwsSolutions-IAM4', reason: 'AWSCodeDeployRoleForLambdaLimited is AWS\'s least-privilege policy for CodeDeploy Lambda deployments.' },
      { id: 'AwsSolutions-IAM5', reason: 'CDK grants the deployment group\'s role invoke on the hook functions\' versions (function:NAME:*).' },
    ]);

    const ordersAlarm = new cloudwatch.Alarm(this, 'orders-canary-5xx', {
      alarmName: 'orders-canary-5xx',
      metric: new cloudwatch.Metric({ namespace: 'AWS/VpcLattice', metricName: 'HTTPCode_5XX_Count', statistic: 'Sum', period: Duration.minutes(1), dimensionsMap: { TargetGroup: canary.attrId } }),
      threshold: 5, evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    // The demo's rollout plan (tests/demo/demo.py ROLLOUT_STEPS), driven there by tests/demo/rollout.py.
    this.shiftguard.rollout('orders', {
      target: { type: 'lattice-listener', service: service.attrId, listener: listener.attrId,
        productionTargetGroup: production.attrId, canaryTargetGroup: canary.attrId, productionAlias: ordersLive },
      steps: [{ weight: 10, bake: '4s' }, { weight: 50, bake: '2s' }, { weight: 100, bake: '2s' }],
      alarms: [ordersAlarm],
      stateMachineName: 'orders-rollout',
    });
    // An alias on its own plan (the sequences' alias rollouts of `checkout:live`).
    const checkoutAlarm = new cloudwatch.Alarm(this, 'checkout-canary-errors', {
      alarmName: 'checkout-canary-errors',
      metric: new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName: 'Errors', statistic: 'Sum', period: Duration.minutes(1),
        dimensionsMap: { FunctionName: 'checkout', Resource: 'checkout:live' } }),
      threshold: 1, evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    // The sample plan events/shift/alias-rollout.json, as a rollout of this stack.
    this.shiftguard.rollout('checkout', {
      target: { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue' },
      steps: [10, 25, 50, 100].map((weight) => ({ weight, bake: '5m' })),
      checks: {
        before: { checks: [{ name: 'smoke', kind: 'invoke', payload: { path: '/health' }, expect: { status: 200 }, timeout: '5s' }] },
        after: { checks: [{ name: 'through-the-alias', kind: 'burst', requests: 20, concurrency: 4,
          target: { invoke: { payload: { path: '/health' }, expect: { status: 200 } } }, maxFailureRate: 0.01 }] },
      },
      alarms: [checkoutAlarm],
      stateMachineName: 'checkout-rollout',
    });
  }
}
