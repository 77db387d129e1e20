// The configuration's JSON Schema — cdk/schema/shiftguard.schema.json, generated from the Rust
// types the functions parse their settings with (tests/schema, `make schema`) — applied at synth
// to everything the construct writes for them: a hook's check set (HOOK_CHECKS), rollback's alarm
// → target map (ROLLBACK_TARGETS) and a rollout's plan (`shift`'s event). A typo fails `cdk synth`
// where it was written, naming the field and what is allowed, instead of the first deployment.
//
// ajv reports a union's every branch (seven check kinds: seven sets of complaints about one
// typo), so the schema is first rewritten into an equivalent form whose errors are only the
// relevant ones (prepare(), below): a union tagged by a property (`kind`, `type`) becomes an enum
// on the tag plus one `if tag = X then <X's branch>`; a union of single-key objects (a burst's
// target) one object with exactly one of the keys; an `anyOf` of disjoint JSON types (a duration,
// `X | null`) a type check plus `if type then <that branch>`. Each rewrite is applied only where
// the schema has exactly that shape; a test holds that none is left over.
import * as fs from 'fs';
import * as path from 'path';
import Ajv2020 from 'ajv/dist/2020';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { Token } from 'aws-cdk-lib';
import { DURATION_EXPECTED, DURATION_PATTERN, formatDuration, parseDuration } from './duration';

/** The schema's keyword for a duration's bounds, in milliseconds (shiftguard_common::duration::json_schema_within). */
const DURATION_BOUNDS = 'x-shiftguard-duration';

/** What is validated: a hook's check set, a rollback mapping (or the list of them), a rollout plan. */
export type ConfigurationKind = 'checkSet' | 'mapping' | 'rollbackMappings' | 'rolloutPlan';

/** Where each kind is in the schema: the document's three roots, and one mapping. */
const ROOTS: Record<ConfigurationKind, string> = {
  checkSet: '#/properties/checkSet',
  rollbackMappings: '#/properties/rollbackMappings',
  rolloutPlan: '#/properties/rolloutPlan',
  mapping: '#/properties/rollbackMappings/items',
};

/** What an error at the top of each kind names (a path with no field). */
const WHOLE: Record<ConfigurationKind, string> = {
  checkSet: 'the check set',
  rollbackMappings: 'the rollback mappings',
  rolloutPlan: 'the plan',
  mapping: 'the mapping',
};

/** How a tagged union's members and its tag's values are named in messages. */
const UNION_NOUNS: Record<string, { member: string; value: string }> = {
  Check: { member: 'check', value: 'a check kind' },
  Target: { member: 'target', value: 'a rollback target type' },
  RawTarget: { member: 'target', value: 'a rollout target type' },
};

/** Objects named in "unknown setting" messages when the path ends in an array index. */
const DEF_NOUNS: Record<string, string> = {
  CheckSet: 'a check set',
  Mapping: 'a mapping',
  RawPlan: 'a rollout plan',
  RawStep: 'a step',
};

type Schema = Record<string, any>;

interface TaggedUnion {
  def: string;
  tag: string;
  values: string[];
  branches: Map<string, Schema>;
  /** Properties every member has (beside the branch's own). */
  common: string[];
}

/** What prepare() rewrote, by schema object (ajv's `parentSchema` is the very object). */
interface Registry {
  unions: WeakMap<object, TaggedUnion>;
  tags: WeakMap<object, TaggedUnion>;
  branchOf: WeakMap<object, { union: TaggedUnion; value: string }>;
  singleKey: WeakMap<object, string[]>;
  alternatives: WeakMap<object, Schema[]>;
  durations: WeakSet<object>;
  /** Each duration's branches → the duration (whose `x-shiftguard-duration` bounds them). */
  durationOf: WeakMap<object, Schema>;
  defNames: WeakMap<object, string>;
  defs: Record<string, Schema>;
  /** Unions and anyOfs prepare() left as they were (their errors are reported as ajv words them). */
  leftOver: string[];
}

