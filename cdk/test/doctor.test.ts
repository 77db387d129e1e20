// The deploy-time doctor (lib/doctor.ts): a CDK trigger that asks rollback for `{"shiftguard":"doctor"}`
// after a deploy and fails the deploy on a serious finding. The construct: what the trigger runs,
// with which permissions, after what, and when it runs again; the handler: its source evaluated
// with fake AWS clients.
import * as fs from 'fs';
import * as vm from 'vm';
import { App, CfnResource, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DOCTOR_HANDLER } from '../lib/doctor';
import { ShiftGuard, ShiftGuardProps } from '../lib/index';
import { standInAssets } from './assets';

const assetDir = standInAssets();
afterAll(() => fs.rmSync(assetDir, { recursive: true, force: true }));

interface Options {
  props?: Partial<ShiftGuardProps>;
  /** The user's own alarm (outside the ShiftGuard), mapped to rollback: its dimensions. */
  alarmDimensions?: Record<string, string>;
  extraMapping?: boolean;
  healthTimeout?: string;
  /** A resource of the user's that waits for the whole ShiftGuard. */
  waitsForShiftGuard?: boolean;
  /** The user's mapping with its fields written in another order (as a jsii language may hand it over). */
  fieldsReordered?: boolean;
}

/** A user's stack: protect(api), and an alarm of their own mapped to rollback. */
function build(o: Options = {}) {
  const app = new App();
  const stack = new Stack(app, 'Shop', { env: { account: '123456789012', region: 'us-east-1' } });
  const api = new lambda.Function(stack, 'api', {
    functionName: 'api', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
  });
  const guard = new ShiftGuard(stack, 'ShiftGuard', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_shop', ...o.props });
  const prot = guard.protect(api, {
    preTraffic: { checks: [{ name: 'health', kind: 'invoke', expect: { status: 200 }, timeout: o.healthTimeout ?? '5s' }] },
    postTraffic: { checks: [{ name: 'alias-health', kind: 'invoke', expect: { status: 200 } }] },
  });
  const own = new cloudwatch.Alarm(stack, 'own-alarm', {
    alarmName: 'api-live-5xx',
    metric: new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName: 'Errors', statistic: 'Sum', period: Duration.minutes(1),
      dimensionsMap: o.alarmDimensions ?? { FunctionName: 'api', Resource: 'api:live' } }),
    threshold: 1, evaluationPeriods: 1,
  });
  own.addAlarmAction(new cwActions.SnsAction(guard.alarmTopic));
  guard.addRollbackMapping(o.fieldsReordered
    ? { targets: [{ codeDeploy: prot.rollbackTarget.codeDeploy, alias: 'live', function: prot.rollbackTarget.function, type: 'lambda-alias' }], alarms: ['api-live-5xx'] }
    : { alarms: ['api-live-5xx'], targets: [prot.rollbackTarget] });
  if (o.extraMapping) guard.addRollbackMapping({ alarms: ['api-live-throttles'], targets: [prot.rollbackTarget] });
  if (o.waitsForShiftGuard) {
    const late = new cloudwatch.Alarm(stack, 'late-alarm', { alarmName: 'late', metric: prot.aliasErrorRate.metric, threshold: 1, evaluationPeriods: 1 });
    late.node.addDependency(guard);
  }
  const template = Template.fromStack(stack);
  return { stack, guard, prot, own, template, resources: template.toJSON().Resources as Record<string, any> };
}

const base = build();

function logicalId(stack: Stack, c: { node: { defaultChild?: unknown } } | unknown): string {
  const child = (c as any).node?.defaultChild ?? c;
  return stack.getLogicalId(child);
}

function trigger(resources: Record<string, any>): [string, any] {
  const found = Object.entries(resources).filter(([, r]) => r.Type === 'Custom::Trigger');
  expect(found).toHaveLength(1);
  return found[0];
}

