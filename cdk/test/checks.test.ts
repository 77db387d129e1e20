// The hooks' check set (HOOK_CHECKS) when one ShiftGuard guards several functions: each
// protect(fn) call's checks carry `functions: [fn]` and run only for that function's deployments;
// the constructor's checks run for every function.
import { App, CfnParameter, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { HookChecks, ShiftGuard, ShiftGuardProps } from '../lib/index';
import { standInAssets } from './assets';
import { stackEnvironment } from './environment';

const assetDir = standInAssets({ binaries: ['pre-traffic', 'post-traffic', 'rollback'] });

function setup(props: Partial<ShiftGuardProps> = {}) {
  const app = new App();
  const stack = new Stack(app, 'Checks');
  const sg = new ShiftGuard(stack, 'sg', { assetDir, architecture: lambda.Architecture.X86_64, hookNamePrefix: 'CodeDeployHook_t', ...props });
  const fn = (id: string) => new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_LATEST, handler: 'index.handler', code: lambda.Code.fromInline(`exports.handler=async()=>'${id}'`) });
  // The text a function's name is rendered as in HOOK_CHECKS below: Ref:<its logical id>.
  const ref = (f: lambda.Function) => `Ref:${stack.resolve((f.node.defaultChild as lambda.CfnFunction).logicalId)}`;
  return { app, stack, sg, fn, ref };
}

/** A hook's HOOK_CHECKS from the synthesized template, with each Ref put back in as the text Ref:<logical id>. */
function hookChecks(stack: Stack, phase: 'pre' | 'post'): any {
  const value = stackEnvironment(stack, `CodeDeployHook_t_${phase}_traffic`).HOOK_CHECKS;
  if (typeof value === 'string') return JSON.parse(value);
  const [separator, parts] = value['Fn::Join'];
  expect(separator).toBe('');
  return JSON.parse(parts.map((p: any) => {
    if (typeof p === 'string') return p;
    expect(Object.keys(p)).toEqual(['Ref']);
    return `Ref:${p.Ref}`;
  }).join(''));
}

const smoke = (extra: object = {}): HookChecks => ({ checks: [{ name: 'smoke', kind: 'invoke', expect: { status: 200 }, ...extra }] });

