import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ShiftGuard, stageOf } from '../lib/index';
import { standInAssets } from './assets';
import { stackEnvironment } from './environment';
import { CanaryExampleStack, LatticeExampleStack, ProtectExampleStack } from '../lib/stacks';

// Tests synthesize against small stand-in zips; `make build` makes the real ones.
const assetDir = standInAssets();

function synth<T extends Stack>(make: (app: App) => T): { stack: T; template: Template } {
  const app = new App();
  const stack = make(app);
  Aspects.of(stack).add(new AwsSolutionsChecks());
  return { stack, template: Template.fromStack(stack) };
}

const canary = synth((app) => new CanaryExampleStack(app, 'Canary', { assetDir, architecture: lambda.Architecture.X86_64 }));
const lattice = synth((app) => new LatticeExampleStack(app, 'Lattice', { assetDir, architecture: lambda.Architecture.ARM_64 }));
const protectExample = synth((app) => new ProtectExampleStack(app, 'Protect', { assetDir, architecture: lambda.Architecture.X86_64 }));
// An API Gateway stage canary as a typed target (issue 12).
const stageCanary = synth((app) => {
  const stack = new Stack(app, 'StageCanary', { env: { account: '123456789012', region: 'us-east-1' } });
  new ShiftGuard(stack, 'ShiftGuard', {
    assetDir,
    architecture: lambda.Architecture.X86_64,
    hookNamePrefix: 'CodeDeployHook_api',
    rollbackTargets: [{ alarms: ['api-5xx'], targets: [{ type: 'apigateway-canary', restApi: 'a1b2c3d4e5', stage: 'prod' }] }],
  });
  return stack;
});

function policyStatements(template: Template, roleLogicalIdPrefix: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies)
    .filter(([, p]: [string, any]) => JSON.stringify(p.Properties.Roles).includes(roleLogicalIdPrefix))
    .flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
}

describe('the ShiftGuard functions', () => {
  test('three provided.al2023 functions on the chosen architecture, hooks named CodeDeployHook_*', () => {
    for (const name of ['CodeDeployHook_checkout_pre_traffic', 'CodeDeployHook_checkout_post_traffic', 'checkout_rollback']) {
      canary.template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name, Runtime: 'provided.al2023', Architectures: ['x86_64'], Handler: 'bootstrap',
      });
    }
    lattice.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'orders_rollback', Architectures: ['arm64'] });
  });

  test('rollback has reserved concurrency, an on-failure destination and bounded retries', () => {
    canary.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'checkout_rollback', ReservedConcurrentExecutions: 5 });
    canary.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
    canary.template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue() });
  });

  test('rollback is subscribed to the alarm topic and may be a direct alarm action', () => {
    canary.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'lambda', TopicArn: Match.anyValue() });
    canary.template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'lambda.alarms.cloudwatch.amazonaws.com', Action: 'lambda:InvokeFunction' });
    canary.template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'sns.amazonaws.com' });
  });

  test('logs are kept for a month, in JSON', () => {
    canary.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/lambda/checkout_rollback', RetentionInDays: 30 });
    canary.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'checkout_rollback', LoggingConfig: { LogFormat: 'JSON' } });
  });

  test('ROLLBACK_TARGETS and the hooks\' checks are in the environment', () => {
    const env = stackEnvironment(canary.stack, 'checkout_rollback');
    expect(JSON.parse(env.ROLLBACK_TARGETS)[0].targets[0]).toEqual({ type: 'lambda-alias', function: 'checkout', alias: 'live', codeDeploy: { application: 'checkout', deploymentGroup: 'checkout-live' } });
    expect(JSON.parse(stackEnvironment(canary.stack, 'CodeDeployHook_checkout_pre_traffic').HOOK_CHECKS).checks.length).toBeGreaterThan(0);
  });
});

