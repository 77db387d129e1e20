// Adoption at scale (issue 22): one ShiftGuard protecting many functions.
//
// - Lambda refuses a function whose environment exceeds 4 KB; check sets and target maps live in a
//   settings file in a layer (lib/settings.ts), and synthesis fails, naming the function, before an
//   environment could exceed the limit once deployed.
// - CloudFormation allows 500 resources a stack: 50 protected functions fit in one
//   (cdk/README.md#many-functions-settings-files-and-how-many-fit), each with its own role, without dashboards.
// - IAM: a role's inline policies together at most 10,240 characters, a managed policy at most
//   6,144, 10 managed policies a role by default. The statements that grow with each function are
//   merged by actions and placed within those limits (lib/grants.ts): every policy is measured here
//   at the longest it can be once deployed, whatever names CloudFormation generates.
// - cdk-nag 2.x and 3.x: nothing unacknowledged on ShiftGuard's resources, the managed policies
//   made for many functions included.
import * as fs from 'fs';
import * as path from 'path';
import { App, Aspects, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks as AwsSolutionsChecksV2 } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV3 } from 'cdk-nag-v3';
import { ShiftGuard } from '../lib/index';
import { INLINE_POLICY_LIMIT, MANAGED_POLICIES_PER_ROLE, MANAGED_POLICY_LIMIT } from '../lib/grants';
import { ENVIRONMENT_LIMIT_BYTES } from '../lib/settings';
import { standInAssets, temporaryDirectories } from './assets';
import { stackEnvironment } from './environment';
import { deployedLength } from './policy-size';

const temporary = temporaryDirectories();
const assetDir = standInAssets({ dir: temporary('shiftguard-assets-') });

/** How many functions one ShiftGuard protects in one stack (cdk/README.md#many-functions-settings-files-and-how-many-fit). */
const IN_ONE_STACK = 50;
/** With cdk-nag 2.x and 3.x (issue 22: at 35 functions, CDK's overflow policies carried unacknowledged findings). */
const WITH_NAG = 35;

function protectMany(count: number, options: { stableAlias?: string; outdir?: string } = {}) {
  const app = new App(options.outdir ? { outdir: options.outdir } : {});
  const stack = new Stack(app, 'Many');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_many', stableAlias: options.stableAlias });
  for (let i = 0; i < count; i++) {
    // Generated names (no functionName): every name is a deploy-time value.
    const fn = new lambda.Function(stack, `fn${i}`, {
      runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1'),
      timeout: Duration.seconds(3),
    });
    sg.protect(fn, {
      dashboard: false,
      preTraffic: { checks: [
        { name: 'health', kind: 'invoke', payload: { httpMethod: 'GET', path: '/health' }, expect: { status: 200 }, timeout: '5s', retries: 1 },
        { name: 'compare', kind: 'compare', requests: 1000 },
        { name: 'logs', kind: 'logs' },
      ] },
      postTraffic: { checks: [
        { name: 'alias-health', kind: 'invoke', expect: { status: 200 } },
        { name: 'judge', kind: 'compare' },
        { name: 'logs', kind: 'logs' },
      ] },
    });
  }
  return { app, stack, sg };
}


interface Nagged { template: any; findings: string[] }

/**
 * Synthesizes `app` with cdk-nag 2.x (an aspect) and 3.x (a validation plugin): the template as
 * written, and every finding left (`2.x RULE PATH`, `3.x RULE PATH`). 3.x fails the synth on a
 * finding (the user's functions' roles have one) after writing the templates and its report; 2.x's
 * annotations are then read from the construct tree.
 */