describe('each protect() call\'s checks run only for its function', () => {
  test('the same check name on two functions: two entries, each naming its own function; the constructor\'s checks name none', () => {
    const { stack, sg, fn, ref } = setup({
      preTrafficChecks: { checks: [{ name: 'shared', kind: 'invoke' }] },
      postTrafficChecks: { checks: [{ name: 'alias-smoke', kind: 'invoke' }] },
    });
    const cart = fn('cart');
    const pricing = fn('pricing');
    sg.protect(cart, { preTraffic: smoke({ payload: { path: '/cart' } }) });
    sg.protect(pricing, { preTraffic: { concurrency: 2, checks: smoke({ retries: 2 }).checks } });

    const pre = hookChecks(stack, 'pre');
    expect(pre.concurrency).toBe(2);
    expect(pre.checks).toEqual([
      { name: 'shared', kind: 'invoke' },
      { name: 'smoke', kind: 'invoke', expect: { status: 200 }, payload: { path: '/cart' }, functions: [ref(cart)] },
      { name: 'smoke', kind: 'invoke', expect: { status: 200 }, retries: 2, functions: [ref(pricing)] },
    ]);
    expect(ref(cart)).toMatch(/^Ref:cart[0-9A-F]{8}$/);
    expect(ref(pricing)).toMatch(/^Ref:pricing[0-9A-F]{8}$/);
    // The constructor's checks run for every function: no `functions` at all (not even empty).
    expect('functions' in pre.checks[0]).toBe(false);
    const post = hookChecks(stack, 'post');
    expect(post).toEqual({ checks: [{ name: 'alias-smoke', kind: 'invoke' }] });
  });

  test('one function protected twice (two aliases) with the identical check keeps it once; different settings are refused', () => {
    const { stack, sg, fn, ref } = setup({ postTrafficChecks: { checks: [{ name: 'alias-smoke', kind: 'invoke' }] } });
    const cart = fn('cart');
    sg.protect(cart, { alias: 'live', preTraffic: smoke() });
    sg.protect(cart, { alias: 'beta', preTraffic: smoke() });
    expect(hookChecks(stack, 'pre').checks).toEqual([{ name: 'smoke', kind: 'invoke', expect: { status: 200 }, functions: [ref(cart)] }]);
    expect(() => sg.protect(cart, { alias: 'gamma', preTraffic: smoke({ retries: 3 }) }))
      .toThrow(/pre-traffic check 'smoke' is given twice for the same function with different settings/);
  });

  test('a check without `functions` shares its name with no other check, in either order', () => {
    const first = setup({ preTrafficChecks: smoke() });
    expect(() => first.sg.protect(first.fn('cart'), { preTraffic: smoke() }))
      .toThrow(/check 'smoke': a check without `functions` runs for every function, so its name cannot be shared/);
    const second = setup();
    second.sg.protect(second.fn('cart'), { preTraffic: smoke() });
    expect(() => second.sg.addChecks('pre-traffic', smoke({ retries: 1 })))
      .toThrow(/check 'smoke': a check without `functions` runs for every function/);
    // The identical unscoped check given twice is still kept once (as before scoping).
    const third = setup({ preTrafficChecks: smoke(), postTrafficChecks: smoke() });
    third.sg.addChecks('pre-traffic', smoke());
    expect(hookChecks(third.stack, 'pre').checks).toHaveLength(1);
  });

  test('protect() refuses a check that has its own `functions`, and adds none of that call\'s checks', () => {
    const { stack, sg, fn } = setup({ preTrafficChecks: { checks: [{ name: 'shared', kind: 'invoke' }] }, postTrafficChecks: smoke() });
    const cart = fn('cart');
    expect(() => sg.protect(cart, { preTraffic: { checks: [{ name: 'ok', kind: 'invoke' }, { name: 'other', kind: 'invoke', functions: ['pricing'] }] } }))
      .toThrow(/pre-traffic check 'other' already has `functions`; protect\(fn\) scopes the checks it is given to fn itself/);
    // A refused post-traffic check leaves the call's pre-traffic checks out too.
    expect(() => sg.protect(cart, { preTraffic: smoke(), postTraffic: { checks: [{ name: 'post', kind: 'invoke', functions: ['cart'] }] } }))
      .toThrow(/post-traffic check 'post' already has `functions`/);
    expect(hookChecks(stack, 'pre').checks.map((c: any) => c.name)).toEqual(['shared']);
  });

  test('checks given to the constructor or addChecks keep their own `functions`; names repeat only across disjoint lists', () => {
    const { stack, sg } = setup({
      preTrafficChecks: { checks: [{ name: 'smoke', kind: 'invoke', functions: ['cart'] }, { name: 'smoke', kind: 'invoke', retries: 1, functions: ['pricing'] }] },
    });
    sg.addChecks('post-traffic', smoke(), ['arn:aws:lambda:us-east-1:123456789012:function:legacy']);
    expect(hookChecks(stack, 'pre').checks.map((c: any) => c.functions)).toEqual([['cart'], ['pricing']]);
    expect(hookChecks(stack, 'post').checks[0].functions).toEqual(['arn:aws:lambda:us-east-1:123456789012:function:legacy']);
    expect(() => sg.addChecks('pre-traffic', { checks: [{ name: 'smoke', kind: 'invoke', functions: ['orders', 'pricing'] }] }))
      .toThrow(/'smoke' is given twice for the same function/);
    expect(() => sg.addChecks('pre-traffic', { checks: [{ name: 'x', kind: 'invoke', functions: [] }] })).toThrow(/checks\[0\]\.functions: is empty; expected a list of at least 1, each a non-blank string/);
    expect(() => sg.addChecks('pre-traffic', { checks: [{ name: 'y', kind: 'invoke', functions: ['cart', ' '] }] })).toThrow(/checks\[0\]\.functions\[1\]: is blank; expected a non-blank string/);
    expect(() => sg.addChecks('pre-traffic', smoke(), [])).toThrow(/functions: expected at least one function/);
  });

  test('a protected function no check of a hook applies to fails synthesis, naming it and the hook', () => {
    const { app, sg, fn } = setup();
    sg.protect(fn('cart'), { preTraffic: smoke(), postTraffic: smoke() });
    sg.protect(fn('pricing'), { preTraffic: smoke() });
    // pricing's post-traffic deployments would find only cart's checks: the hook would report Failed.
    expect(() => app.synth()).toThrow(/Checks\/pricing is deployed through the post-traffic hook, but none of its checks applies to it/);

    // A constructor check (every function) covers it.
    const covered = setup({ postTrafficChecks: { checks: [{ name: 'alias-smoke', kind: 'invoke' }] } });
    covered.sg.protect(covered.fn('cart'), { preTraffic: smoke(), postTraffic: smoke() });
    covered.sg.protect(covered.fn('pricing'), { preTraffic: smoke() });
    expect(() => covered.app.synth()).not.toThrow();
  });
});

describe('a hook\'s concurrency is the largest asked for', () => {
  test('numbers: the largest; a deploy-time value is kept (never Math.max of a token, which rendered 0), and mixing it with another call\'s number is an error', () => {
    const both = (concurrency: number) => ({ preTraffic: { concurrency, ...smoke() }, postTraffic: smoke() });
    const { stack, sg, fn } = setup();
    sg.protect(fn('a'), both(2));
    sg.protect(fn('b'), both(5));
    expect(hookChecks(stack, 'pre').concurrency).toBe(5);

    const t = setup();
    const wanted = new CfnParameter(t.stack, 'Concurrency', { type: 'Number' });
    t.sg.protect(t.fn('a'), both(wanted.valueAsNumber));
    t.sg.protect(t.fn('b'), both(wanted.valueAsNumber));
    // The parameter's value in the settings file, not 0.
    expect(JSON.stringify(stackEnvironment(t.stack, 'CodeDeployHook_t_pre_traffic').HOOK_CHECKS)).toContain('"concurrency\\":",{"Ref":"Concurrency"}');

    const m = setup();
    const token = new CfnParameter(m.stack, 'Concurrency', { type: 'Number' }).valueAsNumber;
    m.sg.protect(m.fn('a'), both(token));
    expect(() => m.sg.protect(m.fn('b'), both(3)))
      .toThrow(/the pre-traffic hook's concurrency: a deploy-time value cannot be combined with another call's \(a token\)/);
  });
});