/** The schema file: `schema/` of the package, beside `dist/` (or `lib/` when compiled in place). */
export function schemaFile(): string {
  const tried: string[] = [];
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'schema', 'shiftguard.schema.json');
    if (fs.existsSync(candidate)) return candidate;
    tried.push(candidate);
  }
  throw new Error(`ShiftGuard: the configuration schema is missing from the package (looked for ${tried.join(', ')}); reinstall shiftguard-cdk`);
}

interface Compiled {
  validators: Record<ConfigurationKind, ValidateFunction>;
  registry: Registry;
  schema: Schema;
}
let compiled: Compiled | undefined;

function compile(): Compiled {
  if (compiled) return compiled;
  const raw = JSON.parse(fs.readFileSync(schemaFile(), 'utf8')) as Schema;
  const { ajv, schema, registry } = build(raw);
  const id = String(schema.$id ?? '');
  const validators = Object.fromEntries(Object.entries(ROOTS).map(([kind, pointer]) => {
    const v = ajv.getSchema(`${id}${pointer}`);
    if (!v) throw new Error(`ShiftGuard: the configuration schema has no ${pointer}`);
    return [kind, v];
  })) as Record<ConfigurationKind, ValidateFunction>;
  compiled = { validators, registry, schema };
  return compiled;
}

/** `raw`, prepared (below) and added to a validator of its own. */
function build(raw: Schema): { ajv: Ajv2020; schema: Schema; registry: Registry } {
  const { schema, registry } = prepare(raw);
  // Token-aware patterns: a CDK token (`${Token[…]}`, a value known only at deploy time) stands
  // where a string is expected and matches any pattern — only its type can be checked at synth.
  const regExp = Object.assign((pattern: string, flags: string) => {
    const rx = new RegExp(pattern, flags);
    return { test: (s: string) => Token.isUnresolved(s) || rx.test(s), toString: () => `token-or:${rx}` };
  }, { code: 'shiftguardTokenAwareRegExp' });
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true, // each error's data and parentSchema, for the messages
    // The schema's formats (uint, uint16, int64, double…) name the Rust number types; the limits
    // that matter are its minimum/maximum.
    validateFormats: false,
    // prepare()'s if/then carry `properties` without `type` (the branch has it).
    strictTypes: false,
    code: { regExp },
  });
  // A duration's bounds (`x-shiftguard-duration`, beside the schema's duration): JSON Schema can
  // bound the milliseconds form only; this bounds "20m" too. A token is known only at deploy time.
  ajv.addKeyword({
    keyword: DURATION_BOUNDS,
    type: 'string',
    schemaType: 'object',
    validate: (bounds: { minimum: number; maximum: number }, data: string) => {
      if (Token.isUnresolved(data)) return true;
      const ms = parseDuration(data);
      // Outside the grammar: the pattern says so. In the grammar but past what JavaScript counts
      // (2^53 ms): far beyond every bound (at most 7 days), so out of bounds.
      if (ms === undefined) return !new RegExp(DURATION_PATTERN, 'u').test(data);
      return ms >= bounds.minimum && ms <= bounds.maximum;
    },
  });
  ajv.addSchema(schema);
  return { ajv, schema, registry };
}

/**
 * Every problem in `value` as the functions would find it, one line each: `<field path>: <what
 * is wrong and what is allowed>`; empty when valid. `value` is checked as the JSON the construct
 * writes (JSON.stringify: an `undefined` setting is left out). `field` is put before each path.
 *
 * Tokens: a string token is a string (it matches any pattern, but must stand where a string may);
 * a number token (Token.asNumber) is not checked at all — its value is known only at deploy time
 * — and neither is anything an error about it would be: every error at its path is dropped.
 */
export function configurationProblems(kind: ConfigurationKind, value: unknown, field = ''): string[] {
  let json: unknown;
  try {
    json = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  } catch (e) {
    return [`${field || WHOLE[kind]}: is not JSON (${(e as Error).message})`];
  }
  const { validators, registry } = compile();
  const validate = validators[kind];
  if (validate(json)) return [];
  return messages(validate.errors ?? [], json, registry, field, WHOLE[kind]);
}

