// The configuration's JSON Schema (cdk/schema/shiftguard.schema.json, generated from the Rust types)
// applied at synth: a typo in protect(), the ShiftGuard's props, addChecks, addRollbackMapping or
// rollout() fails where it was written, naming the call, the field and what is allowed; the
// documents as rendered are checked again at synth; tokens are judged by type only; and every
// configuration the repository holds (example stacks, READMEs, sample events, the demo's and the
// emulator's) validates, so the schema is not stricter than the functions.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import { App, CfnParameter, Duration, Stack, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import Ajv2020 from 'ajv/dist/2020';
import * as YAML from 'yaml';
import { DURATION_PATTERN, parseDuration } from '../lib/duration';
import { HookChecks, RolloutPlan, RolloutProps, ShiftGuard, ShiftGuardProps, rolloutPlan } from '../lib/index';
import { RehearsalStack } from '../lib/rehearsal';
import { CanaryExampleStack, LatticeExampleStack, ProtectExampleStack } from '../lib/stacks';
import { ConfigurationKind, configurationProblems, preparedSchema, schemaFile, schemaProblems, unpreparedUnions } from '../lib/validate';
import { standInAssets } from './assets';
import { stackEnvironment } from './environment';

const cdk = path.resolve(__dirname, '..', '..'); // cdk/ (tests run from dist/test)
const repo = path.resolve(cdk, '..');

const assetDir = standInAssets();

