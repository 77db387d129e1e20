// The TypeScript twins of the Python CDK app in cdk/python-test (make cdk-python): the pack test's
// app, the Protect and Lattice example stacks (lib/stacks.ts itself) and the rest of the API, built
// the way a TypeScript user writes them. test_python.py synthesizes both and compares the cloud
// assemblies: what the construct makes must not depend on the language that called it.
//
//   node dist/test/python-twins.js OUTDIR ASSET_DIR
import * as path from 'path';
import { App, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Rollout, ShiftGuard } from '../lib';
import { LatticeExampleStack, ProtectExampleStack } from '../lib/stacks';
import { standInAssets } from './assets';

/** cdk/python-test/tiny.py; the app of test/pack.test.ts. */
export function tiny(app: App, assetDir: string): Stack {
  const stack = new Stack(app, 'Tiny');
  const api = new lambda.Function(stack, 'api', {
    functionName: 'api', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" })'),
  });
  const guard = new ShiftGuard(stack, 'ShiftGuard', { assetDir, architecture: lambda.Architecture.X86_64 });
  guard.protect(api, {
    alias: 'live',
    preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', payload: { path: '/health' }, expect: { status: 200 } }] },
    postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invoke', expect: { status: 200 } }] },
    alarms: { errorRate: 0.01, p99Ms: 800 },
  });
  guard.rollout('api', {
    target: { type: 'lambda-alias', function: 'api', alias: 'live' },
    steps: [{ weight: 10, bake: '5m' }, { weight: 100, bake: '5m' }],
    alarms: ['api-live-error-rate'],
  });
  const lattice = guard.rollout('orders', {
    target: { type: 'lattice-listener', service: 'svc-0orders0000000000', listener: 'listener-0orders0000000000',
      productionTargetGroup: 'tg-0production000000', canaryTargetGroup: 'tg-0canary0000000000' },
    steps: [{ weight: 50, bake: '5m' }, { weight: 100 }],
    alarms: ['orders-5xx'],
  });
  const deployer = new iam.Role(stack, 'deployer', { assumedBy: new iam.AccountRootPrincipal() });
  lattice.grantStart(deployer);
  deployer.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::artifacts/*'] }));
  return stack;
}

/** cdk/python-test/surface.py. */
export function surface(app: App, assetDir: string): Stack {
  const stack = new Stack(app, 'Surface');
  const alarmTopic = new sns.Topic(stack, 'alarm-topic');
  const notify = new sns.Topic(stack, 'notify');
  const guard = new ShiftGuard(stack, 'ShiftGuard', {
    assetDir,
    architecture: lambda.Architecture.X86_64,
    hookNamePrefix: 'CodeDeployHook_surface',
    checkedFunctions: [{ functionName: 'checkout', alias: 'live', application: 'checkout', deploymentGroup: 'checkout-live', logGroupName: '/custom/checkout' }],
    preTrafficChecks: { concurrency: 2, checks: [{ name: 'health', kind: 'invoke', expect: { status: 200 } }] },
    postTrafficChecks: { checks: [{ name: 'new-vs-old', kind: 'metrics', window: '15m', maxErrorRate: 0.05 }] },
    rollbackTargets: [{
      alarms: ['checkout-errors'],
      targets: [
        { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue', codeDeploy: { application: 'checkout', deploymentGroup: 'checkout-live' } },
        { type: 'apigateway-canary', restApi: 'a1b2c3d4e5', stage: 'prod' },
      ],
    }],
    alarmTopics: [alarmTopic],
    allowDirectAlarmActions: true,
    rollbackReservedConcurrency: 3,
    logRetention: logs.RetentionDays.ONE_WEEK,
    dryRun: true,
    stableAlias: 'blue',
    allowSkip: true,
    shiftTimeout: Duration.minutes(3),
  });
  guard.addChecks('post-traffic', {
    checks: [{ name: 'public-endpoint', kind: 'http', url: 'https://api.example.com/health', expect: { status: 200, maxLatencyMs: 1500 } }],
  }, ['checkout']);
  guard.addRollbackMapping({ alarms: ['pricing-errors'], targets: [{ type: 'lambda-alias', function: 'pricing', alias: 'live', stableVersion: '3' }] });
  guard.addCheckedFunction({ functionName: 'pricing', alias: 'live', application: 'pricing', deploymentGroup: 'pricing-live' });

  const cart = new lambda.Function(stack, 'cart', {
    functionName: 'cart', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => 1'), timeout: Duration.seconds(5),
  });
  const extra = new cloudwatch.Alarm(stack, 'cart-throttles', { alarmName: 'cart-throttles', metric: cart.metricThrottles(), threshold: 1, evaluationPeriods: 1 });
  const protectedFn = guard.protect(cart, {
    alias: 'prod',
    preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', payload: { path: '/' }, expect: { status: 200 } }] },
    postTraffic: { checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 } }] },
    alarms: { errorRate: 0.05, period: Duration.minutes(2), evaluationPeriods: 4, datapointsToAlarm: 3 },
    extraAlarms: [extra],
    deploymentGroupName: 'cart-prod',
    alarmNamePrefix: 'cart',
    logGroupName: '/custom/cart',
    dashboardName: 'cart-canary',
  });
  const rollout = guard.rollout('checkout', {
    target: { type: 'lambda-alias', function: 'checkout', alias: 'live', stableVersion: '1', stableAlias: 'blue' },
    steps: [{ weight: 5, bake: Duration.seconds(90) }, { weight: 50, bake: '10m' }, { weight: 100 }],
    alarms: [protectedFn.aliasErrorRate, 'checkout-errors'],
    checks: {
      before: { concurrency: 2, checks: [{ name: 'health', kind: 'invoke', expect: { status: 200 } }] },
      after: { checks: [{ name: 'public-endpoint', kind: 'http', url: 'https://api.example.com/health', secretHeaders: { Authorization: 'HEALTH_CHECK_TOKEN' }, expect: { status: 200 } }] },
    },
    environment: { HEALTH_CHECK_TOKEN: '{{resolve:secretsmanager:health-token}}' },
    notificationTopic: notify,
    timeout: Duration.hours(2),
    tracing: false,
    output: false,
    logRetention: logs.RetentionDays.ONE_WEEK,
    stateMachineName: 'checkout-rollout',
  });
  const releaser = new iam.Role(stack, 'releaser', { assumedBy: new iam.AccountRootPrincipal() });
  rollout.grantStart(releaser);
  new CfnOutput(stack, 'plan', { value: rollout.planJson });
  new CfnOutput(stack, 'retryable', { value: Rollout.RETRYABLE_ERRORS.join(',') });
  new CfnOutput(stack, 'refused', { value: Rollout.REFUSED_ERRORS.join(',') });
  new CfnOutput(stack, 'shift', { value: guard.shift!.functionName });
  new CfnOutput(stack, 'rollback-target', { value: `${protectedFn.rollbackTarget.function}:${protectedFn.rollbackTarget.alias}` });
  return stack;
}