/**
 * `configurationProblems` against another schema than the configuration's (validated at its
 * root, `whole` naming it), prepared and worded the same way: for tests of the messages.
 */
export function schemaProblems(raw: Record<string, unknown>, value: unknown, field = '', whole = 'the value'): string[] {
  const { ajv, schema, registry } = build(JSON.parse(JSON.stringify(raw)));
  const validate = ajv.compile(schema);
  const json = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  if (validate(json)) return [];
  return messages(validate.errors ?? [], json, registry, field, whole);
}

/** Throws one Error, each problem on a line of its own and prefixed by `call`; nothing when `value` is valid. */
export function assertConfiguration(call: string, kind: ConfigurationKind, value: unknown, field = ''): void {
  const problems = configurationProblems(kind, value, field);
  if (problems.length > 0) throw new Error(problems.map((p) => (call ? `${call}: ${p}` : p)).join('\n'));
}

/** JSON pointers of prepare()'s left-overs: unions and anyOfs it could not rewrite (a test wants none). */
export function unpreparedUnions(): string[] {
  return compile().registry.leftOver;
}

/** The schema as validated (prepare()'s form), for tests. */
export function preparedSchema(): Schema {
  return compile().schema;
}

// ---- the schema, rewritten for one error per problem ------------------------------------------

function prepare(raw: Schema): { schema: Schema; registry: Registry } {
  const schema = JSON.parse(JSON.stringify(raw)) as Schema;
  const defs: Record<string, Schema> = schema.$defs ?? {};
  const registry: Registry = {
    unions: new WeakMap(), tags: new WeakMap(), branchOf: new WeakMap(), singleKey: new WeakMap(),
    alternatives: new WeakMap(), durations: new WeakSet(), durationOf: new WeakMap(), defNames: new WeakMap(), defs, leftOver: [],
  };
  for (const [name, def] of Object.entries(defs)) {
    if (Array.isArray(def.oneOf)) defs[name] = taggedUnion(name, def, registry) ?? singleKeyUnion(def, registry) ?? def;
  }
  for (const [name, def] of Object.entries(defs)) registry.defNames.set(def, name);
  rewriteAnyOf(schema, '#', registry);
  return { schema, registry };
}

/** `oneOf` whose every branch requires one property with a distinct `const`: an enum and if/then. */
function taggedUnion(name: string, def: Schema, registry: Registry): Schema | undefined {
  const branches: Schema[] = def.oneOf;
  const tag = Object.keys(branches[0]?.properties ?? {}).find((p) => branches.every((b) =>
    typeof b?.properties?.[p]?.const === 'string' && Array.isArray(b.required) && b.required.includes(p)));
  if (tag === undefined) return undefined;
  const values = branches.map((b) => b.properties[tag].const as string);
  if (new Set(values).size !== values.length) return undefined;
  const { oneOf: _, ...rest } = def;
  const tagSchema = { type: 'string', enum: values };
  const union: TaggedUnion = { def: name, tag, values, branches: new Map(values.map((v, i) => [v, branches[i]])), common: Object.keys(rest.properties ?? {}) };
  const out: Schema = {
    ...rest,
    ...(rest.type === undefined && branches.every((b) => b.type === 'object') ? { type: 'object' } : {}),
    properties: { ...(rest.properties ?? {}), [tag]: tagSchema },
    required: [...new Set([...(rest.required ?? []), tag])],
    // `type: object` in the `if`: `properties` and `required` hold vacuously for a non-object.
    allOf: [...(rest.allOf ?? []), ...branches.map((b, i) => ({ if: { type: 'object', properties: { [tag]: { const: values[i] } }, required: [tag] }, then: b }))],
  };
  registry.unions.set(out, union);
  registry.tags.set(tagSchema, union);
  values.forEach((v, i) => registry.branchOf.set(branches[i], { union, value: v }));
  return out;
}

