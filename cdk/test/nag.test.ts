// cdk-nag 2.x (an aspect, reading the `cdk_nag` metadata) and 3.x (a policy-validation plugin,
// reading aws-cdk-lib's acknowledgments) on the same apps: every finding on ShiftGuard's resources
// is acknowledged for both, with its reason, and the user's own findings are still reported.
// (test/pack.test.ts does the same for a user app built from the npm tarball.)
import * as fs from 'fs';
import * as path from 'path';
import { App, Aspects, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks as AwsSolutionsChecksV2 } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV3 } from 'cdk-nag-v3';
import { ShiftGuard } from '../lib/index';
import { RehearsalStack } from '../lib/rehearsal';
import { CanaryExampleStack, LatticeExampleStack, ProtectExampleStack } from '../lib/stacks';
import { standInAssets, temporaryDirectories } from './assets';

const temporary = temporaryDirectories();
const assetDir = standInAssets({ dir: temporary('shiftguard-assets-') });

interface Finding { version: 2 | 3; rule: string; path: string }

/** Synthesizes the app with both packs: 2.x's errors and warnings, 3.x's violations (its report). */
function nag(build: (app: App) => void): Finding[] {
  const outdir = temporary('shiftguard-nag-');
  const app = new App({ outdir });
  build(app);
  Aspects.of(app).add(new AwsSolutionsChecksV2());
  Validations.of(app).addPlugins(new AwsSolutionsChecksV3(app));
  let assembly;
  try {
    assembly = app.synth();
  } catch (e) {
    // 3.x's violations fail the synth (the report is written first); anything else is a failure here.
    if (!String(e).includes(path.join(outdir, 'validation-report.json'))) throw e;
  }
  const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
  const v3: Finding[] = report.pluginReports.flatMap((p: any) => p.violations.flatMap((v: any) =>
    v.violatingConstructs.map((c: any) => ({ version: 3, rule: v.ruleName, path: c.constructPath }))));
  // With a failed synth, 2.x's annotations are read from the construct tree.
  const v2: Finding[] = (assembly ? assembly.stacks.flatMap((s) => s.messages.map((m) => ({ level: m.level, id: m.id, data: String(m.entry.data) })))
    : app.node.findAll().flatMap((c) => c.node.metadata.map((m) => ({ level: m.type === 'aws:cdk:error' ? 'error' : m.type === 'aws:cdk:warning' ? 'warning' : 'info', id: `/${c.node.path}`, data: String(m.data) }))))
    .filter((m) => m.level !== 'info' && /^AwsSolutions-/.test(m.data))
    .map((m) => ({ version: 2, rule: m.data.slice(0, m.data.indexOf(': ')), path: m.id.replace(/^\//, '') }));
  return [...v2, ...v3];
}

const PROPS = { assetDir, architecture: lambda.Architecture.X86_64 };

test.each([
  ['canary', (app: App) => new CanaryExampleStack(app, 'Canary', PROPS)],
  ['lattice', (app: App) => new LatticeExampleStack(app, 'Lattice', PROPS)],
  ['protect', (app: App) => new ProtectExampleStack(app, 'Protect', PROPS)],
  ['rehearsal', (app: App) => new RehearsalStack(app, 'Rehearsal', PROPS)],
])('the %s example stack: no unacknowledged finding in cdk-nag 2.x or 3.x', (_name, build) => {
  expect(nag(build)).toEqual([]);
});

describe('a user app: protect(), two rollouts, grantStart to a role of its own in another stack', () => {
  let deployerPolicy = '';
  const findings = nag((app) => {
    const stack = new Stack(app, 'Shop');
    const api = new lambda.Function(stack, 'api', {
      functionName: 'api', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
    });
    const guard = new ShiftGuard(stack, 'ShiftGuard', PROPS);
    guard.protect(api, {
      alias: 'live',
      preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 } }] },
      postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invoke', expect: { status: 200 } }] },
      alarms: { errorRate: 0.01, p99Ms: 800 },
    });
    const alias = guard.rollout('api', {
      target: { type: 'lambda-alias', function: 'api', alias: 'live' },
      steps: [{ weight: 10, bake: '5m' }, { weight: 100 }], alarms: ['api-live-error-rate'], tracing: false,
    });
    guard.rollout('orders', {
      target: { type: 'lattice-listener', service: 'svc-0orders0000000000', listener: 'listener-0orders0000000000',
        productionTargetGroup: 'tg-0production000000', canaryTargetGroup: 'tg-0canary0000000000' },
      steps: [{ weight: 50, bake: '5m' }, { weight: 100 }], alarms: ['orders-5xx'],
    });
    // The deployer is the user's: besides grantStart, a wildcard of its own that cdk-nag must still report.
    const ci = new Stack(app, 'Ci');
    const deployer = new iam.Role(ci, 'deployer', { assumedBy: new iam.AccountRootPrincipal() });
    alias.grantStart(deployer);
    deployer.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::artifacts/*'] }));
    deployerPolicy = deployer.node.findChild('DefaultPolicy').node.findChild('Resource').node.path;
  });

  test('none on ShiftGuard\'s resources', () => {
    expect(findings.filter((f) => f.path.startsWith('Shop/ShiftGuard/'))).toEqual([]);
  });

  test('the user\'s own: api\'s managed policy, and the deployer\'s own wildcard (not the grant\'s)', () => {
    expect(findings.filter((f) => !f.path.startsWith('Shop/ShiftGuard/'))).toEqual(expect.arrayContaining([
      { version: 2, rule: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', path: 'Shop/api/ServiceRole/Resource' },
      { version: 3, rule: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', path: 'Shop/api/ServiceRole/Resource' },
      { version: 2, rule: 'AwsSolutions-IAM5[Resource::arn:aws:s3:::artifacts/*]', path: deployerPolicy },
      { version: 3, rule: 'AwsSolutions-IAM5[Resource::arn:aws:s3:::artifacts/*]', path: deployerPolicy },
    ]));
    expect(findings.filter((f) => !f.path.startsWith('Shop/ShiftGuard/'))).toHaveLength(4);
  });
});

test('grantStart: the grant\'s finding alone is acknowledged on the grantee, with the reason, for both versions', () => {
  const app = new App({ outdir: temporary('shiftguard-nag-') });
  const stack = new Stack(app, 'Shop');
  const guard = new ShiftGuard(stack, 'ShiftGuard', PROPS);
  const rollout = guard.rollout('api', { target: { type: 'lambda-alias', function: 'api', alias: 'live' }, steps: [{ weight: 100 }], alarms: ['a'] });
  const deployer = new iam.Role(stack, 'deployer', { assumedBy: new iam.AccountRootPrincipal() });
  rollout.grantStart(deployer);
  deployer.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::artifacts/*'] }));
  app.synth();
  const policy = deployer.node.findChild('DefaultPolicy').node.findChild('Resource');
  const execution = `Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stack.getLogicalId(rollout.stateMachine.node.defaultChild as any)}"}]}]}:*`;
  const reason = expect.stringMatching(/^ShiftGuard rollout\.grantStart\(\): .*execution:NAME:\*/);
  // 2.x: in the template, applies_to the one finding.
  const template = JSON.parse(fs.readFileSync(path.join(app.outdir, 'Shop.template.json'), 'utf8'));
  expect(template.Resources[stack.getLogicalId(policy as any)].Metadata.cdk_nag.rules_to_suppress).toEqual([
    { id: 'AwsSolutions-IAM5', reason, applies_to: [execution] },
  ]);
  // 3.x: acknowledged on the policy, that finding only.
  const acknowledged = policy.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).map((m) => m.data);
  expect(acknowledged).toEqual([{ [`Annotation::AwsSolutions-IAM5[${execution}]`]: reason }]);
});