function nag(app: App, stack: Stack): Nagged {
  Aspects.of(app).add(new AwsSolutionsChecksV2());
  Validations.of(app).addPlugins(new AwsSolutionsChecksV3(app));
  try {
    app.synth();
  } catch (e) {
    if (!String(e).includes(path.join(app.outdir, 'validation-report.json'))) throw e;
  }
  const report = JSON.parse(fs.readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8'));
  const v3: string[] = report.pluginReports.flatMap((p: any) => p.violations.flatMap((v: any) => v.violatingConstructs.map((c: any) => `3.x ${v.ruleName} ${c.constructPath}`)));
  const v2 = app.node.findAll().flatMap((c) => c.node.metadata
    .filter((m) => (m.type === 'aws:cdk:error' || m.type === 'aws:cdk:warning') && /^AwsSolutions-/.test(String(m.data)))
    .map((m) => `2.x ${String(m.data).slice(0, String(m.data).indexOf(': '))} ${c.node.path}`));
  return { template: JSON.parse(fs.readFileSync(path.join(app.outdir, stack.templateFile), 'utf8')), findings: [...v2, ...v3] };
}

interface RolePolicies { role: string; inline: number; managed: number[]; overflow: string[] }

/** Each ShiftGuard role's policies, measured at their longest once deployed. */
function policies(template: any): RolePolicies[] {
  const resources = Object.entries<any>(template.Resources);
  const attached = (p: any, role: string) => (p.Properties.Roles ?? []).some((r: any) => r.Ref === role);
  return resources
    .filter(([id, r]) => r.Type === 'AWS::IAM::Role' && id.startsWith('sg'))
    .map(([role]) => ({
      role,
      inline: resources.filter(([, p]) => p.Type === 'AWS::IAM::Policy' && attached(p, role))
        .reduce((n, [, p]) => n + deployedLength(template, p.Properties.PolicyDocument), 0),
      managed: resources.filter(([, p]) => p.Type === 'AWS::IAM::ManagedPolicy' && attached(p, role))
        .map(([, p]) => deployedLength(template, p.Properties.PolicyDocument)),
      overflow: resources.filter(([id, p]) => p.Type === 'AWS::IAM::ManagedPolicy' && attached(p, role) && id.includes('OverflowPolicy')).map(([id]) => id),
    }));
}

function withinIam(template: any, quota = MANAGED_POLICIES_PER_ROLE): RolePolicies[] {
  const found = policies(template);
  for (const r of found) {
    expect({ role: r.role, inline: r.inline <= INLINE_POLICY_LIMIT }).toEqual({ role: r.role, inline: true });
    expect({ role: r.role, managed: r.managed.every((m) => m <= MANAGED_POLICY_LIMIT) }).toEqual({ role: r.role, managed: true });
    expect(r.managed.length).toBeLessThanOrEqual(quota);
    // CDK never had to split a policy (its overflow policies are sized by its own estimate).
    expect(r.overflow).toEqual([]);
  }
  return found;
}

function show(found: RolePolicies[]): string {
  return found.filter((r) => /pretraffic|posttraffic|rollback/.test(r.role))
    .map((r) => `${r.role.replace(/role.*$/, '').replace(/^sg/, '')}: inline ${r.inline}, ${r.managed.length} managed (${r.managed.join(', ')})`).join('; ');
}

test(`one ShiftGuard protects ${IN_ONE_STACK} functions in one stack: under 500 resources, every environment within 4 KB, every policy within IAM's limits`, () => {
  const { app, stack } = protectMany(IN_ONE_STACK);
  const template = app.synth().getStackArtifact(stack.artifactId).template;
  const resources = Object.keys(template.Resources).length;
  // CloudFormation's limit is 500 resources a stack.
  expect(resources).toBeLessThanOrEqual(500);
  for (const name of ['CodeDeployHook_many_pre_traffic', 'CodeDeployHook_many_post_traffic', 'many_rollback']) {
    const fn = Object.values<any>(template.Resources).find((r) => r.Properties?.FunctionName === name);
    // Each deploy-time value (SG_n) is a function's name: at most 64 characters once deployed.
    const variables = fn.Properties.Environment.Variables;
    const worst = Object.entries<any>(variables).reduce((sum, [k, v]) => sum + k.length + (typeof v === 'string' ? v.length : 64), 0);
    expect(worst).toBeLessThanOrEqual(ENVIRONMENT_LIMIT_BYTES);
    expect(Object.keys(variables).filter((k) => k.startsWith('SG_'))).toHaveLength(name === 'many_rollback' ? IN_ONE_STACK + 1 : IN_ONE_STACK);
  }
  // Every function's checks and rollback target are in the files.
  const pre = JSON.parse(JSON.stringify(stackEnvironment(stack, 'CodeDeployHook_many_pre_traffic').HOOK_CHECKS));
  expect(JSON.stringify(pre).match(/\\"name\\":\\"health\\"/g)).toHaveLength(IN_ONE_STACK);
  const targets = JSON.stringify(stackEnvironment(stack, 'many_rollback').ROLLBACK_TARGETS);
  expect(targets.match(/lambda-alias/g)).toHaveLength(IN_ONE_STACK);
  const found = withinIam(template);
  // The hooks share their managed policies (the same grants for each checked function).
  const managed = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::IAM::ManagedPolicy');
  expect(managed.filter((m) => m.Properties.Roles.length === 2).length).toBeGreaterThan(0);
  // What each function adds: against one protected function (the ShiftGuard's own resources).
  const { app: one, stack: oneStack } = protectMany(1);
  const base = Object.keys(one.synth().getStackArtifact(oneStack.artifactId).template.Resources).length;
  // The CodeDeploy service role is shared: one role, whatever the number of deployment groups.
  const roles = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::IAM::Role'
    && JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('codedeploy.amazonaws.com'));
  expect(roles).toHaveLength(1);
  process.stdout.write(`${IN_ONE_STACK} protected functions: ${resources} resources (${base} with one; ${((resources - base) / (IN_ONE_STACK - 1)).toFixed(2)} a function more, its own function and role included); ${managed.length} managed policies; longest once deployed: ${show(found)}\n`);
}, 180000);

