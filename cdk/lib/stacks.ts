import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as vpclattice from 'aws-cdk-lib/aws-vpclattice';
import { Construct } from 'constructs';
import { ProtectedFunction, Rollout, ShiftGuard } from './index';
import { suppress } from './nag';

export interface ShiftGuardStackProps extends StackProps {
  readonly assetDir: string;
  readonly architecture: lambda.Architecture;
}

/** The sample application: answers /health with {"status":"ok"}, as the example checks expect. */
const SAMPLE_APP = `exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ status: 'ok', path: event.path ?? event.rawPath ?? '/' }),
});`;

function sampleFunction(scope: Construct, name: string, props: ShiftGuardStackProps): lambda.Function {
  const logGroup = new logs.LogGroup(scope, `${name}-logs`, { logGroupName: `/aws/lambda/${name}`, retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, `${name}-role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
  return new lambda.Function(scope, name, {
    functionName: name,
    runtime: lambda.Runtime.NODEJS_LATEST,
    architecture: props.architecture,
    handler: 'index.handler',
    code: lambda.Code.fromInline(SAMPLE_APP),
    role,
    logGroup,
    timeout: Duration.seconds(10),
  });
}

const PRE_CHECKS = {
  concurrency: 4,
  checks: [
    { name: 'health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 }, timeout: '5s', retries: 1 },
    { name: 'burst', kind: 'burst', requests: 50, concurrency: 10, target: { invoke: { payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 } } }, timeout: '60s' },
  ],
};
const POST_CHECKS = {
  checks: [
    { name: 'alias-health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 } },
    { name: 'new-vs-old', kind: 'metrics', window: '10m', minSamples: 50, maxErrorRateMultiple: 2.0, inconclusive: 'fail' },
  ],
};

/** Example: a canary-deployed application with ShiftGuard's hooks and rollback. */
export class CanaryExampleStack extends Stack {
  public readonly shiftguard: ShiftGuard;
  public readonly group: codedeploy.LambdaDeploymentGroup;

  constructor(scope: Construct, id: string, props: ShiftGuardStackProps & { deploymentConfig?: codedeploy.ILambdaDeploymentConfig }) {
    super(scope, id, props);
    const app = sampleFunction(this, 'checkout', props);
    const live = new lambda.Alias(this, 'live', { aliasName: 'live', version: app.currentVersion });

    this.shiftguard = new ShiftGuard(this, 'ShiftGuard', {
      assetDir: props.assetDir,
      architecture: props.architecture,
      hookNamePrefix: 'CodeDeployHook_checkout',
      checkedFunctions: [{ functionName: 'checkout', alias: 'live', application: 'checkout', deploymentGroup: 'checkout-live' }],
      preTrafficChecks: PRE_CHECKS,
      postTrafficChecks: POST_CHECKS,
      rollbackTargets: [{
        alarms: ['checkout-canary-errors', 'checkout-live-errors'],
        targets: [{ type: 'lambda-alias', function: 'checkout', alias: 'live', codeDeploy: { application: 'checkout', deploymentGroup: 'checkout-live' } }],
      }],
      allowDirectAlarmActions: true,
    });

    // Errors of the version being deployed (ExecutedVersion), and of the alias as a whole.
    const canaryErrors = new cloudwatch.Alarm(this, 'canary-errors', {
      alarmName: 'checkout-canary-errors',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Lambda', metricName: 'Errors', statistic: 'Sum', period: Duration.minutes(1),
        dimensionsMap: { FunctionName: app.functionName, Resource: `${app.functionName}:live`, ExecutedVersion: app.currentVersion.version },
      }),
      threshold: 1, evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    const aliasErrors = new cloudwatch.Alarm(this, 'alias-errors', {
      alarmName: 'checkout-live-errors',
      metric: live.metricErrors({ period: Duration.minutes(1) }),
      threshold: 5, evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [canaryErrors, aliasErrors]) {
      alarm.addAlarmAction(new cwActions.SnsAction(this.shiftguard.alarmTopic));
    }

    const application = new codedeploy.LambdaApplication(this, 'application', { applicationName: 'checkout' });
    this.group = new codedeploy.LambdaDeploymentGroup(this, 'deployment-group', {
      application,
      deploymentGroupName: 'checkout-live',
      alias: live,
      deploymentConfig: props.deploymentConfig ?? codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
      preHook: this.shiftguard.preTraffic,
      postHook: this.shiftguard.postTraffic,
      alarms: [canaryErrors, aliasErrors],
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });
    suppress(this.group, [
      { id: 'AwsSolutions-IAM4', reason: 'AWSCodeDeployRoleForLambdaLimited is AWS\'s least-privilege policy for CodeDeploy Lambda deployments (it may only invoke hook functions named CodeDeployHook_*).' },
      { id: 'AwsSolutions-IAM5', reason: 'CDK grants the deployment group\'s role invoke on the hook functions\' versions (function:NAME:*); the version is only known at deploy time.' },
    ]);
  }
}

/**
 * Example: a VPC Lattice service `orders` with production and canary target groups of type LAMBDA
 * (the listener starts all on production, the canary group in the forward at weight 0), rollback
 * mapped to the canary's alarms, and a progressive rollout of the canary: 10% → 25% → 50% → 100%,
 * five minutes each, the new version's health checked before any traffic moves. A Lambda target
 * group holds one target, so production serves the alias `live` (on the production version) and
 * the canary group the new version; promotion moves `live` to the new version (`productionAlias`).
 */
export class LatticeExampleStack extends Stack {
  public readonly shiftguard: ShiftGuard;
  public readonly rollout: Rollout;

  constructor(scope: Construct, id: string, props: ShiftGuardStackProps) {
    super(scope, id, props);
    const app = sampleFunction(this, 'orders', props);
    const production = new lambda.Version(this, 'production-version', { lambda: app, description: 'production', removalPolicy: RemovalPolicy.RETAIN });
    const canary = app.currentVersion;

    const network = new vpclattice.CfnServiceNetwork(this, 'network', { name: 'orders-network', authType: 'AWS_IAM' });
    const service = new vpclattice.CfnService(this, 'service', { name: 'orders', authType: 'AWS_IAM' });
    new vpclattice.CfnServiceNetworkServiceAssociation(this, 'association', { serviceNetworkIdentifier: network.attrId, serviceIdentifier: service.attrId });
    // Production's target is an alias (arn:…:function:orders:live), never a version: promotion moves
    // it to the canary's version, so the group is never empty. CloudFormation creates it on the
    // production version; promotions move it after that.
    const live = new lambda.Alias(this, 'live', { aliasName: 'live', version: production });
    const targetGroup = (name: string, target: lambda.IFunction) => {
      target.addPermission(`${name}-lattice`, { principal: new iam.ServicePrincipal('vpc-lattice.amazonaws.com') });
      return new vpclattice.CfnTargetGroup(this, name, {
        name: `orders-${name}`, type: 'LAMBDA',
        config: { lambdaEventStructureVersion: 'V2' },
        targets: [{ id: target.functionArn }],
      });
    };
    const productionGroup = targetGroup('production', live);
    const canaryGroup = targetGroup('canary', canary);
    const listener = new vpclattice.CfnListener(this, 'listener', {
      serviceIdentifier: service.attrId, name: 'orders-https', protocol: 'HTTPS', port: 443,
      defaultAction: { forward: { targetGroups: [
        // A rollout starts from 100/0 (it refuses to start from a split no rollout recorded).
        { targetGroupIdentifier: productionGroup.attrId, weight: 100 },
        { targetGroupIdentifier: canaryGroup.attrId, weight: 0 },
      ] } },
    });

    this.shiftguard = new ShiftGuard(this, 'ShiftGuard', {
      assetDir: props.assetDir,
      architecture: props.architecture,
      hookNamePrefix: 'CodeDeployHook_orders',
      rollbackTargets: [{
        alarms: ['orders-canary-5xx', 'orders-canary-latency'],
        targets: [{ type: 'lattice-listener', service: service.attrId, listener: listener.attrId, productionTargetGroup: productionGroup.attrId }],
      }],
    });

    const dims = { TargetGroup: canaryGroup.attrArn };
    const alarms = [
      new cloudwatch.Alarm(this, 'canary-5xx', {
        alarmName: 'orders-canary-5xx',
        metric: new cloudwatch.Metric({ namespace: 'AWS/VpcLattice', metricName: 'HTTPCode_5XX_Count', statistic: 'Sum', period: Duration.minutes(1), dimensionsMap: dims }),
        threshold: 5, evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      }),
      new cloudwatch.Alarm(this, 'canary-latency', {
        alarmName: 'orders-canary-latency',
        metric: new cloudwatch.Metric({ namespace: 'AWS/VpcLattice', metricName: 'RequestTime', statistic: 'p99', period: Duration.minutes(1), dimensionsMap: dims }),
        threshold: 1000, evaluationPeriods: 2, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    for (const alarm of alarms) alarm.addAlarmAction(new cwActions.SnsAction(this.shiftguard.alarmTopic));

    // Start it: aws stepfunctions start-execution --state-machine-arn <the stack's output> --name orders-v2
    this.rollout = this.shiftguard.rollout('orders', {
      target: {
        type: 'lattice-listener', service: service.attrId, listener: listener.attrId,
        productionTargetGroup: productionGroup.attrId, canaryTargetGroup: canaryGroup.attrId,
        // The alias production's group serves: promotion moves it to the canary's version.
        productionAlias: live,
      },
      steps: [10, 25, 50, 100].map((weight) => ({ weight, bake: Duration.minutes(5) })),
      alarms,
      // The function behind the canary group, for checks that invoke it.
      checkFunction: { function: app.functionName, version: canary.version, currentVersion: production.version },
      checks: { before: { checks: [{ name: 'health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 }, timeout: '5s' }] } },
      stateMachineName: 'orders-rollout',
    });
  }
}

/**
 * Example: two functions guarded by one ShiftGuard, one `protect` call each (version, alias,
 * canary deployment group with the hooks, alarms mapped to rollback, hook IAM, dashboard).
 */
export class ProtectExampleStack extends Stack {
  public readonly shiftguard: ShiftGuard;
  public readonly cart: ProtectedFunction;
  public readonly pricing: ProtectedFunction;

  constructor(scope: Construct, id: string, props: ShiftGuardStackProps) {
    super(scope, id, props);
    this.shiftguard = new ShiftGuard(this, 'ShiftGuard', {
      assetDir: props.assetDir,
      architecture: props.architecture,
      hookNamePrefix: 'CodeDeployHook_shop',
    });
    this.cart = this.shiftguard.protect(sampleFunction(this, 'cart', props), {
      alias: 'live',
      preTraffic: PRE_CHECKS,
      postTraffic: POST_CHECKS,
      alarms: { errorRate: 0.01, p99Ms: 800 },
    });
    this.pricing = this.shiftguard.protect(sampleFunction(this, 'pricing', props), {
      alias: 'live',
      deploymentConfig: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE,
      preTraffic: PRE_CHECKS,
      postTraffic: POST_CHECKS,
    });
  }
}