function setup(props: Partial<ShiftGuardProps> = {}) {
  const app = new App();
  const stack = new Stack(app, 'V', { env: { account: '123456789012', region: 'eu-west-1' } });
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_v', ...props });
  const fn = (id: string) => new lambda.Function(stack, id, { functionName: id, runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1') });
  return { app, stack, sg, fn };
}

/** What `f` throws, as text (the test fails when it throws nothing). */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

const KINDS = '(invoke, http, burst, metrics, compare, logs, artifact)';
const DURATION = 'expected a duration such as 500ms, 90s, 5m or 1h (a whole number and one unit, no space or fraction) or a whole number of milliseconds';
const INVOKE_HAS = 'an invoke check has: name, kind, expect, payload, backoff, functions, required, retries, timeout';
const ok = (name = 'smoke'): HookChecks => ({ checks: [{ name, kind: 'invoke', expect: { status: 200 } }] });
const one = (check: Record<string, unknown>): HookChecks => ({ checks: [{ name: 'smoke', kind: 'invoke', ...check }] });

describe('protect(): a typo fails the call, naming it, the field and what is allowed', () => {
  test.each([
    ['an unknown setting', one({ timout: '5s' }), `ShiftGuard protect(cart): preTraffic.checks[0]: unknown setting "timout" (${INVOKE_HAS})`],
    ['an unknown kind', one({ kind: 'invok' }), `ShiftGuard protect(cart): preTraffic.checks[0].kind: "invok" is not a check kind ${KINDS}`],
    ['no kind', { checks: [{ name: 'smoke' } as any] }, `ShiftGuard protect(cart): preTraffic.checks[0].kind: missing; expected a check kind ${KINDS}`],
    ['a space in a duration', one({ timeout: '5 s' }), `ShiftGuard protect(cart): preTraffic.checks[0].timeout: ${DURATION}, got "5 s"`],
    ['a fraction in a duration', one({ backoff: '1.5s' }), `ShiftGuard protect(cart): preTraffic.checks[0].backoff: ${DURATION}, got "1.5s"`],
    ['a fractional number of milliseconds', one({ timeout: 1.5 }), `ShiftGuard protect(cart): preTraffic.checks[0].timeout: ${DURATION}, got 1.5`],
    ['a string for a number', one({ retries: '2' }), 'ShiftGuard protect(cart): preTraffic.checks[0].retries: expected a whole number from 0 to 100, got "2"'],
    ['a string for a status', one({ expect: { status: '200' } }), 'ShiftGuard protect(cart): preTraffic.checks[0].expect.status: expected a whole number from 100 to 599 or null, got "200"'],
    ['an unknown expectation', one({ expect: { stauts: 200 } }), 'ShiftGuard protect(cart): preTraffic.checks[0].expect: unknown setting "stauts" (expect has: bodyContains, json, maxLatencyMs, status)'],
    ['another kind\'s setting', one({ url: 'https://example.com/' }), `ShiftGuard protect(cart): preTraffic.checks[0]: unknown setting "url" (${INVOKE_HAS})`],
    ['a required setting left out', { checks: [{ name: 'up', kind: 'http' }] }, 'ShiftGuard protect(cart): preTraffic.checks[0].url: missing; expected a string matching ^https?://'],
    ['a misspelt burst target', { checks: [{ name: 'load', kind: 'burst', requests: 10, concurrency: 2, target: { invok: {} } }] },
      'ShiftGuard protect(cart): preTraffic.checks[0].target: unknown setting "invok" (target takes exactly one of: invoke, http)'],
    ['an unknown enum value', { checks: [{ name: 'm', kind: 'metrics', inconclusive: 'maybe' }] }, 'ShiftGuard protect(cart): preTraffic.checks[0].inconclusive: expected one of "pass", "fail", got "maybe"'],
    ['a check set\'s own typo', { concurency: 2, ...ok() } as HookChecks, 'ShiftGuard protect(cart): preTraffic: unknown setting "concurency" (a check set has: checks, concurrency)'],
  ])('%s', (_what, preTraffic, message) => {
    const { stack, sg, fn } = setup();
    const cart = fn('cart');
    const before = stack.node.findAll().length;
    expect(thrown(() => sg.protect(cart, { preTraffic, postTraffic: ok() }))).toBe(message);
    // Refused before anything was made or added.
    expect(stack.node.findAll().length).toBe(before);
    expect(() => sg.protect(cart, { preTraffic: ok(), postTraffic: ok() })).not.toThrow();
  });

  test('every problem of the call, both phases, one line each', () => {
    const { sg, fn } = setup();
    expect(thrown(() => sg.protect(fn('cart'), { preTraffic: one({ timout: '5s', retries: -1 }), postTraffic: one({ kind: 'invok' }) })).split('\n')).toEqual([
      'ShiftGuard protect(cart): preTraffic.checks[0].retries: expected a whole number from 0 to 100, got -1',
      `ShiftGuard protect(cart): preTraffic.checks[0]: unknown setting "timout" (${INVOKE_HAS})`,
      `ShiftGuard protect(cart): postTraffic.checks[0].kind: "invok" is not a check kind ${KINDS}`,
    ]);
  });
});

describe('the ShiftGuard\'s props, addChecks and addRollbackMapping: the same, naming where', () => {
  test('preTrafficChecks / postTrafficChecks', () => {
    expect(thrown(() => setup({ preTrafficChecks: one({ timout: '5s' }) })))
      .toBe(`ShiftGuard V/sg: preTrafficChecks.checks[0]: unknown setting "timout" (${INVOKE_HAS})`);
    expect(thrown(() => setup({ postTrafficChecks: { checks: [ok().checks[0], { name: 'w', kind: 'metrics', window: '15 m' }] } })))
      .toBe(`ShiftGuard V/sg: postTrafficChecks.checks[1].window: ${DURATION}, got "15 m"`);
  });

  test('addChecks', () => {
    const { sg } = setup();
    expect(thrown(() => sg.addChecks('pre-traffic', one({ kind: 'invok' }))))
      .toBe(`ShiftGuard addChecks(pre-traffic): checks[0].kind: "invok" is not a check kind ${KINDS}`);
    expect(thrown(() => sg.addChecks('post-traffic', { checks: 'smoke' } as any)))
      .toBe('ShiftGuard addChecks(post-traffic): checks: expected a list of at least 1, each an object with kind: invoke, http, burst, metrics, compare, logs, artifact, got "smoke"');
  });

  test.each([
    ['an unknown setting', { alarms: ['a'], targets: [{ type: 'lambda-alias', function: 'checkout', alias: 'live', stableAlais: 'blue' }] },
      'ShiftGuard addRollbackMapping(): targets[0]: unknown setting "stableAlais" (a lambda-alias target has: type, alias, codeDeploy, function, stableAlias, stableVersion)'],
    ['an unknown type', { alarms: ['a'], targets: [{ type: 'lambda', function: 'checkout', alias: 'live' }] },
      'ShiftGuard addRollbackMapping(): targets[0].type: "lambda" is not a rollback target type (lambda-alias, lattice-listener, apigateway-canary)'],
    ['a wrong type', { alarms: [42], targets: [{ type: 'lambda-alias', function: 'checkout', alias: 'live' }] },
      'ShiftGuard addRollbackMapping(): alarms[0]: expected a non-blank string, got 42'],
    ['a required setting left out', { alarms: ['a'], targets: [{ type: 'lattice-listener', service: 'svc-1', listener: 'listener-1' }] },
      'ShiftGuard addRollbackMapping(): targets[0].productionTargetGroup: missing; expected a non-blank string'],
    ['a misspelt mapping key', { alarm: ['a'], targets: [] },
      'ShiftGuard addRollbackMapping(): alarms: missing; expected a non-blank string or a list of at least 1, each a non-blank string\nShiftGuard addRollbackMapping(): the mapping: unknown setting "alarm" (a mapping has: alarms, targets)\nShiftGuard addRollbackMapping(): targets: is empty; expected a list of at least 1, each an object with type: lambda-alias, lattice-listener, apigateway-canary'],
  ])('addRollbackMapping: %s', (_what, mapping, message) => {
    const { sg } = setup();
    expect(thrown(() => sg.addRollbackMapping(mapping as any))).toBe(message);
  });

  test('rollbackTargets names the mapping\'s index', () => {
    const good = { alarms: ['a'], targets: [{ type: 'lambda-alias' as const, function: 'checkout', alias: 'live' }] };
    expect(thrown(() => setup({ rollbackTargets: [good, { ...good, targets: [{ ...good.targets[0], codeDeploy: { application: 'checkout' } as any }] }] })))
      .toBe('ShiftGuard V/sg: rollbackTargets[1].targets[0].codeDeploy.deploymentGroup: missing; expected a non-blank string');
  });
});

const LATTICE = { type: 'lattice-listener' as const, service: 'svc-0orders0000000000', listener: 'listener-0orders0000000000', productionTargetGroup: 'tg-0production000000', canaryTargetGroup: 'tg-0canary0000000000' };
const base: RolloutProps = { target: LATTICE, steps: [{ weight: 10, bake: '5m' }, { weight: 100 }], alarms: ['orders-5xx'] };
const http = (extra: Record<string, unknown>) => ({ name: 'health', kind: 'http', url: 'https://orders.example/health', ...extra });

describe('rollout(): the plan and its checks against the schema, naming the rollout', () => {

  test.each([
    ['an unknown kind', { checks: { before: { checks: [{ name: 'smoke', kind: 'invok' }] } } },
      `ShiftGuard rollout 'orders': checks.before.checks[0].kind: "invok" is not a check kind ${KINDS}`],
    ['an unknown setting in a check', { checks: { after: { checks: [http({ timout: '5s' })] } } },
      'ShiftGuard rollout \'orders\': checks.after.checks[0]: unknown setting "timout" (an http check has: name, kind, body, expect, headers, method, secretHeaders, signing, url, backoff, functions, required, retries, timeout)'],
    ['a check\'s duration with a space', { checks: { after: { checks: [http({ timeout: '5 s' })] } } },
      `ShiftGuard rollout 'orders': checks.after.checks[0].timeout: ${DURATION}, got "5 s"`],
    ['a check\'s duration with a fraction', { checks: { after: { checks: [http({ backoff: '1.5s' })] } } },
      `ShiftGuard rollout 'orders': checks.after.checks[0].backoff: ${DURATION}, got "1.5s"`],
    ['a wrong type in a check', { checks: { after: { checks: [http({ retries: '1' })] } } },
      'ShiftGuard rollout \'orders\': checks.after.checks[0].retries: expected a whole number from 0 to 100, got "1"'],
    ['a misspelt step setting', { steps: [{ weight: 10, bak: '5m' } as any, { weight: 100 }] },
      'ShiftGuard rollout \'orders\': steps[0]: unknown setting "bak" (a step has: bake, weight)'],
    ['a misspelt checks phase', { checks: { befor: ok() } as any },
      'ShiftGuard rollout \'orders\': checks: unknown setting "befor" (checks has: after, before)'],
    ['a misspelt checkFunction setting', { checkFunction: { function: 'orders', version: '2', aliass: 'live' } as any },
      'ShiftGuard rollout \'orders\': checkFunction: unknown setting "aliass" (checkFunction has: alias, currentVersion, function, version)'],
    ['a space in a bake (the construct\'s own rule: with a unit, at most 7 days)', { steps: [{ weight: 10, bake: '5 m' }, { weight: 100 }] },
      'ShiftGuard rollout \'orders\': steps[0].bake: expected a duration such as "5m", "90s", "1h" or "500ms" (at most 7 days), got "5 m"'],
  ])('%s', (_what, props, message) => {
    const { sg } = setup();
    expect(thrown(() => sg.rollout('orders', { ...base, ...(props as Partial<RolloutProps>) }))).toBe(message);
    expect(sg.shift).toBeUndefined();
  });

  test('rolloutPlan() alone names the fields from `rollout.`', () => {
    expect(thrown(() => rolloutPlan({ ...base, checks: { after: { checks: [http({ timeout: '5 s' })] } } })))
      .toBe(`rollout.checks.after.checks[0].timeout: ${DURATION}, got "5 s"`);
  });
});

test('minItems: "is empty" for an empty list; past a bound of 1, how many items there are and how many are expected', () => {
  // The configuration's schema bounds lists at 1 only: a small schema of its own for larger bounds.
  const schema = {
    type: 'object',
    properties: {
      alarms: { type: 'array', minItems: 1, items: { type: 'string' } },
      quorum: { type: 'array', minItems: 3, items: { type: 'string' } },
    },
  };
  expect(schemaProblems(schema, { alarms: ['a'], quorum: ['a', 'b', 'c'] })).toEqual([]);
  expect(schemaProblems(schema, { alarms: [], quorum: ['a'] }, 'gate')).toEqual([
    'gate.alarms: is empty; expected a list of at least 1, each a string',
    'gate.quorum: has 1 item, expected at least 3 (a list of at least 3, each a string)',
  ]);
  expect(schemaProblems(schema, { quorum: ['a', 'b'] })).toEqual(['quorum: has 2 items, expected at least 3 (a list of at least 3, each a string)']);
  expect(schemaProblems(schema, { quorum: [] })).toEqual(['quorum: is empty; expected a list of at least 3, each a string']);
  // The configuration's own (bounds of 1) are worded as before.
  expect(configurationProblems('mapping', { alarms: ['a'], targets: [] })).toEqual(['targets: is empty; expected a list of at least 1, each an object with type: lambda-alias, lattice-listener, apigateway-canary']);
});

test('cdk/README.md\'s example messages are the construct\'s, verbatim', () => {
  const readme = fs.readFileSync(path.join(cdk, 'README.md'), 'utf8');
  const shown = /## Validated at synth[\s\S]*?```text\n([\s\S]*?)```/.exec(readme)![1].trim().split('\n');
  const { sg, fn } = setup();
  const protect = thrown(() => sg.protect(fn('cart'), { preTraffic: one({ timout: '5s' }), postTraffic: one({ kind: 'invok' }) }));
  const rollout = thrown(() => sg.rollout('orders', { ...base, checks: { after: { checks: [http({ timeout: '5 s' })] } } }));
  expect(shown).toEqual([...protect.split('\n'), rollout]);
});

describe('tokens: judged by their type only', () => {
  test('a string token stands where a string may (a name, a URL, a duration); a number token where a number may, and is rendered', () => {
    const { app, stack, sg, fn } = setup();
    const retries = new CfnParameter(stack, 'Retries', { type: 'Number' });
    const timeout = new CfnParameter(stack, 'Timeout', { type: 'String' });
    const url = new CfnParameter(stack, 'Url', { type: 'String' });
    sg.protect(fn('cart'), {
      preTraffic: { concurrency: retries.valueAsNumber, checks: [{ name: 'smoke', kind: 'invoke', retries: retries.valueAsNumber, timeout: timeout.valueAsString }] },
      postTraffic: { checks: [{ name: 'up', kind: 'http', url: url.valueAsString, backoff: timeout.valueAsString }] },
    });
    sg.addRollbackMapping({ alarms: [timeout.valueAsString], targets: [{ type: 'lambda-alias', function: url.valueAsString, alias: 'live' }] });
    expect(() => app.synth()).not.toThrow();
    // The number token is the parameter's value in the file (`${SG_n}` in place of a number).
    const checks = stackEnvironment(stack, 'CodeDeployHook_v_pre_traffic').HOOK_CHECKS;
    expect(JSON.stringify(checks)).toContain('"retries\\":",{"Ref":"Retries"}');
  });

  test('a string token where a number is expected is refused (it renders as a string); a token kind too (the kind decides the grants)', () => {
    const { sg, fn } = setup();
    const cart = fn('cart');
    expect(thrown(() => sg.protect(cart, { preTraffic: one({ retries: Token.asString({ Ref: 'Retries' }) }), postTraffic: ok() })))
      .toBe('ShiftGuard protect(cart): preTraffic.checks[0].retries: expected a whole number from 0 to 100, got a token');
    expect(thrown(() => sg.protect(cart, { preTraffic: one({ kind: Token.asString({ Ref: 'Kind' }) }), postTraffic: ok() })))
      .toBe(`ShiftGuard protect(cart): preTraffic.checks[0].kind: is a token, but a check kind must be known at synth ${KINDS}`);
  });
});

describe('the documents as rendered, once more at synth (the objects given are kept, and may change)', () => {
  test('HOOK_CHECKS: a constructor check changed after the call', () => {
    const pre = ok();
    const { app } = setup({ preTrafficChecks: pre });
    (pre.checks[0] as any).timout = '5s';
    expect(() => app.synth()).toThrow(`ShiftGuard V/sg: the pre-traffic hook's HOOK_CHECKS: checks[0]: unknown setting "timout" (${INVOKE_HAS})`);
  });

  test('ROLLBACK_TARGETS: a mapping changed after addRollbackMapping', () => {
    const { app, sg } = setup();
    const mapping = { alarms: ['a'], targets: [{ type: 'lambda-alias' as const, function: 'checkout', alias: 'live' }] };
    sg.addRollbackMapping(mapping);
    (mapping.targets as any[]).push({ type: 'lambda-alias', function: 'checkout', alias: 'beta', stableVersion: 41 });
    expect(() => app.synth()).toThrow('ShiftGuard V/sg: ROLLBACK_TARGETS: [0].targets[1].stableVersion: expected a string matching ^[0-9]{1,10}$ or null, got 41');
  });

  test('a rollout\'s plan: its check set changed after rollout()', () => {
    const { app, sg } = setup();
    const before = ok();
    sg.rollout('checkout', { target: { type: 'lambda-alias', function: 'checkout', alias: 'live' }, steps: [{ weight: 100 }], alarms: ['a'], checks: { before } });
    before.checks.push({ name: 'x', kind: 'invok' });
    expect(() => app.synth()).toThrow(`ShiftGuard rollout V/sg/rollout-checkout: checks.before.checks[1].kind: "invok" is not a check kind ${KINDS}`);
  });
});

// ---- the schema is the functions' own, and the construct reads it as it is ----------------------

const raw = JSON.parse(fs.readFileSync(path.join(cdk, 'schema', 'shiftguard.schema.json'), 'utf8'));

describe('the committed schema, read as it is', () => {
  test('the construct loads the committed file (dist/lib → ../../schema)', () => {
    expect(schemaFile()).toBe(path.join(cdk, 'schema', 'shiftguard.schema.json'));
  });

  test('every union and anyOf of the schema is one the messages understand (none left as ajv words it)', () => {
    expect(unpreparedUnions()).toEqual([]);
    expect(JSON.stringify(preparedSchema())).not.toMatch(/"(oneOf|anyOf)"/);
  });

  test('every duration of the schema is the grammar of lib/duration.ts, and its bounds are stated for the text form too', () => {
    // A duration: an anyOf of a string (the grammar) and an integer (milliseconds), perhaps null.
    const patterns = new Set<string>();
    let durations = 0;
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') {
        const o = v as Record<string, any>;
        if (Array.isArray(o.anyOf) && o.anyOf[0]?.type === 'string' && o.anyOf[1]?.type === 'integer') {
          durations++;
          patterns.add(o.anyOf[0].pattern);
          const [min, max] = [o.anyOf[1].minimum, o.anyOf[1].maximum];
          if (max !== undefined) expect(o['x-shiftguard-duration']).toEqual({ minimum: min, maximum: max });
        }
        Object.values(o).forEach(walk);
      }
    };
    walk(raw);
    expect(durations).toBeGreaterThan(5);
    expect([...patterns]).toEqual([DURATION_PATTERN]);
  });

  // common/src/duration.rs's table: what the functions accept, in milliseconds.
  test.each([
    ['500ms', 500], ['0ms', 0], ['90s', 90_000], ['5m', 300_000], ['1h', 3_600_000], ['1500', 1_500], [' 10s ', 10_000],
    ['1.5s', undefined], ['-1s', undefined], ['10 s', undefined], ['10S', undefined], ['1d', undefined], ['5m30s', undefined], ['s', undefined], ['', undefined],
  ])('the duration %j: parseDuration and the schema agree with the functions', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(new RegExp(DURATION_PATTERN, 'u').test(text)).toBe(ms !== undefined);
    // A bake (0 to 7 days): within its bounds, every duration of the table but the refused ones.
    const plan = { id: 'r1', target: { type: 'lattice-listener', service: 's', listener: 'l', productionTargetGroup: 'p', canaryTargetGroup: 'c' }, steps: [{ weight: 10, bake: text }, { weight: 100 }] };
    expect(configurationProblems('rolloutPlan', plan)).toHaveLength(ms === undefined ? 1 : 0);
  });

  test('past 2^53 ms JavaScript cannot count: parseDuration refuses what the schema (and the functions, up to 2^64 ms) accept', () => {
    expect(parseDuration('18446744073709551615')).toBeUndefined();
    expect(new RegExp(DURATION_PATTERN, 'u').test('18446744073709551615')).toBe(true);
  });
});

