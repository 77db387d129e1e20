import * as path from 'path';
import { Annotations, Duration, Lazy, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { suppress } from './nag';
import { SettingsFiles } from './settings';
import { GrantBook, Grants } from './grants';
import { Rollout, RolloutPlan, RolloutProps, rolloutPlan } from './rollout';
import { assertConfiguration, configurationProblems } from './validate';
import { inOrder } from './order';
import { Doctor } from './doctor';

/**
 * A Lambda alias rollback may put back on its stable version (see ROLLBACK_TARGETS). Rollback also
 * reads the function's tags (the rollout marker `shiftguard:rollout:ALIAS`) and leaves its restore
 * record `shiftguard:restored:ALIAS` on the function (the unqualified function ARN).
 */
export interface LambdaAliasTarget {
  readonly type: 'lambda-alias';
  readonly function: string;
  readonly alias: string;
  readonly stableVersion?: string;
  readonly stableAlias?: string;
  readonly codeDeploy?: CodeDeployGroupRef;
}

/** The CodeDeploy application and deployment group that deploy a Lambda alias (scopes rollback's CodeDeploy grants). */
export interface CodeDeployGroupRef {
  readonly application: string;
  readonly deploymentGroup: string;
}

/**
 * A VPC Lattice listener rollback may put back on its production target group. Rollback also reads
 * the listener's tags (the rollout marker `shiftguard:rollout`) and leaves its restore record
 * `shiftguard:restored` on the listener. When a rollout of this ShiftGuard promotes the same
 * listener and production target group through a `productionAlias`, rollback may also put that
 * alias back (the marker's `prev`): it gets `vpc-lattice:ListTargets` on the production group and
 * `lambda:GetAlias`/`lambda:UpdateAlias` on the alias, nothing else, and ROLLBACK_TARGETS gains
 * nothing (rollback reads the alias from the production group's target).
 */
export interface LatticeListenerTarget {
  readonly type: 'lattice-listener';
  readonly service: string;
  readonly listener: string;
  readonly productionTargetGroup: string;
}

/** An API Gateway REST API stage whose canary rollback sends 0% of the stage's traffic (the canary deployment is kept). */
export interface ApiGatewayCanaryTarget {
  readonly type: 'apigateway-canary';
  /** REST API id, its ARN, or the stage's ARN (`arn:aws:apigateway:REGION::/restapis/ID/stages/STAGE`). */
  readonly restApi: string;
  /** The stage name; may be left out when `restApi` is a stage ARN. */
  readonly stage?: string;
}

/** (REST API id, stage) of a target, whichever form it was written in; errors name the field. */
export function stageOf(t: ApiGatewayCanaryTarget): { api: string; stage: string } {
  let api = t.restApi;
  let stage = t.stage ?? '';
  if (api.startsWith('arn:')) {
    const m = /^arn:[^:]+:apigateway:[^:]*::\/restapis\/([A-Za-z0-9]+)(?:\/stages\/([A-Za-z0-9_-]+))?$/.exec(api);
    if (!m) throw new Error(`apigateway-canary restApi: expected an id or arn:PARTITION:apigateway:REGION::/restapis/ID[/stages/STAGE], got ${api}`);
    api = m[1];
    if (m[2] && stage && stage !== m[2]) throw new Error(`apigateway-canary stage: ${stage} differs from the stage ${m[2]} in restApi's ARN`);
    stage = stage || m[2] || '';
  } else if (!/^[A-Za-z0-9]+$/.test(api)) {
    throw new Error(`apigateway-canary restApi: expected a REST API id such as a1b2c3d4e5 (a token must be resolved before synth), got ${api}`);
  }
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stage)) throw new Error(`apigateway-canary stage: expected a stage name, got '${stage}'`);
  return { api, stage };
}

export type RollbackTarget = LambdaAliasTarget | LatticeListenerTarget | ApiGatewayCanaryTarget;

export interface RollbackMapping {
  readonly alarms: string[];
  readonly targets: RollbackTarget[];
}

/** Each target type's fields, in the order ROLLBACK_TARGETS writes them. */
const TARGET_FIELDS: Record<string, string[]> = {
  'lambda-alias': ['type', 'function', 'alias', 'stableVersion', 'stableAlias', 'codeDeploy'],
  'lattice-listener': ['type', 'service', 'listener', 'productionTargetGroup'],
  'apigateway-canary': ['type', 'restApi', 'stage'],
};

/**
 * A mapping as ROLLBACK_TARGETS writes it: `alarms`, `targets`, each target's fields in
 * TARGET_FIELDS' order (./order.ts: jsii hands a struct built in Python over sorted by name).
 */
function mappingInOrder(m: RollbackMapping): RollbackMapping {
  const targets = Array.isArray(m.targets)
    ? m.targets.map((t) => {
      const target = inOrder(t, TARGET_FIELDS[(t as { type?: string } | undefined)?.type ?? ''] ?? ['type']);
      const cd = (target as Partial<LambdaAliasTarget> | undefined)?.codeDeploy;
      return cd === undefined ? target : { ...target, codeDeploy: inOrder(cd, ['application', 'deploymentGroup']) };
    })
    : m.targets;
  return inOrder({ ...m, targets }, ['alarms', 'targets']);
}

/** A function whose deployments the hooks check. */
export interface CheckedFunction {
  readonly functionName: string;
  readonly alias: string;
  /** The CodeDeploy application and deployment group that deploy it. */
  readonly application: string;
  readonly deploymentGroup: string;
  /** The log group `logs` checks read; default `/aws/lambda/<functionName>`. */
  readonly logGroupName?: string;
}

/**
 * One hook check (hooks/README.md#checks): checked against the configuration's schema when it
 * is given (./validate.ts), and by the hooks at start-up. The fields every kind has; the kind's own
 * settings beside them. TypeScript only: `HookChecks.checks` takes any JSON object (jsii has no
 * interface with an index signature), which in TypeScript a `HookCheck` is.
 * @jsii ignore
 */
export interface HookCheck {
  /**
   * Unique per function: a name may repeat only across checks whose `functions` do not overlap,
   * and a check without `functions` shares its name with no other check.
   */
  readonly name: string;
  readonly kind: string;
  /**
   * The functions (names or ARNs; an ARN's name part is compared) whose deployments this check
   * runs for; absent: every function the hook guards. `protect(fn, …)` sets it to `[fn.functionName]`
   * on the checks it is given (and refuses checks that already have it); checks given to the
   * ShiftGuard constructor or to `addChecks` without `functions` are kept as written.
   */
  readonly functions?: string[];
  readonly [field: string]: unknown;
}

/** A hook's check set (`HOOK_CHECKS`). */
export interface HookChecks {
  /** Checks at once (the hooks' default is 4). */
  readonly concurrency?: number;
  /**
   * The checks, each a JSON object: `name`, `kind`, optionally `functions`, and the kind's own
   * settings (in TypeScript, a `HookCheck`; in Python, a dict).
   */
  readonly checks: { [field: string]: any }[];
}

/**
 * Every (variable, origin) a rollout's checks send a secret to: `secretHeaders` values and
 * `signing` keys of http checks and http bursts, with the origin of the check's URL. Throws, naming
 * the check, for a URL whose origin is not known at synth (a token) or that is plain http beyond
 * loopback: `shift` sends a secret only to the origin it is allowed for, over https.
 */
