import { CfnResource } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

export interface NagRule { readonly id: string; readonly reason: string }

/**
 * cdk-nag suppressions without a runtime dependency on cdk-nag: the `cdk_nag` metadata
 * `NagSuppressions.addResourceSuppressions(scope, rules, true)` writes (ASCII reasons only), on
 * every resource under `scope` that exists now. Suppressing twice keeps one copy of each rule.
 */
export function suppress(scope: IConstruct, rules: NagRule[]): void {
  for (const child of scope.node.findAll()) {
    const resource = child.node.defaultChild ?? child;
    if (!(resource instanceof CfnResource)) continue;
    const existing: object[] = resource.getMetadata('cdk_nag')?.rules_to_suppress ?? [];
    const all = [...existing, ...rules.map((r) => ({ reason: r.reason, id: r.id }))].map((r) => JSON.stringify(r));
    resource.addMetadata('cdk_nag', { rules_to_suppress: [...new Set(all)].map((r) => JSON.parse(r)) });
  }
}
