// The statements that grow with every protected function, rollback target and rollout, placed so
// that a role's policies grow by resource ARNs only and stay within IAM's limits.
//
// Each protect() used to add statements of its own (about six per function to each hook's role
// and rollback's, and aws-cdk-lib one more per deployment group to each hook's): from about 8
// functions on, a role's inline policy reached CDK's split threshold and CDK moved the rest into
// `OverflowPolicyN` managed policies (21 of them at 35 functions), sized by CDK's estimate of 150
// characters for any ARN with a deploy-time part — less than a deployment group's ARN can be (its
// application's generated name alone may be 100 characters), so with long names an inline policy
// could pass IAM's 10,240 characters once deployed and an overflow policy 6,144. Here:
//
// - one statement per (actions, conditions) per role: a new resource is added to the kept
//   statement (`addResources`), so the same actions on the same resources as before, merged;
// - every resource is counted at the longest it can be once deployed (a function name at most 64
//   characters, a region 16, a partition 10, an account 12, an application's name 100…), and at
//   CDK's own estimate too in the inline policy (so CDK never splits it); when the role's inline
//   policy has no room left (its budget leaves room for the statements the construct does not
//   place: logs, the failure queue, its key…), the statement continues in a managed policy of
//   ours (`ShiftGuardGrantsN`, under the role, attached to it), each at most 6,144 characters
//   however long the names are. A statement that no longer fits in its policy continues in
//   another: the same actions and conditions, the next resources;
// - a book may hold the grants several roles share (the two hooks are granted the same for each
//   checked function): its managed policies are attached to all of them, once.
//
// The managed policies are acknowledged for cdk-nag (2.x and 3.x) with the role's reasons when
// they are created (./nag.ts).
import { Annotations, CfnResource, IResolvable, Reference, Stack, Token, Tokenization } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { NagRule, suppress } from './nag';

/** IAM: a role's inline policies, together, at most 10,240 characters (white space aside). */
export const INLINE_POLICY_LIMIT = 10240;
/** IAM: a managed policy at most 6,144 characters (white space aside). */
export const MANAGED_POLICY_LIMIT = 6144;
/** IAM: managed policies a role may have attached, by default (a quota increase allows 20). */
export const MANAGED_POLICIES_PER_ROLE = 10;
/** CDK moves a default policy's statements into managed policies past this estimate (aws-iam's MAX_INLINE_SIZE). */
const CDK_INLINE_SPLIT = 10000;
/**
 * Room left in each role's inline policy for the statements the construct does not place here
 * (its log group; rollback's failure queue, its key, doctor's reads): at most
 * 1,500 characters once deployed for rollback's (test/scale.test.ts measures every policy, whole,
 * against IAM's limits, and checks that CDK never splits one).
 */
const FIXED_ALLOWANCE = 2000;
/** Of a role's inline policy, what the books may use. */
const INLINE_BUDGET = CDK_INLINE_SPLIT - FIXED_ALLOWANCE;
/** `{"Version":"2012-10-17","Statement":[]}` */
const DOCUMENT_OVERHEAD = 39;
/** aws-iam's estimate of an ARN with a deploy-time part (its `@aws-cdk/aws-iam.arnSizeEstimate` context). */
const CDK_ARN_ESTIMATE = 150;

/** Where statements go: a role's inline policy (its own budget) or one of a book's managed policies. */
export interface Slot {
  used: number;
  readonly budget: number;
  /** The inline policy counts CDK's estimate too (CDK splits it by its estimate); a managed policy, the longest only. */
  readonly inline: boolean;
}

/** One statement of a book, as rendered in one place (per role inline, or once in a managed policy). */
interface Placed {
  readonly slots: Slot[];
  readonly statements: iam.PolicyStatement[];
}

interface Entry {
  readonly actions: string[];
  readonly conditions?: Record<string, unknown>;
  readonly resources: Set<string>;
  open?: Placed;
}

