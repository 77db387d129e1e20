// The deploy-time doctor: after a deploy, rollback checks its own safety net
// (`{"shiftguard":"doctor"}`, rollback/src/doctor.rs), and a serious finding fails the deploy — not
// the 3 a.m. incident.
//
// aws-cdk-lib's `triggers.Trigger` invokes its handler without a payload, so it cannot ask rollback
// for doctor itself: a small `TriggerFunction` (inline Node.js, DOCTOR_HANDLER below) does, and
// throws with the serious findings. CloudFormation runs a trigger only when the trigger resource
// changes, which it does when the trigger function's configuration does (its `currentVersion`):
// the function's environment carries a hash of what the doctor checks (ROLLBACK_TARGETS, the
// stack's alarms, the alarm topics, rollback's code), so a deploy that changes any of them runs it.
import { createHash } from 'crypto';
import { CfnResource, Duration, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct, Dependable, IConstruct } from 'constructs';

/**
 * The trigger function's code (index.js, CommonJS; the AWS SDK v3 of the Lambda Node.js runtime).
 * `exports.run` is the whole logic with its clients, environment, log and sleep given (the tests
 * evaluate this text with fakes); `exports.handler` gives it the real ones. Kept under 4096
 * characters, CloudFormation's historical limit for inline code.
 *
 * - Invokes rollback (RequestResponse) with `{"shiftguard":"doctor"}`, retrying AccessDenied for up
 *   to a minute (a new role's grant takes a few seconds to apply).
 * - A report with no serious finding: logs its warnings, succeeds.
 * - `Rollback.DoctorFoundProblems`: throws with the serious findings (at most 5 listed, each
 *   clipped: CloudFormation's custom resource response is 4 KB at most); any other function error:
 *   throws with it. Every finding is logged in full.
 * - While the stack is rolling back (a failed deploy's rollback runs the trigger again, before the
 *   resources it checks are put back), a failure is logged, never thrown: failing a rollback would
 *   leave the stack in UPDATE_ROLLBACK_FAILED.
 */
