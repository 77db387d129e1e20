// Progressive rollouts on AWS: a Step Functions state machine that drives the `shift` function
// (one invocation = one step; it answers when to come back) until the rollout is promoted or
// aborted. The plan's types mirror the JSON `shift` reads (events/shift/*.json).
import { Annotations, CfnOutput, Duration, Names, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { formatDuration, parseDuration } from './duration';
import { suppress, suppressGrant } from './nag';
import { inOrder } from './order';
import type { HookChecks } from './shiftguard';
import { assertConfiguration, configurationProblems } from './validate';

/** One step of a rollout: the canary's share of traffic, then how long it bakes before the checks after it. */
export interface RolloutStep {
  /** Percent of traffic on the canary, 1-100, larger than the step before; the last step is 100. */
  readonly weight: number;
  /** How long the step runs before its checks: a Duration or `shift`'s text (`500ms`, `90s`, `5m`, `1h`); at most 7 days. Default 0. */
  readonly bake?: Duration | string;
}

/** A VPC Lattice listener whose weighted forwards (default action and rules) name both target groups. */
export interface LatticeRolloutTarget {
  readonly type: 'lattice-listener';
  /** Service id (`svc-…`, e.g. `CfnService.attrId`) or ARN. */
  readonly service: string;
  /** Listener id (`listener-…`, e.g. `CfnListener.attrId`) or ARN. */
  readonly listener: string;
  /** Target group id (`tg-…`) or ARN: production, which keeps serving and takes the canary's targets on promotion. */
  readonly productionTargetGroup: string;
  /** Target group id or ARN: the new version, in the forward with weight 0 before the rollout starts. */
  readonly canaryTargetGroup: string;
  /**
   * For target groups of type LAMBDA (a Lambda target group holds one target): the alias
   * registered (as an alias-qualified function ARN, `arn:…:function:NAME:ALIAS`) in the production
   * target group; the canary target group then holds a published version of the same function.
   * Promotion moves this alias to the version the canary target group serves, so production is
   * never empty (`shift` refuses to start a rollout whose LAMBDA production group holds anything
   * else). It is not part of the plan: `shift` reads the alias from the production group's target.
   * Given here, it lets `shift` read and move exactly this alias (`lambda:GetAlias`,
   * `lambda:UpdateAlias`) and read the function's versions, and lets rollback put the alias back
   * (`prev` in the listener's marker) when it restores this listener after or during a promotion
   * (rollback's mapping of the same listener and production target group, in the same ShiftGuard).
   * Leave it out for other target group types.
   */
  readonly productionAlias?: lambda.IAlias;
}

/** A Lambda alias shifted from its stable version to `newVersion`. */
export interface AliasRolloutTarget {
  readonly type: 'lambda-alias';
  /** Function name or ARN. */
  readonly function: string;
  readonly alias: string;
  /**
   * The published version to roll out. Usually not known at synth: leave it out and give it in the
   * execution input, `{"rollout": {"target": {"newVersion": "7"}}}`.
   */
  readonly newVersion?: string;
  /** When given, the version the alias must be on when the rollout starts. */
  readonly stableVersion?: string;
  /** Rollback's pointer alias: moved to the new version on promotion (created if missing). */
  readonly stableAlias?: string;
}

export type RolloutTarget = LatticeRolloutTarget | AliasRolloutTarget;

/** The hooks' checks (same schema): `before` against the exact new version before any traffic moves, `after` after each bake. */
export interface RolloutChecks {
  readonly before?: HookChecks;
  readonly after?: HookChecks;
}

/** The function a Lattice rollout's function checks (invoke, burst with invoke, metrics, logs, artifact) look at. */
export interface RolloutCheckFunction {
  readonly function: string;
  /** The version behind the canary target group. */
  readonly version: string;
  /** The version behind production (for `compare` checks). */
  readonly currentVersion?: string;
  readonly alias?: string;
}

export interface RolloutProps {
  readonly target: RolloutTarget;
  readonly steps: RolloutStep[];
  /** At least one: any in ALARM (or deleted) aborts the rollout and restores production. */
  readonly alarms: (string | cloudwatch.IAlarm)[];
  readonly checks?: RolloutChecks;
  /** Required for a Lattice rollout whose checks invoke or read a function; only for a Lattice target. */
  readonly checkFunction?: RolloutCheckFunction;
  /**
   * Environment of the `shift` function for what the checks name (`secretHeaders`, `signing`).
   * `shift` is shared by every rollout of the ShiftGuard: a variable given twice must have one value.
   */
  readonly environment?: Record<string, string>;
  /** `shift` publishes each promotion and abort here (NOTIFY_TOPIC_ARN); one topic per ShiftGuard. */
  readonly notificationTopic?: sns.ITopic;
  /** Default: generated by CloudFormation. */
  readonly stateMachineName?: string;
  /** Stop the execution after this long (a rollout that hangs). Default: none. */
  readonly timeout?: Duration;
  /** X-Ray tracing of the state machine. Default true. */
  readonly tracing?: boolean;
  /** The state machine's log group retention. Default: the ShiftGuard's (one month). */
  readonly logRetention?: logs.RetentionDays;
  /** A stack output with the state machine's ARN. Default true. */
  readonly output?: boolean;
}

/** A rollout's target as the plan names it (what `shift` reads): a Lattice target's `productionAlias` is the construct's only. */
export type RolloutPlanTarget = Omit<LatticeRolloutTarget, 'productionAlias'> | AliasRolloutTarget;

/**
 * The plan as `shift` reads it, without `id` (the execution's name). TypeScript only: jsii cannot
 * hand a union of structs back to another language (there, `Rollout.planJson`).
 * @jsii ignore
 */
export interface RolloutPlan {
  readonly target: RolloutPlanTarget;
  readonly steps: { readonly weight: number; readonly bake?: string }[];
  readonly alarms: string[];
  readonly checks?: RolloutChecks;
  readonly checkFunction?: RolloutCheckFunction;
}

/** errorTypes a Step may be retried on: nothing was lost, the next attempt reads the marker and resumes. */
export const RETRYABLE_ERRORS = [
  'Shift.AwsError',
  'Shift.RestoreFailed',
  'Shift.NotifyFailed',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];
/** errorTypes that running the same step again cannot change: nothing moved. */
export const REFUSED_ERRORS = ['Shift.InvalidPlan', 'Shift.Refused'];

const MAX_BAKE_MS = 7 * 24 * 3600 * 1000;

/** A bake in `shift`'s text; throws naming the field. */
function bakeText(field: string, bake: Duration | string | undefined): string | undefined {
  if (bake === undefined) return undefined;
  const bad = () => new Error(`${field}: expected a duration such as "5m", "90s", "1h" or "500ms" (at most 7 days), got ${JSON.stringify(bake instanceof Duration ? bake.toString() : bake)}`);
  let ms: number;
  if (bake instanceof Duration) {
    if (Token.isUnresolved(bake.toString())) throw bad();
    ms = bake.toMilliseconds();
  } else {
    // The functions' grammar (cdk/lib/duration.ts mirrors common/src/duration.rs); a bake is
    // written with its unit.
    const parsed = /\d\s*$/.test(bake) ? undefined : parseDuration(bake);
    if (parsed === undefined) throw bad();
    ms = parsed;
  }
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_BAKE_MS) throw bad();
  if (typeof bake === 'string') return bake.trim();
  return formatDuration(ms);
}