describe('the trigger', () => {
  test('runs the doctor function, synchronously, again when its version changes', () => {
    const [, t] = trigger(base.resources);
    const fn = base.guard.doctor!;
    expect(t.Properties).toMatchObject({
      InvocationType: 'RequestResponse',
      ExecuteOnHandlerChange: true,
    });
    // The function's current version, whose logical id changes with its configuration.
    expect(t.Properties.HandlerArn).toEqual({ Ref: base.stack.resolve((fn.currentVersion.node.defaultChild as CfnResource).logicalId) });
    expect(base.resources[t.Properties.HandlerArn.Ref]).toMatchObject({ Type: 'AWS::Lambda::Version', Properties: { FunctionName: { Ref: logicalId(base.stack, fn) } } });
    base.template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'shop_doctor',
      Handler: 'index.handler',
      Runtime: lambda.Runtime.NODEJS_LATEST.name,
      Code: { ZipFile: DOCTOR_HANDLER },
      Timeout: 180,
      Environment: { Variables: {
        ROLLBACK_FUNCTION: { 'Fn::GetAtt': [logicalId(base.stack, base.guard.rollback), 'Arn'] },
        SHIFTGUARD_STACK_ID: { Ref: 'AWS::StackId' },
        SHIFTGUARD_DOCTOR_INPUTS: Match.stringLikeRegexp('^[0-9a-f]{32}$'),
      } },
    });
    // The trigger provider waits at least as long as the function may run.
    expect(Number(t.Properties.Timeout)).toBe(180_000);
  });

  test('the function may invoke rollback (unqualified) and describe its own stack, nothing else; its own log group, no managed policy', () => {
    const fn = base.guard.doctor!;
    const role = base.resources[logicalId(base.stack, fn.role!)];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const policies = Object.values(base.resources).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: logicalId(base.stack, fn.role!) }]));
    expect(policies).toHaveLength(1);
    expect(policies[0].Properties.PolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logicalId(base.stack, base.guard.doctor!.node.scope!.node.findChild('logs')), 'Arn'] } },
      { Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [logicalId(base.stack, base.guard.rollback), 'Arn'] } },
      { Effect: 'Allow', Action: 'cloudformation:DescribeStacks', Resource: { Ref: 'AWS::StackId' } },
    ]);
    base.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/lambda/shop_doctor', RetentionInDays: 30 });
  });

  test('runs after what the doctor reads: rollback, its topic and subscription, protect()\'s alarms, alias and group, and the user\'s own alarm', () => {
    const [, t] = trigger(base.resources);
    const after = new Set<string>(t.DependsOn);
    const ids = (xs: unknown[]) => xs.map((x) => logicalId(base.stack, x));
    const expected = ids([
      base.guard.rollback, base.guard.alarmTopic, base.prot.alias, base.prot.deploymentGroup, base.own,
      base.prot.versionErrorRate, base.prot.versionLatency, base.prot.aliasErrorRate, base.prot.aliasLatency,
    ]);
    const subscription = Object.entries(base.resources).find(([, r]) => r.Type === 'AWS::SNS::Subscription')![0];
    // rollback's settings file (ROLLBACK_TARGETS), a layer made at synth.
    const layers = Object.entries(base.resources).filter(([, r]) => r.Type === 'AWS::Lambda::LayerVersion').map(([id]) => id);
    expect(layers.length).toBeGreaterThan(0);
    for (const id of [...expected, subscription, ...layers]) expect([id, after.has(id)]).toEqual([id, true]);
    // Never its own function, version or role (a cycle).
    const doctor = base.guard.doctor!;
    const version = base.stack.resolve((doctor.currentVersion.node.defaultChild as CfnResource).logicalId);
    for (const id of [...ids([doctor, doctor.role!]), version]) expect([id, after.has(id)]).toEqual([id, false]);
  });

  test('a resource of the user\'s that waits for the whole ShiftGuard is not waited for (no cycle)', () => {
    const { resources, stack } = build({ waitsForShiftGuard: true });
    const [id, t] = trigger(resources);
    const late = logicalId(stack, stack.node.findChild('late-alarm'));
    expect(resources[late].DependsOn).toContain(id);
    expect(t.DependsOn).not.toContain(late);
  });

  test('doctor: false: no trigger, no doctor function, no trigger provider', () => {
    const { resources, guard } = build({ props: { doctor: false } });
    expect(guard.doctor).toBeUndefined();
    const types = Object.values(resources).map((r) => r.Type);
    expect(types).not.toContain('Custom::Trigger');
    const names = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function').map((r) => r.Properties.FunctionName);
    expect(names.sort()).toEqual(['CodeDeployHook_shop_post_traffic', 'CodeDeployHook_shop_pre_traffic', 'api', 'shop_rollback']);
  });
});

