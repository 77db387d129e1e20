import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AspectPriority, Aspects, IAspect, Intrinsic, Stack, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct, IConstruct } from 'constructs';

/** Lambda refuses a function whose environment (names and values) exceeds 4 KB. */
export const ENVIRONMENT_LIMIT_BYTES = 4096;

/** Where a function finds its settings file (the layer's contents are under /opt). */
const FILE_VAR = 'SHIFTGUARD_CONFIG_FILE';

/** The prefix of the variables that carry deploy-time values into the file (`${SG_0}`). */
const REF_PREFIX = 'SG_';

interface Entry {
  fn: lambda.Function;
  binary: string;
  settings: Record<string, string>;
}

/**
 * Settings that would not fit in a function's environment — check sets and alarm → target maps
 * for many functions — go to a JSON file in a layer the construct ships beside the function
 * (`/opt/shiftguard/BINARY.json`, read once at start-up: `common/src/env.rs`, `Environment`).
 *
 * The file is written at synth, when every `protect()` and mapping is known (an aspect), but some
 * values are known only at deploy time (a generated function name is a `Ref`). Each such value
 * stays in the environment as a short variable (`SG_0`, deduplicated) and the file refers to it
 * as `${SG_0}`. What remains in the environment is checked against Lambda's 4 KB limit at synth,
 * every deploy-time value counted at the longest it can be.
 */
export class SettingsFiles {
  private readonly entries: Entry[] = [];
  private readonly bounds: { value: string; max: number }[] = [];
  private rendered = false;

  constructor(private readonly scope: Construct) {
    Aspects.of(scope).add(new RenderOnce(() => this.render(), scope), { priority: AspectPriority.MUTATING });
    scope.node.addValidation({ validate: () => this.validate() });
  }

  /** Puts `name` (usually a `Lazy` string rendered at synth) in `fn`'s settings file. */
  public set(fn: lambda.Function, binary: string, name: string, value: string): void {
    let entry = this.entries.find((e) => e.fn === fn);
    if (!entry) {
      entry = { fn, binary, settings: {} };
      this.entries.push(entry);
    }
    entry.settings[name] = value;
  }

  /** `value` (a token: a function's generated name) is never longer than `max` once deployed. */
  public bound(value: string, max: number): void {
    if (Token.isUnresolved(value)) this.bounds.push({ value, max });
  }

  private render(): void {
    if (this.rendered) return;
    this.rendered = true;
    const stack = Stack.of(this.scope);
    for (const { fn, binary, settings } of this.entries) {
      const refs = new Map<string, string>();
      const environment: Record<string, string> = {};
      for (const [name, value] of Object.entries(settings)) {
        environment[name] = templateOf(stack.resolve(value), refs);
      }
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shiftguard-settings-'));
      fs.mkdirSync(path.join(dir, 'shiftguard'));
      fs.writeFileSync(path.join(dir, 'shiftguard', `${binary}.json`), JSON.stringify({ version: 1, environment }, null, 1) + '\n');
      const layer = new lambda.LayerVersion(this.scope, `${binary}-settings`, {
        code: lambda.Code.fromAsset(dir),
        description: `ShiftGuard ${binary} settings (check sets, target maps)`,
      });
      fn.addLayers(layer);
      fn.addEnvironment(FILE_VAR, `/opt/shiftguard/${binary}.json`);
      for (const [intrinsic, variable] of refs) {
        fn.addEnvironment(variable, Token.asString(new Intrinsic(JSON.parse(intrinsic))));
      }
    }
  }

  private validate(): string[] {
    const stack = Stack.of(this.scope);
    const errors: string[] = [];
    const functions = new Set(this.entries.map((e) => e.fn));
    for (const child of this.scope.node.children) {
      if (child instanceof lambda.Function) functions.add(child);
    }
    for (const fn of functions) {
      const cfn = fn.node.defaultChild as lambda.CfnFunction;
      const variables = (stack.resolve(cfn.environment) as { variables?: Record<string, unknown> } | undefined)?.variables ?? {};
      const known = new Map(this.bounds.map((b) => [JSON.stringify(stack.resolve(b.value)), b.max]));
      const bytes = Object.entries(variables).reduce((sum, [k, v]) => sum + k.length + longest(v, stack, known), 0);
      if (bytes > ENVIRONMENT_LIMIT_BYTES) {
        const refs = Object.keys(variables).filter((k) => k.startsWith(REF_PREFIX)).length;
        errors.push(`ShiftGuard: ${fn.node.path}'s environment can reach ${bytes} bytes once deployed (each deploy-time value counted at its longest), over Lambda's ${ENVIRONMENT_LIMIT_BYTES}-byte limit; ${refs} of its variables carry generated names into its settings file: give the protected functions explicit functionName values, or protect some of them with a second ShiftGuard`);
      }
    }
    return errors;
  }
}

class RenderOnce implements IAspect {
  constructor(private readonly render: () => void, private readonly owner: IConstruct) {}
  public visit(node: IConstruct): void {
    if (node === this.owner) this.render();
  }
}

/**
 * A resolved value as file text: literal parts as they are (`${` escaped as `$${`), each
 * deploy-time part (a Ref, GetAtt, ImportValue…) as `${SG_n}`, numbered in `refs`.
 */
function templateOf(resolved: unknown, refs: Map<string, string>): string {
  if (typeof resolved === 'string') return resolved.split('${').join('$${');
  const join = (resolved as { 'Fn::Join'?: [string, unknown[]] } | null)?.['Fn::Join'];
  if (join && join[0] === '') return join[1].map((part) => templateOf(part, refs)).join('');
  const key = JSON.stringify(resolved);
  let variable = refs.get(key);
  if (!variable) {
    variable = `${REF_PREFIX}${refs.size}`;
    refs.set(key, variable);
  }
  return `\${${variable}}`;
}

/** The longest a resolved environment value can be once CloudFormation has filled it in. */
function longest(value: unknown, stack: Stack, known: Map<string, number>): number {
  if (typeof value === 'string') return value.length;
  const bounded = known.get(JSON.stringify(value));
  if (bounded !== undefined) return bounded;
  if (typeof value !== 'object' || value === null) return String(value).length;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.reduce<number>((sum, p) => sum + longest(p, stack, known), 0) + sep.length * Math.max(0, parts.length - 1);
  }
  if (typeof v.Ref === 'string') {
    const pseudo: Record<string, number> = {
      'AWS::Region': 20, 'AWS::AccountId': 12, 'AWS::Partition': 10, 'AWS::URLSuffix': 20,
      'AWS::StackName': 128, 'AWS::StackId': 200, 'AWS::NoValue': 0,
    };
    if (v.Ref in pseudo) return pseudo[v.Ref];
    const type = resourceType(stack, v.Ref);
    // A generated function name is at most 64 characters; other names and ARNs, ~256.
    return type === 'AWS::Lambda::Function' ? 64 : 256;
  }
  // GetAtt (an ARN), ImportValue (another stack's output), Sub…: an ARN's length at most.
  return 256;
}

function resourceType(stack: Stack, logicalId: string): string | undefined {
  for (const c of stack.node.findAll()) {
    const r = c as { cfnResourceType?: string; logicalId?: string };
    if (r.cfnResourceType && stack.resolve(r.logicalId) === logicalId) return r.cfnResourceType;
  }
  return undefined;
}