/**
 * A Standard execution's history holds at most 25,000 events. During a bake `shift` comes back at
 * least every minute (`waitSeconds` <= 60), and each return costs 9 events (Step: entered,
 * scheduled, started, succeeded, exited; Status and Bake: entered, exited). A rollout whose bakes
 * would need more than 80 % of the limit (the rest for retries) gets a synth warning: an
 * execution that reaches the limit fails.
 */
const HISTORY_EVENTS = 25_000;
const EVENTS_PER_RETURN = 9;
const RETURN_MS = 60_000;

/** The history events a plan's bakes need, about. */
function historyEvents(plan: Pick<RolloutPlan, 'steps'>): number {
  const returns = plan.steps.reduce((n, s) => {
    const ms = s.bake === undefined ? undefined : parseDuration(s.bake);
    return n + 1 + (ms !== undefined ? Math.ceil(ms / RETURN_MS) : 0);
  }, 0);
  return 10 + returns * EVENTS_PER_RETURN;
}

const blank = (v: string) => !Token.isUnresolved(v) && v.trim() === '';
const literal = (v: string | undefined): v is string => v !== undefined && !Token.isUnresolved(v);
const VERSION = /^[0-9]+$/;

/**
 * A check set beyond its schema (checked before): at least one check, none with a blank name,
 * none scoped with the hooks' `functions`.
 */