describe('when it runs again: a new version of the trigger function, whose configuration carries a hash of what the doctor reads', () => {
  const handlerArn = (o: Options) => trigger(build(o).resources)[1].Properties.HandlerArn.Ref;
  const same = handlerArn({});

  test('the same app synthesizes the same trigger (no run without a change)', () => {
    expect(trigger(base.resources)[1].Properties.HandlerArn.Ref).toBe(same);
  });

  test('a new mapping in ROLLBACK_TARGETS', () => {
    expect(handlerArn({ extraMapping: true })).not.toBe(same);
  });

  test('an alarm\'s dimensions changed (even an alarm outside the ShiftGuard)', () => {
    expect(handlerArn({ alarmDimensions: { FunctionName: 'api', Alias: 'live' } })).not.toBe(same);
  });

  test('a new rollback release (its code)', () => {
    const other = standInAssets({ zips: { rollback: '504b0506000000000000000000000000000000000001' } });
    try {
      expect(handlerArn({ props: { assetDir: other } })).not.toBe(same);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  test('nor the same mapping with its fields in another order', () => {
    expect(handlerArn({ fieldsReordered: true })).toBe(same);
  });

  test('but not a hook check the doctor does not read', () => {
    expect(handlerArn({ healthTimeout: '7s' })).toBe(same);
  });
});

// ---------------------------------------------------------------------------------------------
// The handler, evaluated as Lambda's Node.js runtime loads index.js, with fake AWS SDK clients.
// ---------------------------------------------------------------------------------------------

class InvokeCommand { constructor(public readonly input: any) {} }
class DescribeStacksCommand { constructor(public readonly input: any) {} }

/** The module's exports, loaded with a fake `require` (the two SDK clients). */
function load(clients: { lambda?: (input: any) => any; cloudformation?: (input: any) => any } = {}) {
  const sent: any[] = [];
  const fake = (handler?: (input: any) => any) => class {
    constructor(public readonly config: unknown) {}
    async send(cmd: { input: any }) {
      sent.push(cmd);
      if (!handler) throw new Error(`unexpected ${cmd.constructor.name}`);
      return handler(cmd.input);
    }
  };
  const modules: Record<string, unknown> = {
    '@aws-sdk/client-lambda': { LambdaClient: fake(clients.lambda), InvokeCommand },
    '@aws-sdk/client-cloudformation': { CloudFormationClient: fake(clients.cloudformation), DescribeStacksCommand },
  };
  const module = { exports: {} as any };
  vm.runInNewContext(DOCTOR_HANDLER, {
    require: (name: string) => { if (!(name in modules)) throw new Error(`Cannot find module '${name}'`); return modules[name]; },
    module, exports: module.exports, Buffer, setTimeout,
    process: { env: { ROLLBACK_FUNCTION: 'arn:aws:lambda:us-east-1:123456789012:function:shop_rollback', SHIFTGUARD_STACK_ID: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Shop/1' } },
    console: { log: () => undefined, warn: () => undefined, error: () => undefined },
  }, { filename: 'index.js' });
  return { exports: module.exports, sent };
}

const ROLLBACK = 'arn:aws:lambda:us-east-1:123456789012:function:shop_rollback';
const ENV = { ROLLBACK_FUNCTION: ROLLBACK, SHIFTGUARD_STACK_ID: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Shop/1' };
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const finding = (severity: string, check: string, subject: string, message: string) => ({ severity, check, subject, message });
const report = (findings: any[]) => {
  const serious = findings.filter((f) => f.severity === 'serious').length;
  return { doctor: 'rollback', functionArn: ROLLBACK, healthy: serious === 0, serious, warnings: findings.length - serious, alarmsChecked: 4, targetsChecked: 1, findings };
};
/** What rollback answers when doctor finds a serious problem (rollback::RollbackError::DoctorFoundProblems). */
const doctorFailed = (r: ReturnType<typeof report>) => ({
  FunctionError: 'Unhandled',
  Payload: bytes({ errorType: 'Rollback.DoctorFoundProblems', errorMessage: `doctor found ${r.serious} serious problem(s) in the safety net; report: ${JSON.stringify(r)}` }),
});

function logger() {
  const lines: [string, string][] = [];
  return { lines, log: { log: (m: string) => lines.push(['log', m]), warn: (m: string) => lines.push(['warn', m]), error: (m: string) => lines.push(['error', m]) } };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

const ALIAS_DIMENSION = finding('serious', 'alarm-dimensions', 'api-live-5xx', 'AWS/Lambda Errors: dimension Alias is not one Lambda publishes (FunctionName, Resource, ExecutedVersion): this alarm never gets data');
const NO_DATA = finding('warning', 'alarm-data', 'api-live-p99', 'CloudWatch has no AWS/Lambda Duration with FunctionName=api in the last two weeks');

describe('the handler', () => {
  test('fits CloudFormation\'s inline code (4096 characters) and loads as index.js', () => {
    expect(DOCTOR_HANDLER.length).toBeLessThan(4096);
    expect(typeof load().exports.handler).toBe('function');
  });

  test('asks rollback for doctor (RequestResponse); a report without a serious finding passes, its warnings logged', async () => {
    const { exports, sent } = load();
    const { lines, log } = logger();
    const lambdaClient = { send: async (cmd: any) => { sent.push(cmd); return { StatusCode: 200, Payload: bytes(report([NO_DATA])) }; } };
    const out = await exports.run({ lambda: lambdaClient, cloudformation: undefined }, ENV, log, async () => undefined);
    expect(out).toEqual({ healthy: true, serious: 0, warnings: 1 });
    expect(sent.map((c) => [c.constructor.name, c.input])).toEqual([
      ['InvokeCommand', { FunctionName: ROLLBACK, InvocationType: 'RequestResponse', Payload: '{"shiftguard":"doctor"}' }],
    ]);
    expect(lines).toContainEqual(['warn', expect.stringContaining('warning [alarm-data] api-live-p99: CloudWatch has no AWS/Lambda Duration')]);
    expect(lines).toContainEqual(['log', expect.stringContaining('is sound: 4 alarm(s), 1 target(s) checked; 0 serious, 1 warning(s)')]);
  });

  test('Rollback.DoctorFoundProblems: fails with each serious finding listed (warnings only logged)', async () => {
    const other = finding('serious', 'alarm-exists', 'api-live-throttles', 'no alarm matches api-live-throttles: nothing can make rollback act for lambda-alias:api:live');
    const { exports } = load();
    const { lines, log } = logger();
    const lambdaClient = { send: async () => doctorFailed(report([ALIAS_DIMENSION, other, NO_DATA])) };
    // A deploy, not a rollback.
    const cfn = { send: async () => ({ Stacks: [{ StackStatus: 'UPDATE_IN_PROGRESS' }] }) };
    const err = await failure(exports.run({ lambda: lambdaClient, cloudformation: cfn }, ENV, log, async () => undefined));
    expect(err.name).toBe('ShiftGuardDoctor');
    expect(err.stack).toBe('');
    expect(err.message.split('\n')).toEqual([
      `ShiftGuard doctor: 2 serious problem(s) in the safety net of ${ROLLBACK} (4 alarm(s), 1 target(s) checked; 2 serious, 1 warning(s)):`,
      `- [alarm-dimensions] api-live-5xx: ${ALIAS_DIMENSION.message}`,
      `- [alarm-exists] api-live-throttles: ${other.message}`,
      'Fix them and deploy again, or turn the check off (ShiftGuard doctor: false).',
    ]);
    expect(lines).toContainEqual(['error', expect.stringContaining('serious [alarm-dimensions] api-live-5xx: AWS/Lambda Errors: dimension Alias')]);
    expect(lines).toContainEqual(['warn', expect.stringContaining('warning [alarm-data] api-live-p99')]);
  });

  test('many serious findings: five listed, each clipped, the rest counted (CloudFormation\'s response is 4 KB at most)', async () => {
    const many = Array.from({ length: 12 }, (_, i) => finding('serious', 'alarm-exists', `alarm-${i}`, 'x'.repeat(1000)));
    const { exports } = load();
    const cfn = { send: async () => ({ Stacks: [{ StackStatus: 'CREATE_IN_PROGRESS' }] }) };
    const err = await failure(exports.run({ lambda: { send: async () => doctorFailed(report(many)) }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    const lines = err.message.split('\n');
    expect(lines.filter((l) => l.startsWith('- [alarm-exists]'))).toHaveLength(5);
    expect(lines).toContain('- and 7 more (in this log)');
    expect(err.message.length).toBeLessThan(2000);
  });

  test('any other failure of rollback fails with its errorType and message', async () => {
    const { exports } = load();
    const cfn = { send: async () => ({ Stacks: [{ StackStatus: 'UPDATE_IN_PROGRESS' }] }) };
    const bad = { FunctionError: 'Unhandled', Payload: bytes({ errorType: 'Rollback.BadConfig', errorMessage: 'ROLLBACK_TARGETS: [0].alarms: expected a name' }) };
    const err = await failure(exports.run({ lambda: { send: async () => bad }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    expect(err.message).toBe(`ShiftGuard doctor: ${ROLLBACK} failed with Rollback.BadConfig: ROLLBACK_TARGETS: [0].alarms: expected a name`);
    // A DoctorFoundProblems whose report cannot be read is said as it came.
    const garbled = { FunctionError: 'Unhandled', Payload: bytes({ errorType: 'Rollback.DoctorFoundProblems', errorMessage: 'doctor found 1 serious problem(s); report: {not json' }) };
    const err2 = await failure(exports.run({ lambda: { send: async () => garbled }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    expect(err2.message).toContain('failed with Rollback.DoctorFoundProblems: doctor found 1 serious problem(s); report: {not json');
  });

  test('an answer that is not a doctor report (a rollback release without doctor) fails, saying so', async () => {
    const { exports } = load();
    const cfn = { send: async () => ({ Stacks: [{ StackStatus: 'UPDATE_IN_PROGRESS' }] }) };
    const summary = { Payload: bytes({ targets: [], ignored: [] }) };
    const err = await failure(exports.run({ lambda: { send: async () => summary }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    expect(err.message).toContain('did not answer with a doctor report');
  });

  test('AccessDenied (a new role\'s grant not applied yet) is retried every 5 s; any other error is not', async () => {
    const { exports } = load();
    const slept: number[] = [];
    let calls = 0;
    const denied = Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' });
    const lambdaClient = { send: async () => { calls += 1; if (calls <= 2) throw denied; return { Payload: bytes(report([])) }; } };
    const out = await exports.run({ lambda: lambdaClient }, ENV, logger().log, async (ms: number) => { slept.push(ms); });
    expect(out.healthy).toBe(true);
    expect(slept).toEqual([5000, 5000]);

    calls = 0;
    const missing = Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
    const cfn = { send: async () => ({ Stacks: [{ StackStatus: 'UPDATE_IN_PROGRESS' }] }) };
    const err = await failure(exports.run({ lambda: { send: async () => { calls += 1; throw missing; } }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    expect(err).toBe(missing);
    expect(calls).toBe(1);

    // Denied for good: twelve attempts, then the denial.
    calls = 0;
    const err3 = await failure(exports.run({ lambda: { send: async () => { calls += 1; throw denied; } }, cloudformation: cfn }, ENV, logger().log, async () => undefined));
    expect(err3).toBe(denied);
    expect(calls).toBe(12);
  });

  test('while the stack rolls back, a failure is logged and never thrown (a failed rollback would strand the stack)', async () => {
    const { exports } = load();
    const asked: any[] = [];
    const cfn = { send: async (cmd: any) => { asked.push(cmd.input); return { Stacks: [{ StackStatus: 'UPDATE_ROLLBACK_IN_PROGRESS' }] }; } };
    const { lines, log } = logger();
    const out = await exports.run({ lambda: { send: async () => doctorFailed(report([ALIAS_DIMENSION])) }, cloudformation: cfn }, ENV, log, async () => undefined);
    expect(out).toEqual({ healthy: false, rollingBack: 'UPDATE_ROLLBACK_IN_PROGRESS' });
    expect(asked).toEqual([{ StackName: ENV.SHIFTGUARD_STACK_ID }]);
    expect(lines).toContainEqual(['error', expect.stringContaining('1 serious problem(s)')]);
    expect(lines).toContainEqual(['warn', expect.stringContaining('the stack is rolling back (UPDATE_ROLLBACK_IN_PROGRESS)')]);
  });

  test('when the stack\'s status cannot be read, the failure stands', async () => {
    const { exports } = load();
    const cfn = { send: async () => { throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }); } };
    const { lines, log } = logger();
    const err = await failure(exports.run({ lambda: { send: async () => doctorFailed(report([ALIAS_DIMENSION])) }, cloudformation: cfn }, ENV, log, async () => undefined));
    expect(err.message).toContain('1 serious problem(s)');
    expect(lines).toContainEqual(['error', 'ShiftGuard doctor: could not tell whether the stack is rolling back: Rate exceeded']);
  });

  test('handler: the SDK\'s clients and the function\'s environment', async () => {
    const { exports, sent } = load({
      lambda: () => doctorFailed(report([ALIAS_DIMENSION])),
      cloudformation: () => ({ Stacks: [{ StackStatus: 'UPDATE_IN_PROGRESS' }] }),
    });
    const err = await failure(exports.handler({}));
    expect(err.message).toContain('[alarm-dimensions] api-live-5xx');
    expect(sent.map((c) => [c.constructor.name, c.input])).toEqual([
      ['InvokeCommand', { FunctionName: ROLLBACK, InvocationType: 'RequestResponse', Payload: '{"shiftguard":"doctor"}' }],
      ['DescribeStacksCommand', { StackName: ENV.SHIFTGUARD_STACK_ID }],
    ]);
  });
});