// ---- every configuration in the repository validates ---------------------------------------------

interface Found { where: string; kind: ConfigurationKind; value: unknown }
const found: Found[] = [];
const relative = (file: string) => path.relative(repo, file);

/** A document of unknown kind, by its shape. */
function classify(where: string, value: any): void {
  if (Array.isArray(value) && value.length > 0 && value.every((m) => m && typeof m === 'object' && 'alarms' in m)) found.push({ where, kind: 'rollbackMappings', value });
  else if (value && typeof value === 'object' && value.shiftguard === 'shift') planOf(where, value.rollout);
  else if (value && typeof value === 'object' && Array.isArray(value.checks)) found.push({ where, kind: 'checkSet', value });
}

/** A rollout plan as `shift` reads it, and its check sets as the hooks' (see planProblems). */
function planOf(where: string, plan: any): void {
  found.push({ where, kind: 'rolloutPlan', value: plan });
  for (const phase of ['before', 'after']) if (plan?.checks?.[phase]) found.push({ where: `${where} checks.${phase}`, kind: 'checkSet', value: plan.checks[phase] });
}

/** The code blocks and one-line settings of a Markdown file. */
function harvestMarkdown(file: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(/```(json|yaml)\n([\s\S]*?)```/g)) {
    const where = `${relative(file)}:${lineOf(m.index!)}`;
    let value: unknown;
    try {
      value = m[1] === 'json' ? JSON.parse(m[2]) : YAML.parse(m[2], { customTags: cfnTags });
    } catch {
      continue; // an excerpt with … in it, or a template fragment
    }
    classify(where, value);
  }
  for (const m of text.matchAll(/^export (HOOK_CHECKS|ROLLBACK_TARGETS)='(.*)'$/gm)) classify(`${relative(file)}:${lineOf(m.index!)} ${m[1]}`, JSON.parse(m[2]));
  harvestSamParameters(file, text);
  // The construct's examples: `preTraffic: { checks: [...] },` object literals.
  for (const m of text.matchAll(/^\s*(preTraffic|postTraffic|preTrafficChecks|postTrafficChecks): (\{ checks: \[.*\] \}),$/gm)) {
    classify(`${relative(file)}:${lineOf(m.index!)} ${m[1]}`, vm.runInNewContext(`(${m[2]})`, {}));
  }
}