export const DOCTOR_HANDLER = `'use strict';
// ShiftGuard doctor, run by a CDK trigger after a deploy (shiftguard-cdk lib/doctor.ts).
const L = require('@aws-sdk/client-lambda');
const C = require('@aws-sdk/client-cloudformation');
const MAX = 5;
const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + '\\u2026' : s);
const line = (f) => '[' + f.check + '] ' + f.subject + ': ' + f.message;
const parse = (t) => { try { return JSON.parse(t); } catch (e) { return undefined; } };
function failure(message) {
  const e = new Error(message);
  e.name = 'ShiftGuardDoctor';
  e.stack = ''; // CloudFormation shows the message (4 KB at most): no trace
  return e;
}
// rollback's Invoke response: its report, or a thrown failure.
function judge(fn, res) {
  const text = res.Payload ? Buffer.from(res.Payload).toString('utf8') : '';
  const body = parse(text);
  if (res.FunctionError) {
    const type = (body && body.errorType) || res.FunctionError;
    const msg = String((body && body.errorMessage) || text);
    const at = msg.indexOf('report: ');
    const report = type === 'Rollback.DoctorFoundProblems' && at >= 0 ? parse(msg.slice(at + 8)) : undefined;
    if (report && Array.isArray(report.findings)) return report;
    throw failure('ShiftGuard doctor: ' + fn + ' failed with ' + type + ': ' + clip(msg, 1500));
  }
  if (!body || typeof body.doctor !== 'string' || !Array.isArray(body.findings)) {
    throw failure('ShiftGuard doctor: ' + fn + ' did not answer with a doctor report (a rollback without doctor?): ' + clip(text, 500));
  }
  return body;
}
async function check(c, env, log, sleep) {
  const fn = env.ROLLBACK_FUNCTION;
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await c.lambda.send(new L.InvokeCommand({ FunctionName: fn, InvocationType: 'RequestResponse', Payload: JSON.stringify({ shiftguard: 'doctor' }) }));
      break;
    } catch (e) {
      if (e.name !== 'AccessDeniedException' || attempt >= 12) throw e;
      log.warn('ShiftGuard doctor: may not invoke ' + fn + ' yet (' + e.message + '); again in 5 s');
      await sleep(5000);
    }
  }
  const report = judge(fn, res);
  const serious = report.findings.filter((f) => f.severity === 'serious');
  for (const f of report.findings) log[f.severity === 'serious' ? 'error' : 'warn']('ShiftGuard doctor: ' + f.severity + ' ' + line(f));
  const summary = report.alarmsChecked + ' alarm(s), ' + report.targetsChecked + ' target(s) checked; ' + serious.length + ' serious, ' + (report.findings.length - serious.length) + ' warning(s)';
  if (serious.length === 0) {
    log.log('ShiftGuard doctor: the safety net of ' + fn + ' is sound: ' + summary);
    return { healthy: true, serious: 0, warnings: report.findings.length };
  }
  throw failure([
    'ShiftGuard doctor: ' + serious.length + ' serious problem(s) in the safety net of ' + fn + ' (' + summary + '):',
    ...serious.slice(0, MAX).map((f) => '- ' + clip(line(f), 240)),
    ...(serious.length > MAX ? ['- and ' + (serious.length - MAX) + ' more (in this log)'] : []),
    'Fix them and deploy again, or turn the check off (ShiftGuard doctor: false).',
  ].join('\\n'));
}
async function run(c, env, log, sleep) {
  try {
    return await check(c, env, log, sleep);
  } catch (e) {
    let status;
    try {
      const out = await c.cloudformation.send(new C.DescribeStacksCommand({ StackName: env.SHIFTGUARD_STACK_ID }));
      status = out.Stacks[0].StackStatus;
    } catch (d) {
      log.error('ShiftGuard doctor: could not tell whether the stack is rolling back: ' + d.message);
    }
    if (!status || !status.includes('ROLLBACK')) throw e;
    log.error(e.message);
    log.warn('ShiftGuard doctor: the stack is rolling back (' + status + '), which is never failed');
    return { healthy: false, rollingBack: status };
  }
}
exports.run = run;
exports.handler = async () => run({ lambda: new L.LambdaClient({}), cloudformation: new C.CloudFormationClient({}) },
  process.env, console, (ms) => new Promise((r) => setTimeout(r, ms)));
`;

export interface DoctorProps {
  /** The rollback function the doctor asks. */
  readonly rollback: lambda.Function;
  readonly functionName: string;
  readonly architecture: lambda.Architecture;
  readonly logRetention: logs.RetentionDays;
  /** ROLLBACK_TARGETS, read at synth (mappings added after construction count). */
  readonly rollbackTargets: () => unknown;
  /** The topics rollback hears alarms on. */
  readonly alarmTopics: sns.ITopic[];
}

/** What the doctor reads in its stack: the trigger runs after every such resource is in place. */
const READ_TYPES = new Set([
  'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm', 'AWS::SNS::Topic', 'AWS::SNS::Subscription',
  'AWS::Lambda::Function', 'AWS::Lambda::Alias', 'AWS::Lambda::Permission',
  'AWS::CodeDeploy::Application', 'AWS::CodeDeploy::DeploymentGroup',
  'AWS::VpcLattice::Service', 'AWS::VpcLattice::Listener', 'AWS::VpcLattice::TargetGroup', 'AWS::ApiGateway::Stage',
]);

/** Every Doctor in the app: a doctor's own resources are nothing another doctor waits for. */
const doctors = new WeakSet<IConstruct>();

/**
 * rollback's `{"shiftguard":"doctor"}`, run by CloudFormation after the deploy of the stack (a
 * `triggers.TriggerFunction`): the deploy fails when the report has a serious finding. See
 * DOCTOR_HANDLER for what the function does, and the file's head for when it runs.
 *
 * Least privilege: the function may invoke rollback (its unqualified ARN) and describe its own
 * stack (to tell a rollback from a deploy), nothing else; its logs go to a log group of its own.
 */
export class Doctor extends Construct {
  public readonly function: triggers.TriggerFunction;

