// Progressive rollouts: ShiftGuard.rollout(id, props) → the shift function (once) and a state
// machine per rollout. The definition is read back from the template and run by a small
// interpreter of the states it uses, against a fake `shift`, so that each assertion is about what
// an execution would do; shift's IAM is read statement by statement; cdk-nag runs on the stack.
import { App, Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { REFUSED_ERRORS, RETRYABLE_ERRORS, Rollout, RolloutProps, ShiftGuard, rolloutPlan } from '../lib/index';
import { INLINE_POLICY_LIMIT, MANAGED_POLICY_LIMIT } from '../lib/grants';
import { standInAssets } from './assets';
import { stackEnvironment } from './environment';
import { deployedLength } from './policy-size';

const assetDir = standInAssets();

const ENV = { account: '123456789012', region: 'eu-west-1' };
const LATTICE = {
  type: 'lattice-listener' as const,
  service: 'svc-0orders0000000000',
  listener: 'listener-0orders0000000000',
  productionTargetGroup: 'tg-0production000000',
  canaryTargetGroup: 'tg-0canary0000000000',
};
const STEPS = [{ weight: 10, bake: Duration.minutes(5) }, { weight: 25, bake: '90s' }, { weight: 50, bake: Duration.seconds(1.5) }, { weight: 100 }];

/** A template value as text: Refs and GetAtts as <Id> / <Id.Attr>, joins joined, a selected part of a split named. */
function text(v: any): string {
  if (typeof v === 'string') return v;
  if (v?.Ref) return `<${v.Ref}>`;
  if (v?.['Fn::GetAtt']) return `<${v['Fn::GetAtt'].join('.')}>`;
  if (v?.['Fn::Join']) return v['Fn::Join'][1].map(text).join(v['Fn::Join'][0]);
  if (v?.['Fn::Select'] && v['Fn::Select'][1]?.['Fn::Split']) {
    const [i, { 'Fn::Split': [sep, of] }] = v['Fn::Select'];
    return `<${text(of)} split by ${sep} [${i}]>`;
  }
  throw new Error(`unexpected template value ${JSON.stringify(v)}`);
}

function setup(more: (stack: Stack, sg: ShiftGuard) => void = () => undefined) {
  const app = new App();
  const stack = new Stack(app, 'Rollouts', { env: ENV });
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_shop' });
  more(stack, sg);
  return { app, stack, sg };
}

// Two rollouts on one ShiftGuard: a Lattice listener, and an alias with checks and a topic.
let orders!: Rollout;
let checkout!: Rollout;
let topicArn = '';
let apiAlarmArn = '';
let apiAlarmName = '';
const main = setup((stack, sg) => {
  const topic = new sns.Topic(stack, 'rollouts', { enforceSSL: true, masterKey: new kms.Key(stack, 'rollouts-key', { enableKeyRotation: true }) });
  topicArn = text(stack.resolve(topic.topicArn));
  const apiAlarm = new cloudwatch.Alarm(stack, 'checkout-errors', {
    alarmName: 'checkout-canary-errors', threshold: 1, evaluationPeriods: 1,
    metric: new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName: 'Errors', dimensionsMap: { FunctionName: 'checkout' } }),
  });
  apiAlarmArn = text(stack.resolve(apiAlarm.alarmArn));
  apiAlarmName = text(stack.resolve(apiAlarm.alarmName));
  orders = sg.rollout('orders', { target: LATTICE, steps: STEPS, alarms: ['orders-canary-5xx', 'orders-canary-latency'] });
  checkout = sg.rollout('checkout', {
    target: { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue' },
    steps: [{ weight: 10, bake: '5m' }, { weight: 100, bake: '5m' }],
    alarms: [apiAlarm],
    checks: { before: { checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 } }] } },
    environment: { PARTNER_TOKEN: 'from-the-test' },
    notificationTopic: topic,
    stateMachineName: 'checkout-rollout',
  });
  Aspects.of(stack).add(new AwsSolutionsChecks());
});
const template = Template.fromStack(main.stack);
const resources = template.toJSON().Resources as Record<string, any>;
const logicalId = (c: { node: { defaultChild?: unknown } } | undefined) => main.stack.getLogicalId(c!.node.defaultChild as any);
const shiftId = logicalId(main.sg.shift);

function definition(r: Rollout): any {
  const sm = resources[logicalId(r.stateMachine)];
  return JSON.parse(text(sm.Properties.DefinitionString));
}

/** shift's statements, each with its resources as text. */
function shiftStatements(): { actions: string[]; resources: string[]; condition?: any }[] {
  const role = logicalId(main.sg.shift!.role as any);
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === role))
    .flatMap((r) => r.Properties.PolicyDocument.Statement)
    .map((s: any) => ({
      actions: [s.Action].flat(),
      resources: [s.Resource].flat().map(text),
      condition: s.Condition,
    }));
}
const allowed = (action: string) => shiftStatements().filter((s) => s.actions.includes(action)).flatMap((s) => s.resources).sort();
const arn = (service: string, resource: string) => `arn:<AWS::Partition>:${service}:${ENV.region}:${ENV.account}:${resource}`;

// ---- a small interpreter of the states the definition uses --------------------------------------

type Answer = Record<string, unknown> | { errorType: string; errorMessage: string };

function get(doc: any, p: string, ctx: any): any {
  const [root, rest] = p.startsWith('$$') ? [ctx, p.slice(2)] : [doc, p.slice(1)];
  if (rest === '') return root;
  let v = root;
  for (const k of rest.slice(1).split('.')) {
    if (v === null || typeof v !== 'object' || !(k in v)) throw new Error(`States.Runtime: ${p} not found`);
    v = v[k];
  }
  return v;
}

function has(doc: any, p: string): boolean {
  try { get(doc, p, {}); return true; } catch { return false; }
}

