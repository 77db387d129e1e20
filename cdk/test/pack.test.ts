// The construct as a library: `npm pack`, install the tarball offline into fresh CDK apps, and
// synthesize a stack that imports ShiftGuard by the package's name; then the same app checked by
// cdk-nag 2.x and 3.x, each installed into an app of its own as a user installs it. The app
// protects many functions (MANY; issue 22, "adopt it at scale"): past what the roles' inline policies
// hold, so the managed policies the construct adds for them are synthesized and judged too.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { standInAssets } from './assets';

const root = path.resolve(__dirname, '..', '..'); // cdk/ (tests run from dist/test)
const repo = path.resolve(root, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shiftguard-pack-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** `npm pack` of a directory into `work`: the tarball and the paths in it. */
function pack(dir: string): { tarball: string; files: string[] } {
  const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: dir, env, encoding: 'utf8' }));
  return { tarball: path.join(work, packed[0].filename), files: packed[0].files.map((f: { path: string }) => f.path) };
}

// dist/ is already built by `tsc` (jest runs the compiled tests); no prepack rebuild here.
const shiftguard = pack(root);
// The cdk-nag majors, as the lockfile pins them (devDependencies cdk-nag and cdk-nag-v3): packed
// from what `npm ci` installed, so the apps install them offline, as `cdk-nag`.
const NAG: Record<string, string> = { 2: path.join(root, 'node_modules', 'cdk-nag'), 3: path.join(root, 'node_modules', 'cdk-nag-v3') };

/** A fresh app: the tarball (and a cdk-nag) installed offline; the peers from cdk/node_modules. */
function makeApp(name: string, nag?: string): string {
  const app = path.join(work, name);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `tiny-cdk-app-${name}`, version: '1.0.0', private: true }));
  const tarballs = [shiftguard.tarball, ...(nag ? [pack(nag).tarball] : [])];
  // Peers are not fetched (--legacy-peer-deps): the app gets aws-cdk-lib and constructs from cdk/node_modules below.
  execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--legacy-peer-deps', '--no-package-lock', ...tarballs], { cwd: app, env, stdio: 'pipe' });
  for (const peer of ['aws-cdk-lib', 'constructs']) {
    fs.symlinkSync(path.join(root, 'node_modules', peer), path.join(app, 'node_modules', peer), 'dir');
  }
  fs.writeFileSync(path.join(app, 'app.js'), APP);
  fs.writeFileSync(path.join(app, 'typo.js'), TYPO);
  return app;
}

const assets = standInAssets({ dir: path.join(work, 'zips') });

/** Functions the app protects: `api` and MANY - 1 more. */
const MANY = 35;

// `node app.js template`: the stack's template. `node app.js nag`: the app checked by the cdk-nag
// it has installed, the way that major is used (2.x an aspect, 3.x a validation plugin), and every
// finding left (2.x: error and warning annotations; 3.x: the violations of its report).
const APP = `
const fs = require('fs');
const path = require('path');
const { App, Aspects, Stack, Validations } = require('aws-cdk-lib');
const iam = require('aws-cdk-lib/aws-iam');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ShiftGuard } = require('shiftguard-cdk');

const outdir = path.join(__dirname, 'cdk.out');
const app = new App({ outdir });
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
// Many more, with generated names, sharing one role of the user's (no finding of its own).
const shared = new iam.Role(stack, 'functions-role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
for (let i = 1; i < ${MANY}; i++) {
  const fn = new lambda.Function(stack, 'fn' + i, {
    runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', role: shared,
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
  });
  guard.protect(fn, {
    dashboard: false,
    preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 } }, { name: 'logs', kind: 'logs' }] },
    postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invoke', expect: { status: 200 } }] },
  });
}
guard.rollout('api', {
  target: { type: 'lambda-alias', function: 'api', alias: 'live' },
  steps: [{ weight: 10, bake: '5m' }, { weight: 100, bake: '5m' }],
  alarms: ['api-live-error-rate'],
});
const lattice = guard.rollout('orders', {
  target: { type: 'lattice-listener', service: 'svc-0orders0000000000', listener: 'listener-0orders0000000000',
    productionTargetGroup: 'tg-0production000000', canaryTargetGroup: 'tg-0canary0000000000' },
  steps: [{ weight: 50, bake: '5m' }, { weight: 100 }],
  alarms: ['orders-5xx'],
});
// The user's own role: allowed to start the Lattice rollout, and a wildcard of the user's own.
const deployer = new iam.Role(stack, 'deployer', { assumedBy: new iam.AccountRootPrincipal() });
lattice.grantStart(deployer);
deployer.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::artifacts/*'] }));

if (process.argv[2] === 'template') {
  process.stdout.write(JSON.stringify(app.synth().getStackByName('Tiny').template));
} else {
  const version = require('cdk-nag/package.json').version;
  const { AwsSolutionsChecks } = require('cdk-nag');
  if (version.startsWith('2.')) Aspects.of(app).add(new AwsSolutionsChecks());
  else Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let assembly;
  const report = path.join(outdir, 'validation-report.json');
  try {
    assembly = app.synth();
  } catch (e) {
    if (!fs.existsSync(report)) throw e; // 3.x fails the synth on a violation, after writing its report
  }
  const findings = [];
  if (assembly) {
    for (const m of assembly.getStackByName('Tiny').messages) {
      const text = String(m.entry.data);
      if (m.level !== 'info' && text.startsWith('AwsSolutions-')) findings.push({ rule: text.slice(0, text.indexOf(': ')), path: m.id.replace(/^\\//, '') });
    }
  }
  if (fs.existsSync(report)) {
    for (const plugin of JSON.parse(fs.readFileSync(report, 'utf8')).pluginReports) {
      for (const v of plugin.violations) for (const c of v.violatingConstructs) findings.push({ rule: v.ruleName, path: c.constructPath });
    }
  }
  process.stdout.write(JSON.stringify({ version, findings }));
}
`;