test(`stableAlias: post-traffic's own grants for ${IN_ONE_STACK} functions stay within IAM's limits too`, () => {
  const { app, stack } = protectMany(IN_ONE_STACK, { stableAlias: 'blue' });
  const template = app.synth().getStackArtifact(stack.artifactId).template;
  expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(500);
  process.stdout.write(`${IN_ONE_STACK} protected functions with stableAlias: ${show(withinIam(template))}\n`);
}, 180000);

describe(`${WITH_NAG} protected functions, cdk-nag 2.x and 3.x`, () => {
  const outdir = temporary('shiftguard-scale-nag-');
  const { app, stack } = protectMany(WITH_NAG, { outdir });
  const { template, findings } = nag(app, stack);

  test('synthesized, under 500 resources, every policy within IAM\'s limits', () => {
    expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(500);
    const found = withinIam(template);
    // Past the inline policies' room: managed policies of ShiftGuard's, acknowledged below.
    expect(found.some((r) => r.managed.length > 0)).toBe(true);
    process.stdout.write(`${WITH_NAG} protected functions: ${Object.keys(template.Resources).length} resources; longest once deployed: ${show(found)}\n`);
  });

  test('nothing unacknowledged on ShiftGuard\'s resources, its managed policies included', () => {
    expect(findings.filter((f) => f.includes('Many/sg/'))).toEqual([]);
    // Both did judge: the user's functions' roles (AWSLambdaBasicExecutionRole) are reported.
    for (const v of ['2.x', '3.x']) expect(findings.filter((f) => f.startsWith(`${v} AwsSolutions-IAM4`) && f.includes('Many/fn0/ServiceRole'))).toHaveLength(1);
  });
});

test('a statement another construct adds to a ShiftGuard role can make CDK split its policy: the overflow policies are acknowledged too', () => {
  const app = new App({ outdir: temporary('shiftguard-overflow-') });
  const stack = new Stack(app, 'Overflow');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64 });
  // The user's grants on rollback's role, before protect(): CDK moves what follows past the
  // inline policy's size (ShiftGuard's statements, wildcards among them) into OverflowPolicyN.
  for (let i = 0; i < 80; i++) {
    sg.rollback.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [`arn:aws:sqs:us-east-1:123456789012:user-queue-${i}-${'q'.repeat(60)}`] }));
  }
  const fn = new lambda.Function(stack, 'api', { functionName: 'api', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1') });
  sg.protect(fn, { preTraffic: { checks: [{ name: 'smoke', kind: 'invoke' }] }, postTraffic: { checks: [{ name: 'smoke', kind: 'invoke' }] } });
  const { template, findings } = nag(app, stack);
  const overflow = Object.entries<any>(template.Resources).filter(([id, r]) => r.Type === 'AWS::IAM::ManagedPolicy' && id.includes('OverflowPolicy'));
  expect(overflow.length).toBeGreaterThan(0);
  // ShiftGuard's wildcards moved there (function:NAME:*); for 2.x, the role's acknowledgment with its reason.
  expect(JSON.stringify(overflow.map(([, r]) => r.Properties.PolicyDocument))).toContain(':*"');
  for (const [, r] of overflow) {
    expect(r.Metadata.cdk_nag.rules_to_suppress).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'AwsSolutions-IAM5', reason: expect.stringMatching(/^Aliases and versions/) })]));
  }
  expect(findings.filter((f) => f.includes('Overflow/sg/'))).toEqual([]);
  expect(findings.filter((f) => f.includes('Overflow/api/ServiceRole'))).toHaveLength(2);
});