/** Intrinsic calls (States.JsonMerge only, nested), paths and literals. */
function evaluate(expr: string, doc: any, ctx: any): any {
  let i = 0;
  const ws = () => { while (expr[i] === ' ') i++; };
  const arg = (): any => {
    ws();
    const m = /^States\.([A-Za-z]+)\(/.exec(expr.slice(i));
    if (m) {
      i += m[0].length;
      const args: any[] = [];
      for (;;) {
        args.push(arg());
        ws();
        if (expr[i] === ',') { i++; continue; }
        if (expr[i] === ')') { i++; break; }
        throw new Error(`bad intrinsic ${expr}`);
      }
      if (m[1] !== 'JsonMerge') throw new Error(`unsupported intrinsic States.${m[1]}`);
      expect(args).toHaveLength(3);
      expect(args[2]).toBe(false); // a deep merge is not supported by Step Functions
      for (const a of args.slice(0, 2)) {
        if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('States.Runtime: JsonMerge of a non-object');
      }
      return { ...args[0], ...args[1] };
    }
    const p = /^(\$\$?[A-Za-z0-9_.]*)/.exec(expr.slice(i));
    if (p) { i += p[0].length; return get(doc, p[1], ctx); }
    if (expr.startsWith('false', i)) { i += 5; return false; }
    throw new Error(`cannot read ${expr.slice(i)}`);
  };
  const v = arg();
  ws();
  expect(i).toBe(expr.length);
  return v;
}

function render(template: any, doc: any, ctx: any): any {
  if (Array.isArray(template)) return template.map((t) => render(t, doc, ctx));
  if (template === null || typeof template !== 'object') return template;
  const out: any = {};
  for (const [k, v] of Object.entries(template)) {
    if (k.endsWith('.$')) out[k.slice(0, -2)] = evaluate(v as string, doc, ctx);
    else out[k] = render(v, doc, ctx);
  }
  return out;
}

function put(doc: any, resultPath: string | undefined, value: any): any {
  if (resultPath === undefined || resultPath === '$') return value;
  const keys = resultPath.slice(2).split('.');
  const copy = JSON.parse(JSON.stringify(doc));
  let at = copy;
  for (const k of keys.slice(0, -1)) at = at[k] ??= {};
  at[keys[keys.length - 1]] = value;
  return copy;
}

interface Run {
  status: 'SUCCEEDED' | 'FAILED';
  /** Where the execution ended: a Fail/Succeed state, or the Task that failed it (redrivable there). */
  state: string;
  error?: string;
  cause?: string;
  events: any[];
  waits: number[];
  path: string[];
}

/** Runs an execution named `name` with `input`; `shift` answers each event in turn. */
function execute(def: any, name: string, input: any, shift: (event: any, call: number) => Answer): Run {
  const ctx = { Execution: { Name: name } };
  const events: any[] = [];
  const waits: number[] = [];
  const trail: string[] = [];
  let doc = JSON.parse(JSON.stringify(input));
  let at: string = def.StartAt;
  for (let guard = 0; guard < 500; guard++) {
    const s = def.States[at];
    expect(s).toBeDefined();
    trail.push(at);
    switch (s.Type) {
      case 'Choice': {
        const hit = s.Choices.find((c: any) => {
          if ('IsPresent' in c) return has(doc, c.Variable) === c.IsPresent;
          if ('StringEquals' in c) return has(doc, c.Variable) && get(doc, c.Variable, ctx) === c.StringEquals;
          throw new Error(`unsupported choice ${JSON.stringify(c)}`);
        });
        if (!hit && !s.Default) throw new Error('States.NoChoiceMatched');
        at = hit ? hit.Next : s.Default;
        continue;
      }
      case 'Pass': {
        const result = 'Result' in s ? s.Result : 'Parameters' in s ? render(s.Parameters, doc, ctx) : doc;
        doc = put(doc, s.ResultPath, result);
        at = s.Next;
        continue;
      }
      case 'Wait': {
        const seconds = get(doc, s.SecondsPath, ctx);
        expect(Number.isInteger(seconds) && seconds >= 0).toBe(true);
        waits.push(seconds);
        at = s.Next;
        continue;
      }
      case 'Task': {
        const payload = 'Parameters' in s ? render(s.Parameters, doc, ctx) : doc;
        const tries: Record<number, number> = {};
        for (;;) {
          events.push(JSON.parse(JSON.stringify(payload)));
          const answer = shift(payload, events.length - 1);
          if (!('errorType' in answer)) {
            doc = put(doc, s.ResultPath, answer);
            at = s.Next;
            break;
          }
          const error = answer.errorType as string;
          const retrier = (s.Retry ?? []).findIndex((r: any) => r.ErrorEquals.includes(error) || r.ErrorEquals.includes('States.ALL'));
          if (retrier >= 0 && (tries[retrier] ?? 0) < s.Retry[retrier].MaxAttempts) {
            tries[retrier] = (tries[retrier] ?? 0) + 1;
            continue;
          }
          const catcher = (s.Catch ?? []).find((c: any) => c.ErrorEquals.includes(error) || c.ErrorEquals.includes('States.ALL'));
          if (!catcher) return { status: 'FAILED', state: at, error, cause: answer.errorMessage as string, events, waits, path: trail };
          doc = put(doc, catcher.ResultPath, { Error: error, Cause: answer.errorMessage });
          at = catcher.Next;
          break;
        }
        continue;
      }
      case 'Succeed':
        return { status: 'SUCCEEDED', state: at, events, waits, path: trail };
      case 'Fail':
        return {
          status: 'FAILED', state: at,
          error: s.ErrorPath ? get(doc, s.ErrorPath, ctx) : s.Error,
          cause: s.CausePath ? get(doc, s.CausePath, ctx) : s.Cause,
          events, waits, path: trail,
        };
      default:
        throw new Error(`unsupported state type ${s.Type}`);
    }
  }
  throw new Error('the execution did not end in 500 transitions');
}

const answer = (status: string, extra: object = {}) => ({ status, action: 'baking', step: 1, steps: 4, canaryWeight: 10, ...extra });
/** Answers in turn; the last one again once they run out. */
const script = (...answers: Answer[]) => (_e: any, call: number) => answers[Math.min(call, answers.length - 1)];

/** What a rollout's input may set (shift's INPUT_MAY_SET). */
const MAY_SET = 'id, target.newVersion, checkFunction.version, checkFunction.currentVersion';
type Read = { plan: any } | { errorType: 'Shift.InvalidPlan'; errorMessage: string };

/**
 * An event read as `shift` reads it (rollback/shift/src/plan/event.rs, parse_plan): exactly `shiftguard`,
 * `rollout` (the plan) and optionally `input` and `last`; the input applied to the plan field by
 * field, the release only; anything else refused with Shift.InvalidPlan naming the field.
 */
function readEvent(event: any): Read {
  const refuse = (errorMessage: string): Read => ({ errorType: 'Shift.InvalidPlan', errorMessage });
  const unknown = Object.keys(event).filter((k) => !['shiftguard', 'rollout', 'input', 'last'].includes(k));
  if (unknown.length > 0) return refuse(`${unknown[0]}: unknown field`);
  if (event.shiftguard !== 'shift') return refuse('shiftguard: expected "shift"');
  const plan = JSON.parse(JSON.stringify(event.rollout));
  const input = event.input ?? null;
  if (input === null) return { plan };
  if (typeof input !== 'object' || Array.isArray(input)) return refuse(`input: expected an object, got ${JSON.stringify(input)}`);
  const only = (field: string) => refuse(`input.${field}: a rollout's input may set only ${MAY_SET}`);
  for (const [k, v] of Object.entries<any>(input)) {
    if (k === 'id') {
      if (v !== plan.id) return refuse(`input.id: ${JSON.stringify(v)} is not the rollout's id ${JSON.stringify(plan.id)} (the execution's name)`);
    } else if (k === 'target' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [tk, tv] of Object.entries(v)) {
        if (tk !== 'newVersion' || plan.target.type !== 'lambda-alias') return only(`target.${tk}`);
        if (typeof tv !== 'string') return refuse(`input.target.newVersion: expected a string, got ${JSON.stringify(tv)}`);
        plan.target.newVersion = tv;
      }
    } else if (k === 'checkFunction' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      if (!plan.checkFunction) return refuse('input.checkFunction: the rollout\'s plan has no checkFunction to set versions of');
      for (const [ck, cv] of Object.entries(v)) {
        if (ck !== 'version' && ck !== 'currentVersion') return only(`checkFunction.${ck}`);
        if (typeof cv !== 'string') return refuse(`input.checkFunction.${ck}: expected a string, got ${JSON.stringify(cv)}`);
        plan.checkFunction[ck] = cv;
      }
    } else {
      return only(k);
    }
  }
  return { plan };
}

/** Like `script`, but each event is first read as shift reads it: what it refuses is answered with its error. */
const shiftReading = (...answers: Answer[]) => (event: any, call: number): Answer => {
  const read = readEvent(event);
  return 'errorType' in read ? read : answers[Math.min(call, answers.length - 1)];
};
/** The plan shift would run for an event. */
const planOf = (event: any) => {
  const read = readEvent(event);
  if ('errorType' in read) throw new Error(`${read.errorType}: ${read.errorMessage}`);
  return read.plan;
};