describe('least privilege', () => {
  test('rollback may touch only the configured alias and deployment group', () => {
    const statements = policyStatements(canary.template, 'rollbackrole');
    const alias = statements.find((s) => JSON.stringify(s.Action).includes('lambda:UpdateAlias'));
    expect(JSON.stringify(alias.Resource)).toContain(':function:checkout:live');
    expect(JSON.stringify(alias.Resource)).not.toContain('"*"');
    const cd = statements.find((s) => JSON.stringify(s.Action).includes('codedeploy:StopDeployment'));
    expect(JSON.stringify(cd.Resource)).toContain(':deploymentgroup:checkout/checkout-live');
    // Rollback reads deployments' creator and rollbackInfo, and checks a version exists before writing it.
    const describe_ = statements.find((s) => JSON.stringify(s.Action).includes('codedeploy:BatchGetDeployments'));
    expect(JSON.stringify(describe_.Resource)).toContain(':deploymentgroup:checkout/checkout-live');
    const versions = statements.find((s) => JSON.stringify(s.Action).includes('lambda:GetFunctionConfiguration'));
    expect(JSON.stringify(versions.Resource)).toContain(':function:checkout:*');
  });

  test('no statement has Resource "*" except the actions AWS cannot scope', () => {
    // Step Functions' log delivery (the rollout state machine) cannot be scoped either.
    // And rollback's doctor: alarms read by name prefix, and ListMetrics.
    const unscopable = new Set(['cloudwatch:GetMetricData', 'cloudwatch:DescribeAlarms', 'cloudwatch:ListMetrics', 'logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery', 'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups']);
    for (const { template } of [canary, lattice]) {
      for (const policy of Object.values(template.findResources('AWS::IAM::Policy')) as any[]) {
        for (const s of policy.Properties.PolicyDocument.Statement) {
          if (s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*'))) {
            const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
            const allowed = actions.every((a: string) => unscopable.has(a) || a.startsWith('xray:') || a.startsWith('kms:'));
            expect({ actions, allowed }).toEqual({ actions, allowed: true });
          }
        }
      }
    }
  });

  test('stableAlias: post-traffic moves exactly that alias (STABLE_ALIAS), pre-traffic writes no alias', () => {
    const { template } = synth((app) => {
      const stack = new Stack(app, 'Pointer', { env: { account: '123456789012', region: 'us-east-1' } });
      new ShiftGuard(stack, 'ShiftGuard', {
        assetDir, architecture: lambda.Architecture.X86_64, stableAlias: 'blue',
        checkedFunctions: [{ functionName: 'checkout', alias: 'live', application: 'checkout-app', deploymentGroup: 'checkout-dg' }],
        postTrafficChecks: { checks: [{ name: 'smoke', kind: 'invoke' }] },
      });
      return stack;
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'CodeDeployHook_shiftguard_post_traffic',
      Environment: { Variables: Match.objectLike({ STABLE_ALIAS: 'blue' }) },
    });
    // The partition stays a Ref: flatten each resource's Fn::Join to compare the ARNs.
    const flat = (r: any): string => typeof r === 'string' ? r : r['Fn::Join'][1].map((x: any) => typeof x === 'string' ? x : 'aws').join('');
    const post = policyStatements(template, 'posttrafficrole').filter((s) => JSON.stringify(s.Action).includes('Alias'));
    const fn = 'arn:aws:lambda:us-east-1:123456789012:function:checkout';
    expect(post.map((s) => [s.Action, [s.Resource].flat().map(flat)])).toEqual([
      [['lambda:GetAlias', 'lambda:UpdateAlias'], [fn, `${fn}:blue`]],
      ['lambda:CreateAlias', [fn]],
    ]);
    expect(JSON.stringify(policyStatements(template, 'pretrafficrole'))).not.toContain('Alias');
    expect(() => new ShiftGuard(new Stack(new App(), 'Bad'), 'ShiftGuard', { assetDir, stableAlias: '42' })).toThrow(/stableAlias/);
  });

  test('hooks may invoke only the checked function and report only to its deployment group', () => {
    const statements = policyStatements(canary.template, 'pretrafficrole');
    // Invoke and the version's code hash (artifact checks), on the same resources: one statement.
    const invoke = statements.find((s) => JSON.stringify(s.Action) === '["lambda:InvokeFunction","lambda:GetFunction"]');
    expect(JSON.stringify(invoke.Resource)).toContain(':function:checkout:*');
    const report = statements.find((s) => JSON.stringify(s.Action).includes('PutLifecycleEventHookExecutionStatus'));
    expect(JSON.stringify(report.Resource)).toContain(':deploymentgroup:checkout/checkout-live');
  });

  test('rollback reads the function\'s tags and may write only its restore record (shiftguard:restored:*) on it', () => {
    const statements = policyStatements(canary.template, 'rollbackrole');
    const fn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':function:checkout']] };
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('lambda:ListTags'))).toEqual([{ Action: 'lambda:ListTags', Effect: 'Allow', Resource: fn }]);
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('lambda:TagResource'))).toEqual([{
      Action: 'lambda:TagResource', Effect: 'Allow', Resource: fn,
      Condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored:*'] } },
    }]);
    // protect(): the same for each protected function, by its name (a Ref): one statement, each function's ARN in it.
    const protectedTags = policyStatements(protectExample.template, 'rollbackrole').filter((s) => s.Action === 'lambda:TagResource');
    expect(protectedTags).toHaveLength(1);
    expect(protectedTags[0].Resource.map((r: any) => JSON.stringify(r).match(/"Ref":"(cart|pricing)[0-9A-F]+"/)?.[1]).sort()).toEqual(['cart', 'pricing']);
    expect(protectedTags[0].Resource.map((r: any) => JSON.stringify(r)).join()).not.toContain(':*');
    for (const s of protectedTags) expect(s.Condition).toEqual({ 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored:*'] } });
  });

  test('rollback reads the Lattice listener\'s tags and may write only its restore record (shiftguard:restored) on it', () => {
    const statements = policyStatements(lattice.template, 'rollbackrole');
    const listener = statements.find((s) => JSON.stringify(s.Action).includes('vpc-lattice:UpdateListener')).Resource[0];
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('vpc-lattice:ListTagsForResource'))).toEqual([{ Action: 'vpc-lattice:ListTagsForResource', Effect: 'Allow', Resource: listener }]);
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('vpc-lattice:TagResource'))).toEqual([{
      Action: 'vpc-lattice:TagResource', Effect: 'Allow', Resource: listener,
      Condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['shiftguard:restored'] } },
    }]);
    expect(JSON.stringify(listener)).toMatch(/":service\/",\{"Fn::GetAtt":\["service","Id"\]\},"\/listener\/",\{"Fn::GetAtt":\["listener","Id"\]\}\]\]\}$/);
  });

  test('rollback may update only the Lattice listener and its rules', () => {
    const statements = policyStatements(lattice.template, 'rollbackrole');
    const l = statements.find((s) => JSON.stringify(s.Action).includes('vpc-lattice:UpdateListener'));
    expect(JSON.stringify(l.Resource)).toContain('/listener/');
    expect(JSON.stringify(l.Resource)).toContain('/rule/*');
  });
});

