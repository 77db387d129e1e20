// The construct as a library: `npm pack`, install the tarball offline into a fresh CDK app, and
// synthesize a stack that imports ShiftGuard by the package's name.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..'); // cdk/ (tests run from dist/test)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack → offline install into a fresh CDK app → synth with protect() and rollout()', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shiftguard-pack-'));
  const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  // dist/ is already built by `tsc` (jest runs the compiled tests); no prepack rebuild here.
  const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, env, encoding: 'utf8' }));
  const tarball = path.join(work, packed[0].filename);
  const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
  expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/shiftguard.js', 'dist/lib/shiftguard.d.ts',
    'dist/lib/rollout.js', 'dist/lib/rollout.d.ts', 'dist/lib/nag.js', 'dist/lib/nag.d.ts']));
  expect(files.filter((f) => f.startsWith('dist/test') || f.startsWith('dist/bin') || f.includes('stacks'))).toEqual([]);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'tiny-cdk-app', version: '1.0.0', private: true }));
  // Peers are not fetched (--legacy-peer-deps): the app gets aws-cdk-lib and constructs from cdk/node_modules below.
  execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--legacy-peer-deps', '--no-package-lock', tarball], { cwd: app, env, stdio: 'pipe' });
  for (const peer of ['aws-cdk-lib', 'constructs']) {
    fs.symlinkSync(path.join(root, 'node_modules', peer), path.join(app, 'node_modules', peer), 'dir');
  }
  const assets = path.join(app, 'zips');
  for (const bin of ['pre-traffic', 'post-traffic', 'rollback', 'shift']) {
    fs.mkdirSync(path.join(assets, bin), { recursive: true });
    fs.writeFileSync(path.join(assets, bin, 'bootstrap.zip'), Buffer.from('504b0506000000000000000000000000000000000000', 'hex'));
  }
  fs.writeFileSync(path.join(app, 'app.js'), `
const { App, Stack } = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ShiftGuard } = require('shiftguard-cdk');

const app = new App({ outdir: ${JSON.stringify(path.join(app, 'cdk.out'))} });
const stack = new Stack(app, 'Tiny');
const api = new lambda.Function(stack, 'api', {
  functionName: 'api', runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler',
  code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" })'),
});
const guard = new ShiftGuard(stack, 'ShiftGuard', { assetDir: ${JSON.stringify(assets)}, architecture: lambda.Architecture.X86_64 });
guard.protect(api, {
  alias: 'live',
  preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', payload: { path: '/health' }, expect: { status: 200 } }] },
  postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invoke', expect: { status: 200 } }] },
  alarms: { errorRate: 0.01, p99Ms: 800 },
});
guard.rollout('api', {
  target: { type: 'lambda-alias', function: 'api', alias: 'live' },
  steps: [{ weight: 10, bake: '5m' }, { weight: 100, bake: '5m' }],
  alarms: ['api-live-error-rate'],
});
process.stdout.write(JSON.stringify(app.synth().getStackByName('Tiny').template));
`);
  const template = JSON.parse(execFileSync(process.execPath, ['app.js'], { cwd: app, encoding: 'utf8' }));
  const resources = Object.values(template.Resources) as any[];
  const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function').map((r) => r.Properties.FunctionName);
  expect(functions.sort()).toEqual(['CodeDeployHook_shiftguard_post_traffic', 'CodeDeployHook_shiftguard_pre_traffic', 'api', 'shiftguard_rollback', 'shiftguard_shift']);
  // rollout(): a state machine that invokes shift, with the plan as its defaults.
  const machines = resources.filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  expect(machines).toHaveLength(1);
  const definition = JSON.parse(machines[0].Properties.DefinitionString['Fn::Join'][1].map((p: any) => typeof p === 'string' ? p : '<ref>').join(''));
  expect(definition.States.Defaults.Result.target).toEqual({ type: 'lambda-alias', function: 'api', alias: 'live' });
  expect(definition.States.Bake.SecondsPath).toBe('$.last.waitSeconds');
  const rollback = resources.find((r) => r.Properties?.FunctionName === 'shiftguard_rollback');
  // ROLLBACK_TARGETS is JSON joined around Refs: put the Refs back in as text and read it.
  const parts: unknown[] = rollback.Properties.Environment.Variables.ROLLBACK_TARGETS['Fn::Join'][1];
  const mappings = JSON.parse(parts.map((p: any) => typeof p === 'string' ? p : `Ref:${p.Ref}`).join(''));
  expect(mappings).toHaveLength(1);
  expect(mappings[0].targets).toEqual([{
    type: 'lambda-alias', function: expect.stringMatching(/^Ref:api/), alias: 'live',
    codeDeploy: { application: expect.stringMatching(/^Ref:ShiftGuardapplication/), deploymentGroup: expect.stringMatching(/^Ref:.*deploymentgroup/) },
  }]);
  // The protect() call's checks run only for api's deployments: functions: [api's name] (a Ref).
  const hook = resources.find((r) => r.Properties?.FunctionName === 'CodeDeployHook_shiftguard_pre_traffic');
  const checkParts: unknown[] = hook.Properties.Environment.Variables.HOOK_CHECKS['Fn::Join'][1];
  const checks = JSON.parse(checkParts.map((p: any) => typeof p === 'string' ? p : `Ref:${p.Ref}`).join(''));
  expect(checks.checks).toEqual([expect.objectContaining({ name: 'smoke', functions: [expect.stringMatching(/^Ref:api[0-9A-F]{8}$/)] })]);
  const alarms = Object.entries(template.Resources).filter(([, r]: [string, any]) => r.Type === 'AWS::CloudWatch::Alarm');
  expect(alarms.map(([, r]: [string, any]) => r.Properties.AlarmName).sort()).toEqual(['api-live-canary-error-rate', 'api-live-canary-p99', 'api-live-error-rate', 'api-live-p99']);
  expect([...mappings[0].alarms].sort()).toEqual(alarms.map(([id]) => `Ref:${id}`).sort());
  expect(resources.filter((r) => r.Type === 'AWS::CodeDeploy::DeploymentGroup')).toHaveLength(1);
  fs.rmSync(work, { recursive: true, force: true });
}, 60000);