/** The stand-in zips (an empty zip: the templates do not depend on the code), as app.py writes them. */
function standIns(assetDir: string): string {
  return path.resolve(standInAssets({ dir: assetDir }));
}

/** cdk/python-test/app.py's stacks, in one cloud assembly at `outdir`. */
export function synthTwins(outdir: string, assetDir: string): void {
  const assets = standIns(assetDir);
  const app = new App({ outdir, analyticsReporting: false });
  tiny(app, assets);
  new ProtectExampleStack(app, 'ShiftGuardProtectExample', { assetDir: assets, architecture: lambda.Architecture.X86_64 });
  new LatticeExampleStack(app, 'ShiftGuardLatticeExample', { assetDir: assets, architecture: lambda.Architecture.X86_64 });
  surface(app, assets);
  app.synth();
}

/** The pack test's typo app (and python-test's): protect() with a misspelt setting and check kind; the error's message. */
export function typoMessage(assetDir: string): string {
  const stack = new Stack(new App(), 'Typo');
  const cart = new lambda.Function(stack, 'cart', { runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1') });
  try {
    new ShiftGuard(stack, 'ShiftGuard', { assetDir: standIns(assetDir) }).protect(cart, {
      preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', timout: '5s' }] },
      postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invok' }] },
    });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the typo app synthesized');
}

if (require.main === module) {
  if (process.argv[2] === '--typo') process.stdout.write(typoMessage(process.argv[3]));
  else synthTwins(process.argv[2], process.argv[3]);
}