/** SAM's `PreTrafficChecks: '…'` / `RollbackTargets: !Sub '…'`, each ${…} a string. */
function harvestSamParameters(file: string, text: string): void {
  for (const m of text.matchAll(/^\s*(PreTrafficChecks|PostTrafficChecks|RollbackTargets): (?:!Sub )?'(.*)'$/gm)) {
    const value = JSON.parse(m[2].replace(/\$\{[^}]*\}/g, 'SUBSTITUTED'));
    found.push({ where: `${relative(file)}:${text.slice(0, m.index!).split('\n').length} ${m[1]}`, kind: m[1] === 'RollbackTargets' ? 'rollbackMappings' : 'checkSet', value });
  }
}

/** YAML with CloudFormation's short-form tags (a SAM snippet in a README). */
const cfnTags = ['!Ref', '!Sub', '!GetAtt', '!If', '!Not', '!Equals', '!Join'].flatMap((tag) => ['scalar', 'seq', 'map'].map((collection) => ({
  tag, collection: collection === 'scalar' ? undefined : collection, resolve: (v: unknown) => ({ [tag]: v }),
} as any)));

/** Module-level constants of a Python file (literals and what they are built from). */
function pythonConstants(file: string, names: string[]): Record<string, unknown> {
  const script = `
import ast, json, sys
path, names = sys.argv[1], sys.argv[2].split(",")
env, out = {}, {}
for node in ast.parse(open(path).read()).body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        try:
            env[node.targets[0].id] = eval(compile(ast.Expression(node.value), path, "eval"), {"__builtins__": {}}, dict(env))
        except Exception:
            continue
print(json.dumps({n: env[n] for n in names if n in env}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, file, names.join(',')], { encoding: 'utf8' }));
}

// The README and every guide beside the code (the link check, tests/docs, knows them all).
const GUIDES = ['README.md', 'rollback/README.md', 'hooks/README.md', 'rollback/shift/README.md', 'tests/README.md', 'cdk/README.md',
  'examples/sam/README.md', 'examples/sam/shiftguard/README.md'];
for (const f of GUIDES) harvestMarkdown(path.join(repo, f));
harvestSamParameters(path.join(repo, 'examples/sam/template.yaml'), fs.readFileSync(path.join(repo, 'examples/sam/template.yaml'), 'utf8'));
for (const f of fs.readdirSync(path.join(repo, 'events/shift'))) classify(`events/shift/${f}`, JSON.parse(fs.readFileSync(path.join(repo, 'events/shift', f), 'utf8')));
classify('events/hooks/checks-post-traffic.json', JSON.parse(fs.readFileSync(path.join(repo, 'events/hooks/checks-post-traffic.json'), 'utf8')));
classify('events/hooks/checks-pre-traffic.yaml', YAML.parse(fs.readFileSync(path.join(repo, 'events/hooks/checks-pre-traffic.yaml'), 'utf8')));
for (const [file, names] of [['tests/emulator/sample.py', ['HOOK_CHECKS', 'ROLLBACK_TARGETS']], ['tests/demo/demo.py', ['PRE_CHECKS', 'POST_CHECKS', 'ROLLBACK_TARGETS']]] as const) {
  const constants = pythonConstants(path.join(repo, file), [...names]);
  expect(Object.keys(constants).sort()).toEqual([...names].sort());
  for (const [name, value] of Object.entries(constants)) classify(`${file} ${name}`, value);
}

describe('every configuration in the repository validates (the schema is not stricter than the functions)', () => {
  test('each source gives what it is known to hold', () => {
    const count = (prefix: string, kind: ConfigurationKind) => found.filter((f) => f.where.startsWith(prefix) && f.kind === kind).length;
    expect(count('README.md', 'checkSet')).toBe(4); // 2 SAM, 2 TS
    expect(count('README.md', 'rollbackMappings')).toBe(1); // SAM
    expect(count('hooks/README.md', 'checkSet')).toBe(2); // the checks' and the judge's YAML blocks
    expect(count('rollback/README.md', 'rollbackMappings')).toBe(1); // the ROLLBACK_TARGETS block
    expect(count('tests/README.md', 'checkSet')).toBe(1); // running it by hand: HOOK_CHECKS
    expect(count('tests/README.md', 'rollbackMappings')).toBe(1); // and ROLLBACK_TARGETS
    expect(count('cdk/README.md', 'checkSet')).toBe(2);
    expect(count('examples/sam/shiftguard/README.md', 'checkSet')).toBe(2);
    expect(count('examples/sam/template.yaml', 'checkSet')).toBe(2);
    expect(count('examples/sam/template.yaml', 'rollbackMappings')).toBe(1);
    expect(count('events/shift/', 'rolloutPlan')).toBe(2);
    expect(count('events/hooks/', 'checkSet')).toBe(2);
    expect(count('tests/emulator/', 'checkSet') + count('tests/demo/', 'checkSet')).toBe(3);
    expect(count('tests/emulator/', 'rollbackMappings') + count('tests/demo/', 'rollbackMappings')).toBe(2);
  });

  test.each(found.map((f) => [`${f.where} (${f.kind})`, f] as const))('%s', (_name, f) => {
    expect(configurationProblems(f.kind, f.value)).toEqual([]);
  });

  test('the example stacks and the rehearsal (lib/stacks.ts, lib/rehearsal.ts): every settings file and plan as synthesized', () => {
    const app = new App();
    const props = { assetDir, architecture: lambda.Architecture.X86_64 };
    const stacks = [
      new CanaryExampleStack(app, 'Canary', props), new LatticeExampleStack(app, 'Lattice', props),
      new ProtectExampleStack(app, 'Protect', props), new RehearsalStack(app, 'Rehearsal', props),
    ];
    const assembly = app.synth(); // the rendered documents, validated at synth
    let documents = 0;
    for (const stack of stacks) {
      const template = assembly.getStackArtifact(stack.artifactId).template;
      for (const r of Object.values<any>(template.Resources)) {
        // Each settings file as the function reads it (`${SG_n}`: a deploy-time name, a string).
        if (r.Type === 'AWS::Lambda::LayerVersion') {
          const dir = path.join(assembly.directory, `asset.${String(r.Properties.Content.S3Key).replace(/\.zip$/, '')}`, 'shiftguard');
          for (const file of fs.readdirSync(dir)) {
            const { environment } = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
            if (environment.HOOK_CHECKS !== undefined) { documents++; expect(configurationProblems('checkSet', JSON.parse(environment.HOOK_CHECKS))).toEqual([]); }
            if (environment.ROLLBACK_TARGETS !== undefined) { documents++; expect(configurationProblems('rollbackMappings', JSON.parse(environment.ROLLBACK_TARGETS))).toEqual([]); }
          }
        }
        // Each rollout's plan as the state machine holds it, with the id an execution gives it.
        if (r.Type === 'AWS::StepFunctions::StateMachine') {
          const definition = r.Properties.DefinitionString;
          const text = typeof definition === 'string' ? definition : definition['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : Token.asString({ Ref: 'Deployed' }))).join('');
          const plan: RolloutPlan = JSON.parse(text).States.Defaults.Result;
          documents++;
          expect(configurationProblems('rolloutPlan', { id: 'orders-v2', ...plan })).toEqual([]);
          for (const set of [plan.checks?.before, plan.checks?.after]) if (set) expect(configurationProblems('checkSet', set)).toEqual([]);
        }
      }
    }
    // Canary: 2 hooks + rollback; Lattice: rollback + a plan; Protect: 2 hooks + rollback; Rehearsal: 2 hooks + rollback + 2 plans.
    expect(documents).toBe(13);
  });
});

describe('the rewritten schema (one error per problem) accepts exactly what the committed one accepts', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  ajv.addSchema(raw);
  const committed = (kind: ConfigurationKind) => ajv.getSchema(`${raw.$id}#/properties/${kind === 'mapping' ? 'rollbackMappings/items' : kind}`)!;
  const mutants: Found[] = [
    ...found,
    ...['timout', 'kind', 'timeout', 'retries', 'expect', 'name'].flatMap((k): Found[] => [
      { where: `${k} removed`, kind: 'checkSet', value: { checks: [Object.fromEntries(Object.entries({ name: 'a', kind: 'invoke', timeout: '5s', retries: 1, expect: { status: 200 } }).filter(([x]) => x !== k))] } },
    ]),
    ...[{ kind: 'invok' }, { timout: '5s' }, { timeout: '5 s' }, { timeout: 1.5 }, { timeout: -1 }, { retries: '2' }, { expect: { stauts: 1 } }, { signing: 'x' },
      { kind: 'http' }, { kind: 'http', url: 'u', signing: null }, { kind: 'http', url: 'u', signing: { apiKeyEnv: 'A' } }, { kind: 'burst', requests: 1, concurrency: 1, target: { invoke: {}, http: { url: 'u' } } },
      { kind: 'burst', requests: 1, concurrency: 1, target: {} }, { kind: 'burst', requests: 1, concurrency: 1, target: { http: { url: 'u' } } }, { kind: 'artifact', sameAs: null }, { kind: 'artifact', sameAs: 'x' },
      { kind: 5 }, { functions: null }, { functions: 'cart' }, { kind: 'compare', tailQuantile: null, window: 60000 }].map((extra): Found => ({ where: JSON.stringify(extra), kind: 'checkSet', value: one(extra) })),
    { where: 'a check that is a string', kind: 'checkSet', value: { checks: ['smoke'] } },
    ...[{ type: 'lambda' }, { stableAlais: 'x' }, { codeDeploy: null }, { codeDeploy: { application: 'a' } }, { type: 'apigateway-canary', restApi: 'a' }, { alias: 5 }].map((extra): Found => ({
      where: JSON.stringify(extra), kind: 'mapping', value: { alarms: 'a', targets: [{ type: 'lambda-alias', function: 'f', alias: 'live', ...extra }] },
    })),
    ...[{ target: { type: 'lambda-aliass', function: 'f', alias: 'l' } }, { steps: [{ weight: 10.5 }] }, { checkFunction: null }, { checkFunction: { function: 'f' } }, { checks: null }, { checks: { befor: {} } }]
      .map((extra): Found => ({ where: JSON.stringify(extra), kind: 'rolloutPlan', value: { id: 'x', target: { type: 'lambda-alias', function: 'f', alias: 'l' }, steps: [{ weight: 100 }], ...extra } })),
  ];
  test.each(mutants.map((m) => [`${m.kind}: ${m.where}`, m] as const))('%s', (_name, m) => {
    const accepted = committed(m.kind)(JSON.parse(JSON.stringify(m.value)));
    expect(configurationProblems(m.kind, m.value).length === 0).toBe(accepted);
  });
});

test('a Duration object in a check is refused (the functions read text or milliseconds)', () => {
  expect(configurationProblems('checkSet', one({ timeout: Duration.seconds(5) }))).toEqual([`checks[0].timeout: ${DURATION}, got an object`]);
});