test('protect() refuses a function from another stack, naming both stacks and the way out', () => {
  const app = new App();
  const stack = new Stack(app, 'Guard');
  const other = new Stack(app, 'Functions');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_many' });
  const fn = new lambda.Function(other, 'api', {
    runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1'),
  });
  expect(() => sg.protect(fn, { preTraffic: { checks: [{ name: 'logs', kind: 'logs' }] } }))
    .toThrow(/ShiftGuard protect\(api\): Functions\/api is in stack Functions, this ShiftGuard \(Guard\/sg\) in stack Guard\..*cross-stack export.*Create the function in Guard, or give Functions its own ShiftGuard/);
});

test('two stacks, a ShiftGuard each: 50 + 15 functions, each stack within its limits', () => {
  const app = new App();
  const stacks = [['One', 50], ['Two', 15]] as const;
  for (const [name, count] of stacks) {
    const stack = new Stack(app, name);
    const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: `CodeDeployHook_${name.toLowerCase()}` });
    for (let i = 0; i < count; i++) {
      const fn = new lambda.Function(stack, `fn${i}`, { runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1') });
      sg.protect(fn, { dashboard: false, preTraffic: { checks: [{ name: 'smoke', kind: 'invoke' }] }, postTraffic: { checks: [{ name: 'logs', kind: 'logs' }] } });
    }
  }
  const assembly = app.synth();
  for (const [name] of stacks) {
    const template = assembly.getStackByName(name).template;
    expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(500);
    withinIam(template);
    // Nothing crosses between the two.
    expect(JSON.stringify(template)).not.toContain('Fn::ImportValue');
  }
}, 180000);

test('grants past IAM\'s managed policies a role: a warning past 10 (the default quota), a synth error past 20', () => {
  const mapped = (targets: number) => {
    const app = new App();
    const stack = new Stack(app, 'Targets');
    const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64 });
    sg.addRollbackMapping({ alarms: ['a'], targets: Array.from({ length: targets }, (_, i) => ({
      type: 'lambda-alias' as const, function: `function-${i}`, alias: 'live', codeDeploy: { application: 'app', deploymentGroup: `group-${i}` },
    })) });
    return { app, stack };
  };
  const some = mapped(200);
  const template = some.app.synth().getStackArtifact(some.stack.artifactId).template;
  const count = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::IAM::ManagedPolicy').length;
  expect(count).toBeGreaterThan(10);
  expect(count).toBeLessThanOrEqual(20);
  withinIam(template, 20);
  expect(Annotations.fromStack(some.stack).findWarning('*', Match.stringLikeRegexp('more than 10 managed policies for ShiftGuard\'s grants'))).toHaveLength(1);
  expect(() => mapped(400).app.synth()).toThrow(/Targets\/sg\/rollback-role would have \d+ managed policies for its grants, more than IAM attaches to a role/);
}, 60000);

test('an environment that could exceed 4 KB once deployed fails synthesis, naming the function and the way out', () => {
  const app = new App();
  const stack = new Stack(app, 'TooMany');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_many' });
  // Alarms with generated names (up to 255 characters each once deployed), mapped by the user.
  for (let i = 0; i < 20; i++) {
    const alarm = new cloudwatch.Alarm(stack, `a${i}`, {
      metric: new cloudwatch.Metric({ namespace: 'X', metricName: `m${i}` }), threshold: 1, evaluationPeriods: 1,
    });
    sg.addRollbackMapping({ alarms: [alarm.alarmName], targets: [{ type: 'lambda-alias', function: `f${i}`, alias: 'live' }] });
  }
  expect(() => app.synth()).toThrow(/TooMany\/sg\/rollback's environment can reach \d+ bytes once deployed.*over Lambda's 4096-byte limit/);
});