describe('the state machine: Step → Status → Bake → Step until promoted or aborted', () => {
  const def = definition(orders);
  const plan = rolloutPlan({ target: LATTICE, steps: STEPS, alarms: ['orders-canary-5xx', 'orders-canary-latency'] });

  test('the states and their wiring', () => {
    const step = def.States.Step;
    expect(step.Type).toBe('Task');
    // Invoked directly (payloadResponseOnly): the answer itself is $.last, the whole state is the event.
    expect(step.Resource).toBe(`<${shiftId}.Arn>`);
    expect(step).not.toHaveProperty('Parameters');
    expect(step).not.toHaveProperty('ResultSelector');
    expect(step.ResultPath).toBe('$.last');
    expect(step.Next).toBe('Status');

    const status = def.States.Status;
    expect(status.Type).toBe('Choice');
    expect(status.Choices.map((c: any) => [c.Variable, c.StringEquals, c.Next])).toEqual([
      ['$.last.status', 'in-progress', 'Bake'],
      ['$.last.status', 'promoted', 'Promoted'],
      ['$.last.status', 'aborted', 'Aborted'],
    ]);
    expect(def.States[status.Default]).toEqual({ Type: 'Fail', Error: 'Rollout.UnexpectedAnswer', Cause: expect.any(String) });
    expect(def.States.Bake).toEqual({ Type: 'Wait', SecondsPath: '$.last.waitSeconds', Next: 'Step' });
    expect(def.States.Promoted).toEqual({ Type: 'Succeed' });
    expect(def.States.Aborted).toEqual({ Type: 'Fail', Error: 'Rollout.Aborted', CausePath: '$.last.reason' });

    // Every Next names a state, and every state is reachable from StartAt.
    const seen = new Set<string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      expect(def.States[name]).toBeDefined();
      seen.add(name);
      const s = def.States[name];
      for (const n of [s.Next, s.Default, ...(s.Choices ?? []).map((c: any) => c.Next), ...(s.Catch ?? []).map((c: any) => c.Next)]) if (n) visit(n);
    };
    visit(def.StartAt);
    expect([...seen].sort()).toEqual(Object.keys(def.States).sort());
  });

  test('Retry: exactly the retryable errors, with backoff; the refused ones are caught into a Fail state', () => {
    const { Retry, Catch } = def.States.Step;
    expect(Retry).toHaveLength(1);
    expect([...Retry[0].ErrorEquals].sort()).toEqual([
      'Lambda.AWSLambdaException', 'Lambda.ClientExecutionTimeoutException', 'Lambda.SdkClientException',
      'Lambda.ServiceException', 'Lambda.TooManyRequestsException',
      'Shift.AwsError', 'Shift.NotifyFailed', 'Shift.RestoreFailed',
    ]);
    expect([...RETRYABLE_ERRORS].sort()).toEqual([...Retry[0].ErrorEquals].sort());
    expect(Retry[0].BackoffRate).toBeGreaterThan(1);
    expect(Retry[0].IntervalSeconds).toBeGreaterThanOrEqual(1);
    expect(Retry[0].MaxAttempts).toBeGreaterThanOrEqual(3);
    expect(Retry[0].MaxDelaySeconds).toBeLessThanOrEqual(300);
    // The refused errors: never retried, caught into a Fail state that keeps shift's errorType and message.
    expect(Catch).toEqual([{ ErrorEquals: ['Shift.InvalidPlan', 'Shift.Refused'], ResultPath: '$.error', Next: 'Refused' }]);
    expect(REFUSED_ERRORS).toEqual(Catch[0].ErrorEquals);
    expect(def.States.Refused).toEqual({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
    // Nothing else is caught: a step that still fails after its retries fails the execution AT Step,
    // where `redrive-execution` runs it again under the same name (the same rollout id).
    expect(JSON.stringify(Catch)).not.toContain('States.ALL');
  });

  test('an execution without input runs the construct\'s plan, its id the execution\'s name, until promoted', () => {
    const started = answer('in-progress', { action: 'started', waitSeconds: 60, waitMs: 299_500 });
    const run = execute(def, 'orders-v2', {}, shiftReading(
      started,
      answer('in-progress', { action: 'advanced', step: 2, waitSeconds: 60, waitMs: 90_000 }),
      answer('promoted', { action: 'promoted', step: 4 }),
    ));
    expect(run).toMatchObject({ status: 'SUCCEEDED', state: 'Promoted', waits: [60, 60] });
    expect(run.events).toHaveLength(3);
    // Exactly the event shift reads (it refuses unknown fields): shiftguard, rollout, input, and then last.
    expect(run.events[0]).toEqual({ shiftguard: 'shift', rollout: { ...plan, id: 'orders-v2' }, input: {} });
    expect(run.events[0].rollout.steps).toEqual([{ weight: 10, bake: '5m' }, { weight: 25, bake: '90s' }, { weight: 50, bake: '1500ms' }, { weight: 100 }]);
    expect(run.events[1]).toEqual({ shiftguard: 'shift', rollout: run.events[0].rollout, input: {}, last: started });
    expect(Object.keys(run.events[2]).sort()).toEqual(['input', 'last', 'rollout', 'shiftguard']);
    expect(planOf(run.events[2])).toEqual({ ...plan, id: 'orders-v2' });
  });

  test('a bake longer than a minute: shift comes back every minute, each time with the same plan and input and its last answer', () => {
    // A 5-minute bake: shift answers waitSeconds 60 (at most; waitMs keeps the exact bake) and re-reads the alarms at each return.
    const baking = (waitMs: number) => answer('in-progress', { action: 'baking', waitSeconds: Math.min(60, Math.ceil(waitMs / 1000)), waitMs });
    const answers = [answer('in-progress', { action: 'started', waitSeconds: 60, waitMs: 300_000 }), baking(240_000), baking(180_000), baking(120_000), baking(60_000), answer('promoted')];
    const run = execute(def, 'orders-v2', { rollout: {} }, shiftReading(...answers));
    expect(run).toMatchObject({ status: 'SUCCEEDED', waits: [60, 60, 60, 60, 60] });
    run.events.forEach((e, i) => {
      expect(e).toEqual({ shiftguard: 'shift', rollout: { ...plan, id: 'orders-v2' }, input: {}, ...(i > 0 ? { last: answers[i - 1] } : {}) });
    });
  });

  test('the input\'s rollout travels beside the plan as `input`; shift takes the release from it', () => {
    const { stack, sg } = setup();
    const withFunction = sg.rollout('orders', { target: LATTICE, steps: STEPS, alarms: ['orders-canary-5xx'], checkFunction: { function: 'orders', version: '1', currentVersion: '0' } });
    const machine = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(withFunction.stateMachine.node.defaultChild as any)];
    const given = { id: 'orders-v7', checkFunction: { version: '7', currentVersion: '6' } };
    const run = execute(JSON.parse(text(machine.Properties.DefinitionString)), 'orders-v7', { shiftguard: 'shift', rollout: given, somethingElse: true }, shiftReading(answer('promoted')));
    expect(run.status).toBe('SUCCEEDED');
    // The construct's plan as it is, id from the execution's name; the caller's object apart; nothing else.
    expect(run.events[0]).toEqual({ shiftguard: 'shift', rollout: { ...withFunction.plan, id: 'orders-v7' }, input: given });
    expect(planOf(run.events[0]).checkFunction).toEqual({ function: 'orders', version: '7', currentVersion: '6' });
  });

  test.each([
    ['target.type', { target: { type: 'lambda-alias', function: 'checkout', alias: 'live', newVersion: '9' } }, /^input\.target\.type: a rollout's input may set only/],
    ['target (another listener)', { target: { listener: 'listener-of-another-rollout' } }, /^input\.target\.listener/],
    ['alarms', { alarms: [] }, /^input\.alarms/],
    ['checks', { checks: { after: { checks: [{ name: 'x', kind: 'http', url: 'https://example.org/', secretHeaders: { Authorization: 'PARTNER_TOKEN' } }] } } }, /^input\.checks/],
    ['steps', { steps: [{ weight: 100 }] }, /^input\.steps/],
    ['an id that is not the execution\'s name', { id: 'someone-else' }, /^input\.id/],
    ['a checkFunction the plan has not', { checkFunction: { version: '3' } }, /^input\.checkFunction: the rollout's plan has no checkFunction/],
    ['not an object', 'orders-v9', /^input: expected an object/],
  ])('%s in the input never reaches `rollout`: it arrives only under `input`, and the execution fails with Shift.InvalidPlan', (_what, given, message) => {
    const run = execute(def, 'orders-v9', { rollout: given }, shiftReading(answer('promoted')));
    expect(run.events).toHaveLength(1);
    expect(run.events[0].rollout).toEqual({ ...plan, id: 'orders-v9' });
    expect(run.events[0].input).toEqual(given);
    expect(run).toMatchObject({ status: 'FAILED', state: 'Refused', error: 'Shift.InvalidPlan', cause: expect.stringMatching(message) });
  });

  test('an abort fails the execution with Rollout.Aborted and shift\'s reason', () => {
    const run = execute(def, 'orders-v3', {}, script(
      answer('in-progress', { waitSeconds: 60 }),
      answer('aborted', { action: 'aborted', reason: 'alarm(s) in ALARM during step 1: orders-canary-5xx' }),
    ));
    expect(run).toMatchObject({ status: 'FAILED', state: 'Aborted', error: 'Rollout.Aborted', cause: 'alarm(s) in ALARM during step 1: orders-canary-5xx', waits: [60] });
  });

  test.each(REFUSED_ERRORS)('%s is not retried: the execution fails in Refused with shift\'s errorType and message', (errorType) => {
    const run = execute(def, 'orders-v4', {}, script({ errorType, errorMessage: 'refused, nothing was moved: another rollout' }));
    expect(run).toMatchObject({ status: 'FAILED', state: 'Refused', error: errorType, cause: 'refused, nothing was moved: another rollout' });
    expect(run.events).toHaveLength(1);
  });

  test.each(RETRYABLE_ERRORS)('%s is retried, and the rollout goes on', (errorType) => {
    const run = execute(def, 'orders-v5', {}, script(
      { errorType, errorMessage: 'UpdateListener failed: throttled' },
      { errorType, errorMessage: 'UpdateListener failed: throttled' },
      answer('in-progress', { waitSeconds: 10 }),
      answer('promoted'),
    ));
    expect(run).toMatchObject({ status: 'SUCCEEDED', waits: [10] });
    expect(run.events).toHaveLength(4);
    // A retry sends the same event again (shift resumes from the marker).
    expect(run.events[1]).toEqual(run.events[0]);
  });

  test('a step that keeps failing, or fails otherwise, fails the execution at Step (redrivable there)', () => {
    const always = execute(def, 'orders-v6', {}, script({ errorType: 'Shift.RestoreFailed', errorMessage: 'the abort could not restore production' }));
    expect(always).toMatchObject({ status: 'FAILED', state: 'Step', error: 'Shift.RestoreFailed' });
    expect(always.events).toHaveLength(1 + def.States.Step.Retry[0].MaxAttempts);
    const internal = execute(def, 'orders-v6', {}, script({ errorType: 'Shift.Internal', errorMessage: 'the summary could not be serialised' }));
    expect(internal).toMatchObject({ status: 'FAILED', state: 'Step', error: 'Shift.Internal' });
    expect(internal.events).toHaveLength(1);
  });

  test('an answer with another status fails the execution rather than looping', () => {
    const run = execute(def, 'orders-v8', {}, script(answer('finished')));
    expect(run).toMatchObject({ status: 'FAILED', state: 'Unexpected answer', error: 'Rollout.UnexpectedAnswer' });
  });

  test('the alias rollout\'s plan: the alarm by its name (a Ref), the checks as written, the state machine named; the new version from the input', () => {
    const run = execute(definition(checkout), 'checkout-v2', { rollout: { target: { newVersion: '2' } } }, shiftReading(answer('promoted')));
    expect(run.status).toBe('SUCCEEDED');
    const construct = {
      target: { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue' },
      steps: [{ weight: 10, bake: '5m' }, { weight: 100, bake: '5m' }],
      alarms: [apiAlarmName],
      checks: { before: { checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 } }] } },
    };
    expect(run.events[0]).toEqual({ shiftguard: 'shift', rollout: { id: 'checkout-v2', ...construct }, input: { target: { newVersion: '2' } } });
    expect(planOf(run.events[0])).toEqual({ id: 'checkout-v2', ...construct, target: { ...construct.target, newVersion: '2' } });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'checkout-rollout' });
  });
});