/** The longest a pseudo parameter is once deployed (regions are at most 15 characters today: us-isof-south-1). */
const PSEUDO: Record<string, number> = {
  'AWS::Partition': 10, 'AWS::Region': 16, 'AWS::AccountId': 12, 'AWS::URLSuffix': 20,
  'AWS::StackName': 128, 'AWS::StackId': 200, 'AWS::NoValue': 0,
};
/** The longest a `Ref` to a resource of this type is (a name, or for these types an ARN). */
const REF: Record<string, number> = {
  'AWS::Lambda::Function': 64,
  'AWS::CodeDeploy::Application': 100,
  'AWS::CodeDeploy::DeploymentGroup': 100,
  'AWS::CloudWatch::Alarm': 255,
  // ARNs: arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:QUALIFIER
  'AWS::Lambda::Alias': 256,
  'AWS::Lambda::Version': 160,
};
/** The longest a `Fn::GetAtt` is, by type and attribute. */
const GETATT: Record<string, number> = {
  'AWS::Lambda::Function.Arn': 140,
  'AWS::CloudWatch::Alarm.Arn': 320,
  'AWS::VpcLattice::Service.Id': 32,
  'AWS::VpcLattice::Listener.Id': 32,
  'AWS::VpcLattice::TargetGroup.Id': 32,
  'AWS::VpcLattice::Service.Arn': 160,
  'AWS::VpcLattice::Listener.Arn': 200,
  'AWS::VpcLattice::TargetGroup.Arn': 160,
};
/** Anything else with a deploy-time part (an import, another resource's ARN). */
const UNKNOWN = 512;

/** The managed policies and inline budgets of one ShiftGuard's roles. */
export class Grants {
  private readonly inline = new Map<iam.IRole, Slot>();
  /** The managed policies of the books attached to each role. */
  private readonly managed = new Map<iam.Role, number>();

  constructor(private readonly scope: Construct) {
    // IAM attaches at most 20 managed policies to a role (10 without a quota increase).
    scope.node.addValidation({
      validate: () => [...this.managed].filter(([, n]) => n > 2 * MANAGED_POLICIES_PER_ROLE)
        .map(([role, n]) => `ShiftGuard: ${role.node.path} would have ${n} managed policies for its grants, more than IAM attaches to a role (${2 * MANAGED_POLICIES_PER_ROLE} with a quota increase, ${MANAGED_POLICIES_PER_ROLE} without): protect fewer functions with this ShiftGuard (give another stack its own)`),
    });
  }

  /** Counts a managed policy attached to `roles`; past IAM's default quota, a warning on the role. */
  public attached(roles: iam.Role[]): void {
    for (const role of roles) {
      const n = (this.managed.get(role) ?? 0) + 1;
      this.managed.set(role, n);
      if (n === MANAGED_POLICIES_PER_ROLE + 1) {
        Annotations.of(role).addWarningV2('shiftguard:managedPolicies', `${role.node.path} has more than ${MANAGED_POLICIES_PER_ROLE} managed policies for ShiftGuard's grants: IAM attaches ${MANAGED_POLICIES_PER_ROLE} to a role unless the account's quota is raised (to at most ${2 * MANAGED_POLICIES_PER_ROLE})`);
      }
    }
  }

  /**
   * A book of statements for `functions`' roles (each an `iam.Role` of this ShiftGuard). Its
   * managed policies get `rules` (cdk-nag acknowledgments, the roles' own reasons).
   */
  public book(name: string, functions: lambda.Function[], rules: NagRule[]): GrantBook {
    return new GrantBook(this, name, functions, rules);
  }

  public inlineSlot(role: iam.IRole): Slot {
    let slot = this.inline.get(role);
    if (!slot) this.inline.set(role, slot = { used: 0, budget: INLINE_BUDGET, inline: true });
    return slot;
  }