// `node typo.js`: a ShiftGuard whose protect() call misspells a check's setting.
const TYPO = `
const { App, Stack } = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ShiftGuard } = require('shiftguard-cdk');
const stack = new Stack(new App(), 'Typo');
const cart = new lambda.Function(stack, 'cart', { runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1') });
new ShiftGuard(stack, 'ShiftGuard', { assetDir: ${JSON.stringify(assets)} }).protect(cart, {
  preTraffic: { checks: [{ name: 'smoke', kind: 'invoke', timout: '5s' }] },
  postTraffic: { checks: [{ name: 'alias-smoke', kind: 'invok' }] },
});
`;

/** The packages `name` needs at run time, itself included, as package-lock.json installs them. */
function closure(name: string): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const found = new Set<string>();
  const visit = (n: string) => {
    if (found.has(n)) return;
    found.add(n);
    for (const d of Object.keys(lock.packages[`node_modules/${n}`]?.dependencies ?? {})) visit(d);
  };
  visit(name);
  return [...found].sort();
}

test('npm pack: the library\'s modules, the configuration schema, its README and the project\'s LICENSE; ajv bundled', () => {
  // Every module of lib/ but the examples (stacks, rehearsal), compiled with its types; no stale one.
  const modules = fs.readdirSync(path.join(root, 'lib')).filter((f) => f.endsWith('.ts') && !['stacks.ts', 'rehearsal.ts'].includes(f)).map((f) => f.replace(/\.ts$/, ''));
  expect(modules).toEqual(expect.arrayContaining(['index', 'shiftguard', 'rollout', 'nag', 'duration', 'validate']));
  const own = shiftguard.files.filter((f) => !f.startsWith('node_modules/'));
  // .jsii, the jsii assembly, once `make cdk-python` has built it (the Python package's runtime needs it).
  const jsii = fs.existsSync(path.join(root, '.jsii')) ? ['.jsii'] : [];
  expect(own.sort()).toEqual(['LICENSE', 'README.md', 'package.json', 'schema/shiftguard.schema.json', ...jsii, ...modules.flatMap((m) => [`dist/lib/${m}.d.ts`, `dist/lib/${m}.js`])].sort());
  // The one runtime dependency, bundled (jsii wants a non-jsii dependency bundled), with exactly
  // what it needs itself.
  const bundled = [...new Set(shiftguard.files.filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/')[1]))].sort();
  expect(bundled).toEqual(closure('ajv'));
  expect(bundled).toEqual(expect.arrayContaining(['ajv', 'fast-uri']));
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', shiftguard.tarball, '-C', unpacked]);
  // The schema the construct validates against is the committed one, byte for byte.
  expect(fs.readFileSync(path.join(unpacked, 'package', 'schema', 'shiftguard.schema.json'), 'utf8'))
    .toBe(fs.readFileSync(path.join(root, 'schema', 'shiftguard.schema.json'), 'utf8'));
  expect(fs.readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8')).toBe(fs.readFileSync(path.join(repo, 'LICENSE'), 'utf8'));
  expect(fs.readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8')).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
  const readme = fs.readFileSync(path.join(unpacked, 'package', 'README.md'), 'utf8');
  for (const section of ['## Install', '## Validated at synth', 'schema/shiftguard.schema.json', 'protect(', 'rollout(', 'grantStart(', 'cdk-nag', 'Validations.of(app).addPlugins']) expect(readme).toContain(section);
});

test('a fresh CDK app from the tarball: synth with protect() and rollout()', () => {
  const app = makeApp('plain');
  const template = JSON.parse(execFileSync(process.execPath, ['app.js', 'template'], { cwd: app, encoding: 'utf8' }));
  const resources = Object.values(template.Resources) as any[];
  // (The doctor's trigger runs through aws-cdk-lib's trigger provider, a function without a name.)
  const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function').map((r) => r.Properties.FunctionName ?? 'unnamed');
  expect(functions.filter((f) => f !== 'unnamed').sort()).toEqual(['CodeDeployHook_shiftguard_post_traffic', 'CodeDeployHook_shiftguard_pre_traffic', 'api', 'shiftguard_doctor', 'shiftguard_rollback', 'shiftguard_shift']);
  // The MANY - 1 with generated names, and the trigger provider's.
  expect(functions.filter((f) => f === 'unnamed')).toHaveLength(MANY);
  // rollout(): a state machine that invokes shift, with the plan as its defaults.
  const machines = resources.filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  expect(machines).toHaveLength(2);
  const definitions = machines.map((m) => JSON.parse(m.Properties.DefinitionString['Fn::Join'][1].map((p: any) => typeof p === 'string' ? p : '<ref>').join('')));
  expect(definitions.map((d) => d.States.Defaults.Result.target)).toContainEqual({ type: 'lambda-alias', function: 'api', alias: 'live' });
  for (const d of definitions) expect(d.States.Bake.SecondsPath).toBe('$.last.waitSeconds');
  const alarms = Object.entries(template.Resources).filter(([, r]: [string, any]) => r.Type === 'AWS::CloudWatch::Alarm');
  expect(alarms.map(([, r]: [string, any]) => r.Properties.AlarmName).filter((n: string) => n.startsWith('api-')).sort()).toEqual(['api-live-canary-error-rate', 'api-live-canary-p99', 'api-live-error-rate', 'api-live-p99']);
  expect(alarms).toHaveLength(4 * MANY);
  expect(resources.filter((r) => r.Type === 'AWS::CodeDeploy::DeploymentGroup')).toHaveLength(MANY);
  expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(500);
  // Past the inline policies' room, the managed policies the construct makes (none of CDK's
  // overflow policies), within IAM's 10 a role.
  const managed = Object.entries(template.Resources).filter(([, r]: [string, any]) => r.Type === 'AWS::IAM::ManagedPolicy');
  expect(managed.length).toBeGreaterThan(0);
  expect(managed.filter(([id]) => id.includes('OverflowPolicy'))).toEqual([]);
  const perRole = new Map<string, number>();
  for (const [, r] of managed as [string, any][]) for (const role of r.Properties.Roles) perRole.set(role.Ref, (perRole.get(role.Ref) ?? 0) + 1);
  for (const n of perRole.values()) expect(n).toBeLessThanOrEqual(10);
});

test('a fresh CDK app from the tarball refuses a misspelt check at synth, naming the call and the field (the bundled ajv, the packed schema)', () => {
  const app = makeApp('typo');
  // ajv is the tarball's own copy, not one the app happens to have.
  const installed = path.join(app, 'node_modules', 'shiftguard-cdk');
  expect(execFileSync(process.execPath, ['-e', `process.stdout.write(require.resolve('ajv/dist/2020', { paths: [${JSON.stringify(installed)}] }))`], { encoding: 'utf8' }))
    .toBe(path.join(installed, 'node_modules', 'ajv', 'dist', '2020.js'));
  let stderr = '';
  try {
    execFileSync(process.execPath, ['typo.js'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    stderr = String((e as { stderr?: string }).stderr);
  }
  expect(stderr).toContain('Error: ShiftGuard protect(cart): preTraffic.checks[0]: unknown setting "timout" (an invoke check has: name, kind, ');
  // Every problem of the call, each on a line of its own.
  expect(stderr).toContain('\nShiftGuard protect(cart): postTraffic.checks[0].kind: "invok" is not a check kind (invoke, http, burst, metrics, compare, logs, artifact)\n');
});

describe.each(['2', '3'])('cdk-nag %s.x installed in the app', (major) => {
  let result: { version: string; findings: Array<{ rule: string; path: string }> };
  beforeAll(() => {
    const app = makeApp(`nag${major}`, NAG[major]);
    result = JSON.parse(execFileSync(process.execPath, ['app.js', 'nag'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  });

  test('is the major the app runs', () => {
    expect(result.version).toMatch(new RegExp(`^${major}\\.`));
  });

  test('nothing unacknowledged on ShiftGuard\'s resources, nor on the user\'s role from grantStart', () => {
    const ours = result.findings.filter((f) => f.path.startsWith('Tiny/ShiftGuard/') || (f.path.startsWith('Tiny/deployer/') && !f.rule.includes('arn:aws:s3:::artifacts/*')));
    expect(ours).toEqual([]);
  });

  test('the user\'s own findings are still reported: api\'s managed policy, the deployer\'s own wildcard', () => {
    expect(result.findings).toEqual([
      { rule: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', path: 'Tiny/api/ServiceRole/Resource' },
      { rule: 'AwsSolutions-IAM5[Resource::arn:aws:s3:::artifacts/*]', path: 'Tiny/deployer/DefaultPolicy/Resource' },
    ]);
  });
});