describe('the shift function and the state machines', () => {
  test('one shift function for every rollout, built like the others, with the rollouts\' environment', () => {
    const fns = template.findResources('AWS::Lambda::Function', { Properties: { FunctionName: 'shop_shift' } });
    expect(Object.keys(fns)).toEqual([shiftId]);
    const fn = fns[shiftId].Properties;
    expect(fn).toMatchObject({ Runtime: 'provided.al2023', Handler: 'bootstrap', Architectures: ['x86_64'], Timeout: 300, LoggingConfig: { LogFormat: 'JSON' } });
    expect(text(fn.Environment.Variables.NOTIFY_TOPIC_ARN)).toBe(topicArn);
    expect(fn.Environment.Variables.PARTNER_TOKEN).toBe('from-the-test');
    // A plan's checks may read exactly the rollouts' variables (shift refuses any other).
    expect(fn.Environment.Variables.SHIFT_ALLOWED_SECRETS).toBe('PARTNER_TOKEN');
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/lambda/shop_shift', RetentionInDays: 30 });
  });

  test('each state machine: standard, logged at ALL with execution data, traced, its ARN an output', () => {
    for (const r of [orders, checkout]) {
      const sm = resources[logicalId(r.stateMachine)].Properties;
      expect(sm.StateMachineType).toBe('STANDARD');
      expect(sm.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
      expect(text(sm.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn)).toBe(`<${logicalId(r.logGroup)}.Arn>`);
      expect(resources[logicalId(r.logGroup)].Properties.LogGroupName).toMatch(/^\/aws\/vendedlogs\/states\//);
      expect(sm.TracingConfiguration).toEqual({ Enabled: true });
      const outputs = template.findOutputs('*', { Value: { Ref: logicalId(r.stateMachine) } });
      expect(Object.values(outputs)).toHaveLength(1);
      expect((Object.values(outputs)[0] as any).Description).toContain('start-execution');
    }
  });

  test('a state machine may invoke shift and nothing else', () => {
    for (const r of [orders, checkout]) {
      const role = logicalId(r.stateMachine.role as any);
      const statements = Object.values(resources)
        .filter((x) => x.Type === 'AWS::IAM::Policy' && x.Properties.Roles.some((y: any) => y.Ref === role))
        .flatMap((x) => x.Properties.PolicyDocument.Statement);
      const lambdaStatements = statements.filter((s: any) => JSON.stringify(s.Action).includes('lambda:'));
      expect(lambdaStatements).toHaveLength(1);
      expect(lambdaStatements[0].Action).toBe('lambda:InvokeFunction');
      expect(lambdaStatements[0].Resource.map(text)).toEqual([`<${shiftId}.Arn>`, `<${shiftId}.Arn>:*`]);
      // Nothing but invoke, log delivery and X-Ray.
      for (const s of statements) {
        for (const a of [s.Action].flat()) expect(a).toMatch(/^(lambda:InvokeFunction|logs:[A-Za-z]+|xray:[A-Za-z]+)$/);
      }
    }
  });
});

test('grantStart: start executions of this state machine, and redrive/describe/stop its executions', () => {
  const { stack } = setup((s, g) => {
    const r = g.rollout('orders', { target: LATTICE, steps: [{ weight: 100 }], alarms: ['a'], stateMachineName: 'orders-rollout' });
    r.grantStart(new iam.Role(s, 'ci', { assumedBy: new iam.AccountRootPrincipal() }));
  });
  const res = Template.fromStack(stack).toJSON().Resources as Record<string, any>;
  const ci = Object.values(res).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes('"ci'))
    .flatMap((r) => r.Properties.PolicyDocument.Statement).map((s: any) => [[s.Action].flat(), text(s.Resource)]);
  const machine = Object.keys(res).find((k) => res[k].Type === 'AWS::StepFunctions::StateMachine')!;
  expect(ci).toEqual([
    [['states:StartExecution'], `<${machine}>`],
    // Executions of this state machine: its name is the 7th part of its ARN.
    [['states:RedriveExecution', 'states:DescribeExecution', 'states:StopExecution'], `arn:<AWS::Partition>:states:${ENV.region}:${ENV.account}:execution:<<${machine}> split by : [6]>:*`],
  ]);
});

describe('least privilege: shift may act on the rollouts\' targets, alarms and topic only', () => {
  const listener = arn('vpc-lattice', `service/${LATTICE.service}/listener/${LATTICE.listener}`);
  const group = (g: string) => arn('vpc-lattice', `targetgroup/${g}`);
  const fn = arn('lambda', 'function:checkout');

  test('Lattice: the listener and its rules, the marker tag only, production\'s targets', () => {
    for (const action of ['vpc-lattice:GetListener', 'vpc-lattice:UpdateListener', 'vpc-lattice:ListRules', 'vpc-lattice:GetRule', 'vpc-lattice:UpdateRule', 'vpc-lattice:ListTagsForResource']) {
      expect(allowed(action)).toEqual([arn('vpc-lattice', `service/${LATTICE.service}`), listener, `${listener}/rule/*`]);
    }
    const tag = shiftStatements().filter((s) => s.actions.includes('vpc-lattice:TagResource'));
    expect(tag).toEqual([{ actions: ['vpc-lattice:TagResource'], resources: [listener], condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:rollout', 'shiftguard:rollout:*'] } } }]);
    expect(allowed('vpc-lattice:ListTargets')).toEqual([group(LATTICE.canaryTargetGroup), group(LATTICE.productionTargetGroup)]);
    // Whether production is a LAMBDA group: read at start and at promotion, on both groups.
    expect(allowed('vpc-lattice:GetTargetGroup')).toEqual([group(LATTICE.canaryTargetGroup), group(LATTICE.productionTargetGroup)]);
    expect(allowed('vpc-lattice:RegisterTargets')).toEqual([group(LATTICE.productionTargetGroup)]);
    expect(allowed('vpc-lattice:DeregisterTargets')).toEqual([group(LATTICE.productionTargetGroup)]);
    const lattice = shiftStatements().flatMap((s) => s.actions).filter((a) => a.startsWith('vpc-lattice:'));
    expect([...new Set(lattice)].sort()).toEqual(['vpc-lattice:DeregisterTargets', 'vpc-lattice:GetListener', 'vpc-lattice:GetRule', 'vpc-lattice:GetTargetGroup', 'vpc-lattice:ListRules', 'vpc-lattice:ListTagsForResource', 'vpc-lattice:ListTargets', 'vpc-lattice:RegisterTargets', 'vpc-lattice:TagResource', 'vpc-lattice:UpdateListener', 'vpc-lattice:UpdateRule']);
  });

  test('each check kind brings only its own grant: artifact GetFunction, logs FilterLogEvents, metrics/compare GetMetricData', () => {
    for (const [kind, action] of [['artifact', 'lambda:GetFunction'], ['logs', 'logs:FilterLogEvents'], ['metrics', 'cloudwatch:GetMetricData'], ['compare', 'cloudwatch:GetMetricData']]) {
      const { stack, sg } = setup((_s, g) => g.rollout('orders', {
        target: { type: 'lambda-alias', function: 'checkout', alias: 'live' }, steps: [{ weight: 100 }], alarms: ['a'],
        checks: { after: { checks: [{ name: 'k', kind }] } },
      }));
      const actions = roleStatements(stack, sg.shift!).flatMap((x) => x.actions);
      expect([kind, actions.includes(action)]).toEqual([kind, true]);
      for (const other of ['lambda:GetFunction', 'logs:FilterLogEvents', 'cloudwatch:GetMetricData'].filter((a) => a !== action)) {
        expect([kind, other, actions.includes(other)]).toEqual([kind, other, false]);
      }
    }
  });

  test('alias: the alias and the pointer, the marker tag only, the versions; checks on the function; the topic', () => {
    expect(allowed('lambda:UpdateAlias')).toEqual([fn, `${fn}:blue`, `${fn}:live`]);
    expect(allowed('lambda:GetAlias')).toEqual([fn, `${fn}:blue`, `${fn}:live`]);
    expect(allowed('lambda:CreateAlias')).toEqual([fn]);
    expect(allowed('lambda:ListTags')).toEqual([fn]);
    const tag = shiftStatements().filter((s) => s.actions.includes('lambda:TagResource'));
    expect(tag).toEqual([{ actions: ['lambda:TagResource'], resources: [fn], condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:rollout', 'shiftguard:rollout:*'] } } }]);
    expect(allowed('lambda:InvokeFunction')).toEqual([fn, `${fn}:*`]);
    // Only an invoke check: no code hash (artifact), no logs (logs), no metrics (metrics/compare).
    expect(allowed('lambda:GetFunction')).toEqual([]);
    expect(allowed('logs:FilterLogEvents')).toEqual([]);
    expect(allowed('cloudwatch:GetMetricData')).toEqual([]);
    expect(allowed('sns:Publish')).toEqual([topicArn]);
    // Rollback's alias path reads CodeDeploy; a rollout never stops a deployment.
    expect(allowed('codedeploy:ListDeployments')).toEqual(['*']);
    expect(allowed('codedeploy:BatchGetDeployments')).toEqual([arn('codedeploy', 'deploymentgroup:*')]);
    expect(allowed('codedeploy:StopDeployment')).toEqual([]);
  });

  test('DescribeAlarms on exactly the rollouts\' alarms', () => {
    expect(allowed('cloudwatch:DescribeAlarms')).toEqual([
      apiAlarmArn,
      arn('cloudwatch', 'alarm:orders-canary-5xx'),
      arn('cloudwatch', 'alarm:orders-canary-latency'),
    ].sort());
  });

  test('no Resource "*" but the unscopable actions; nothing for what no rollout names', () => {
    for (const s of shiftStatements()) {
      if (s.resources.includes('*')) expect(s.actions.every((a) => ['cloudwatch:GetMetricData', 'codedeploy:ListDeployments'].includes(a))).toBe(true);
    }
    const actions = shiftStatements().flatMap((s) => s.actions);
    for (const never of ['apigateway:PATCH', 'codedeploy:StopDeployment', 'lambda:UpdateFunctionCode', 'lambda:DeleteAlias', 'vpc-lattice:DeleteListener', 'iam:PassRole']) expect(actions).not.toContain(never);
  });

  test('a Lattice rollout without checks, alone: no Lambda, CodeDeploy, metrics or SNS permissions', () => {
    const { stack, sg } = setup((_s, g) => { g.rollout('orders', { target: LATTICE, steps: [{ weight: 100 }], alarms: ['a'] }); });
    const role = stack.getLogicalId(sg.shift!.role!.node.defaultChild as any);
    const policies = Object.values(Template.fromStack(stack).toJSON().Resources as Record<string, any>)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === role));
    const actions = policies.flatMap((p) => p.Properties.PolicyDocument.Statement).flatMap((s: any) => [s.Action].flat());
    expect(actions.filter((a: string) => /^(lambda|codedeploy|sns|kms):|GetMetricData|FilterLogEvents/.test(a))).toEqual([]);
  });
});


test('many rollouts, then a long-named encrypted topic: its Publish and key grants go through shift\'s grant book, every policy within IAM\'s limits', () => {
  // Names at their longest: a topic's name 256 characters; service, listener and target group ids
  // as Lattice makes them.
  const topicArn = `arn:aws:sns:${ENV.region}:${ENV.account}:${'notify-'.padEnd(256, 'x')}`;
  const keyArn = `arn:aws:kms:${ENV.region}:${ENV.account}:key/0123abcd-0123-abcd-0123-0123456789ab`;
  const hex = (i: number, n: number) => i.toString(16).padStart(n, '0');
  const rollouts = 24;
  const { stack, sg } = setup((s, g) => {
    const topic = sns.Topic.fromTopicAttributes(s, 'notify', { topicArn, keyArn });
    for (let i = 0; i < rollouts; i++) {
      // The first half without a topic fills shift's inline policy; the topic comes after.
      g.rollout(`rollout-${i}`.padEnd(80, 'r'), {
        target: { type: 'lattice-listener', service: `svc-${hex(i, 17)}`, listener: `listener-${hex(i, 17)}`, productionTargetGroup: `tg-${hex(i, 17)}`, canaryTargetGroup: `tg-${hex(1000 + i, 17)}` },
        steps: [{ weight: 100 }],
        alarms: [`orders-${i}-5xx`.padEnd(255, 'x')],
        notificationTopic: i >= rollouts / 2 ? topic : undefined,
      });
    }
  });
  const t = Template.fromStack(stack).toJSON();
  const role = stack.getLogicalId(sg.shift!.role!.node.defaultChild as any);
  const attached = Object.entries<any>(t.Resources)
    .filter(([, r]) => ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].includes(r.Type) && (r.Properties.Roles ?? []).some((x: any) => x.Ref === role));
  const inline = attached.filter(([, r]) => r.Type === 'AWS::IAM::Policy');
  const managed = attached.filter(([, r]) => r.Type === 'AWS::IAM::ManagedPolicy');
  // The book's own managed policies only (CDK never split the inline policy), each within 6,144
  // characters, the inline policy within 10,240, at their longest once deployed.
  expect(managed.length).toBeGreaterThan(0);
  expect(managed.map(([id]) => id).filter((id) => !id.includes('ShiftGuardGrants'))).toEqual([]);
  expect(inline.reduce((n, [, r]) => n + deployedLength(t, r.Properties.PolicyDocument), 0)).toBeLessThanOrEqual(INLINE_POLICY_LIMIT);
  for (const [, r] of managed) expect(deployedLength(t, r.Properties.PolicyDocument)).toBeLessThanOrEqual(MANAGED_POLICY_LIMIT);
  // Least privilege unchanged: sns:Publish on the topic, kms:Decrypt and kms:GenerateDataKey* on its
  // key (what grantPublish grants), once each, whichever rollouts named it.
  const statements = attached.flatMap(([id, r]) => [r.Properties.PolicyDocument.Statement].flat().map((s: any) => ({ id, s })));
  const on = (action: string) => statements.filter(({ s }) => [s.Action].flat().includes(action));
  expect(on('sns:Publish').map(({ s }) => ({ Action: s.Action, Resource: s.Resource, Condition: s.Condition }))).toEqual([{ Action: 'sns:Publish', Resource: topicArn, Condition: undefined }]);
  expect(on('kms:Decrypt').map(({ s }) => ({ Action: s.Action, Resource: s.Resource, Condition: s.Condition }))).toEqual([{ Action: ['kms:Decrypt', 'kms:GenerateDataKey*'], Resource: keyArn, Condition: undefined }]);
  // Counted by the book: the inline policy was full when the first rollout with the topic came, so
  // the topic's statements continue in the book's managed policies.
  expect(on('sns:Publish').map(({ id }) => id)).toEqual([expect.stringContaining('ShiftGuardGrants')]);
  expect(on('kms:Decrypt').map(({ id }) => id)).toEqual([expect.stringContaining('ShiftGuardGrants')]);
});

/** A function's role's statements in `stack`, each with its resources as text. */
function roleStatements(stack: Stack, fn: lambda.IFunction): { actions: string[]; resources: string[]; condition?: any }[] {
  const role = stack.getLogicalId(fn.role!.node.defaultChild as any);
  return Object.values(Template.fromStack(stack).toJSON().Resources as Record<string, any>)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === role))
    .flatMap((r) => r.Properties.PolicyDocument.Statement)
    .map((s: any) => ({ actions: [s.Action].flat(), resources: [s.Resource].flat().map(text), condition: s.Condition }));
}
const allowedIn = (statements: { actions: string[]; resources: string[] }[], action: string) =>
  statements.filter((s) => s.actions.includes(action)).flatMap((s) => s.resources).sort();

describe('a Lattice rollout whose LAMBDA production group serves an alias (productionAlias)', () => {
  const fnArn = 'arn:aws:lambda:eu-west-1:123456789012:function:orders';
  const group = (g: string) => arn('vpc-lattice', `targetgroup/${g}`);
  const live = (stack: Stack) => lambda.Alias.fromAliasAttributes(stack, 'live', {
    aliasName: 'live', aliasVersion: lambda.Version.fromVersionArn(stack, 'production-version', `${fnArn}:3`),
  });
  const MAPPING = { alarms: ['orders-canary-5xx'], targets: [{ type: 'lattice-listener' as const, service: LATTICE.service, listener: LATTICE.listener, productionTargetGroup: LATTICE.productionTargetGroup }] };

  test('shift may read and move exactly that alias and read the function\'s versions; the plan does not name it', () => {
    let r!: Rollout;
    const { stack, sg } = setup((s, g) => { r = g.rollout('orders', { target: { ...LATTICE, productionAlias: live(s) }, steps: [{ weight: 100 }], alarms: ['a'] }); });
    const statements = roleStatements(stack, sg.shift!);
    expect(statements.filter((x) => x.actions.includes('lambda:UpdateAlias'))).toEqual([{ actions: ['lambda:GetAlias', 'lambda:UpdateAlias'], resources: [`${fnArn}:live`], condition: undefined }]);
    expect(allowedIn(statements, 'lambda:GetFunctionConfiguration')).toEqual([`${fnArn}:*`]);
    const lambdaActions = statements.flatMap((x) => x.actions).filter((a) => a.startsWith('lambda:'));
    expect(lambdaActions.sort()).toEqual(['lambda:GetAlias', 'lambda:GetFunctionConfiguration', 'lambda:UpdateAlias']);
    expect(r.plan.target).toEqual(LATTICE);
    const machine = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(r.stateMachine.node.defaultChild as any)];
    expect(JSON.parse(text(machine.Properties.DefinitionString)).States.Defaults.Result.target).toEqual(LATTICE);
  });

  test('checkFunction without checks: shift may read its versions (start checks the version exists); with the alias\'s function, once', () => {
    const { stack, sg } = setup((s, g) => {
      g.rollout('orders', { target: { ...LATTICE, productionAlias: live(s) }, steps: [{ weight: 100 }], alarms: ['a'], checkFunction: { function: fnArn, version: '4', currentVersion: '3' } });
    });
    expect(allowedIn(roleStatements(stack, sg.shift!), 'lambda:GetFunctionConfiguration')).toEqual([`${fnArn}:*`]);
    const other = setup((_s, g) => { g.rollout('orders', { target: LATTICE, steps: [{ weight: 100 }], alarms: ['a'], checkFunction: { function: 'orders', version: '4' } }); });
    expect(allowedIn(roleStatements(other.stack, other.sg.shift!), 'lambda:GetFunctionConfiguration')).toEqual([`${arn('lambda', 'function:orders')}:*`]);
    expect(allowedIn(roleStatements(other.stack, other.sg.shift!), 'lambda:InvokeFunction')).toEqual([]);
  });

  test.each(['rollout first', 'mapping first'])('rollback may put the alias back (%s): ListTargets on production, GetAlias/UpdateAlias on the alias, nothing more', (order) => {
    const { stack, sg } = setup((s, g) => {
      if (order === 'mapping first') g.addRollbackMapping(MAPPING);
      g.rollout('orders', { target: { ...LATTICE, productionAlias: live(s) }, steps: [{ weight: 100 }], alarms: ['a'] });
      if (order === 'rollout first') g.addRollbackMapping(MAPPING);
      // Another listener's mapping gets nothing of it.
      g.addRollbackMapping({ alarms: ['b'], targets: [{ type: 'lattice-listener', service: LATTICE.service, listener: 'listener-0other00000000000', productionTargetGroup: LATTICE.productionTargetGroup }] });
    });
    const statements = roleStatements(stack, sg.rollback);
    expect(statements.filter((x) => x.actions.includes('vpc-lattice:ListTargets'))).toEqual([{ actions: ['vpc-lattice:ListTargets'], resources: [group(LATTICE.productionTargetGroup)], condition: undefined }]);
    expect(statements.filter((x) => x.actions.includes('lambda:UpdateAlias'))).toEqual([{ actions: ['lambda:GetAlias', 'lambda:UpdateAlias'], resources: [`${fnArn}:live`], condition: undefined }]);
    expect(allowedIn(statements, 'vpc-lattice:RegisterTargets')).toEqual([]);
    expect(allowedIn(statements, 'lambda:GetFunctionConfiguration')).toEqual([]);
    // ROLLBACK_TARGETS gains nothing: rollback reads the alias from the production group's target.
    expect(JSON.parse(stackEnvironment(stack, 'shop_rollback').ROLLBACK_TARGETS)[0]).toEqual(MAPPING);
  });

  test('without productionAlias, rollback has no ListTargets and no alias permissions', () => {
    const { stack, sg } = setup((_s, g) => { g.rollout('orders', { target: LATTICE, steps: [{ weight: 100 }], alarms: ['a'] }); g.addRollbackMapping(MAPPING); });
    const actions = roleStatements(stack, sg.rollback).flatMap((x) => x.actions);
    expect(actions.filter((a) => a === 'vpc-lattice:ListTargets' || a.startsWith('lambda:'))).toEqual([]);
  });

  test('a checkFunction of another function than the alias\'s is refused at synth, naming the field', () => {
    const { stack } = setup();
    const productionAlias = live(stack);
    expect(() => rolloutPlan({ target: { ...LATTICE, productionAlias }, steps: [{ weight: 100 }], alarms: ['a'], checkFunction: { function: 'payments', version: '2' } }))
      .toThrow(/^rollout\.checkFunction\.function: payments is not the function of target\.productionAlias \(orders\)/);
    expect(() => rolloutPlan({ target: { ...LATTICE, productionAlias }, steps: [{ weight: 100 }], alarms: ['a'], checkFunction: { function: `${fnArn}:4`, version: '4' } })).not.toThrow();
    expect(() => rolloutPlan({ target: { ...LATTICE, productionAlias }, steps: [{ weight: 100 }], alarms: ['a'], checkFunction: { function: 'orders', version: '4' } })).not.toThrow();
  });
});

describe('rollback\'s tags: the marker read, only the restore record written', () => {
  const fn = arn('lambda', 'function:checkout');
  test('lambda-alias: ListTags on the function, TagResource on it for shiftguard:restored:* only (qualified ARNs named unqualified)', () => {
    const { stack, sg } = setup((_s, g) => g.addRollbackMapping({ alarms: ['a'], targets: [
      { type: 'lambda-alias', function: 'checkout', alias: 'live' },
      { type: 'lambda-alias', function: 'checkout', alias: 'beta' },
      { type: 'lambda-alias', function: 'arn:aws:lambda:eu-west-1:123456789012:function:pricing:live', alias: 'live' },
    ] }));
    const statements = roleStatements(stack, sg.rollback);
    const pricing = 'arn:aws:lambda:eu-west-1:123456789012:function:pricing';
    expect(statements.filter((x) => x.actions.includes('lambda:ListTags'))).toEqual([{ actions: ['lambda:ListTags'], resources: [fn, pricing], condition: undefined }]);
    expect(statements.filter((x) => x.actions.includes('lambda:TagResource'))).toEqual([{
      actions: ['lambda:TagResource'], resources: [fn, pricing],
      condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored:*'] } },
    }]);
    expect(allowedIn(statements, 'lambda:UntagResource')).toEqual([]);
  });

  test.each([
    ['ids', { service: LATTICE.service, listener: LATTICE.listener }, arn('vpc-lattice', `service/${LATTICE.service}/listener/${LATTICE.listener}`)],
    ['a service ARN and a listener id', { service: `arn:aws:vpc-lattice:eu-west-1:123456789012:service/${LATTICE.service}`, listener: LATTICE.listener }, arn('vpc-lattice', `service/${LATTICE.service}/listener/${LATTICE.listener}`)],
    ['ARNs', { service: `arn:aws:vpc-lattice:eu-west-1:123456789012:service/${LATTICE.service}`, listener: `arn:aws:vpc-lattice:eu-west-1:123456789012:service/${LATTICE.service}/listener/${LATTICE.listener}` }, `arn:aws:vpc-lattice:eu-west-1:123456789012:service/${LATTICE.service}/listener/${LATTICE.listener}`],
  ])('lattice-listener given by %s: ListTagsForResource and TagResource (shiftguard:restored only) on the listener', (_how, ids, listener) => {
    const { stack, sg } = setup((_s, g) => g.addRollbackMapping({ alarms: ['a'], targets: [{ type: 'lattice-listener', ...ids, productionTargetGroup: LATTICE.productionTargetGroup }] }));
    const statements = roleStatements(stack, sg.rollback);
    expect(statements.filter((x) => x.actions.includes('vpc-lattice:ListTagsForResource'))).toEqual([{ actions: ['vpc-lattice:ListTagsForResource'], resources: [listener], condition: undefined }]);
    expect(statements.filter((x) => x.actions.includes('vpc-lattice:TagResource'))).toEqual([{
      actions: ['vpc-lattice:TagResource'], resources: [listener],
      condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored'] } },
    }]);
    expect(allowedIn(statements, 'vpc-lattice:UpdateListener')).toEqual([listener, `${listener}/rule/*`]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('no unsuppressed findings with two rollouts', () => {
    const findings = [
      ...Annotations.fromStack(main.stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...Annotations.fromStack(main.stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ].map((f) => `${f.id}: ${JSON.stringify(f.entry.data).slice(0, 160)}`);
    expect(findings).toEqual([]);
  });

  test('the rollouts\' IAM5 suppressions, with their reasons, are on shift\'s role and the state machines\' roles, not on the hooks\'', () => {
    const reasons = (id: string): string[] => (resources[id].Metadata?.cdk_nag?.rules_to_suppress ?? [])
      .filter((r: any) => r.id === 'AwsSolutions-IAM5').map((r: any) => r.reason);
    const shiftRole = logicalId(main.sg.shift!.role as any);
    const shiftPolicy = Object.keys(resources).find((id) => id.startsWith('sgshiftroleDefaultPolicy'))!;
    for (const id of [shiftRole, shiftPolicy]) expect(reasons(id)).toEqual([expect.stringMatching(/^shift \(progressive rollouts\): .*listener\/ID\/rule\/\*.*function:NAME:\*/)]);
    for (const r of [orders, checkout]) {
      const policy = Object.keys(resources).find((id) => id.startsWith(`${logicalId(r.stateMachine.role as any).replace(/[0-9A-F]{8}$/, '')}DefaultPolicy`))!;
      expect(reasons(policy)).toEqual([expect.stringMatching(/^Step Functions log delivery .* X-Ray .* lambda:InvokeFunction is on the shift function only/)]);
    }
    // The constructor's suppressions keep their own reasons.
    const hookPolicy = Object.keys(resources).find((id) => id.startsWith('sgpretrafficroleDefaultPolicy'))!;
    expect(reasons(hookPolicy).join(' ')).not.toContain('shift (progressive rollouts)');
  });

  test('tracing turned off is the one more suppression, with its reason', () => {
    const { stack } = setup((s, g) => {
      g.rollout('quiet', { target: LATTICE, steps: [{ weight: 100 }], alarms: ['a'], tracing: false });
      Aspects.of(s).add(new AwsSolutionsChecks());
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', { TracingConfiguration: { Enabled: false } });
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    const sm = Object.values(t.findResources('AWS::StepFunctions::StateMachine'))[0] as any;
    expect(JSON.stringify(sm.Metadata.cdk_nag)).toContain('AwsSolutions-SF2');
  });
});

describe('the plan is validated at synth, naming the field', () => {
  const base: RolloutProps = { target: LATTICE, steps: [{ weight: 10, bake: '5m' }, { weight: 100 }], alarms: ['a'] };
  const fails = (props: Partial<RolloutProps>, field: RegExp) => expect(() => rolloutPlan({ ...base, ...props })).toThrow(field);

  test('steps: increasing percentages ending at 100, bakes of at most 7 days', () => {
    fails({ steps: [] }, /^rollout\.steps: is empty/);
    fails({ steps: [{ weight: 50 }, { weight: 25 }, { weight: 100 }] }, /^rollout\.steps\[1\]\.weight/);
    fails({ steps: [{ weight: 0 }, { weight: 100 }] }, /^rollout\.steps\[0\]\.weight/);
    fails({ steps: [{ weight: 10.5 }, { weight: 100 }] }, /^rollout\.steps\[0\]\.weight/);
    fails({ steps: [{ weight: 10 }, { weight: 50 }] }, /^rollout\.steps\[1\]\.weight: the last step must be 100/);
    fails({ steps: [{ weight: 10, bake: '5 minutes' }, { weight: 100 }] }, /^rollout\.steps\[0\]\.bake/);
    fails({ steps: [{ weight: 10, bake: Duration.days(8) }, { weight: 100 }] }, /^rollout\.steps\[0\]\.bake/);
    fails({ steps: [{ weight: 10, bake: '1d' }, { weight: 100 }] }, /^rollout\.steps\[0\]\.bake/);
    expect(rolloutPlan({ ...base, steps: [{ weight: 10, bake: Duration.hours(2) }, { weight: 20, bake: Duration.millis(250) }, { weight: 100, bake: Duration.days(7) }] }).steps)
      .toEqual([{ weight: 10, bake: '2h' }, { weight: 20, bake: '250ms' }, { weight: 100, bake: '168h' }]);
  });

  test('target, alarms, checks and checkFunction', () => {
    fails({ target: { ...LATTICE, canaryTargetGroup: `arn:aws:vpc-lattice:eu-west-1:123456789012:targetgroup/${LATTICE.productionTargetGroup}` } }, /^rollout\.target\.canaryTargetGroup: is the production target group/);
    fails({ target: { ...LATTICE, listener: ' ' } }, /^rollout\.target\.listener: is blank/);
    fails({ target: { type: 'lambda-alias', function: 'checkout', alias: 'live', newVersion: '$LATEST' } }, /^rollout\.target\.newVersion/);
    fails({ target: { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'live' } }, /^rollout\.target\.stableAlias/);
    fails({ alarms: [] }, /^rollout\.alarms: is empty/);
    fails({ checks: { after: { checks: [] } } }, /^rollout\.checks\.after\.checks: is empty/);
    fails({ checks: { before: { checks: [{ name: 'smoke', kind: 'invoke' }] } } }, /^rollout\.checks\.before\.checks\[0\] \('smoke'\): a invoke check looks at a Lambda function: give checkFunction/);
    fails({ checks: { before: { checks: [{ name: 'smoke', kind: 'invoke', functions: ['x'] }] } }, checkFunction: { function: 'orders', version: '2' } }, /functions: a rollout's checks run for the rollout's own function/);
    fails({ target: { type: 'lambda-alias', function: 'checkout', alias: 'live' }, checkFunction: { function: 'orders', version: '2' } }, /^rollout\.checkFunction: only for a lattice-listener target/);
    // http checks need no function; a burst through http neither.
    expect(() => rolloutPlan({ ...base, checks: { after: { checks: [{ name: 'h', kind: 'http', url: 'https://orders.example/health' }, { name: 'b', kind: 'burst', requests: 5, concurrency: 1, target: { http: { url: 'https://orders.example/' } } }] } } })).not.toThrow();
  });

  test('shift is shared: one value per environment variable, one topic; one rollout per id', () => {
    const { stack, sg } = setup();
    sg.rollout('a', { ...base, environment: { TOKEN: 'one' }, notificationTopic: new sns.Topic(stack, 't1', { enforceSSL: true }) });
    expect(() => sg.rollout('b', { ...base, environment: { TOKEN: 'two' } })).toThrow(/environment TOKEN is already set to another value/);
    expect(() => sg.rollout('c', { ...base, notificationTopic: new sns.Topic(stack, 't2', { enforceSSL: true }) })).toThrow(/notificationTopic differs from another rollout's/);
    expect(() => sg.rollout('a', base)).toThrow(/'a': already defined/);
    sg.rollout('d', { ...base, environment: { TOKEN: 'one' } });
    for (const reserved of ['AWS_SECRET_ACCESS_KEY', 'SHIFT_ALLOWED_SECRETS', 'NOTIFY_TOPIC_ARN']) {
      expect(() => sg.rollout(`e-${reserved.length}`, { ...base, environment: { [reserved]: 'x' } })).toThrow(new RegExp(`environment ${reserved}: not a variable`));
    }
    expect(Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { FunctionName: 'shop_shift' } })).not.toEqual({});
    Template.fromStack(stack).resourceCountIs('AWS::StepFunctions::StateMachine', 2);
  });

  test('bakes too long for one execution\'s history (shift comes back every minute) are a synth warning', () => {
    const warnings = (steps: RolloutProps['steps']) => {
      const { stack } = setup((_s, g) => { g.rollout('long', { ...base, steps }); });
      return Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('shiftguard:rolloutHistory')).map((w) => String(w.entry.data));
    };
    expect(warnings([{ weight: 10, bake: Duration.hours(24) }, { weight: 100, bake: Duration.hours(12) }])).toEqual([]);
    expect(warnings([{ weight: 10, bake: Duration.days(7) }, { weight: 100 }])).toEqual([expect.stringMatching(/about 90\d{3} history events of Step Functions' 25000 .* under about 37 hours/)]);
  });

  test('a secret a check sends is allowed to that check\'s origin only, over https (what shift enforces)', () => {
    const withCheck = (url: unknown) => {
      const { stack } = setup((_s, g) => {
        g.rollout('partner', {
          ...base, environment: { PARTNER_TOKEN: 't', ARTIFACT: 'sha' },
          checks: { after: { checks: [
            { name: 'partner', kind: 'http', url, secretHeaders: { Authorization: 'PARTNER_TOKEN' } },
            { name: 'load', kind: 'burst', requests: 5, concurrency: 1, target: { http: { url: 'https://Partner.example.com:8443/x', signing: { apiKeyEnv: 'PARTNER_TOKEN', secretEnv: 'PARTNER_TOKEN' } } } },
          ] } },
        });
      });
      return Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { FunctionName: 'shop_shift' } });
    };
    const fn = Object.values(withCheck('https://partner.example.com/health'))[0] as any;
    expect(fn.Properties.Environment.Variables.SHIFT_ALLOWED_SECRETS)
      .toBe('ARTIFACT,PARTNER_TOKEN@https://partner.example.com,PARTNER_TOKEN@https://partner.example.com:8443');
    expect(() => withCheck('http://partner.example.com/health')).toThrow(/checks\.after\.checks\[0\] \('partner'\): url: a secret goes over https only/);
    expect(() => withCheck('https://user@partner.example.com/')).toThrow(/needs a literal http\(s\) URL/);
    expect(Object.keys(withCheck('http://127.0.0.1:8080/health'))).toHaveLength(1);
  });

  test('a ShiftGuard without rollouts has no shift function', () => {
    const { stack, sg } = setup();
    expect(sg.shift).toBeUndefined();
    expect(Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { FunctionName: 'shop_shift' } })).toEqual({});
  });
});