  /**
   * The longest `value` (a string, possibly with tokens) can be once deployed. Its tokens are
   * judged without resolving the references among them: resolving a reference resolves its
   * target's logical id, and a function's `currentVersion` computes its id from the function's
   * configuration, whose `Lazy` values (the doctor's hash of what it reads) would be produced, and
   * kept, before the app is complete.
   */
  public longest(value: string): number {
    const tokens = Tokenization.reverseString(value).tokens;
    // The literal parts: the string without its tokens' markers (`${Token[NAME.1234]}`).
    const literal = value.replace(/\$\{Token\[[^\]]*\]\}/g, '');
    return JSON.stringify(literal).length - 2 + tokens.reduce((n, t) => n + this.token(t), 0);
  }

  private token(t: IResolvable): number {
    if (Reference.isReference(t)) {
      const target = t.target;
      if (CfnResource.isCfnResource(target)) {
        const bound = t.displayName === 'Ref' ? REF[target.cfnResourceType] : GETATT[`${target.cfnResourceType}.${t.displayName}`];
        return bound ?? UNKNOWN;
      }
      return PSEUDO[t.displayName] ?? UNKNOWN;
    }
    // An intrinsic: a pseudo parameter (stack.partition is {"Ref": "AWS::Partition"}), an import…
    const v = Stack.of(this.scope).resolve(t) as { Ref?: unknown } | string | undefined;
    if (typeof v === 'string') return JSON.stringify(v).length - 2;
    if (typeof v?.Ref === 'string' && v.Ref in PSEUDO) return PSEUDO[v.Ref];
    return UNKNOWN;
  }
}

/**
 * Statements for one or more roles, merged by (actions, conditions): `add` puts each new resource
 * in the statement kept for its actions and conditions, in the roles' inline policies while they
 * have room, then in managed policies of the book's own.
 */
export class GrantBook {
  private readonly entries = new Map<string, Entry>();
  private readonly managed: { slot: Slot; policy: iam.ManagedPolicy }[] = [];
  private readonly roles: iam.Role[];

  constructor(private readonly grants: Grants, private readonly name: string, private readonly functions: lambda.Function[], private readonly rules: NagRule[]) {
    this.roles = functions.map((f) => {
      if (!(f.role instanceof iam.Role)) throw new Error(`ShiftGuard: ${f.node.path}'s role is not an iam.Role of this ShiftGuard`);
      return f.role;
    });
  }