function validChecks(field: string, set: HookChecks): void {
  if (set.checks.length === 0) throw new Error(`${field}.checks: is empty: configure at least one check`);
  set.checks.forEach((c, i) => {
    if (blank(c.name)) throw new Error(`${field}.checks[${i}].name: is blank`);
    if (c.functions !== undefined) {
      throw new Error(`${field}.checks[${i}] ('${c.name}'): functions: a rollout's checks run for the rollout's own function (the alias's, or checkFunction); \`functions\` is for the hooks`);
    }
  });
}

/** Whether a check looks at a Lambda function (what `shift` requires checkFunction for on a Lattice target). */
function needsFunction(check: { kind: string; [k: string]: unknown }): boolean {
  if (check.kind === 'http') return false;
  if (check.kind === 'burst') {
    const target = check.target;
    return typeof target === 'object' && target !== null && 'invoke' in target;
  }
  return true;
}

/**
 * The plan's `id` while it is checked at synth: `shift` reads the execution's name there (the
 * state machine adds it), which the schema requires and the construct's plan cannot know.
 */
const ID_AT_SYNTH = 'execution-name';

/**
 * Every problem the configuration's schema finds in a plan (cdk/lib/validate.ts), its check sets
 * as the hooks' check sets (`shift` parses `checks.before`/`after` as the hooks do), one line each,
 * each path starting `rollout.`; empty when valid.
 */
export function planProblems(plan: RolloutPlan): string[] {
  const problems: string[] = [];
  for (const phase of ['before', 'after'] as const) {
    const set = plan.checks?.[phase];
    if (set !== undefined) problems.push(...configurationProblems('checkSet', set, `rollout.checks.${phase}`));
  }
  for (const p of configurationProblems('rolloutPlan', { id: ID_AT_SYNTH, ...plan }, 'rollout')) {
    if (!problems.includes(p)) problems.push(p);
  }
  return problems;
}

/**
 * The plan `shift` reads, validated as `shift` validates it (the same fields, the same limits),
 * so that a mistake fails `cdk synth` naming the field rather than the first execution: first
 * against the configuration's schema (generated from the types `shift` parses the plan with:
 * unknown settings, check kinds, durations, types), then the rules across fields the schema cannot
 * say. Values that are tokens (resolved at deploy) are not checked beyond their type.
 */
