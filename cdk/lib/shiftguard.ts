import * as path from 'path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

/** A Lambda alias rollback may put back on its stable version (see ROLLBACK_TARGETS). */
export interface LambdaAliasTarget {
  readonly type: 'lambda-alias';
  readonly function: string;
  readonly alias: string;
  readonly stableVersion?: string;
  readonly stableAlias?: string;
  readonly codeDeploy?: { readonly application: string; readonly deploymentGroup: string };
}

/** A VPC Lattice listener rollback may put back on its production target group. */
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

/** A function whose deployments the hooks check. */
export interface CheckedFunction {
  readonly functionName: string;
  readonly alias: string;
  /** The CodeDeploy application and deployment group that deploy it. */
  readonly application: string;
  readonly deploymentGroup: string;
}

export interface ShiftGuardProps {
  /** Where `cargo lambda build --release --output-format zip` put the zips (`<dir>/<bin>/bootstrap.zip`). */
  readonly assetDir: string;
  /** arm64 is what to deploy; tests and CI build x86_64. */
  readonly architecture?: lambda.Architecture;
  /** Prefix of the hook function names; SAM's generated CodeDeploy role only invokes `CodeDeployHook_*`. */
  readonly hookNamePrefix?: string;
  readonly rollbackTargets: RollbackMapping[];
  readonly checkedFunctions?: CheckedFunction[];
  readonly preTrafficChecks?: object;
  readonly postTrafficChecks?: object;
  /** Alarm topics to subscribe rollback to; one is created when none is given. */
  readonly alarmTopics?: sns.ITopic[];
  /** Let CloudWatch alarms invoke rollback directly (alarm Lambda actions). */
  readonly allowDirectAlarmActions?: boolean;
  /** Reserved concurrency for rollback: an incident that exhausts the account must not starve it. */
  readonly rollbackReservedConcurrency?: number;
  readonly logRetention?: logs.RetentionDays;
  readonly dryRun?: boolean;
}

/**
 * The three ShiftGuard functions, least-privilege: every statement names the functions, aliases,
 * listeners and deployment groups it needs, except the few actions AWS cannot scope.
 */
export class ShiftGuard extends Construct {
  public readonly preTraffic: lambda.Function;
  public readonly postTraffic: lambda.Function;
  public readonly rollback: lambda.Function;
  public readonly alarmTopic: sns.ITopic;
  public readonly failureQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: ShiftGuardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const prefix = props.hookNamePrefix ?? 'CodeDeployHook_shiftguard';
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    const fn = (name: string, binary: string, environment: Record<string, string>, timeout: Duration, memory: number) => {
      const logGroup = new logs.LogGroup(this, `${binary}-logs`, {
        logGroupName: `/aws/lambda/${name}`,
        retention,
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
      const f = new lambda.Function(this, binary, {
        functionName: name,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(path.join(props.assetDir, binary, 'bootstrap.zip')),
        memorySize: memory,
        timeout,
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        environment,
        description: `ShiftGuard ${binary}`,
      });
      return f;
    };

    const checked = props.checkedFunctions ?? [];
    const hookEnv = (checks: object | undefined): Record<string, string> =>
      checks ? { HOOK_CHECKS: JSON.stringify(checks), HOOK_DEADLINE_MARGIN: '5s' } : {};
    this.preTraffic = fn(`${prefix}_pre_traffic`, 'pre-traffic', hookEnv(props.preTrafficChecks), Duration.minutes(5), 256);
    this.postTraffic = fn(`${prefix}_post_traffic`, 'post-traffic', hookEnv(props.postTrafficChecks), Duration.minutes(5), 256);
    this.rollback = fn(`${prefix.replace(/^CodeDeployHook_/, '')}_rollback`, 'rollback', {
      ROLLBACK_TARGETS: JSON.stringify(props.rollbackTargets),
      DRY_RUN: String(props.dryRun ?? false),
    }, Duration.seconds(60), 256);

    // Hooks: report to the deployment groups that deploy the checked functions, invoke only them.
    for (const hook of [this.preTraffic, this.postTraffic]) {
      if (checked.length === 0) continue;
      const groups = checked.map((c) => `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:deploymentgroup:${c.application}/${c.deploymentGroup}`);
      hook.addToRolePolicy(new iam.PolicyStatement({
        actions: ['codedeploy:PutLifecycleEventHookExecutionStatus', 'codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget', 'codedeploy:GetDeployment'],
        resources: groups,
      }));
      hook.addToRolePolicy(new iam.PolicyStatement({
        actions: ['codedeploy:GetApplicationRevision'],
        resources: checked.map((c) => `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:application:${c.application}`),
      }));
      hook.addToRolePolicy(new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: checked.map((c) => `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${c.functionName}:*`),
      }));
      // The version's description (the [shiftguard skip] bypass) and its code hash (artifact checks).
      hook.addToRolePolicy(new iam.PolicyStatement({
        actions: ['lambda:GetFunctionConfiguration', 'lambda:GetFunction'],
        resources: checked.map((c) => `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${c.functionName}:*`),
      }));
      // logs checks: the checked functions' own log groups.
      hook.addToRolePolicy(new iam.PolicyStatement({
        actions: ['logs:FilterLogEvents'],
        resources: checked.map((c) => `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:/aws/lambda/${c.functionName}:*`),
      }));
      if (hook === this.postTraffic) {
        hook.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:GetMetricData'], resources: ['*'] }));
      }
    }