describe('an API Gateway stage canary target', () => {
  test('rollback may read and patch exactly that stage', () => {
    const statements = policyStatements(stageCanary.template, 'rollbackrole');
    const stage = statements.find((s) => JSON.stringify(s.Action).includes('apigateway:PATCH'));
    expect(stage.Action).toEqual(['apigateway:GET', 'apigateway:PATCH']);
    expect(JSON.stringify(stage.Resource)).toContain('::/restapis/a1b2c3d4e5/stages/prod');
    expect(JSON.stringify(stackEnvironment(stageCanary.stack, 'api_rollback').ROLLBACK_TARGETS)).toContain('apigateway-canary');
  });

  test('the stage is read from an id, an API ARN or a stage ARN; anything else names the field', () => {
    const want = { api: 'a1b2c3d4e5', stage: 'prod' };
    expect(stageOf({ type: 'apigateway-canary', restApi: 'a1b2c3d4e5', stage: 'prod' })).toEqual(want);
    expect(stageOf({ type: 'apigateway-canary', restApi: 'arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5', stage: 'prod' })).toEqual(want);
    expect(stageOf({ type: 'apigateway-canary', restApi: 'arn:aws-cn:apigateway:cn-north-1::/restapis/a1b2c3d4e5/stages/prod' })).toEqual(want);
    expect(() => stageOf({ type: 'apigateway-canary', restApi: 'a1b2c3d4e5' })).toThrow(/stage/);
    expect(() => stageOf({ type: 'apigateway-canary', restApi: 'arn:aws:execute-api:us-east-1:1:a1b2c3d4e5/prod' })).toThrow(/restApi/);
    expect(() => stageOf({ type: 'apigateway-canary', restApi: '${Token[TOKEN.1]}', stage: 'prod' })).toThrow(/restApi/);
  });
});

