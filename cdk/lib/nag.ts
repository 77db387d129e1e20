// cdk-nag acknowledgments that cdk-nag 2.x and 3.x both read, without a dependency on cdk-nag.
//
// Why no dependency (not even an optional peer): the two majors have no suppression API in common.
// 2.x is an Aspect that reads the `cdk_nag` CloudFormation metadata NagSuppressions writes; 3.x is a
// policy-validation plugin that has no NagSuppressions at all and reads the acknowledgments of
// aws-cdk-lib's own `Validations.of(construct).acknowledge()`. Importing cdk-nag would tie every
// user to the one major we import (and 3.x needs aws-cdk-lib >= 2.257). Both formats are plain
// construct metadata that aws-cdk-lib writes, so this module writes both and the user brings
// whichever cdk-nag they run (or none: then the metadata is inert).
//
// 3.x (3.0.2) matches a granular rule's findings one by one: an IAM5 finding is acknowledged as
// `AwsSolutions-IAM5[Resource::arn:...:function:NAME:*]`, and `AwsSolutions-IAM5` alone no longer
// covers it (cdklabs/cdk-nag#2357). So for IAM4 and IAM5 the finding ids are computed here exactly
// as cdk-nag computes them (rules/iam/IAMNoManagedPolicies, IAMNoWildcardPermissions,
// utils/flatten-cfn-reference), from the resource as it is synthesized: after the last aspect
// and after cross-stack references are resolved (a construct validation, which runs then), since
// 3.x judges the finished templates. The plain rule id is acknowledged too, for a cdk-nag that
// matches a rule's findings by its id again. test/pack.test.ts runs a user app against the real
// cdk-nag 2.x and 3.x: a change in cdk-nag's finding ids fails it.
import { AspectPriority, Aspects, CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, IConstruct } from 'constructs';

export interface NagRule { readonly id: string; readonly reason: string }

/** v2's metadata entry: what `NagSuppressions.addResourceSuppressions` writes (`applies_to`: only those findings). */
interface V2Suppression { reason: string; id: string; applies_to?: string[] }

const IAM4 = 'AwsSolutions-IAM4';
const IAM5 = 'AwsSolutions-IAM5';

/**
 * Acknowledges `rules` on every CloudFormation resource under `scope` that exists now, each with
 * its reason: rule-wide for cdk-nag 2.x (the `cdk_nag` metadata
 * `NagSuppressions.addResourceSuppressions(scope, rules, true)` writes; ASCII reasons only), and
 * for cdk-nag 3.x the rule and every finding of it on the resource as synthesized. Acknowledging
 * twice keeps one copy of each rule.
 *
 * And on what a role under `scope` gets later: CDK splits a role's default policy past its inline
 * size at synth (an aspect of the role), moving statements into `OverflowPolicyN` managed
 * policies under it. They hold the role's statements, so they get the role's acknowledgments,
 * from an aspect that runs on them before cdk-nag 2.x's (a mutating aspect runs first) and, for
 * 3.x, at synth as above.
 */
export function suppress(scope: IConstruct, rules: NagRule[]): void {
  for (const child of scope.node.findAll()) {
    const resource = child.node.defaultChild ?? child;
    if (resource instanceof CfnResource) acknowledgeAll(resource, rules);
    if (child instanceof iam.Role) acknowledgeLater(child, rules);
  }
}

/** What `suppress` does for one resource; once per resource and set of rules. */
function acknowledgeAll(resource: CfnResource, rules: NagRule[]): void {
  const key = JSON.stringify(rules);
  let done = suppressed.get(resource);
  if (!done) suppressed.set(resource, done = new Set());
  if (done.has(key)) return;
  done.add(key);
  addV2(resource, rules.map((r) => ({ reason: r.reason, id: r.id })));
  atSynth(resource, () => {
    for (const rule of rules) acknowledge(resource, [rule.id, ...findings(rule.id, resource).map((f) => `${rule.id}[${f}]`)], rule.reason);
  });
}

/** The resources `suppress` acknowledged, with which rules (JSON). */
const suppressed = new WeakMap<CfnResource, Set<string>>();
/** The roles whose later resources are acknowledged, with which rules (JSON). */
const later = new WeakMap<iam.Role, Set<string>>();

/** `rules` on every resource under `role` when aspects run (its overflow policies among them), before cdk-nag 2.x judges it. */
function acknowledgeLater(role: iam.Role, rules: NagRule[]): void {
  const key = JSON.stringify(rules);
  let done = later.get(role);
  if (!done) later.set(role, done = new Set());
  if (done.has(key)) return;
  done.add(key);
  Aspects.of(role).add({
    visit: (node: IConstruct) => {
      if (node instanceof CfnResource) acknowledgeAll(node, rules);
    },
  }, { priority: AspectPriority.MUTATING });
}

/**
 * Acknowledges, on the grantee's own IAM resources, the IAM5 findings that `grant`'s statements
 * produce (a wildcard in one of their actions or resources) and no other: the grantee's policy is
 * the user's, and a wildcard the user wrote there is theirs to judge. For cdk-nag 2.x as
 * `applies_to` in the `cdk_nag` metadata, written by an aspect that runs before cdk-nag's (2.x
 * judges during aspects, and a policy may still grow until then); for 3.x as acknowledgments of
 * those finding ids at synth. Nothing for a grantee that is not a construct of the app (an
 * account, a service principal): no policy of the app holds the statements.
 */
