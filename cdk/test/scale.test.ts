// Adoption at scale (issue 22 [3]): one ShiftGuard protecting many functions. Lambda refuses a
// function whose environment exceeds 4 KB; check sets and target maps live in a settings file in
// a layer (lib/settings.ts), and synthesis fails, naming the function, before an environment could
// exceed the limit once deployed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ShiftGuard } from '../lib/index';
import { ENVIRONMENT_LIMIT_BYTES } from '../lib/settings';
import { stackEnvironment } from './environment';

const assetDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shiftguard-assets-'));
for (const bin of ['pre-traffic', 'post-traffic', 'rollback', 'shift']) {
  fs.mkdirSync(path.join(assetDir, bin));
  fs.writeFileSync(path.join(assetDir, bin, 'bootstrap.zip'), Buffer.from('504b0506000000000000000000000000000000000000', 'hex'));
}

/** How many functions one ShiftGuard protects in one stack in this test (README: "how many fit"). */
const IN_ONE_STACK = 45;

function protectMany(count: number) {
  const app = new App();
  const stack = new Stack(app, 'Many');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_many' });
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

test(`one ShiftGuard protects ${IN_ONE_STACK} functions in one stack, every environment within 4 KB`, () => {
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
  // What each function adds: against one protected function (the ShiftGuard's own resources).
  const { app: one, stack: oneStack } = protectMany(1);
  const base = Object.keys(one.synth().getStackArtifact(oneStack.artifactId).template.Resources).length;
  // The CodeDeploy service role is shared: one role, whatever the number of deployment groups.
  const roles = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::IAM::Role'
    && JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('codedeploy.amazonaws.com'));
  expect(roles).toHaveLength(1);
  process.stdout.write(`${IN_ONE_STACK} protected functions: ${resources} resources (${base} with one; ${((resources - base) / (IN_ONE_STACK - 1)).toFixed(2)} a function more)\n`);
}, 120000);

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
