// The longest a policy document can be once deployed, in IAM's count (JSON without white space):
// what the scale and rollout tests hold every policy against (IAM: inline ≤ 10,240, managed ≤ 6,144).

/**
 * The longest `value` (a policy document, or a part of one) can be once deployed: each deploy-time
 * part at its longest — a function name 64 characters, a CodeDeploy application or deployment
 * group name 100, a partition 10 (aws-us-gov), a region 16 (the longest is 15 today), an account
 * 12; ARNs of a stack's own resources (a function 140, a queue 160, a key 120, a log group 600, an
 * alarm 320, a topic 320, the stack 200). A reference to anything else fails the test: the bound
 * would be a guess.
 */
export function deployedLength(template: any, value: unknown): number {
  const part = (v: any): number => {
    if (typeof v === 'string') return JSON.stringify(v).length - 2;
    if (v?.['Fn::Join']) {
      const [sep, parts] = v['Fn::Join'];
      return parts.reduce((n: number, p: unknown) => n + part(p), 0) + sep.length * (parts.length - 1);
    }
    const pseudo: Record<string, number> = { 'AWS::Partition': 10, 'AWS::Region': 16, 'AWS::AccountId': 12 };
    if (typeof v?.Ref === 'string') {
      if (v.Ref in pseudo) return pseudo[v.Ref];
      const bound = ({ 'AWS::Lambda::Function': 64, 'AWS::CodeDeploy::Application': 100, 'AWS::CodeDeploy::DeploymentGroup': 100 } as Record<string, number>)[template.Resources[v.Ref]?.Type];
      if (bound !== undefined) return bound;
    }
    // The fixed statements: ARNs of the ShiftGuard's own resources (names of up to 256 or 512 characters).
    if (v?.['Fn::GetAtt']?.[1] === 'Arn') {
      const arn = ({ 'AWS::Lambda::Function': 140, 'AWS::SQS::Queue': 160, 'AWS::KMS::Key': 120, 'AWS::Logs::LogGroup': 600, 'AWS::CloudWatch::Alarm': 320 } as Record<string, number>)[template.Resources[v['Fn::GetAtt'][0]]?.Type];
      if (arn !== undefined) return arn;
    }
    if (v?.Ref === 'AWS::StackId') return 200;
    if (typeof v?.Ref === 'string' && template.Resources[v.Ref]?.Type === 'AWS::SNS::Topic') return 320;
    throw new Error(`no bound for ${JSON.stringify(v)}`);
  };
  const whole = (v: any): number => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v).length;
    if (Array.isArray(v)) return 2 + v.reduce((n: number, x: unknown) => n + whole(x), 0) + Math.max(0, v.length - 1);
    if (v?.['Fn::Join'] || v?.Ref || v?.['Fn::GetAtt']) return part(v) + 2;
    const entries = Object.entries(v ?? {});
    return 2 + entries.reduce((n, [k, x]) => n + JSON.stringify(k).length + 1 + whole(x), 0) + Math.max(0, entries.length - 1);
  };
  return whole(value);
}