  /**
   * A grantee for aws-cdk-lib's `grant*` methods (a topic's `grantPublish`, its key's grant) whose
   * statements on the role go through this book, counted and placed like its own: the book's one
   * role in everything else (its account, its stack), so that what the method puts elsewhere (a
   * key's policy for another account's key) is what it would be for the role. A statement the
   * book cannot hold (a Deny, principals, NotAction…) goes to the role as before.
   */
  public grantee(): iam.IGrantable {
    if (this.roles.length !== 1) throw new Error(`ShiftGuard: ${this.name}'s grant book has ${this.roles.length} roles; a grantee is for one`);
    const role = this.roles[0];
    const add = (statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult => {
      const plain = statement.effect === iam.Effect.ALLOW && statement.sid === undefined && statement.principals.length === 0 && statement.notPrincipals.length === 0
        && statement.notActions.length === 0 && statement.notResources.length === 0
        && statement.actions.length > 0 && statement.resources.length > 0;
      if (!plain) return role.addToPrincipalPolicy(statement);
      const conditions = statement.conditions as Record<string, unknown>;
      this.add(statement.actions, statement.resources, Object.keys(conditions ?? {}).length > 0 ? conditions : undefined);
      return { statementAdded: true, policyDependable: role };
    };
    const principal: iam.IPrincipal = new Proxy(role, {
      get: (target, p) => {
        if (p === 'addToPrincipalPolicy') return add;
        if (p === 'addToPolicy') return (s: iam.PolicyStatement) => add(s).statementAdded;
        if (p === 'grantPrincipal') return principal;
        return Reflect.get(target, p, target);
      },
    });
    return { grantPrincipal: principal };
  }

  /** `add`, with a statement's props. */
  public statement(props: { actions: string[]; resources: string[]; conditions?: Record<string, unknown> }): void {
    this.add(props.actions, props.resources, props.conditions);
  }

  /** Allows `actions` on `resources` (with `conditions`): new resources join the statement kept for them. */
  public add(actions: string[], resources: string[], conditions?: Record<string, unknown>): void {
    const key = JSON.stringify([[...new Set(actions)].sort(), conditions ?? null]);
    let entry = this.entries.get(key);
    if (!entry) this.entries.set(key, entry = { actions: [...new Set(actions)], conditions, resources: new Set() });
    for (const resource of resources) {
      if (entry.resources.has(resource)) continue;
      entry.resources.add(resource);
      // In the array: the quotes and a comma.
      const longest = this.grants.longest(resource) + 3;
      const estimate = (Token.isUnresolved(resource) ? CDK_ARN_ESTIMATE : resource.length) + 3;
      const cost = (s: Slot) => s.inline ? Math.max(longest, estimate) : longest;
      if (!entry.open || !entry.open.slots.every((s) => s.used + cost(s) <= s.budget)) entry.open = this.place(entry, cost);
      for (const s of entry.open.slots) s.used += cost(s);
      for (const st of entry.open.statements) st.addResources(resource);
    }
  }

  /** A new statement for `entry`, where it and its first resource fit: every role's inline policy, else a managed policy. */
  private place(entry: Entry, first: (s: Slot) => number): Placed {
    const json = JSON.stringify({ Action: entry.actions.length === 1 ? entry.actions[0] : entry.actions, Effect: 'Allow', Resource: [], Condition: entry.conditions }).length + 1;
    // aws-iam's _estimateSize of a statement without resources.
    const estimate = '"Effect": "Allow",'.length + 'Action'.length + 5 + entry.actions.reduce((n, a) => n + a.length + 3, 0)
      + 'Resource'.length + 5 + JSON.stringify(entry.conditions ?? {}).length;
    const cost = (s: Slot) => (s.inline ? Math.max(json, estimate) : json) + first(s);
    const fits = (slots: Slot[]) => slots.every((s) => s.used + cost(s) <= s.budget);
    const statement = () => new iam.PolicyStatement({ actions: entry.actions, conditions: entry.conditions });
    let placed: Placed;
    const inline = this.roles.map((r) => this.grants.inlineSlot(r));
    if (fits(inline)) {
      const statements = this.functions.map((f) => {
        const st = statement();
        f.addToRolePolicy(st);
        return st;
      });
      placed = { slots: inline, statements };
    } else {
      const m = this.managed.find((x) => fits([x.slot])) ?? this.newManaged();
      if (!fits([m.slot])) throw new Error(`ShiftGuard: a statement of ${this.name} (${entry.actions.join(', ')}) with one resource is longer than a managed policy (${MANAGED_POLICY_LIMIT} characters)`);
      const st = statement();
      m.policy.addStatements(st);
      placed = { slots: [m.slot], statements: [st] };
    }
    for (const s of placed.slots) s.used += cost(s) - first(s);
    return placed;
  }

  private newManaged(): { slot: Slot; policy: iam.ManagedPolicy } {
    const n = this.managed.length + 1;
    // Under the first role (its function depends on the role, so on this policy too); the other
    // roles' functions wait for it explicitly.
    const policy = new iam.ManagedPolicy(this.roles[0], `ShiftGuardGrants${n}`, {
      description: `ShiftGuard ${this.name}: grants for the functions beyond what the role's inline policy holds (${n})`,
      roles: this.roles,
    });
    for (const f of this.functions.slice(1)) f.node.addDependency(policy);
    suppress(policy, this.rules);
    this.grants.attached(this.roles);
    const m = { slot: { used: DOCUMENT_OVERHEAD, budget: MANAGED_POLICY_LIMIT, inline: false }, policy };
    this.managed.push(m);
    return m;
  }
}