/** `oneOf` of objects with exactly one (required) key each: one object with exactly one of the keys. */
function singleKeyUnion(def: Schema, registry: Registry): Schema | undefined {
  const branches: Schema[] = def.oneOf;
  const single = branches.every((b) => b?.type === 'object' && b.additionalProperties === false && Array.isArray(b.required)
    && b.required.length === 1 && Object.keys(b.properties ?? {}).length === 1 && b.properties[b.required[0]] !== undefined);
  if (!single) return undefined;
  const keys = branches.map((b) => b.required[0] as string);
  if (new Set(keys).size !== keys.length) return undefined;
  const { oneOf: _, ...rest } = def;
  const out: Schema = {
    ...rest,
    type: 'object',
    properties: Object.fromEntries(branches.map((b, i) => [keys[i], b.properties[keys[i]]])),
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
  };
  registry.singleKey.set(out, keys);
  return out;
}

/** The JSON types a branch admits (a $ref's definition's), or undefined when it does not say. */
function typesOf(branch: Schema, registry: Registry): string[] | undefined {
  if (typeof branch?.$ref === 'string') {
    const def = registry.defs[branch.$ref.replace(/^#\/\$defs\//, '')];
    return def ? typesOf(def, registry) : undefined;
  }
  if (typeof branch?.type === 'string') return [branch.type];
  if (Array.isArray(branch?.type)) return branch.type;
  return undefined;
}

/** Keywords whose value is a schema, a list of schemas, or a map of names to schemas. */
const ONE_SCHEMA = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];
const SCHEMA_LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SCHEMA_MAP = ['$defs', 'properties', 'patternProperties', 'dependentSchemas'];

/**
 * Every `anyOf` whose branches admit disjoint JSON types (integer counted as a number), in place:
 * `type: <every branch's>` plus `if <branch's type> then <branch>` for each, so data of a type no
 * branch takes is one error, and data of a branch's type gets that branch's errors only.
 */
function rewriteAnyOf(node: unknown, pointer: string, registry: Registry): void {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
  const s = node as Schema;
  if (Array.isArray(s.anyOf)) {
    const branches: Schema[] = s.anyOf;
    const types = branches.map((b) => typesOf(b, registry));
    const flat = types.flatMap((t) => (t ?? []).map((x) => (x === 'integer' ? 'number' : x)));
    if (types.every((t) => t !== undefined) && new Set(flat).size === flat.length) {
      delete s.anyOf;
      s.type = types.flatMap((t) => t!);
      let chain: Schema = {};
      for (let i = branches.length - 1; i >= 0; i--) chain = { if: { type: types[i]!.length === 1 ? types[i]![0] : types[i] }, then: branches[i], else: chain };
      Object.assign(s, chain);
      registry.alternatives.set(s, branches);
      const duration = branches.length === 2 && branches[0].type === 'string' && typeof branches[0].pattern === 'string' && branches[1].type === 'integer';
      if (duration && branches[0].pattern === DURATION_PATTERN) for (const d of [s, ...branches]) registry.durations.add(d);
      // A duration, or a duration or null (a bake): the integer branch's bounds are the duration's.
      if (branches[0]?.pattern === DURATION_PATTERN && branches[1]?.type === 'integer') for (const b of branches) registry.durationOf.set(b, s);
    } else {
      registry.leftOver.push(`${pointer}/anyOf`);
    }
  }
  if (Array.isArray(s.oneOf)) registry.leftOver.push(`${pointer}/oneOf`);
  for (const k of ONE_SCHEMA) if (k in s) rewriteAnyOf(s[k], `${pointer}/${k}`, registry);
  for (const k of SCHEMA_LIST) if (Array.isArray(s[k])) s[k].forEach((b: unknown, i: number) => rewriteAnyOf(b, `${pointer}/${k}/${i}`, registry));
  for (const k of SCHEMA_MAP) {
    if (s[k] !== null && typeof s[k] === 'object') for (const [name, b] of Object.entries(s[k])) rewriteAnyOf(b, `${pointer}/${k}/${escape(name)}`, registry);
  }
}

// ---- ajv's errors, one message per problem ----------------------------------------------------

function messages(errors: ErrorObject[], data: unknown, registry: Registry, prefix: string, whole: string): string[] {
  // A number token's value is unknown at synth: nothing at its path is judged.
  const numberTokens = numberTokenPaths(data);
  const kept = errors.filter((e) => e.keyword !== 'if'
    && !numberTokens.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`)));
  // A member whose tag is missing, unknown or a token: the tag's message says it all (which
  // settings are unknown depends on the kind it was meant to be).
  const tagProblems = new Set<string>();
  for (const e of kept) {
    const tagged = registry.tags.get(e.parentSchema as object);
    if (tagged) tagProblems.add(parentPointer(e.instancePath));
    const union = registry.unions.get(e.parentSchema as object);
    if (union && e.keyword === 'required' && e.params.missingProperty === union.tag) tagProblems.add(e.instancePath);
  }
  const out: string[] = [];
  for (const e of kept) {
    const m = message(e, registry, prefix, whole, tagProblems);
    if (m !== undefined && !out.includes(m)) out.push(m);
  }
  return out;
}

function message(e: ErrorObject, registry: Registry, prefix: string, whole: string, tagProblems: Set<string>): string | undefined {
  const ps = e.parentSchema as Schema;
  const at = fieldPath(prefix, e.instancePath, whole);
  const value = e.data;
  const token = typeof value === 'string' && Token.isUnresolved(value);
  const tagged = registry.tags.get(ps);
  if (tagged) return `${at}: ${tagMessage(tagged, value)}`;
  const duration = registry.durations.has(ps);
  switch (e.keyword) {
    case 'required': {
      const missing = String(e.params.missingProperty);
      const union = registry.unions.get(ps);
      if (union && missing === union.tag) return `${fieldPath(prefix, `${e.instancePath}/${missing}`, whole)}: ${tagMessage(union, undefined)}`;
      return `${fieldPath(prefix, `${e.instancePath}/${escape(missing)}`, whole)}: missing; expected ${describe(ps.properties?.[missing], registry)}`;
    }
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      if (tagProblems.has(e.instancePath)) return undefined;
      const key = String(e.params.additionalProperty ?? e.params.unevaluatedProperty);
      // A member's own setting is "unevaluated" whenever its branch has another error (a failed
      // subschema's properties do not count as evaluated): that error is the problem, not this.
      if (e.keyword === 'unevaluatedProperties' && memberSettings(ps, value, registry)?.includes(key)) return undefined;
      return `${at}: unknown setting ${JSON.stringify(key)} (${owner(ps, value, e.instancePath, registry)})`;
    }
    case DURATION_BOUNDS:
    case 'type':
    case 'pattern':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const bounds = durationBounds(ps, registry);
      if (bounds && e.keyword !== 'type' && e.keyword !== 'pattern') {
        return `${at}: expected a duration from ${formatDuration(bounds.minimum)} to ${formatDuration(bounds.maximum)}, got ${show(value)}`;
      }
      if (duration) return `${at}: expected ${DURATION_EXPECTED}, got ${show(value)}`;
      if (e.keyword === 'pattern' && e.params.pattern === NON_BLANK) return `${at}: is blank; expected ${describe(ps, registry)}`;
      if (e.keyword === 'pattern') return `${at}: expected ${describe(ps, registry)}, got ${show(value)}`;
      return `${at}: expected ${describe(ps, registry)}, got ${show(value)}`;
    }
    case 'minItems': {
      // "is empty" while the bound is 1 (every bound the schema has today); past 1, how many.
      const n = Array.isArray(value) ? value.length : 0;
      if (n === 0) return `${at}: is empty; expected ${describe(ps, registry)}`;
      return `${at}: has ${n} ${n === 1 ? 'item' : 'items'}, expected at least ${Number(e.params.limit)} (${describe(ps, registry)})`;
    }
    case 'minLength':
    case 'maxLength':
      return `${at}: expected ${describe(ps, registry)}, got ${show(value)}`;
    case 'enum':
      if (token) return undefined;
      return `${at}: expected one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${show(value)}`;
    case 'const':
      if (token) return undefined;
      return `${at}: expected ${JSON.stringify(e.params.allowedValue)}, got ${show(value)}`;
    case 'minProperties':
    case 'maxProperties': {
      const keys = registry.singleKey.get(ps);
      if (keys) {
        const given = value !== null && typeof value === 'object' ? Object.keys(value) : [];
        return `${at}: expected exactly one of ${keys.join(', ')}, got ${given.length ? given.join(' and ') : 'none'}`;
      }
      return `${at}: ${e.message}`;
    }
    default:
      return `${at}: ${e.message}`;
  }
}

/** The non-blank pattern the schema gives names and ids. */
const NON_BLANK = '\\S';

/** A duration's bounds, where the schema states them. */
function durationBounds(ps: Schema, registry: Registry): { minimum: number; maximum: number } | undefined {
  // ajv's parentSchema for a branch's `maximum` is the branch; its bounds are the duration's.
  return ps?.[DURATION_BOUNDS] ?? registry.durationOf.get(ps)?.[DURATION_BOUNDS];
}

function tagMessage(union: TaggedUnion, value: unknown): string {
  const noun = UNION_NOUNS[union.def]?.value ?? `a ${union.tag}`;
  const allowed = `(${union.values.join(', ')})`;
  if (value === undefined) return `missing; expected ${noun} ${allowed}`;
  if (typeof value === 'string' && Token.isUnresolved(value)) return `is a token, but ${noun} must be known at synth ${allowed}`;
  return `${show(value)} is not ${noun} ${allowed}`;
}

function tagValue(value: unknown, union: TaggedUnion): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[union.tag] : undefined;
}

/** Every setting a member of a tagged union may have, given its tag's value (name and tag first). */
function memberSettings(ps: Schema, value: unknown, registry: Registry): string[] | undefined {
  const union = registry.unions.get(ps);
  if (!union) return undefined;
  const kind = tagValue(value, union);
  const branch = typeof kind === 'string' ? union.branches.get(kind) : undefined;
  const own = Object.keys(branch?.properties ?? {}).filter((p) => p !== union.tag && !union.common.includes(p));
  return [...union.common.filter((p) => p === 'name'), union.tag, ...own, ...union.common.filter((p) => p !== 'name' && p !== union.tag)];
}

/** "an invoke check has: …", "expect has: …": what an object with an unknown setting may have. */
function owner(ps: Schema, value: unknown, pointer: string, registry: Registry): string {
  const union = registry.unions.get(ps);
  if (union) return `${member(union, tagValue(value, union))} has: ${memberSettings(ps, value, registry)!.join(', ')}`;
  const branch = registry.branchOf.get(ps);
  if (branch) {
    const names = [branch.union.tag, ...Object.keys(ps.properties ?? {}).filter((p) => p !== branch.union.tag)];
    return `${member(branch.union, branch.value)} has: ${names.join(', ')}`;
  }
  const last = pointer.split('/').pop() ?? '';
  const named = last !== '' && !/^[0-9]+$/.test(last) ? unescape(last) : DEF_NOUNS[registry.defNames.get(ps) ?? ''] ?? 'it';
  const keys = registry.singleKey.get(ps);
  if (keys) return `${named} takes exactly one of: ${keys.join(', ')}`;
  return `${named} has: ${Object.keys(ps.properties ?? {}).join(', ') || 'no settings'}`;
}

function member(union: TaggedUnion, kind: unknown): string {
  const noun = UNION_NOUNS[union.def]?.member ?? union.def.toLowerCase();
  if (typeof kind !== 'string') return `a ${noun}`;
  return `${/^([aeiou]|http)/i.test(kind) ? 'an' : 'a'} ${kind} ${noun}`;
}

/** What a schema admits, in words. */
function describe(s: Schema | undefined, registry: Registry): string {
  if (s === undefined || s === null || typeof s !== 'object') return 'any JSON value';
  if (registry.durations.has(s)) return DURATION_EXPECTED;
  if (typeof s.$ref === 'string') {
    const def = registry.defs[s.$ref.replace(/^#\/\$defs\//, '')];
    return def ? describe(def, registry) : 'any JSON value';
  }
  const alternatives = registry.alternatives.get(s);
  if (alternatives) return alternatives.map((a) => describe(a, registry)).join(' or ');
  const union = registry.unions.get(s);
  if (union) return `an object with ${union.tag}: ${union.values.join(', ')}`;
  const keys = registry.singleKey.get(s);
  if (keys) return `an object with exactly one of ${keys.join(', ')}`;
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v: unknown) => JSON.stringify(v)).join(', ')}`;
  if ('const' in s) return JSON.stringify(s.const);
  const types: string[] = Array.isArray(s.type) ? s.type : typeof s.type === 'string' ? [s.type] : [];
  if (types.length === 0) return 'any JSON value';
  return types.map((t) => describeType(t, s, registry)).join(' or ');
}

function describeType(type: string, s: Schema, registry: Registry): string {
  switch (type) {
    case 'string': {
      const parts: string[] = [];
      if (s.pattern === NON_BLANK) parts.push('a non-blank string');
      else if (typeof s.pattern === 'string') parts.push(`a string matching ${s.pattern}`);
      else parts.push('a string');
      const [min, max] = [s.minLength, s.maxLength];
      if (min !== undefined && max !== undefined) parts.push(`of ${min} to ${max} characters`);
      else if (min !== undefined) parts.push(`of at least ${min} characters`);
      else if (max !== undefined) parts.push(`of at most ${max} characters`);
      return parts.join(' ');
    }
    case 'integer':
    case 'number': {
      const noun = type === 'integer' ? 'a whole number' : 'a number';
      const min = s.minimum;
      const max = s.maximum ?? s.exclusiveMaximum;
      const below = s.maximum === undefined && s.exclusiveMaximum !== undefined;
      if (min !== undefined && max !== undefined) return below ? `${noun} of at least ${min} and below ${max}` : `${noun} from ${min} to ${max}`;
      if (min !== undefined) return `${noun} of at least ${min}`;
      if (max !== undefined) return below ? `${noun} below ${max}` : `${noun} of at most ${max}`;
      return noun;
    }
    case 'boolean': return 'true or false';
    case 'null': return 'null';
    case 'array': {
      const list = s.minItems !== undefined && s.minItems > 0 ? `a list of at least ${s.minItems}` : 'a list';
      return s.items && typeof s.items === 'object' ? `${list}, each ${describe(s.items, registry)}` : list;
    }
    case 'object': {
      const props = Object.keys(s.properties ?? {});
      if (props.length > 0) return `an object (${props.join(', ')})`;
      if (s.additionalProperties && typeof s.additionalProperties === 'object') return `an object whose values are each ${describe(s.additionalProperties, registry)}`;
      return 'an object';
    }
    default: return type;
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') {
    if (Token.isUnresolved(v)) return 'a token';
    const text = JSON.stringify(v);
    return text.length > 80 ? `${text.slice(0, 77)}…"` : text;
  }
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'an object';
  return JSON.stringify(v);
}

/** A JSON pointer as the field path a person writes: `checks[0].expect.status`. */
function fieldPath(prefix: string, pointer: string, whole: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = unescape(raw);
    if (/^(0|[1-9][0-9]*)$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || whole;
}

function parentPointer(pointer: string): string {
  return pointer.slice(0, Math.max(0, pointer.lastIndexOf('/')));
}

function escape(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** JSON pointers of every number token (Token.asNumber) in `data`. */
function numberTokenPaths(data: unknown, pointer = '', out: string[] = []): string[] {
  if (typeof data === 'number' && Token.isUnresolved(data)) out.push(pointer);
  else if (Array.isArray(data)) data.forEach((v, i) => numberTokenPaths(v, `${pointer}/${i}`, out));
  else if (data !== null && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) numberTokenPaths(v, `${pointer}/${escape(k)}`, out);
  }
  return out;
}