export function rolloutPlan(props: Pick<RolloutProps, 'target' | 'steps' | 'alarms' | 'checks' | 'checkFunction'>): RolloutPlan {
  // The check sets first: a typo in one (`kind: 'invok'`) must not surface as a rule about kinds.
  for (const phase of ['before', 'after'] as const) {
    const set = props.checks?.[phase];
    if (set !== undefined) assertConfiguration('', 'checkSet', set, `rollout.checks.${phase}`);
  }
  const t = props.target;
  if (t.type === 'lattice-listener') {
    for (const f of ['service', 'listener', 'productionTargetGroup', 'canaryTargetGroup'] as const) {
      if (typeof t[f] !== 'string' || blank(t[f])) throw new Error(`rollout.target.${f}: is blank`);
    }
    const id = (v: string) => v.replace(/^arn:.*\//, '');
    if (literal(t.productionTargetGroup) && literal(t.canaryTargetGroup) && id(t.productionTargetGroup) === id(t.canaryTargetGroup)) {
      throw new Error('rollout.target.canaryTargetGroup: is the production target group; a rollout moves traffic between two groups');
    }
    const a = t.productionAlias;
    if (a !== undefined) {
      if (a === null || typeof a !== 'object' || typeof a.aliasName !== 'string' || blank(a.aliasName) || typeof a.version?.lambda?.functionArn !== 'string') {
        throw new Error('rollout.target.productionAlias: expected a lambda.IAlias (the alias registered in the production target group)');
      }
      // The canary group serves a version of the alias's function: the checks look at that function.
      const cf = props.checkFunction;
      const fnName = (v: string) => v.replace(/^arn:[^:]*:lambda:[^:]*:[^:]*:function:/, '').split(':')[0];
      const aliasFunction = a.version.lambda.functionName;
      if (cf && literal(cf.function) && literal(aliasFunction) && fnName(cf.function) !== fnName(aliasFunction)) {
        throw new Error(`rollout.checkFunction.function: ${cf.function} is not the function of target.productionAlias (${aliasFunction}); promotion moves that alias to the version the canary group serves, so the checks look at that function`);
      }
    }
  } else if (t.type === 'lambda-alias') {
    for (const f of ['function', 'alias'] as const) {
      if (typeof t[f] !== 'string' || blank(t[f])) throw new Error(`rollout.target.${f}: is blank`);
    }
    for (const f of ['newVersion', 'stableVersion'] as const) {
      const v = t[f];
      if (literal(v) && !VERSION.test(v)) throw new Error(`rollout.target.${f}: expected a published version number, got ${JSON.stringify(v)}`);
    }
    if (literal(t.stableVersion) && t.stableVersion === t.newVersion) throw new Error('rollout.target.stableVersion: is the new version');
    if (literal(t.stableAlias) && t.stableAlias === t.alias) throw new Error('rollout.target.stableAlias: is the alias being shifted');
  } else {
    throw new Error(`rollout.target.type: expected lattice-listener or lambda-alias, got ${JSON.stringify((t as { type?: unknown }).type)}`);
  }

  if (!Array.isArray(props.steps) || props.steps.length === 0) {
    throw new Error('rollout.steps: is empty: expected steps such as [{ weight: 10, bake: Duration.minutes(5) }, { weight: 100 }]');
  }
  let previous = 0;
  const steps = props.steps.map((s, i) => {
    if (!Number.isInteger(s.weight) || s.weight < 1 || s.weight > 100 || s.weight <= previous) {
      throw new Error(`rollout.steps[${i}].weight: expected a percentage from 1 to 100, larger than the step before (${previous}), got ${s.weight}`);
    }
    previous = s.weight;
    const bake = bakeText(`rollout.steps[${i}].bake`, s.bake);
    return bake === undefined ? { weight: s.weight } : { weight: s.weight, bake };
  });
  if (previous !== 100) {
    throw new Error(`rollout.steps[${steps.length - 1}].weight: the last step must be 100 (the whole of traffic on the new version before promotion), got ${previous}`);
  }

  if (!Array.isArray(props.alarms) || props.alarms.length === 0) {
    throw new Error('rollout.alarms: is empty: a rollout is watched by its alarms (give at least one)');
  }
  const alarms: string[] = [];
  props.alarms.forEach((a, i) => {
    const name = typeof a === 'string' ? a : a.alarmName;
    if (blank(name) || (literal(name) && name.length > 255)) throw new Error(`rollout.alarms[${i}]: expected an alarm name (1-255 characters)`);
    if (!alarms.includes(name)) alarms.push(name);
  });

  let checks: RolloutChecks | undefined;
  if (props.checks) {
    const { before, after } = props.checks;
    if (before) validChecks('rollout.checks.before', before);
    if (after) validChecks('rollout.checks.after', after);
    if (before || after) checks = { ...(before ? { before } : {}), ...(after ? { after } : {}) };
  }
  const cf = props.checkFunction;
  if (cf) {
    if (t.type !== 'lattice-listener') throw new Error('rollout.checkFunction: only for a lattice-listener target (an alias rollout checks the alias\'s own function)');
    if (typeof cf.function !== 'string' || blank(cf.function) || (literal(cf.version) && !VERSION.test(cf.version)) || (literal(cf.currentVersion) && !VERSION.test(cf.currentVersion))) {
      throw new Error('rollout.checkFunction: expected {function, version (a version number), currentVersion?, alias?}');
    }
  } else if (t.type === 'lattice-listener' && checks) {
    for (const [field, set] of Object.entries(checks) as [string, HookChecks][]) {
      set.checks.forEach((c, i) => {
        if (needsFunction(c as { kind: string })) {
          throw new Error(`rollout.checks.${field}.checks[${i}] ('${c.name}'): a ${c.kind} check looks at a Lambda function: give checkFunction {function, version, currentVersion} for a lattice target, or use http checks`);
        }
      });
    }
  }
  // The plan names the target as `shift` reads it; `productionAlias` stays with the construct (IAM).
  // Fields in one order whichever language built the target (jsii hands a struct over sorted).
  const target: RolloutPlanTarget = t.type === 'lattice-listener'
    ? { type: t.type, service: t.service, listener: t.listener, productionTargetGroup: t.productionTargetGroup, canaryTargetGroup: t.canaryTargetGroup }
    : inOrder({ ...t }, ['type', 'function', 'alias', 'newVersion', 'stableVersion', 'stableAlias']);
  // The plan against the schema as the props gave it — their own keys, so that a misspelt one
  // (`bak`, `befor`, `checkFunction.aliass`) is refused rather than dropped from the plan — with
  // what the construct turns into `shift`'s form: bakes as text, alarms as names.
  const { productionAlias: _, ...targetGiven } = t as LatticeRolloutTarget;
  assertConfiguration('', 'rolloutPlan', {
    id: ID_AT_SYNTH,
    target: targetGiven,
    steps: props.steps.map((s, i) => ({ ...s, bake: steps[i].bake })),
    alarms,
    checks: props.checks,
    checkFunction: props.checkFunction,
  }, 'rollout');
  return {
    target,
    steps,
    alarms,
    ...(checks ? { checks } : {}),
    ...(cf ? { checkFunction: inOrder({ ...cf }, ['function', 'version', 'currentVersion', 'alias']) } : {}),
  };
}

/**
 * The plan with its check sets' fields in one order (`concurrency`, `checks`), whichever language
 * gave them: the plan keeps the objects given (checked once more at synth), the JSON is rendered
 * from this.
 */
function planInOrder(plan: RolloutPlan): RolloutPlan {
  if (!plan.checks) return plan;
  const set = (s: HookChecks | undefined) => s && inOrder(s, ['concurrency', 'checks']);
  const { before, after } = plan.checks;
  return { ...plan, checks: { ...(before ? { before: set(before) } : {}), ...(after ? { after: set(after) } : {}) } };
}

export interface RolloutConstructProps extends RolloutProps {
  /** The ShiftGuard's `shift` function; `ShiftGuard.rollout()` passes it and grants it what the plan needs. */
  readonly shift: lambda.IFunction;
}

/**
 * A Step Functions state machine that runs one rollout per execution: the event `shift` reads is
 * this construct's plan, never overwritten, with `id` = the execution's name, and beside it, as
 * `input`, the execution input's `rollout` object (`{}` when there is none); then Step (invoke
 * `shift`) → Status → Bake (wait `waitSeconds`, at most a minute: `shift` re-reads the alarms and
 * the restore record at every return) → Step … until `promoted` (Succeed) or `aborted` (Fail
 * `Rollout.Aborted`). Create it with `ShiftGuard.rollout(id, props)`.
 *
 * Start a rollout: `aws stepfunctions start-execution --state-machine-arn ARN --name ROLLOUT_ID
 * [--input file://input.json]`, where input.json is `{"rollout":{…}}` and the `rollout` object may
 * give only the release: `id` (which must be the execution's name), `target.newVersion` (a
 * lambda-alias target), `checkFunction.version` and `checkFunction.currentVersion`, e.g.
 * `{"rollout":{"target":{"newVersion":"7"}}}`. Anything else (another target, steps, alarms,
 * checks, …) fails the execution with `Shift.InvalidPlan`, nothing moved: permission to start a
 * rollout never moves another target, changes its checks or alarms, or sends a secret elsewhere.
 * No input (or no `rollout` in it): the construct's plan as it is.
 */
const GRANT_START_IAM5_REASON = 'ShiftGuard rollout.grantStart(): redrive, describe and stop are granted on this state machine\'s executions (execution:NAME:*), whose names are the rollout ids given at each start; the grant reaches no other state machine.';

export class Rollout extends Construct {
  /** errorTypes a Step may be retried on (`RETRYABLE_ERRORS`, for languages without module constants). */
  public static readonly RETRYABLE_ERRORS: string[] = RETRYABLE_ERRORS;
  /** errorTypes that running the same step again cannot change (`REFUSED_ERRORS`). */
  public static readonly REFUSED_ERRORS: string[] = REFUSED_ERRORS;

  public readonly stateMachine: sfn.StateMachine;
  public readonly logGroup: logs.LogGroup;
  /**
   * The construct's plan, as the state machine holds it (the defaults of every execution).
   * TypeScript only (other languages: `planJson`).
   * @jsii ignore
   */
  public readonly plan: RolloutPlan;
  /** The construct's plan as the state machine holds it (the defaults of every execution), as JSON. */
  public get planJson(): string {
    return JSON.stringify(planInOrder(this.plan));
  }
  /** The state machine's ARN, as a stack output (unless `output: false`). */
  public readonly output?: CfnOutput;

  constructor(scope: Construct, id: string, props: RolloutConstructProps) {
    super(scope, id);
    this.plan = rolloutPlan(props);
    // The plan as it is at synth, once more: its check sets are the objects the props gave, which
    // may have been changed since (rollout() checked them as they were then).
    this.node.addValidation({
      validate: () => planProblems(this.plan).map((p) => `ShiftGuard rollout ${this.node.path}: ${p.replace(/^rollout\./, '')}`),
    });
    const events = historyEvents(this.plan);
    if (events > 0.8 * HISTORY_EVENTS) {
      Annotations.of(this).addWarningV2('shiftguard:rolloutHistory', `the steps bake long enough that one execution needs about ${events} history events of Step Functions' ${HISTORY_EVENTS} (shift comes back at least every minute, ${EVENTS_PER_RETURN} events each): an execution that reaches the limit fails. Keep the bakes under about ${Math.floor((0.8 * HISTORY_EVENTS) / EVENTS_PER_RETURN / 60)} hours in all, or split the rollout in two.`);
    }

    // 1. The event: the construct's plan with `id` from the execution's name (unique per state
    // machine, kept by a redrive: the marker on the target is this rollout's), and the input's
    // `rollout` (or {}) beside it as `input`, never merged into the plan: `shift` takes only the
    // release from it (target.newVersion, checkFunction.version/currentVersion) and refuses the rest.
    const planGiven = new sfn.Choice(this, 'Plan given?');
    const emptyPlan = new sfn.Pass(this, 'Empty plan', { result: sfn.Result.fromObject({}), resultPath: '$.rollout' });
    // Result is literal JSON: nothing in the plan is read as a path.
    const defaults = new sfn.Pass(this, 'Defaults', { result: sfn.Result.fromObject(planInOrder(this.plan) as unknown as Record<string, unknown>), resultPath: '$.defaults' });
    const name = new sfn.Pass(this, 'Name', {
      parameters: {
        defaults: sfn.JsonPath.objectAt('$.defaults'),
        given: sfn.JsonPath.objectAt('$.rollout'),
        name: { id: sfn.JsonPath.executionName },
      },
    });
    // The event `shift` reads: nothing else (it refuses unknown fields). The plan has no `id`, so
    // the merge only adds it.
    const plan = new sfn.Pass(this, 'Plan', {
      parameters: {
        shiftguard: 'shift',
        rollout: sfn.JsonPath.jsonMerge(sfn.JsonPath.objectAt('$.defaults'), sfn.JsonPath.objectAt('$.name')),
        input: sfn.JsonPath.objectAt('$.given'),
      },
    });

    // 2. One step per invocation; the answer in $.last (the next invocation's `last`).
    const step = new tasks.LambdaInvoke(this, 'Step', {
      lambdaFunction: props.shift,
      payloadResponseOnly: true,
      resultPath: '$.last',
      retryOnServiceExceptions: false,
    });
    step.addRetry({
      errors: RETRYABLE_ERRORS,
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxDelay: Duration.minutes(1),
      maxAttempts: 10,
      jitterStrategy: sfn.JitterType.FULL,
    });
    // Retries exhausted (and Shift.Internal, a Lambda timeout) fail the execution AT Step, so that
    // `aws stepfunctions redrive-execution` runs the step again under the same name: it resumes.
    const refused = new sfn.Fail(this, 'Refused', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    step.addCatch(refused, { errors: REFUSED_ERRORS, resultPath: '$.error' });

    const bake = new sfn.Wait(this, 'Bake', { time: sfn.WaitTime.secondsPath('$.last.waitSeconds') });
    const promoted = new sfn.Succeed(this, 'Promoted');
    const aborted = new sfn.Fail(this, 'Aborted', { error: 'Rollout.Aborted', causePath: '$.last.reason' });
    const unexpected = new sfn.Fail(this, 'Unexpected answer', {
      error: 'Rollout.UnexpectedAnswer',
      cause: 'shift answered a status other than in-progress, promoted or aborted',
    });
    const status = new sfn.Choice(this, 'Status')
      .when(sfn.Condition.stringEquals('$.last.status', 'in-progress'), bake.next(step))
      .when(sfn.Condition.stringEquals('$.last.status', 'promoted'), promoted)
      .when(sfn.Condition.stringEquals('$.last.status', 'aborted'), aborted)
      .otherwise(unexpected);

    defaults.next(name).next(plan).next(step).next(status);
    planGiven.when(sfn.Condition.isPresent('$.rollout'), defaults).otherwise(emptyPlan.next(defaults));

    const stateMachineName = props.stateMachineName;
    this.logGroup = new logs.LogGroup(this, 'logs', {
      // /aws/vendedlogs/: Step Functions' log delivery does not grow the account's log resource policy.
      logGroupName: `/aws/vendedlogs/states/${stateMachineName ?? Names.uniqueResourceName(this, { maxLength: 200, separator: '-' })}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const tracing = props.tracing ?? true;
    this.stateMachine = new sfn.StateMachine(this, 'state-machine', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(planGiven),
      comment: 'ShiftGuard progressive rollout: one shift invocation per step until promoted or aborted',
      timeout: props.timeout,
      tracingEnabled: tracing,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    if (props.output ?? true) {
      this.output = new CfnOutput(this, 'StateMachineArn', {
        value: this.stateMachine.stateMachineArn,
        description: 'ShiftGuard rollout: aws stepfunctions start-execution --state-machine-arn <this> --name <rollout id> [--input file://plan.json]',
      });
    }
    suppress(this, [
      { id: 'AwsSolutions-IAM5', reason: 'Step Functions log delivery (logs:*LogDelivery, logs:PutResourcePolicy, logs:Describe*) and X-Ray (xray:Put*, xray:Get*) cannot be scoped to resources; lambda:InvokeFunction is on the shift function only (its ARN and its qualified ARNs, function:NAME:*, which CDK grants together).' },
      ...(tracing ? [] : [{ id: 'AwsSolutions-SF2', reason: 'X-Ray tracing of this rollout state machine was turned off (RolloutProps.tracing: false); every execution is logged at level ALL.' }]),
    ]);
  }

  /** Lets `grantee` start rollouts (StartExecution) and redrive them (a failed Step resumes under the same name). */
  public grantStart(grantee: iam.IGrantable): iam.Grant {
    const grant = this.stateMachine.grantStartExecution(grantee);
    const executions = this.stateMachine.grantExecution(grantee, 'states:RedriveExecution', 'states:DescribeExecution', 'states:StopExecution');
    // The grantee's policy is the user's: acknowledge the one wildcard these grants put there
    // (execution:NAME:*) and leave any other wildcard in it for cdk-nag to report.
    suppressGrant(grantee, executions, GRANT_START_IAM5_REASON);
    return grant;
  }
}