export function suppressGrant(grantee: iam.IGrantable, grant: iam.Grant, reason: string): void {
  const principal = grantee.grantPrincipal;
  if (!Construct.isConstruct(principal) || grant.principalStatements.length === 0) return;
  const statements = grant.principalStatements;
  const ours = (node: CfnResource): string[] => {
    const stack = Stack.of(node);
    const granted = new Set(statements.flatMap((s) => wildcardFindings(stack.resolve(s.toStatementJson()))));
    return findings(IAM5, node).filter((f) => granted.has(f));
  };
  Aspects.of(principal).add({
    visit: (node: IConstruct) => {
      if (!(node instanceof CfnResource)) return;
      const found = ours(node);
      if (found.length > 0) addV2(node, [{ reason, id: IAM5, applies_to: found }]);
    },
  }, { priority: AspectPriority.MUTATING });
  atSynth(principal, () => {
    for (const node of principal.node.findAll()) {
      if (node instanceof CfnResource) acknowledge(node, ours(node).map((f) => `${IAM5}[${f}]`), reason);
    }
  });
}

function addV2(resource: CfnResource, rules: V2Suppression[]): void {
  const existing: object[] = resource.getMetadata('cdk_nag')?.rules_to_suppress ?? [];
  const all = [...existing, ...rules].map((r) => JSON.stringify(r));
  resource.addMetadata('cdk_nag', { rules_to_suppress: [...new Set(all)].map((r) => JSON.parse(r)) });
}

/**
 * Runs `fn` when the templates are final: as a validation of `scope`, which runs after the last
 * aspect and after cross-stack references are resolved, the last hook before the templates are
 * written (skipped only by `synth({ skipValidation: true })`, and then 3.x shows the findings).
 */
function atSynth(scope: IConstruct, fn: () => void): void {
  scope.node.addValidation({ validate: () => { fn(); return []; } });
}

/** What each construct has acknowledged (a synth may run twice): id and reason. */
const acknowledged = new WeakMap<IConstruct, Set<string>>();

function acknowledge(scope: IConstruct, ids: string[], reason: string): void {
  let done = acknowledged.get(scope);
  if (!done) acknowledged.set(scope, done = new Set());
  for (const id of ids) {
    const key = JSON.stringify([id, reason]);
    if (done.has(key)) continue;
    done.add(key);
    try {
      Validations.of(scope).acknowledge({ id, reason });
    } catch (e) {
      throw new Error(`ShiftGuard: cannot acknowledge the cdk-nag finding ${id} on ${scope.node.path}: ${(e as Error).message}`);
    }
  }
}

/** A granular rule's finding ids on `node`, as cdk-nag computes them; none for any other rule. */
function findings(rule: string, node: CfnResource): string[] {
  const stack = Stack.of(node);
  const principal = node instanceof iam.CfnRole || node instanceof iam.CfnUser || node instanceof iam.CfnGroup;
  if (rule === IAM4 && principal) {
    const arns: unknown[] = stack.resolve(node.managedPolicyArns) ?? [];
    return unique(arns.map((a) => flatten(stack.resolve(a))).filter((a) => a.includes(':iam::aws:')).map((a) => `Policy::${a}`));
  }
  if (rule === IAM5 && principal) {
    const inline: any[] = stack.resolve(node.policies) ?? [];
    return unique(inline.flatMap((p) => wildcardFindings(stack.resolve(stack.resolve(p).policyDocument))));
  }
  if (rule === IAM5 && (node instanceof iam.CfnPolicy || node instanceof iam.CfnManagedPolicy)) {
    return wildcardFindings(stack.resolve(node.policyDocument));
  }
  return [];
}

/** IAMNoWildcardPermissions: `Action::A` for an allowed action with a `*`, `Resource::R` for a resource (flattened) with one. */
function wildcardFindings(doc: any): string[] {
  const statements: any[] = doc?.Statement ?? (doc?.Effect ? [doc] : []);
  const result = new Set<string>();
  for (const s of statements) {
    if (s.Effect !== 'Allow') continue;
    for (const a of list(s.Action)) if (String(a).includes('*')) result.add(`Action::${a}`);
    for (const r of list(s.Resource).map(flatten)) if (r.includes('*')) result.add(`Resource::${r}`);
  }
  return [...result];
}

/** cdk-nag's flattenCfnReference: a CloudFormation value as the text its finding ids use. */
function flatten(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/}/g, '>');
  const v = value as Record<string, any>;
  if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(flatten).join(v['Fn::Join'][0]);
  if (v['Fn::Sub']) return flatten(v['Fn::Sub']);
  if (v['Fn::GetAtt']) return `<${flatten(v['Fn::GetAtt'][0])}.${flatten(v['Fn::GetAtt'][1])}>`;
  if (v['Fn::ImportValue']) return flatten(v['Fn::ImportValue']);
  if (v.Ref) return `<${flatten(v.Ref)}>`;
  return JSON.stringify(value);
}

function list(v: unknown): unknown[] {
  return v === undefined ? [undefined] : Array.isArray(v) ? v : [v];
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