    // Rollback: exactly the aliases, deployment groups and listeners in ROLLBACK_TARGETS.
    const targets = props.rollbackTargets.flatMap((m) => m.targets);
    const aliases = targets.filter((t): t is LambdaAliasTarget => t.type === 'lambda-alias');
    const listeners = targets.filter((t): t is LatticeListenerTarget => t.type === 'lattice-listener');
    const fnArn = (name: string) => name.startsWith('arn:') ? name : `arn:${stack.partition}:lambda:${stack.region}:${stack.account}:function:${name}`;
    if (aliases.length > 0) {
      this.rollback.addToRolePolicy(new iam.PolicyStatement({
        actions: ['lambda:GetAlias', 'lambda:UpdateAlias'],
        resources: aliases.flatMap((a) => [fnArn(a.function), `${fnArn(a.function)}:${a.alias}`, ...(a.stableAlias ? [`${fnArn(a.function)}:${a.stableAlias}`] : [])]),
      }));
      // Before writing a version the alias does not already name (a pinned stableVersion, the
      // version CodeDeploy restores), rollback checks that it exists.
      this.rollback.addToRolePolicy(new iam.PolicyStatement({
        actions: ['lambda:GetFunctionConfiguration'],
        resources: aliases.map((a) => `${fnArn(a.function)}:*`),
      }));
      // ListDeployments without an application cannot be scoped; with one it is the group's ARN.
      const groups = aliases.filter((a) => a.codeDeploy).map((a) => `arn:${stack.partition}:codedeploy:${stack.region}:${stack.account}:deploymentgroup:${a.codeDeploy!.application}/${a.codeDeploy!.deploymentGroup}`);
      const everyAliasHasAGroup = groups.length === aliases.length;
      this.rollback.addToRolePolicy(new iam.PolicyStatement({
        actions: ['codedeploy:ListDeployments', 'codedeploy:BatchGetDeployments', 'codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget', 'codedeploy:StopDeployment'],
        resources: everyAliasHasAGroup ? groups : ['*'],
      }));
    }
    if (listeners.length > 0) {
      this.rollback.addToRolePolicy(new iam.PolicyStatement({
        actions: ['vpc-lattice:GetListener', 'vpc-lattice:UpdateListener', 'vpc-lattice:ListRules', 'vpc-lattice:GetRule', 'vpc-lattice:UpdateRule'],
        resources: listeners.flatMap((l) => {
          const listenerArn = l.listener.startsWith('arn:') ? l.listener : `arn:${stack.partition}:vpc-lattice:${stack.region}:${stack.account}:service/${l.service}/listener/${l.listener}`;
          return [listenerArn, `${listenerArn}/rule/*`];
        }),
      }));
    }

    const stages = targets.filter((t): t is ApiGatewayCanaryTarget => t.type === 'apigateway-canary');
    if (stages.length > 0) {
      // GetStage and UpdateStage on exactly these stages.
      this.rollback.addToRolePolicy(new iam.PolicyStatement({
        actions: ['apigateway:GET', 'apigateway:PATCH'],
        resources: stages.map((t) => {
          const { api, stage } = stageOf(t);
          return `arn:${stack.partition}:apigateway:${stack.region}::/restapis/${api}/stages/${stage}`;
        }),
      }));
    }

    // Rollback's async invocations: reserved concurrency, two retries, then the failure queue.
    const key = new kms.Key(this, 'key', { enableKeyRotation: true, description: 'ShiftGuard alarm topic and failure queue', removalPolicy: RemovalPolicy.DESTROY });
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.failureQueue = new sqs.Queue(this, 'rollback-failures', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
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
    if (props.allowDirectAlarmActions) {
      this.rollback.addPermission('alarm-actions', {
        principal: new iam.ServicePrincipal('lambda.alarms.cloudwatch.amazonaws.com'),
        sourceAccount: stack.account,
      });
    }

    NagSuppressions.addResourceSuppressions(this, [
      { id: 'AwsSolutions-IAM5', reason: 'Aliases and versions of the checked/rolled-back functions are named as function:NAME:* (a version is only known at deploy time); listener rules as listener/rule/* (rule ids are assigned by Lattice); cloudwatch:GetMetricData and an unscoped codedeploy:ListDeployments cannot be scoped to resources.' },
      { id: 'AwsSolutions-SQS3', reason: 'This queue is itself the on-failure destination of the rollback function; a dead-letter queue for it would only move the same messages again.' },
    ], true);
  }
}