describe('the canary-deployed application example', () => {
  test('a deployment group with the canary config, ShiftGuard\'s hooks and the alarms', () => {
    canary.template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentGroupName: 'checkout-live',
      DeploymentConfigName: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
      AlarmConfiguration: { Enabled: true, Alarms: Match.arrayWith([{ Name: Match.anyValue() }]) },
      AutoRollbackConfiguration: { Enabled: true, Events: Match.arrayWith(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']) },
    });
    canary.template.hasResource('AWS::Lambda::Alias', {
      UpdatePolicy: { CodeDeployLambdaAliasUpdate: {
        ApplicationName: Match.anyValue(), DeploymentGroupName: Match.anyValue(),
        BeforeAllowTrafficHook: Match.anyValue(), AfterAllowTrafficHook: Match.anyValue(),
      } },
    });
  });

  test('the canary alarm watches the new version through ExecutedVersion and notifies rollback\'s topic', () => {
    canary.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'checkout-canary-errors',
      Dimensions: Match.arrayWith([Match.objectLike({ Name: 'ExecutedVersion' })]),
      AlarmActions: [Match.objectLike({ Ref: Match.stringLikeRegexp('alarms') })],
    });
  });
});

describe('the VPC Lattice example', () => {
  test('a listener all on production, the canary group in it at weight 0, alarms on the canary target group', () => {
    lattice.template.hasResourceProperties('AWS::VpcLattice::Listener', {
      DefaultAction: { Forward: { TargetGroups: [Match.objectLike({ Weight: 100 }), Match.objectLike({ Weight: 0 })] } },
    });
    lattice.template.resourceCountIs('AWS::VpcLattice::TargetGroup', 2);
    for (const name of ['orders-canary-5xx', 'orders-canary-latency']) {
      lattice.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: name, Namespace: 'AWS/VpcLattice' });
    }
    const targets = stackEnvironment(lattice.stack, 'orders_rollback').ROLLBACK_TARGETS;
    expect(JSON.stringify(targets)).toContain('lattice-listener');
  });

  test('a rollout of orders: the state machine, shift, the plan naming the listener, both groups, the alarms and the check function', () => {
    lattice.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'orders_shift', Runtime: 'provided.al2023', Architectures: ['arm64'] });
    const machines = lattice.template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'orders-rollout' } });
    expect(Object.keys(machines)).toHaveLength(1);
    // A construct's logical id: its id, with CDK's hash when it is not a top-level L1 resource.
    const id = (name: string) => Object.keys(lattice.template.toJSON().Resources).find((k) => new RegExp(`^${name}([0-9A-F]{8})?$`).test(k))!;
    // The plan (the Defaults state's Result) with every id a Fn::GetAtt / Ref: put them back in as text and read it.
    const parts: unknown[] = (Object.values(machines)[0] as any).Properties.DefinitionString['Fn::Join'][1];
    const definition = JSON.parse(parts.map((p: any) => typeof p === 'string' ? p : p.Ref ? `<${p.Ref}>` : `<${p['Fn::GetAtt'].join('.')}>`).join(''));
    expect(definition.States.Defaults.Result).toEqual({
      target: {
        type: 'lattice-listener', service: `<${id('service')}.Id>`, listener: `<${id('listener')}.Id>`,
        productionTargetGroup: `<${id('production')}.Id>`, canaryTargetGroup: `<${id('canary')}.Id>`,
      },
      steps: [10, 25, 50, 100].map((weight) => ({ weight, bake: '5m' })),
      alarms: [`<${id('canary5xx')}>`, `<${id('canarylatency')}>`],
      checks: { before: { checks: [expect.objectContaining({ name: 'health', kind: 'invoke' })] } },
      checkFunction: { function: `<${id('orders')}>`, version: `<${id('ordersCurrentVersion[0-9A-F]{8}[0-9a-f]{32}')}.Version>`, currentVersion: `<${id('productionversion')}.Version>` },
    });
    expect(Object.keys(lattice.template.findOutputs('*', { Value: { Ref: Object.keys(machines)[0] } }))).toHaveLength(1);
    // shift may move this listener's weights and the production group's targets, and invoke orders' versions.
    const statements = policyStatements(lattice.template, 'ShiftGuardshiftrole');
    const update = statements.find((s) => JSON.stringify(s.Action).includes('vpc-lattice:UpdateListener'));
    expect(JSON.stringify(update.Resource)).toContain(`/listener/",{"Fn::GetAtt":["${id('listener')}","Id"]}`);
    // A LAMBDA production group (productionAlias): promotion moves its alias, registers nothing.
    expect(statements.find((s) => JSON.stringify(s.Action).includes('vpc-lattice:RegisterTargets'))).toBeUndefined();
    const invoke = statements.find((s) => JSON.stringify(s.Action).includes('lambda:InvokeFunction'));
    expect(JSON.stringify(invoke.Resource)).toContain(`function:",{"Ref":"${id('orders')}"},":*"`);
  });

  test('production\'s LAMBDA group serves the alias live (never a version); the rollout promotes through it', () => {
    const resources = lattice.template.toJSON().Resources as Record<string, any>;
    const id = (name: string) => Object.keys(resources).find((k) => new RegExp(`^${name}([0-9A-F]{8})?$`).test(k))!;
    const live = id('live');
    expect(resources[live]).toMatchObject({ Type: 'AWS::Lambda::Alias', Properties: { Name: 'live', FunctionName: { Ref: id('orders') }, FunctionVersion: { 'Fn::GetAtt': [id('productionversion'), 'Version'] } } });
    // An alias-qualified target in production, a published version in the canary group: what shift's promotion needs.
    expect(resources[id('production')].Properties).toMatchObject({ Type: 'LAMBDA', Targets: [{ Id: { Ref: live } }] });
    expect(resources[id('canary')].Properties.Targets).toEqual([{ Id: { Ref: expect.stringMatching(/^ordersCurrentVersion/) } }]);
    lattice.template.hasResourceProperties('AWS::Lambda::Permission', { FunctionName: { Ref: live }, Principal: 'vpc-lattice.amazonaws.com', Action: 'lambda:InvokeFunction' });
    const group = (g: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':vpc-lattice:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':targetgroup/', { 'Fn::GetAtt': [g, 'Id'] }]] });
    // shift: the alias, read and moved; both groups' type (GetTargetGroup) and targets.
    const shift = policyStatements(lattice.template, 'ShiftGuardshiftrole');
    expect(shift.filter((s) => JSON.stringify(s.Action).includes('lambda:UpdateAlias'))).toEqual([{ Action: ['lambda:GetAlias', 'lambda:UpdateAlias'], Effect: 'Allow', Resource: { Ref: live } }]);
    expect(shift.filter((s) => JSON.stringify(s.Action).includes('vpc-lattice:GetTargetGroup'))).toEqual([{ Action: ['vpc-lattice:ListTargets', 'vpc-lattice:GetTargetGroup'], Effect: 'Allow', Resource: [group(id('canary')), group(id('production'))] }]);
    // rollback (mapped to the same listener and production group): the alias back on `prev`.
    const rollback = policyStatements(lattice.template, 'rollbackrole');
    expect(rollback.filter((s) => JSON.stringify(s.Action).includes('lambda:'))).toEqual([{ Action: ['lambda:GetAlias', 'lambda:UpdateAlias'], Effect: 'Allow', Resource: { Ref: live } }]);
    expect(rollback.filter((s) => JSON.stringify(s.Action).includes('vpc-lattice:ListTargets'))).toEqual([{ Action: 'vpc-lattice:ListTargets', Effect: 'Allow', Resource: group(id('production')) }]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  test.each([['canary', canary], ['lattice', lattice], ['stage canary', stageCanary], ['protect', protectExample]])('%s: no unsuppressed findings', (_name, { stack }) => {
    const findings = [
      ...Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ].map((f) => `${f.id}: ${JSON.stringify(f.entry.data).slice(0, 160)}`);
    expect(findings).toEqual([]);
  });
});

describe('protect(fn): one call per function', () => {
  const { template } = protectExample;
  const rollbackEnv = () => stackEnvironment(protectExample.stack, 'shop_rollback');
  const resolved = (v: unknown) => JSON.stringify(v);
  // Alarms are named by Ref (the alarm's name); these are the logical ids of cart's and pricing's.
  const alarmRefs = (fn: string) => ['canary-error-rate', 'canary-p99', 'error-rate', 'p99'].map((suffix) => {
    const found = Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: `${fn}-live-${suffix}` } }));
    expect(found).toHaveLength(1);
    return { Ref: found[0] };
  });

  test('a version alarm watches the new version: ExecutedVersion and Resource = fn:alias', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'cart-live-canary-p99',
      Threshold: 800,
      Dimensions: Match.arrayWith([
        { Name: 'ExecutedVersion', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^cartCurrentVersion'), 'Version'] } },
        { Name: 'Resource', Value: { 'Fn::Join': ['', [{ Ref: Match.stringLikeRegexp('^cart') }, ':live']] } },
      ]),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('ShiftGuardalarms') }],
    });
    // The error rate is Errors / Invocations of the same version.
    const rate = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: 'cart-live-canary-error-rate' } }))[0] as any;
    expect(rate.Properties.Threshold).toBe(0.01);
    const metrics = rate.Properties.Metrics;
    expect(metrics.find((m: any) => m.Expression).Expression).toBe('versionErrors / versionInvocations');
    for (const name of ['Errors', 'Invocations']) {
      const dims = metrics.find((m: any) => m.MetricStat?.Metric.MetricName === name).MetricStat.Metric.Dimensions.map((d: any) => d.Name);
      expect(dims.sort()).toEqual(['ExecutedVersion', 'FunctionName', 'Resource']);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'cart-live-error-rate' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'cart-live-p99', Dimensions: Match.not(Match.arrayWith([Match.objectLike({ Name: 'ExecutedVersion' })])) });
  });

  test('the deployment group has the four alarms, both hooks and the canary config', () => {
    const groups = template.findResources('AWS::CodeDeploy::DeploymentGroup');
    expect(Object.keys(groups)).toHaveLength(2);
    template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentConfigName: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
      AlarmConfiguration: { Enabled: true, Alarms: alarmRefs('cart').map((Name) => ({ Name })) },
      AutoRollbackConfiguration: { Enabled: true, Events: Match.arrayWith(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']) },
    });
    template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', { DeploymentConfigName: 'CodeDeployDefault.LambdaLinear10PercentEvery1Minute' });
    const aliases = Object.values(template.findResources('AWS::Lambda::Alias')) as any[];
    expect(aliases).toHaveLength(2);
    for (const alias of aliases) {
      expect(alias.Properties.Name).toBe('live');
      const update = alias.UpdatePolicy.CodeDeployLambdaAliasUpdate;
      expect(resolved(update.BeforeAllowTrafficHook)).toContain('pretraffic');
      expect(resolved(update.AfterAllowTrafficHook)).toContain('posttraffic');
    }
  });

  test('ROLLBACK_TARGETS (lazy) has both aliases and their alarms by name', () => {
    const targets = resolved(rollbackEnv().ROLLBACK_TARGETS);
    for (const fn of ['cart', 'pricing']) {
      // By name, not Ref: a generated name would be a deploy-time value in the environment.
      alarmRefs(fn);
      for (const suffix of ['canary-error-rate', 'canary-p99', 'error-rate', 'p99']) expect(targets).toContain(`\\"${fn}-live-${suffix}\\"`);
      expect(targets).toMatch(new RegExp(`\\\\"function\\\\":\\\\"",\\{"Ref":"${fn}[0-9A-F]+"\\},"\\\\",\\\\"alias\\\\":\\\\"live`));
    }
    expect(targets).toContain('lambda-alias');
    expect(targets).toContain('deploymentGroup');
  });

  test('the hooks run one check set in which each protect() call\'s checks name its function', () => {
    // HOOK_CHECKS is JSON joined around the functions' Refs: put them back in as text and read it.
    const joined = stackEnvironment(protectExample.stack, 'CodeDeployHook_shop_pre_traffic').HOOK_CHECKS['Fn::Join'];
    const checks = JSON.parse(joined[1].map((p: any) => typeof p === 'string' ? p : `Ref:${p.Ref}`).join(''));
    expect(checks.checks.map((c: any) => [c.name, ...c.functions.map((f: string) => f.replace(/[0-9A-F]{8}$/, ''))])).toEqual([
      ['health', 'Ref:cart'], ['burst', 'Ref:cart'], ['health', 'Ref:pricing'], ['burst', 'Ref:pricing'],
    ]);
    expect(checks.concurrency).toBe(4);
  });

  test('a protected function without post-traffic checks fails synthesis, naming the hook', () => {
    const app = new App();
    const stack = new Stack(app, 'NoChecks');
    const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64 });
    const fn = new lambda.Function(stack, 'f', { runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1') });
    const p = sg.protect(fn, { preTraffic: { checks: [{ name: 'smoke', kind: 'invoke' }] } });
    expect(p.alarms).toHaveLength(4);
    expect(() => app.synth()).toThrow(/post-traffic hook, which has no checks/);
  });

  test('the hooks may invoke, read and report for each protected function, and nothing else', () => {
    const statements = policyStatements(template, 'pretrafficrole');
    for (const fn of ['cart', 'pricing']) {
      const ref = new RegExp(`"Ref":"${fn}[0-9A-F]+"\\},":\\*"`);
      // Invoke, and the code hash for artifact checks (one statement: the same resources); the
      // bypass reads no version description (issue 21).
      const invoke = statements.filter((s) => JSON.stringify(s.Action) === '["lambda:InvokeFunction","lambda:GetFunction"]').map(resolved);
      expect(invoke.some((r) => ref.test(r))).toBe(true);
      expect(JSON.stringify(statements)).not.toContain('lambda:GetFunctionConfiguration');
      const logs = statements.filter((s) => s.Action === 'logs:FilterLogEvents').map(resolved);
      expect(logs.some((r) => new RegExp(`log-group:/aws/lambda/",\\{"Ref":"${fn}[0-9A-F]+"\\},":\\*"`).test(r))).toBe(true);
      const report = statements.filter((s) => resolved(s.Action).includes('PutLifecycleEventHookExecutionStatus')).map(resolved);
      // By the group's name (given by the construct; its Ref would be as long as the name allows).
      expect(report.some((r) => new RegExp(`deploymentgroup:",\\{"Ref":"ShiftGuardapplication[0-9A-F]+"\\},"/[A-Za-z0-9-]*-protect${fn}live-[0-9A-F]{8}"`).test(r))).toBe(true);
    }
    // One statement per set of actions, every function's resources in it.
    const actions = statements.map((s) => JSON.stringify(s.Action));
    expect(new Set(actions).size).toBe(actions.length);
    for (const s of statements) expect(resolved(s.Resource)).not.toBe('"*"');
  });

  test('rollback only reads a stable pointer, and stops deployments in groups, never "*"', () => {
    const app = new App();
    const stack = new Stack(app, 'Pointers', { env: { account: '123456789012', region: 'us-east-1' } });
    const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64 });
    sg.addRollbackMapping({ alarms: ['a'], targets: [
      { type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlias: 'blue', codeDeploy: { application: 'app', deploymentGroup: 'dg' } },
      { type: 'lambda-alias', function: 'pay', alias: 'live' },
    ] });
    const statements = policyStatements(Template.fromStack(stack), 'rollbackrole');
    const updates = statements.filter((s) => resolved(s.Action).includes('lambda:UpdateAlias')).map((s) => resolved(s.Resource));
    for (const r of updates) expect(r).not.toContain(':blue');
    const reads = statements.filter((s) => resolved(s.Action) === '"lambda:GetAlias"').map((s) => resolved(s.Resource));
    expect(reads.join()).toContain('function:checkout:blue');
    const stop = statements.filter((s) => resolved(s.Action).includes('codedeploy:StopDeployment'));
    expect(stop).toHaveLength(1);
    expect(resolved(stop[0].Resource)).not.toContain('"*"');
    expect(resolved(stop[0].Resource)).toContain('deploymentgroup:app/dg');
    expect(resolved(stop[0].Resource)).toContain('deploymentgroup:*');
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('pay:live names no codeDeploy group'))).toHaveLength(1);
  });

  test('rollback may update exactly the protected aliases and stop only their deployment groups', () => {
    const statements = policyStatements(template, 'rollbackrole');
    // One statement for both functions (the same actions), each function and its alias `live` in it.
    const update = statements.filter((s) => resolved(s.Action).includes('lambda:UpdateAlias')).flatMap((s) => [s.Resource].flat().map(resolved));
    expect(update).toHaveLength(4);
    expect(update.filter((r) => r.endsWith(':live"]]}'))).toHaveLength(2);
    for (const fn of ['cart', 'pricing']) expect(update.filter((r) => new RegExp(`"Ref":"${fn}[0-9A-F]+"`).test(r))).toHaveLength(2);
    const stop = statements.filter((s) => resolved(s.Action).includes('codedeploy:StopDeployment')).flatMap((s) => [s.Resource].flat().map(resolved));
    expect(stop).toHaveLength(2);
    for (const r of stop) expect(r).toContain('deploymentgroup');
  });

  test('a dashboard per function: canary metrics and ShiftGuard decision metrics', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as any[];
    expect(dashboards).toHaveLength(2);
    const body = resolved(dashboards[0].Properties.DashboardBody);
    for (const want of ['ExecutedVersion', '\\"ShiftGuard\\",\\"Hooks\\"', 'CheckVerdicts', 'RollbackActions', 'AlarmToRestored', 'Phase', 'Outcome']) {
      expect(body).toContain(want);
    }
  });
});