  constructor(scope: Construct, id: string, props: DoctorProps) {
    super(scope, id);
    doctors.add(this);
    const stack = Stack.of(this);
    const logGroup = new logs.LogGroup(this, 'logs', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'ShiftGuard doctor (deploy-time trigger)',
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.rollback.functionArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [stack.stackId] }));

    this.function = new triggers.TriggerFunction(this, 'function', {
      functionName: props.functionName,
      description: 'ShiftGuard doctor: rollback checks its safety net after each deploy; a serious finding fails the deploy',
      runtime: lambda.Runtime.NODEJS_LATEST,
      architecture: props.architecture,
      handler: 'index.handler',
      code: lambda.Code.fromInline(DOCTOR_HANDLER),
      // rollback's own timeout is a minute; AccessDenied is retried for one more.
      timeout: Duration.minutes(3),
      memorySize: 256,
      role,
      logGroup,
      environment: {
        ROLLBACK_FUNCTION: props.rollback.functionArn,
        SHIFTGUARD_STACK_ID: stack.stackId,
        // A new value, a new version of this function: the trigger runs again.
        SHIFTGUARD_DOCTOR_INPUTS: Lazy.string({ produce: () => this.inputsHash(props) }),
      },
      executeOnHandlerChange: true,
    });
    // After everything the doctor reads, as it is when the deploy ends: the ShiftGuard's own
    // resources (rollback, its topic and subscriptions, protect()'s alarms, aliases and groups)
    // and the stack's alarms, aliases, groups, topics, functions, Lattice and API resources —
    // the ones that exist at synth, when this is rendered.
    const after = new LazyDependable(() => this.readResources(scope));
    this.function.trigger.node.addDependency(after);
  }

  /** The CloudFormation resources of the stack the doctor's checks depend on (see READ_TYPES), its own and other doctors' aside. */
  private readResources(scope: Construct): IConstruct[] {
    const stack = Stack.of(this);
    const inDoctor = (c: IConstruct) => c.node.scopes.some((s) => doctors.has(s));
    // A resource made to wait for the ShiftGuard (or anything holding this doctor) waits for its
    // trigger: waiting for it in turn would be a cycle.
    const mine = new Set<IConstruct>(this.node.scopes.filter((s) => s.node.scope !== undefined && !Stack.isStack(s)));
    const waitsForMe = (c: IConstruct) => c.node.scopes.some((s) => s.node.dependencies.some((d) => mine.has(d)));
    const own = scope.node.findAll().filter((c) => CfnResource.isCfnResource(c) && !inDoctor(c));
    const read = stack.node.findAll().filter((c) => CfnResource.isCfnResource(c) && READ_TYPES.has(c.cfnResourceType) && Stack.of(c) === stack && !inDoctor(c));
    return [...new Set([...own, ...read])].filter((c) => !waitsForMe(c));
  }

  /** A hash of what the doctor checks, rendered: the map, every alarm of the stack, the topics, rollback's code. */
  private inputsHash(props: DoctorProps): string {
    const stack = Stack.of(this);
    const alarms = stack.node.findAll()
      .filter((c): c is CfnResource => CfnResource.isCfnResource(c) && Stack.of(c) === stack
        && (c.cfnResourceType === 'AWS::CloudWatch::Alarm' || c.cfnResourceType === 'AWS::CloudWatch::CompositeAlarm'))
      .map((a) => {
        const p = a as unknown as Record<string, unknown>;
        return [a.logicalId, ...['alarmName', 'namespace', 'metricName', 'dimensions', 'metrics', 'alarmRule', 'actionsEnabled', 'alarmActions'].map((k) => p[k])];
      });
    const inputs = {
      rollbackTargets: props.rollbackTargets(),
      alarms,
      topics: props.alarmTopics.map((t) => t.topicArn),
      rollbackCode: (props.rollback.node.defaultChild as lambda.CfnFunction).code,
    };
    return createHash('sha256').update(canonical(stack.resolve(inputs))).digest('hex').slice(0, 32);
  }
}

/** JSON with every object's keys sorted: the same value, however its fields were ordered, hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A dependency whose constructs are known only at synth (when the dependencies are rendered). */
class LazyDependable {
  constructor(roots: () => IConstruct[]) {
    Dependable.implement(this, { get dependencyRoots() { return roots(); } });
  }
}