export function sentSecrets(rollout: string, plan: { checks?: { before?: HookChecks; after?: HookChecks } }): [string, string][] {
  const out: [string, string][] = [];
  for (const [phase, set] of Object.entries(plan.checks ?? {})) {
    ((set?.checks ?? []) as HookCheck[]).forEach((c: HookCheck, i: number) => {
      const http = (c.kind === 'http' ? c : c.kind === 'burst' ? (c.target as { http?: Record<string, unknown> } | undefined)?.http : undefined) as
        { url?: unknown; secretHeaders?: Record<string, string>; signing?: { apiKeyEnv?: string; secretEnv?: string } } | undefined;
      if (!http) return;
      const vars = [...Object.values(http.secretHeaders ?? {}), http.signing?.apiKeyEnv, http.signing?.secretEnv]
        .filter((v): v is string => typeof v === 'string');
      if (vars.length === 0) return;
      const field = `ShiftGuard rollout '${rollout}': checks.${phase}.checks[${i}] ('${c.name}')`;
      const url = typeof http.url === 'string' ? http.url : '';
      const m = /^(https?):\/\/([^/?#@]+)(?:[/?#]|$)/i.exec(url);
      if (!m || Token.isUnresolved(url)) {
        throw new Error(`${field}: url: a check that sends a secret needs a literal http(s) URL (its origin is the only one the secret may go to), got ${JSON.stringify(url)}`);
      }
      const origin = `${m[1].toLowerCase()}://${m[2].toLowerCase()}`;
      const loopback = /^(127\.|localhost|\[::1\])/.test(m[2].toLowerCase());
      if (m[1].toLowerCase() !== 'https' && !loopback) {
        throw new Error(`${field}: url: a secret goes over https only (loopback aside), got ${origin}`);
      }
      for (const v of vars) out.push([v, origin]);
    });
  }
  return out;
}

export interface ShiftGuardProps {
  /** Where `cargo lambda build --release --output-format zip` put the zips (`<dir>/<bin>/bootstrap.zip`). */
  readonly assetDir: string;
  /** arm64 is what to deploy; tests and CI build x86_64. */
  readonly architecture?: lambda.Architecture;
  /** Prefix of the hook function names; SAM's generated CodeDeploy role only invokes `CodeDeployHook_*`. */
  readonly hookNamePrefix?: string;
  /** Alarms → targets for rollback; `protect` adds its own. */
  readonly rollbackTargets?: RollbackMapping[];
  readonly checkedFunctions?: CheckedFunction[];
  readonly preTrafficChecks?: HookChecks;
  readonly postTrafficChecks?: HookChecks;
  /** Alarm topics to subscribe rollback to; one is created when none is given. */
  readonly alarmTopics?: sns.ITopic[];
  /** Let CloudWatch alarms invoke rollback directly (alarm Lambda actions). */
  readonly allowDirectAlarmActions?: boolean;
  /** Reserved concurrency for rollback: an incident that exhausts the account must not starve it. */
  readonly rollbackReservedConcurrency?: number;
  readonly logRetention?: logs.RetentionDays;
  readonly dryRun?: boolean;
  /**
   * Post-traffic moves this alias of the deployed function to the new version after a `Succeeded`
   * report was accepted (`STABLE_ALIAS`; creating it when missing): the stable pointer a rollback
   * target's `stableAlias` reads. Post-traffic gets `lambda:GetAlias` and `lambda:UpdateAlias` on
   * `function:NAME:<stableAlias>` (and the function, as rollback's alias grant) and
   * `lambda:CreateAlias` on `function:NAME` (the alias does not exist yet) of each checked function.
   * Default: none (post-traffic writes no alias).
   */
  readonly stableAlias?: string;
  /**
   * The emergency bypass (`HOOK_ALLOW_SKIP`): when true, `[shiftguard skip]` in a deployment's own
   * description skips that deployment's required checks, on the record. Default false.
   */
  readonly allowSkip?: boolean;
  /** Timeout of the `shift` function (progressive rollouts: one step, with its checks, per invocation). Default 5 minutes. */
  readonly shiftTimeout?: Duration;
  /**
   * After each deploy that changes what it checks, run rollback's doctor (`{"shiftguard":"doctor"}`)
   * as a CloudFormation trigger: a serious finding (an alarm that does not exist, watches a
   * dimension its target never publishes, or does not reach rollback; a missing target or
   * deployment group) fails the deploy (see ./doctor.ts). Default true.
   */
  readonly doctor?: boolean;
}

/** The alarms `protect` creates, on the new version and on the alias. */
export interface ProtectAlarms {
  /** Errors / Invocations above which a period breaches (0.01 = 1 %). Default 0.01. */
  readonly errorRate?: number;
  /** p99 Duration in ms above which a period breaches. Default 80 % of the function's timeout (of 3 s when unset). */
  readonly p99Ms?: number;
  /** Default 1 minute. */
  readonly period?: Duration;
  /** Periods evaluated; default 3. */
  readonly evaluationPeriods?: number;
  /** Breaching periods among them that fire the alarm; default 2. */
  readonly datapointsToAlarm?: number;
}

export interface ProtectOptions {
  /** The alias CodeDeploy shifts; default `live`. */
  readonly alias?: string;
  /** Default `LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES`. */
  readonly deploymentConfig?: codedeploy.ILambdaDeploymentConfig;
  /**
   * Checks the pre-traffic hook runs for THIS function's deployments. The hooks hold one check set
   * for every function they guard; each check given here is added to it with
   * `functions: [fn.functionName]`, so it runs only when this function is deployed. Another
   * function's `protect` may use the same check names. A check given here must not have
   * `functions` of its own (an error): checks for several functions belong in the ShiftGuard's
   * `preTrafficChecks` or `addChecks`. The ShiftGuard's own checks without `functions` run for this
   * function too.
   */
  readonly preTraffic?: HookChecks;
  /** Checks the post-traffic hook runs for this function's deployments (scoped like `preTraffic`). */
  readonly postTraffic?: HookChecks;
  readonly alarms?: ProtectAlarms;
  /** More alarms that stop the deployment and roll this alias back (an `Alarm` also gets the alarm topic as an action). */
  readonly extraAlarms?: cloudwatch.IAlarm[];
  /** Default: one application shared by every function this ShiftGuard protects. */
  readonly application?: codedeploy.ILambdaApplication;
  /** Default: generated by CloudFormation. */
  readonly deploymentGroupName?: string;
  /** Prefix of the alarms' names; default `<functionName>-<alias>` when the name is known at synth, else generated names. */
  readonly alarmNamePrefix?: string;
  /** The function's log group name (`logs` checks); default `/aws/lambda/<functionName>`. */
  readonly logGroupName?: string;
  /** Create the dashboard; default true. */
  readonly dashboard?: boolean;
  readonly dashboardName?: string;
}

/** What `protect` made. */
export interface ProtectedFunction {
  readonly version: lambda.IVersion;
  readonly alias: lambda.Alias;
  readonly application: codedeploy.ILambdaApplication;
  readonly deploymentGroup: codedeploy.LambdaDeploymentGroup;
  /** Error rate of the version being deployed (ExecutedVersion). */
  readonly versionErrorRate: cloudwatch.Alarm;
  /** p99 Duration of the version being deployed. */
  readonly versionLatency: cloudwatch.Alarm;
  readonly aliasErrorRate: cloudwatch.Alarm;
  readonly aliasLatency: cloudwatch.Alarm;
  /** Every alarm on the deployment group and in the rollback mapping (the four above, then `extraAlarms`). */
  readonly alarms: cloudwatch.IAlarm[];
  /** The entry added to ROLLBACK_TARGETS. */
  readonly rollbackTarget: LambdaAliasTarget;
  readonly dashboard?: cloudwatch.Dashboard;
}

/** A `functions` list the hooks accept: at least one name or ARN, none blank. */
function validFunctions(what: string, functions: unknown): void {
  if (!Array.isArray(functions) || functions.length === 0) {
    throw new Error(`${what}: expected at least one function name or ARN (leave \`functions\` out to run the check for every function)`);
  }
  const blank = functions.findIndex((f) => typeof f !== 'string' || (!Token.isUnresolved(f) && f.trim() === ''));
  if (blank >= 0) throw new Error(`${what}[${blank}]: expected a function name or ARN, got ${JSON.stringify(functions[blank])}`);
}

const IAM5_REASON = 'Aliases and versions of the checked/rolled-back functions are named as function:NAME:* (a version is only known at deploy time); the checked function\'s log streams as log-group:NAME:* (logs checks); listener rules as listener/rule/* (rule ids are assigned by Lattice); kms:GenerateDataKey* and kms:ReEncrypt* are CDK\'s grant on the one key of rollback\'s encrypted failure queue; cloudwatch:GetMetricData, doctor\'s cloudwatch:DescribeAlarms and cloudwatch:ListMetrics, and an unscoped codedeploy:ListDeployments cannot be scoped to resources.';

const SHIFT_IAM5_REASON = 'shift (progressive rollouts): the listener\'s rules as listener/ID/rule/* (rule ids are assigned by Lattice); the rolled-out or checked function\'s versions as function:NAME:* (known only at deploy time); its log group\'s streams (log-group:NAME:*); cloudwatch:GetMetricData and codedeploy:ListDeployments without a deployment group cannot be scoped; CodeDeploy reads of the deployments that may shift the alias (deploymentgroup:*, read only).';

/** The hooks of every ShiftGuard: they are granted their report on each deployment group by the ShiftGuard itself (see DeploymentGroup). */
const coveredHooks = new WeakSet<iam.IGrantable>();

/**
 * A LambdaDeploymentGroup that leaves the hooks' report permission to the ShiftGuard. aws-cdk-lib
 * grants each hook `codedeploy:PutLifecycleEventHookExecutionStatus` on each group in a statement
 * of its own (35 groups, 35 more statements in each hook's role, past its inline policy's size);
 * `addCheckedFunction` grants the hooks the same action on the same group ARN, every group in one
 * statement (./grants.ts). Any other grantee is granted as aws-cdk-lib does.
 */
class DeploymentGroup extends codedeploy.LambdaDeploymentGroup {
  public grantPutLifecycleEventHookExecutionStatus(grantee: iam.IGrantable): iam.Grant {
    if (coveredHooks.has(grantee)) return iam.Grant.drop(grantee, 'codedeploy:PutLifecycleEventHookExecutionStatus on this group, granted by the ShiftGuard (addCheckedFunction)');
    return super.grantPutLifecycleEventHookExecutionStatus(grantee);
  }
}

/**
 * The ShiftGuard functions, least-privilege: every statement names the functions, aliases,
 * listeners and deployment groups it needs, except the few actions AWS cannot scope. The hooks and
 * rollback always; `shift` and a state machine per rollout with `rollout()`.
 */
export class ShiftGuard extends Construct {
  public readonly preTraffic: lambda.Function;
  public readonly postTraffic: lambda.Function;
  public readonly rollback: lambda.Function;
  public readonly alarmTopic: sns.ITopic;
  public readonly failureQueue: sqs.Queue;
  /** The deploy-time doctor's trigger function (`doctor`, default on); `doctor.executeAfter(...)` orders it after more. */
  public readonly doctor?: triggers.TriggerFunction;
  /** ROLLBACK_TARGETS, rendered at synth: mappings added after construction count. */
  private readonly mappings: RollbackMapping[] = [];
  private readonly checked: CheckedFunction[] = [];
  private readonly checks: Partial<Record<'pre-traffic' | 'post-traffic', { concurrency?: number; checks: HookCheck[] }>> = {};
  private application?: codedeploy.LambdaApplication;
  /** CodeDeploy's service role, one for every deployment group `protect` creates (it may invoke the two hooks only). */
  private codeDeployRole?: iam.Role;
  /** Every function `protect` was called for: its name (usually a token string) and construct path. */
  private readonly protectedFunctions: { name: string; path: string }[] = [];
  private readonly assetDir: string;
  private readonly architecture: lambda.Architecture;
  private readonly retention: logs.RetentionDays;
  /** `hookNamePrefix` without `CodeDeployHook_`: rollback's and shift's names start with it. */
  private readonly namePrefix: string;
  private readonly shiftTimeout: Duration;
  private shiftFunction?: lambda.Function;
  /** What rollouts put in shift's environment, by variable (one value each). */
  private readonly shiftEnvironment: Record<string, string> = {};
  /** Where the rollouts' checks send each variable: the origins SHIFT_ALLOWED_SECRETS allows it. */
  private readonly secretOrigins: Record<string, Set<string>> = {};
  private readonly rollouts: Record<string, Rollout> = {};
  /** Rollback's Lattice targets and the rollouts' production aliases, matched by listener and production group (see grantPutBack). */
  private readonly rollbackListeners: { key: string; group: string }[] = [];
  private readonly productionAliases: { key: string; alias: lambda.IAlias }[] = [];
  private readonly stableAlias?: string;
  private readonly allowSkip: boolean;
  /** Check sets and target maps, in a file beside each function (./settings.ts). */
  private readonly settingsFiles: SettingsFiles;
  /**
   * The statements that grow with each function, target and rollout, merged by actions and
   * conditions, placed within IAM's limits (./grants.ts): the hooks' (the same for both, per
   * checked function), post-traffic's own (stableAlias), rollback's, and shift's.
   */
  private readonly grants: Grants;
  private readonly hookGrants: GrantBook;
  private readonly postTrafficGrants: GrantBook;
  private readonly rollbackGrants: GrantBook;
  private shiftGrants?: GrantBook;

  constructor(scope: Construct, id: string, props: ShiftGuardProps) {
    super(scope, id);
    const prefix = props.hookNamePrefix ?? 'CodeDeployHook_shiftguard';
    this.assetDir = props.assetDir;
    this.architecture = props.architecture ?? lambda.Architecture.ARM_64;
    this.retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.namePrefix = prefix.replace(/^CodeDeployHook_/, '');
    this.shiftTimeout = props.shiftTimeout ?? Duration.minutes(5);
    if (props.stableAlias !== undefined && !Token.isUnresolved(props.stableAlias) && !/^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$/.test(props.stableAlias)) {
      throw new Error(`ShiftGuard stableAlias: expected an alias name (letters, digits, - and _, not only digits), got ${JSON.stringify(props.stableAlias)}`);
    }
    this.stableAlias = props.stableAlias;
    this.allowSkip = props.allowSkip ?? false;
    const fn = this.makeFunction.bind(this);
    this.settingsFiles = new SettingsFiles(this);

    this.preTraffic = fn(`${prefix}_pre_traffic`, 'pre-traffic', {}, Duration.minutes(5), 256);
    this.postTraffic = fn(`${prefix}_post_traffic`, 'post-traffic', {}, Duration.minutes(5), 256);
    this.rollback = fn(`${this.namePrefix}_rollback`, 'rollback', {
      DRY_RUN: String(props.dryRun ?? false),
    }, Duration.seconds(60), 256);
    this.grants = new Grants(this);
    coveredHooks.add(this.preTraffic);
    coveredHooks.add(this.postTraffic);
    const iam5 = [{ id: 'AwsSolutions-IAM5', reason: IAM5_REASON }];
    this.hookGrants = this.grants.book('hooks (pre-traffic and post-traffic)', [this.preTraffic, this.postTraffic], iam5);
    this.postTrafficGrants = this.grants.book('post-traffic', [this.postTraffic], iam5);
    this.rollbackGrants = this.grants.book('rollback', [this.rollback], iam5);
    // Lazy: mappings added after construction (protect, addRollbackMapping) are included. In the
    // settings file, not the environment: a map for many functions outgrows Lambda's 4 KB.
    this.settingsFiles.set(this.rollback, 'rollback', 'ROLLBACK_TARGETS', Lazy.string({ produce: () => JSON.stringify(this.renderedMappings()) }));
    // Each given check set and mapping is checked against the configuration's schema as it is
    // added (a typo fails where it was written); the documents as rendered, once more at synth.
    const given = `ShiftGuard ${this.node.path}`;
    if (props.preTrafficChecks) this.commitChecks('pre-traffic', props.preTrafficChecks, this.planChecks('pre-traffic', props.preTrafficChecks, undefined, { call: given, field: 'preTrafficChecks' }));
    if (props.postTrafficChecks) this.commitChecks('post-traffic', props.postTrafficChecks, this.planChecks('post-traffic', props.postTrafficChecks, undefined, { call: given, field: 'postTrafficChecks' }));
    for (const c of props.checkedFunctions ?? []) this.addCheckedFunction(c);
    (props.rollbackTargets ?? []).forEach((m, i) => this.addMapping(m, { call: given, field: `rollbackTargets[${i}]` }));
    this.node.addValidation({ validate: () => this.renderedProblems() });
    // Hooks that guard deployments need checks: they refuse to start without HOOK_CHECKS.
    // protect() puts both hooks on its deployment group, so both need checks, and checks that
    // apply to each protected function: a hook with none for the deployed function reports Failed.
    this.node.addValidation({
      validate: () => {
        const phases: ('pre-traffic' | 'post-traffic')[] = this.protectedFunctions.length > 0 ? ['pre-traffic', 'post-traffic'] : [];
        if (this.checked.length > 0 && phases.length === 0 && !this.checks['pre-traffic'] && !this.checks['post-traffic']) {
          return ['ShiftGuard: checkedFunctions are given but no checks (preTrafficChecks/postTrafficChecks)'];
        }
        const option = (p: string) => p === 'pre-traffic' ? 'preTraffic' : 'postTraffic';
        return phases.flatMap((p) => {
          const set = this.checks[p];
          if (!set) {
            return [`ShiftGuard: protected functions are deployed through the ${p} hook, which has no checks: give ${option(p)} to protect() (or ${option(p)}Checks to ShiftGuard)`];
          }
          return this.protectedFunctions
            .filter((f) => !set.checks.some((c) => c.functions === undefined || c.functions.includes(f.name)))
            .map((f) => `ShiftGuard: ${f.path} is deployed through the ${p} hook, but none of its checks applies to it (the others name other functions), so every deployment of it would fail: give ${option(p)} to its protect() call (or ${option(p)}Checks without functions to ShiftGuard)`);
        });
      },
    });

    // Rollback's async invocations: reserved concurrency, two retries, then the failure queue.
    const key = new kms.Key(this, 'key', { enableKeyRotation: true, description: 'ShiftGuard alarm topic and failure queue', removalPolicy: RemovalPolicy.DESTROY });
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.failureQueue = new sqs.Queue(this, 'rollback-failures', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const stack = Stack.of(this);
    const reserved = props.rollbackReservedConcurrency ?? 5;
    (this.rollback.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = reserved;
    this.rollback.configureAsyncInvoke({
      onFailure: new destinations.SqsDestination(this.failureQueue),
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    });

    this.alarmTopic = props.alarmTopics?.[0] ?? new sns.Topic(this, 'alarms', { masterKey: key, enforceSSL: true, displayName: 'ShiftGuard alarms' });
    for (const topic of props.alarmTopics ?? [this.alarmTopic]) {
      topic.addSubscription(new subs.LambdaSubscription(this.rollback));
    }
    // doctor ({"shiftguard":"doctor"}): reads only. Alarms and metrics cannot be scoped to
    // resources (DescribeAlarms by prefix, ListMetrics); subscriptions only on rollback's own topics
    // (an alarm notifying another topic is reported as "could not tell").
    this.rollback.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:DescribeAlarms', 'cloudwatch:ListMetrics'], resources: ['*'] }));
    // Through rollback's grant book: one ARN per topic, counted against the role's policy sizes.
    const topicArns = (props.alarmTopics ?? [this.alarmTopic]).map((t) => t.topicArn);
    if (topicArns.length > 0) this.rollbackGrants.add(['sns:ListSubscriptionsByTopic'], topicArns);
    if (props.doctor ?? true) {
      this.doctor = new Doctor(this, 'doctor', {
        rollback: this.rollback, functionName: `${this.namePrefix}_doctor`, architecture: this.architecture, logRetention: this.retention,
        rollbackTargets: () => this.mappings, alarmTopics: props.alarmTopics ?? [this.alarmTopic],
      }).function;
    }
    if (props.allowDirectAlarmActions) {
      this.rollback.addPermission('alarm-actions', {
        principal: new iam.ServicePrincipal('lambda.alarms.cloudwatch.amazonaws.com'),
        sourceAccount: stack.account,
      });
    }

    suppress(this, [
      { id: 'AwsSolutions-IAM5', reason: IAM5_REASON },
      { id: 'AwsSolutions-SQS3', reason: 'This queue is itself the on-failure destination of the rollback function; a dead-letter queue for it would only move the same messages again.' },
    ]);
  }

  private makeFunction(name: string, binary: string, environment: Record<string, string>, timeout: Duration, memory: number): lambda.Function {
    const logGroup = new logs.LogGroup(this, `${binary}-logs`, {
      logGroupName: `/aws/lambda/${name}`,
      retention: this.retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Our own role: the managed AWSLambdaBasicExecutionRole grants logs on every log group.
    const role = new iam.Role(this, `${binary}-role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `ShiftGuard ${binary}`,
    });
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [`${logGroup.logGroupArn}`],
    }));
    return new lambda.Function(this, binary, {
      functionName: name,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: this.architecture,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(path.join(this.assetDir, binary, 'bootstrap.zip')),
      memorySize: memory,
      timeout,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment,
      description: `ShiftGuard ${binary}`,
    });
  }

  /**
   * A Lattice listener's ARN (given as an ARN, or built from the service's and the listener's ids,
   * as rollback and `shift` name it: `service/SERVICE_ID/listener/LISTENER_ID`) and a target
   * group's ARN (given, or `targetgroup/ID`).
   */
  private lattice(service: string, listener: string): { listenerArn: string; groupArn: (g: string) => string } {
    const stack = Stack.of(this);
    const arn = (resource: string) => `arn:${stack.partition}:vpc-lattice:${stack.region}:${stack.account}:${resource}`;
    const serviceId = service.startsWith('arn:') ? service.replace(/^.*\//, '') : service;
    return {
      listenerArn: listener.startsWith('arn:') ? listener : arn(`service/${serviceId}/listener/${listener}`),
      groupArn: (g: string) => g.startsWith('arn:') ? g : arn(`targetgroup/${g}`),
    };
  }

  /** Listener and production target group, in one form whichever way (ids or ARNs) they were given. */
  private latticeKey(service: string, listener: string, productionTargetGroup: string): string {
    return `${this.lattice(service, listener).listenerArn} ${productionTargetGroup.startsWith('arn:') ? productionTargetGroup.replace(/^.*\//, '') : productionTargetGroup}`;
  }

  /**
   * Rollback puts back the production alias a rollout's Lattice promotion moved (the marker's
   * `prev`): it lists the production group's targets and moves the alias registered there. Granted
   * for each rollback target whose listener and production group a rollout of this ShiftGuard
   * promotes through a `productionAlias`, in whichever order the two were added.
   */
  private grantPutBack(): void {
    for (const l of this.rollbackListeners) {
      for (const p of this.productionAliases) {
        // Pairs granted before are granted again: the book keeps each resource once.
        if (l.key !== p.key) continue;
        this.rollbackGrants.statement({ actions: ['vpc-lattice:ListTargets'], resources: [l.group] });
        this.rollbackGrants.statement({ actions: ['lambda:GetAlias', 'lambda:UpdateAlias'], resources: [p.alias.functionArn] });
      }
    }
  }

  /** The `shift` function (progressive rollouts), once the first `rollout()` created it. */
  public get shift(): lambda.Function | undefined {
    return this.shiftFunction;
  }

  private ensureShift(): lambda.Function {
    if (!this.shiftFunction) {
      // shift reads only the variables SHIFT_ALLOWED_SECRETS lists for a plan's checks: the
      // rollouts' `environment` names, nothing else — and a variable a check sends (secretHeaders,
      // signing) only to the origin of that check's URL (`NAME@https://host`), as shift enforces.
      this.shiftFunction = this.makeFunction(`${this.namePrefix}_shift`, 'shift', {
        SHIFT_ALLOWED_SECRETS: Lazy.string({
          produce: () => Object.keys(this.shiftEnvironment)
            .filter((k) => k !== 'NOTIFY_TOPIC_ARN')
            .sort()
            .flatMap((k) => {
              const origins = [...(this.secretOrigins[k] ?? [])].sort();
              return origins.length ? origins.map((o) => `${k}@${o}`) : [k];
            })
            .join(','),
        }),
      }, this.shiftTimeout, 256);
    }
    return this.shiftFunction;
  }

  /**
   * A progressive rollout of one target (a VPC Lattice listener's weights, or a Lambda alias):
   * creates the `shift` function (once per ShiftGuard) and a Step Functions state machine for this
   * rollout, and lets `shift` act on exactly this target (and read exactly these alarms, invoke the
   * checked function, publish to the topic). One rollout per execution; the rollout's id is the
   * execution's name. See `Rollout`.
   */
  public rollout(id: string, props: RolloutProps): Rollout {
    if (this.rollouts[id]) throw new Error(`ShiftGuard rollout '${id}': already defined; one rollout() call per id`);
    let plan: RolloutPlan;
    try {
      plan = rolloutPlan(props);
    } catch (e) {
      // rolloutPlan names fields from `rollout.`; here the call is named instead.
      throw new Error((e as Error).message.split('\n').map((line) => `ShiftGuard rollout '${id}': ${line.replace(/^rollout\./, '')}`).join('\n'));
    }
    // Both are checked before anything is created: shift is shared, one value per variable.
    const env: Record<string, string> = { ...(props.environment ?? {}) };
    for (const k of Object.keys(env)) {
      if (k.startsWith('AWS_') || k === 'SHIFT_ALLOWED_SECRETS' || k === 'NOTIFY_TOPIC_ARN') {
        throw new Error(`ShiftGuard rollout '${id}': environment ${k}: not a variable a plan's checks may read (AWS_* are Lambda's and never readable by a plan; NOTIFY_TOPIC_ARN is notificationTopic)`);
      }
    }
    if (props.notificationTopic) env.NOTIFY_TOPIC_ARN = props.notificationTopic.topicArn;
    for (const [k, v] of Object.entries(env)) {
      if (k in this.shiftEnvironment && this.shiftEnvironment[k] !== v) {
        throw new Error(k === 'NOTIFY_TOPIC_ARN'
          ? `ShiftGuard rollout '${id}': notificationTopic differs from another rollout's; the ShiftGuard's one shift function publishes to one topic`
          : `ShiftGuard rollout '${id}': environment ${k} is already set to another value by another rollout (shift is shared by every rollout of this ShiftGuard)`);
      }
    }
    for (const [variable, origin] of sentSecrets(id, plan)) {
      (this.secretOrigins[variable] ??= new Set()).add(origin);
    }
    const shift = this.ensureShift();
    for (const [k, v] of Object.entries(env)) {
      if (!(k in this.shiftEnvironment)) shift.addEnvironment(k, v);
      this.shiftEnvironment[k] = v;
    }
    this.grantRollout(shift, plan, props);
    const rollout = new Rollout(this, `rollout-${id}`, {
      ...props,
      logRetention: props.logRetention ?? this.retention,
      shift,
    });
    this.rollouts[id] = rollout;
    return rollout;
  }

  /** What `shift` needs for this plan's target, alarms, checks and topic, and nothing else. */
  private grantRollout(shift: lambda.Function, plan: RolloutPlan, props: RolloutProps): void {
    const stack = Stack.of(this);
    const arn = (service: string, resource: string) => `arn:${stack.partition}:${service}:${stack.region}:${stack.account}:${resource}`;
    const fnArn = (name: string) => name.startsWith('arn:') ? name.replace(/^(arn:[^:]+:lambda:[^:]+:[^:]+:function:[^:]+).*$/, '$1') : arn('lambda', `function:${name}`);
    // Merged across rollouts by actions and conditions, placed within IAM's limits (./grants.ts).
    const book = this.shiftGrants ??= this.grants.book('shift', [shift], [{ id: 'AwsSolutions-IAM5', reason: SHIFT_IAM5_REASON }]);
    const statement = (actions: string[], resources: string[], conditions?: Record<string, unknown>) => book.add(actions, resources, conditions);
    // The marker tag: `shiftguard:rollout` on a listener, `shiftguard:rollout:ALIAS` on a function.
    const markerOnly = { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:rollout', 'shiftguard:rollout:*'] } };
    const t = plan.target;
    let checked: string | undefined;
    if (t.type === 'lattice-listener') {
      const serviceArn = t.service.startsWith('arn:') ? t.service : arn('vpc-lattice', `service/${t.service}`);
      const { listenerArn, groupArn: group } = this.lattice(t.service, t.listener);
      // Read and write the weighted forwards (default action and rules), read and write the marker;
      // read rollback's restore record (ListTagsForResource).
      statement(['vpc-lattice:GetListener', 'vpc-lattice:ListRules', 'vpc-lattice:GetRule', 'vpc-lattice:UpdateListener', 'vpc-lattice:UpdateRule', 'vpc-lattice:ListTagsForResource'],
        [serviceArn, listenerArn, `${listenerArn}/rule/*`]);
      statement(['vpc-lattice:TagResource'], [listenerArn], markerOnly);
      // Start: both groups have targets, and whether production is a LAMBDA group (GetTargetGroup,
      // at start and at promotion); promotion: production takes the canary's targets.
      statement(['vpc-lattice:ListTargets', 'vpc-lattice:GetTargetGroup'], [group(t.canaryTargetGroup), group(t.productionTargetGroup)]);
      // Promotion of an instance or IP production group registers the canary's targets in it; a
      // LAMBDA group (productionAlias) keeps its one alias target, which promotion moves instead.
      const pa = props.target.type === 'lattice-listener' ? props.target.productionAlias : undefined;
      if (!pa) statement(['vpc-lattice:RegisterTargets', 'vpc-lattice:DeregisterTargets'], [group(t.productionTargetGroup)]);
      checked = plan.checkFunction?.function;
      // Start reads checkFunction's version (it must exist); the checks' statement below covers it.
      const versionReads = new Set<string>();
      const cf = plan.checkFunction;
      if (cf && !plan.checks) versionReads.add(`${fnArn(cf.function)}:*`);
      // A LAMBDA production group: promotion moves its alias (read, moved, read back; put back on
      // abort) to the canary's version.
      if (pa) {
        statement(['lambda:GetAlias', 'lambda:UpdateAlias'], [pa.functionArn]);
        if (!(cf && cf.function === pa.version.lambda.functionName)) versionReads.add(`${pa.version.lambda.functionArn}:*`);
        this.productionAliases.push({ key: this.latticeKey(t.service, t.listener, t.productionTargetGroup), alias: pa });
        this.grantPutBack();
      }
      if (versionReads.size > 0) statement(['lambda:GetFunctionConfiguration'], [...versionReads]);
    } else {
      const f = fnArn(t.function);
      const aliases = [`${f}:${t.alias}`, ...(t.stableAlias ? [`${f}:${t.stableAlias}`] : [])];
      statement(['lambda:GetAlias', 'lambda:UpdateAlias'], [f, ...aliases]);
      // Promotion creates the stable pointer alias when it is missing.
      // (CreateAlias is authorized on the function: the alias does not exist yet.)
      if (t.stableAlias) statement(['lambda:CreateAlias'], [f]);
      // The new version exists (start), the stable one exists (abort, through rollback's alias path).
      statement(['lambda:GetFunctionConfiguration'], [`${f}:*`]);
      // The marker, and rollback's restore record (`shiftguard:restored:ALIAS`), read only.
      statement(['lambda:ListTags'], [f]);
      statement(['lambda:TagResource'], [f], markerOnly);
      // Rollback's alias path looks for CodeDeploy deployments shifting the alias before it restores
      // it (read only: a rollout never stops a deployment). ListDeployments without a group is unscoped.
      statement(['codedeploy:ListDeployments'], ['*']);
      statement(['codedeploy:BatchGetDeployments', 'codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget'], [arn('codedeploy', 'deploymentgroup:*')]);
      checked = t.function;
    }
    // DescribeAlarms on exactly the plan's alarms.
    statement(['cloudwatch:DescribeAlarms'], props.alarms.map((a) => typeof a === 'string' ? arn('cloudwatch', `alarm:${a}`) : a.alarmArn));
    if (plan.checks) {
      // Only what the plan's check kinds use (the least-privilege report found every kind's grant
      // given to every plan with checks).
      const kinds = new Set([...(plan.checks.before?.checks ?? []), ...(plan.checks.after?.checks ?? [])].map((c) => c.kind));
      if (checked) {
        // The checks invoke the function (its versions and aliases); artifact checks read its code
        // hash, logs checks its log group.
        const f = fnArn(checked);
        const name = f.replace(/^.*:function:/, '');
        statement(['lambda:InvokeFunction', 'lambda:GetFunctionConfiguration', ...(kinds.has('artifact') ? ['lambda:GetFunction'] : [])], [f, `${f}:*`]);
        if (kinds.has('logs')) statement(['logs:FilterLogEvents'], [arn('logs', `log-group:/aws/lambda/${name}:*`)]);
      }
      // Once, whichever rollouts ask: the book keeps each resource once.
      if (kinds.has('metrics') || kinds.has('compare')) statement(['cloudwatch:GetMetricData'], ['*']);
    }
    // sns:Publish on the topic (and its key's kms:Decrypt and kms:GenerateDataKey* when it is
    // encrypted), as grantPublish grants them, in shift's book: counted with the rest.
    props.notificationTopic?.grantPublish(book.grantee());
    // The role and its policy only: the hooks' and rollback's suppressions have their own reasons.
    if (shift.role) suppress(shift.role, [{ id: 'AwsSolutions-IAM5', reason: SHIFT_IAM5_REASON }]);
  }

  /**
   * Adds checks to a hook's check set. The hooks hold one set for every function they guard, so
   * checks from the constructor and from every `protect` call are merged into it:
   *
   * - With `functions` (what `protect(fn)` passes: `[fn.functionName]`), every check of `set` gets
   *   `functions: functions` and runs only for deployments of those functions; a check that already
   *   has `functions` is refused rather than overridden (a silently replaced scope would run checks
   *   for functions their author did not name). Without it, checks are kept as written: no
   *   `functions` means every function.
   * - A name may repeat only across checks whose `functions` do not overlap (the hooks refuse
   *   anything else at start-up). Function names are usually tokens here, so they are compared by
   *   their token strings: the same `fn.functionName` is the same function.
   * - A check without `functions` runs for every function, so no other check may share its name.
   * - The identical check given again (same settings, same `functions`) is kept once.
   * - `concurrency` is the largest asked for.
   */
  public addChecks(phase: 'pre-traffic' | 'post-traffic', set: HookChecks, functions?: string[]): void {
    // A plain string in other languages (jsii has no string literal types).
    if (phase !== 'pre-traffic' && phase !== 'post-traffic') {
      throw new Error(`ShiftGuard addChecks(${JSON.stringify(phase)}): phase: expected pre-traffic or post-traffic, got ${JSON.stringify(phase)}`);
    }
    this.commitChecks(phase, set, this.planChecks(phase, set, functions, { call: `ShiftGuard addChecks(${phase})`, field: '' }));
  }

  /**
   * The entries `set` adds to a phase's checks (none already kept); throws, adding nothing, on a
   * conflict. `set` is checked against the configuration's schema first, errors naming `given`'s
   * call and field.
   */
  private planChecks(phase: 'pre-traffic' | 'post-traffic', set: HookChecks, functions: string[] | undefined, given: { call: string; field: string }): HookCheck[] {
    assertConfiguration(given.call, 'checkSet', set, given.field);
    if (functions !== undefined) validFunctions(`ShiftGuard ${phase} checks: functions`, functions);
    const adding: HookCheck[] = [];
    for (const check of set.checks as HookCheck[]) {
      const what = `ShiftGuard ${phase} check '${check.name}'`;
      let entry = check;
      if (functions !== undefined) {
        if (check.functions !== undefined) {
          throw new Error(`${what} already has \`functions\`; protect(fn) scopes the checks it is given to fn itself (functions: [fn.functionName]) and does not override a check's own. Give checks for other or several functions to the ShiftGuard's ${phase === 'pre-traffic' ? 'preTrafficChecks' : 'postTrafficChecks'} or to addChecks(phase, set) without its functions argument`);
        }
        entry = { ...check, functions: [...functions] };
      } else if (check.functions !== undefined) {
        validFunctions(`${what}: functions`, check.functions);
      }
      const existing = this.checks[phase]?.checks ?? [];
      const kept = [...existing, ...adding].filter((o) => o.name === check.name);
      if (kept.some((o) => JSON.stringify(o) === JSON.stringify(entry))) continue;
      for (const other of kept) {
        if (other.functions === undefined || entry.functions === undefined) {
          throw new Error(`${what}: a check without \`functions\` runs for every function, so its name cannot be shared with another check (the hooks refuse a name used twice for the same function); rename one of them`);
        }
        if (other.functions.some((f) => entry.functions!.includes(f))) {
          throw new Error(`${what} is given twice for the same function with different settings; a check name may repeat only across checks for different functions`);
        }
      }
      adding.push(entry);
    }
    return adding;
  }

  private commitChecks(phase: 'pre-traffic' | 'post-traffic', set: HookChecks, adding: HookCheck[]): void {
    const hook = phase === 'pre-traffic' ? this.preTraffic : this.postTraffic;
    let current = this.checks[phase];
    if (!current) {
      current = { checks: [] };
      this.checks[phase] = current;
      // JSON.stringify keeps a token (fn.functionName) as its string; CDK then renders the string
      // as an Fn::Join around the Ref (the test reads the synthesized HOOK_CHECKS back).
      this.settingsFiles.set(hook, phase, 'HOOK_CHECKS', Lazy.string({ produce: () => JSON.stringify(this.hookChecks(phase)) }));
      hook.addEnvironment('HOOK_DEADLINE_MARGIN', '5s');
      if (this.allowSkip) hook.addEnvironment('HOOK_ALLOW_SKIP', 'true');
      if (phase === 'post-traffic' && this.stableAlias) hook.addEnvironment('STABLE_ALIAS', this.stableAlias);
    }
    if (set.concurrency !== undefined) {
      // The largest asked for. A deploy-time value (a number token) cannot be compared at synth:
      // Math.max would turn it into 0, which the hook refuses at start-up.
      const prev = current.concurrency;
      if (prev !== undefined && (Token.isUnresolved(prev) || Token.isUnresolved(set.concurrency)) && prev !== set.concurrency) {
        throw new Error(`ShiftGuard ${this.node.path}: the ${phase} hook's concurrency: a deploy-time value cannot be combined with another call's (${Token.isUnresolved(prev) ? 'a token' : prev}); give numbers, or set it in one call`);
      }
      current.concurrency = prev === undefined || Token.isUnresolved(set.concurrency) ? set.concurrency : Math.max(prev, set.concurrency);
    }
    current.checks.push(...adding);
  }

  /** Lets the hooks check a function's deployments: report to its group, invoke it, read its versions and logs. */
  public addCheckedFunction(c: CheckedFunction): void {
    const stack = Stack.of(this);
    this.checked.push(c);
    const group = `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:deploymentgroup:${c.application}/${c.deploymentGroup}`;
    const versions = `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${c.functionName}:*`;
    const logGroup = c.logGroupName ?? `/aws/lambda/${c.functionName}`;
    // Both hooks, the same statements (one per set of actions, every checked function's
    // resources in it: ./grants.ts).
    const hooks = this.hookGrants;
    hooks.add(['codedeploy:PutLifecycleEventHookExecutionStatus', 'codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget', 'codedeploy:GetDeployment'], [group]);
    hooks.add(['codedeploy:GetApplicationRevision'], [`arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:application:${c.application}`]);
    // Its versions and aliases invoked, a version's code hash read (artifact checks).
    hooks.add(['lambda:InvokeFunction', 'lambda:GetFunction'], [versions]);
    // logs checks: the checked function's own log group.
    hooks.add(['logs:FilterLogEvents'], [`arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:${logGroup}:*`]);
    if (this.stableAlias) {
      // Housekeeping after an accepted Succeeded: the stable pointer follows the new version.
      // CreateAlias is authorized on the function (the alias does not exist yet); Get/UpdateAlias
      // name both forms, as rollback's alias statement does.
      const fn = `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${c.functionName}`;
      this.postTrafficGrants.add(['lambda:GetAlias', 'lambda:UpdateAlias'], [fn, `${fn}:${this.stableAlias}`]);
      this.postTrafficGrants.add(['lambda:CreateAlias'], [fn]);
    }
    // Once, whichever function: the book keeps each resource once.
    this.postTrafficGrants.add(['cloudwatch:GetMetricData'], ['*']);
  }

  /** A phase's check set as the hook reads it (HOOK_CHECKS), or undefined when it has none. */
  private hookChecks(phase: 'pre-traffic' | 'post-traffic'): HookChecks | undefined {
    const set = this.checks[phase];
    if (!set) return undefined;
    return set.concurrency === undefined ? { checks: set.checks } : { concurrency: set.concurrency, checks: set.checks };
  }

  /**
   * HOOK_CHECKS and ROLLBACK_TARGETS as they are rendered, against the configuration's schema: each
   * check set and mapping was checked when it was given, but the objects given are kept, and may
   * have been changed since.
   */
  private renderedProblems(): string[] {
    const at = `ShiftGuard ${this.node.path}`;
    const problems: string[] = [];
    for (const phase of ['pre-traffic', 'post-traffic'] as const) {
      const set = this.hookChecks(phase);
      if (set) problems.push(...configurationProblems('checkSet', set).map((p) => `${at}: the ${phase} hook's HOOK_CHECKS: ${p}`));
    }
    if (this.mappings.length > 0) problems.push(...configurationProblems('rollbackMappings', this.mappings).map((p) => `${at}: ROLLBACK_TARGETS: ${p}`));
    return problems;
  }

  /** The mappings as ROLLBACK_TARGETS holds them: the objects given, their fields in one order (mappingInOrder). */
  private renderedMappings(): RollbackMapping[] {
    return this.mappings.map(mappingInOrder);
  }

  /** Adds alarms → targets to ROLLBACK_TARGETS and lets rollback act on exactly those targets. */
  public addRollbackMapping(mapping: RollbackMapping): void {
    this.addMapping(mapping, { call: 'ShiftGuard addRollbackMapping()', field: '' });
  }

  /** addRollbackMapping, `mapping` checked against the configuration's schema first, errors naming `given`'s call and field. */
  private addMapping(mapping: RollbackMapping, given: { call: string; field: string }): void {
    assertConfiguration(given.call, 'mapping', mapping, given.field);
    const stack = Stack.of(this);
    this.mappings.push(mapping);
    const targets = mapping.targets;
    const aliases = targets.filter((t): t is LambdaAliasTarget => t.type === 'lambda-alias');
    const listeners = targets.filter((t): t is LatticeListenerTarget => t.type === 'lattice-listener');
    const fnArn = (name: string) => name.startsWith('arn:') ? name : `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${name}`;
    // Lambda tags functions, not aliases or versions: the unqualified ARN.
    const unqualified = (name: string) => fnArn(name).replace(/^(arn:[^:]+:lambda:[^:]+:[^:]+:function:[^:]+).*$/, '$1');
    if (aliases.length > 0) {
      this.rollbackGrants.statement({
        actions: ['lambda:GetAlias', 'lambda:UpdateAlias'],
        resources: aliases.flatMap((a) => [fnArn(a.function), `${fnArn(a.function)}:${a.alias}`]),
      });
      // The stable pointer is only read by rollback (post-traffic and shift move it).
      const pointers = aliases.filter((a) => a.stableAlias).map((a) => `${fnArn(a.function)}:${a.stableAlias}`);
      if (pointers.length > 0) {
        this.rollbackGrants.statement({ actions: ['lambda:GetAlias'], resources: pointers });
      }
      // Before writing a version the alias does not already name (a pinned stableVersion, the
      // version CodeDeploy restores), rollback checks that it exists.
      this.rollbackGrants.statement({
        actions: ['lambda:GetFunctionConfiguration'],
        resources: aliases.map((a) => `${fnArn(a.function)}:*`),
      });
      // The rollout marker (`shiftguard:rollout:ALIAS`) and the restore record, read; the restore
      // record (`shiftguard:restored:ALIAS`) written, and no other tag key.
      const functions = [...new Set(aliases.map((a) => unqualified(a.function)))];
      this.rollbackGrants.statement({ actions: ['lambda:ListTags'], resources: functions });
      this.rollbackGrants.statement({
        actions: ['lambda:TagResource'],
        resources: functions,
        conditions: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored:*'] } },
      });
      // ListDeployments without an application cannot be scoped; with one it is the group's ARN.
      const groups = aliases.filter((a) => a.codeDeploy).map((a) => `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:deploymentgroup:${a.codeDeploy!.application}/${a.codeDeploy!.deploymentGroup}`);
      const everyAliasHasAGroup = groups.length === aliases.length;
      // Without a group, rollback searches the region's deployments: listing and describing them
      // cannot be scoped, but reading targets and stopping can — to this account's and region's
      // deployment groups, never '*'. A warning says how to scope it to the group.
      const anyGroup = `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:deploymentgroup:*`;
      const list = ['codedeploy:ListDeployments', 'codedeploy:BatchGetDeployments'];
      const stop = ['codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget', 'codedeploy:StopDeployment'];
      if (everyAliasHasAGroup) {
        // The same resources for both: one statement (what protect() always maps).
        this.rollbackGrants.statement({ actions: [...list, ...stop], resources: groups });
      } else {
        this.rollbackGrants.statement({ actions: list, resources: ['*'] });
        this.rollbackGrants.statement({ actions: stop, resources: [...groups, anyGroup] });
      }
      for (const a of aliases.filter((x) => !x.codeDeploy)) {
        Annotations.of(this).addWarningV2('shiftguard:rollbackWithoutGroup',
          `rollback target lambda-alias ${a.function}:${a.alias} names no codeDeploy group: rollback may stop a deployment of any deployment group in this account and region; give codeDeploy {application, deploymentGroup} to scope it`);
      }
    }
    if (listeners.length > 0) {
      const listenerArns = [...new Set(listeners.map((l) => this.lattice(l.service, l.listener).listenerArn))];
      this.rollbackGrants.statement({
        actions: ['vpc-lattice:GetListener', 'vpc-lattice:UpdateListener', 'vpc-lattice:ListRules', 'vpc-lattice:GetRule', 'vpc-lattice:UpdateRule'],
        resources: listenerArns.flatMap((a) => [a, `${a}/rule/*`]),
      });
      // The rollout marker (`shiftguard:rollout`) and the restore record, read; the restore record
      // (`shiftguard:restored`) written, and no other tag key.
      this.rollbackGrants.statement({ actions: ['vpc-lattice:ListTagsForResource'], resources: listenerArns });
      this.rollbackGrants.statement({
        actions: ['vpc-lattice:TagResource'],
        resources: listenerArns,
        conditions: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored'] } },
      });
      for (const l of listeners) {
        this.rollbackListeners.push({ key: this.latticeKey(l.service, l.listener, l.productionTargetGroup), group: this.lattice(l.service, l.listener).groupArn(l.productionTargetGroup) });
      }
      this.grantPutBack();
    }
    const stages = targets.filter((t): t is ApiGatewayCanaryTarget => t.type === 'apigateway-canary');
    if (stages.length > 0) {
      // GetStage and UpdateStage on exactly these stages.
      this.rollbackGrants.statement({
        actions: ['apigateway:GET', 'apigateway:PATCH'],
        resources: stages.map((t) => {
          const { api, stage } = stageOf(t);
          return `arn:${stack.partition}:apigateway:${stack.region}::/restapis/${api}/stages/${stage}`;
        }),
      });
    }
  }

  /**
   * One call per function: its version and alias, a CodeDeploy deployment group (canary by
   * default) with ShiftGuard's hooks, alarms on the new version and on the alias that stop the
   * deployment and are mapped to rollback of the alias, the hooks' IAM for this function, and a
   * dashboard. The function must be in the same stack as this ShiftGuard (a function in another
   * stack is refused: see below).
   */
  public protect(fn: lambda.Function, options: ProtectOptions = {}): ProtectedFunction {
    const aliasName = options.alias ?? 'live';
    const functionName = fn.functionName;
    // This call's checks run only for this function (a check with its own `functions` is refused).
    // Both phases are checked before either is added, and before anything is created.
    const call = `ShiftGuard protect(${fn.node.id})`;
    // Another stack's function would be imported: its version (the alias's target) through an
    // export whose name and value change with every new version, which CloudFormation refuses
    // while this stack imports it, so the function's stack could never deploy new code again.
    const fnStack = Stack.of(fn);
    const ownStack = Stack.of(this);
    if (fnStack !== ownStack) {
      throw new Error(`${call}: ${fn.node.path} is in stack ${fnStack.node.path}, this ShiftGuard (${this.node.path}) in stack ${ownStack.node.path}. `
        + `protect() puts the function's alias, alarms and deployment group beside the ShiftGuard, on the function's current version; from another stack that version would be a cross-stack export that changes with every code change, which CloudFormation refuses while ${ownStack.node.path} imports it. `
        + `Create the function in ${ownStack.node.path}, or give ${fnStack.node.path} its own ShiftGuard (a different hookNamePrefix) and protect it there`);
    }
    // Both phases' mistakes at once, each on a line of its own.
    const problems = [
      ...(options.preTraffic ? configurationProblems('checkSet', options.preTraffic, 'preTraffic') : []),
      ...(options.postTraffic ? configurationProblems('checkSet', options.postTraffic, 'postTraffic') : []),
    ];
    if (problems.length > 0) throw new Error(problems.map((p) => `${call}: ${p}`).join('\n'));
    const pre = options.preTraffic && this.planChecks('pre-traffic', options.preTraffic, [functionName], { call, field: 'preTraffic' });
    const post = options.postTraffic && this.planChecks('post-traffic', options.postTraffic, [functionName], { call, field: 'postTraffic' });
    if (options.preTraffic && pre) this.commitChecks('pre-traffic', options.preTraffic, pre);
    if (options.postTraffic && post) this.commitChecks('post-traffic', options.postTraffic, post);
    this.protectedFunctions.push({ name: functionName, path: fn.node.path });
    this.settingsFiles.bound(functionName, 64); // a function name, generated or given
    const scope = new Construct(this, `protect-${fn.node.id}-${aliasName}`);
    const version = fn.currentVersion;
    const alias = new lambda.Alias(scope, 'alias', { aliasName, version });
    const application = options.application ?? (this.application ??= new codedeploy.LambdaApplication(this, 'application'));

    // Alarms: the version being deployed (ExecutedVersion under the alias) and the alias as a whole.
    const a = options.alarms ?? {};
    const period = a.period ?? Duration.minutes(1);
    const errorRate = a.errorRate ?? 0.01;
    const p99Ms = a.p99Ms ?? Math.round(0.8 * (fn.timeout ?? Duration.seconds(3)).toMilliseconds());
    // fn.functionName is always a Ref; the name given to the function (if any) makes readable alarm names.
    const givenName = (fn.node.defaultChild as lambda.CfnFunction | undefined)?.functionName;
    // Never CloudFormation's generated names: rollback's alarm → target map holds these names, and
    // a generated one is a deploy-time value that would have to ride in the environment (4 KB).
    const prefix = options.alarmNamePrefix ?? (givenName && !Token.isUnresolved(givenName)
      ? `${givenName}-${aliasName}`
      : Names.uniqueResourceName(scope, { maxLength: 200, separator: '-' }));
    const aliasDims = { FunctionName: functionName, Resource: `${functionName}:${aliasName}` };
    const versionDims = { ...aliasDims, ExecutedVersion: version.version };
    const metric = (metricName: string, statistic: string, dimensionsMap: Record<string, string>, label?: string) =>
      new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName, statistic, period, dimensionsMap, label });
    // Ids differ between the two so both fit in one graph.
    const rate = (of: 'version' | 'alias', dims: Record<string, string>, label: string) => new cloudwatch.MathExpression({
      expression: `${of}Errors / ${of}Invocations`,
      usingMetrics: { [`${of}Errors`]: metric('Errors', 'Sum', dims), [`${of}Invocations`]: metric('Invocations', 'Sum', dims) },
      period,
      label,
    });
    const versionRate = rate('version', versionDims, 'new version error rate');
    const aliasRate = rate('alias', aliasDims, `${aliasName} error rate`);
    const versionP99 = metric('Duration', 'p99', versionDims);
    const aliasP99 = metric('Duration', 'p99', aliasDims);
    const alarm = (id: string, m: cloudwatch.IMetric, threshold: number, suffix: string, what: string) => {
      const al = new cloudwatch.Alarm(scope, id, {
        alarmName: `${prefix}-${suffix}`,
        alarmDescription: `ShiftGuard: ${what}; stops the deployment and rolls ${aliasName} back`,
        metric: m,
        threshold,
        evaluationPeriods: a.evaluationPeriods ?? 3,
        datapointsToAlarm: a.datapointsToAlarm ?? 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      al.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
      return al;
    };
    const versionErrorRate = alarm('version-error-rate', versionRate, errorRate, 'canary-error-rate', `error rate of the new version above ${errorRate}`);
    const versionLatency = alarm('version-p99', versionP99, p99Ms, 'canary-p99', `p99 duration of the new version above ${p99Ms} ms`);
    const aliasErrorRate = alarm('alias-error-rate', aliasRate, errorRate, 'error-rate', `error rate of ${aliasName} above ${errorRate}`);
    const aliasLatency = alarm('alias-p99', aliasP99, p99Ms, 'p99', `p99 duration of ${aliasName} above ${p99Ms} ms`);
    for (const extra of options.extraAlarms ?? []) {
      if (extra instanceof cloudwatch.Alarm) extra.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
    }
    const alarms: cloudwatch.IAlarm[] = [versionErrorRate, versionLatency, aliasErrorRate, aliasLatency, ...(options.extraAlarms ?? [])];

    // Named here, not generated, for the same reason as the alarms.
    const groupName = options.deploymentGroupName ?? Names.uniqueResourceName(scope, { maxLength: 100, separator: '-' });
    // One service role for all of this ShiftGuard's groups (two resources less a function): every
    // group grants it the same thing (the managed policy once, invoke on the same two hooks; CDK
    // keeps one copy of each).
    const firstGroup = this.codeDeployRole === undefined;
    const role = this.codeDeployRole ??= new iam.Role(this, 'codedeploy-role', {
      assumedBy: new iam.ServicePrincipal('codedeploy.amazonaws.com'),
      description: 'CodeDeploy service role of ShiftGuard\'s deployment groups: AWSCodeDeployRoleForLambdaLimited and invoke on the two hooks',
    });
    const deploymentGroup = new DeploymentGroup(scope, 'deployment-group', {
      application,
      alias,
      role,
      deploymentGroupName: groupName,
      deploymentConfig: options.deploymentConfig ?? codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
      preHook: this.preTraffic,
      postHook: this.postTraffic,
      alarms,
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });

    this.addCheckedFunction({
      functionName, alias: aliasName, application: application.applicationName,
      // The name given above (deploymentGroupName is a Ref): the ARN is no longer than the name.
      deploymentGroup: groupName, logGroupName: options.logGroupName,
    });
    const rollbackTarget: LambdaAliasTarget = {
      type: 'lambda-alias', function: functionName, alias: aliasName,
      codeDeploy: { application: application.applicationName, deploymentGroup: groupName },
    };
    // By the names given above (an Alarm's alarmName attribute is always a Ref), so the map holds
    // no deploy-time value for them; a user's extra alarm keeps its own.
    const alarmNames = [
      ...['canary-error-rate', 'canary-p99', 'error-rate', 'p99'].map((suffix) => `${prefix}-${suffix}`),
      ...(options.extraAlarms ?? []).map((x) => x.alarmName),
    ];
    this.addMapping({ alarms: alarmNames, targets: [rollbackTarget] }, { call, field: '(its rollback mapping)' });

    const dashboard = options.dashboard === false ? undefined : this.dashboard(scope, options.dashboardName, {
      functionName, aliasName, versionRate, aliasRate, errorRate, p99Ms,
      versionP99: versionP99.with({ label: 'new version p99 (ms)' }), aliasP99: aliasP99.with({ label: `${aliasName} p99 (ms)` }),
      invocations: [metric('Invocations', 'Sum', versionDims, 'new version'), metric('Invocations', 'Sum', aliasDims, aliasName)],
      alarms: [versionErrorRate, versionLatency, aliasErrorRate, aliasLatency],
    });

    // Once, now that the role's policy exists (the group's hooks were granted).
    if (firstGroup) {
      suppress(role, [
        { id: 'AwsSolutions-IAM4', reason: 'AWSCodeDeployRoleForLambdaLimited is AWS\'s least-privilege policy for CodeDeploy Lambda deployments (it may only invoke hook functions named CodeDeployHook_*).' },
        { id: 'AwsSolutions-IAM5', reason: 'CDK grants the deployment groups\' role invoke on the hook functions\' versions (function:NAME:*); the version is only known at deploy time.' },
      ]);
    }
    return { version, alias, application, deploymentGroup, versionErrorRate, versionLatency, aliasErrorRate, aliasLatency, alarms, rollbackTarget, dashboard };
  }

  private dashboard(scope: Construct, dashboardName: string | undefined, d: {
    functionName: string; aliasName: string; errorRate: number; p99Ms: number;
    versionRate: cloudwatch.IMetric; aliasRate: cloudwatch.IMetric; versionP99: cloudwatch.IMetric; aliasP99: cloudwatch.IMetric;
    invocations: cloudwatch.IMetric[]; alarms: cloudwatch.IAlarm[];
  }): cloudwatch.Dashboard {
    const sg = (metricName: string, dimensionsMap: Record<string, string>, label: string, statistic = 'Sum') =>
      new cloudwatch.Metric({ namespace: 'ShiftGuard', metricName, dimensionsMap, statistic, period: Duration.minutes(5), label });
    const phases = ['pre-traffic', 'post-traffic'];
    const hooks = phases.flatMap((Phase) => ['succeeded', 'failed', 'bypassed'].map((Outcome) =>
      sg('Hooks', { Function: d.functionName, Phase, Outcome }, `${Phase} ${Outcome}`)));
    const reportFailed = phases.map((Phase) => sg('Hooks', { Phase, Outcome: 'report-failed' }, `${Phase} report-failed (any function)`));
    const verdicts = new cloudwatch.SearchExpression({
      expression: `SEARCH('{ShiftGuard,Function,Phase,Check,Verdict} MetricName="CheckVerdicts" Function="${d.functionName}"', 'Sum', 300)`,
      period: Duration.minutes(5),
      label: '',
    });
    const outcomes = ['restored', 'restored-by-code-deploy', 'already-stable', 'planned', 'left-alone', 'failed', 'refused'];
    const rollbackActions = outcomes.map((Outcome) => sg('RollbackActions', { Outcome }, Outcome));
    const thisTarget = new cloudwatch.SearchExpression({
      expression: `SEARCH('{ShiftGuard,Target,Action,Outcome} MetricName="RollbackActions" Target="lambda-alias:${d.functionName}:${d.aliasName}"', 'Sum', 300)`,
      period: Duration.minutes(5),
      label: '',
    });
    const restored = ['restored', 'restored-by-code-deploy'].map((Outcome) => sg('AlarmToRestored', { Outcome }, `${Outcome} (max ms)`, 'Maximum'));
    return new cloudwatch.Dashboard(scope, 'dashboard', {
      dashboardName,
      widgets: [
        [
          new cloudwatch.GraphWidget({ title: 'Error rate: new version vs alias', left: [d.versionRate, d.aliasRate], leftAnnotations: [{ value: d.errorRate, label: 'alarm' }], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'p99 duration (ms): new version vs alias', left: [d.versionP99, d.aliasP99], leftAnnotations: [{ value: d.p99Ms, label: 'alarm' }], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'Invocations', left: d.invocations, width: 8 }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'ShiftGuard hooks (Phase/Outcome)', left: [...hooks, ...reportFailed], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'ShiftGuard check verdicts', left: [verdicts], width: 8 }),
          new cloudwatch.AlarmStatusWidget({ title: 'Deployment alarms', alarms: d.alarms, width: 8 }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'ShiftGuard rollback actions (Outcome)', left: rollbackActions, width: 8 }),
          new cloudwatch.GraphWidget({ title: `Rollback actions on ${d.aliasName}`, left: [thisTarget], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'Alarm to restored (ms)', left: restored, width: 8 }),
        ],
      ],
    });
  }
}
