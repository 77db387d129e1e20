// A function's environment as it runs: the template's variables plus its settings file (the check
// sets and target maps the construct ships in a layer: lib/settings.ts), with each `${SG_n}` put
// back as the deploy-time value the variable carries. A file value with such references comes back
// as the Fn::Join CloudFormation would have rendered in the environment, so tests read both alike.
import * as fs from 'fs';
import * as path from 'path';
import { Stack, Stage } from 'aws-cdk-lib';

/** The variables of the function resource `fn` of `template`, whose assets are under `assetDir`. */
export function environmentOf(template: any, fn: any, assetDir: string): Record<string, any> {
  const variables: Record<string, any> = { ...(fn.Properties.Environment?.Variables ?? {}) };
  const file: string | undefined = variables.SHIFTGUARD_CONFIG_FILE;
  if (file === undefined) return variables;
  delete variables.SHIFTGUARD_CONFIG_FILE;
  const relative = file.replace(/^\/opt\//, '');
  const layers: any[] = fn.Properties.Layers ?? [];
  const found = layers
    .map((l) => template.Resources[l.Ref])
    .filter((r) => r?.Type === 'AWS::Lambda::LayerVersion')
    .map((r) => path.join(assetDir, `asset.${String(r.Properties.Content.S3Key).replace(/\.zip$/, '')}`, relative))
    .find((p) => fs.existsSync(p));
  if (!found) throw new Error(`${file} is in none of the function's layers under ${assetDir}`);
  const settings = JSON.parse(fs.readFileSync(found, 'utf8'));
  expect(settings.version).toBe(1);
  for (const [name, value] of Object.entries<string>(settings.environment)) {
    if (name in variables) throw new Error(`${name} is both in the environment and in ${file}`);
    const parts: any[] = [];
    let literal = '';
    // `$${` is a literal `${`; `${NAME}` the variable's (deploy-time) value.
    const re = /\$\$\{|\$\{([A-Z0-9_]+)\}/g;
    let at = 0;
    for (let m = re.exec(value); m; m = re.exec(value)) {
      literal += value.slice(at, m.index);
      at = m.index + m[0].length;
      if (m[1] === undefined) { literal += '${'; continue; }
      const v = variables[m[1]];
      if (v === undefined) throw new Error(`${file}: ${name} refers to \${${m[1]}}, which is not in the environment`);
      if (typeof v === 'string') { literal += v; continue; }
      if (literal) parts.push(literal);
      literal = '';
      parts.push(v);
    }
    literal += value.slice(at);
    if (literal) parts.push(literal);
    variables[name] = parts.length === 1 && typeof parts[0] === 'string' ? parts[0] : parts.length === 0 ? '' : { 'Fn::Join': ['', parts] };
  }
  return variables;
}

/** The environment of the function named `functionName` in `stack` (synthesized). */
export function stackEnvironment(stack: Stack, functionName: string): Record<string, any> {
  const stage = Stage.of(stack)!;
  const template = stage.synth().getStackArtifact(stack.artifactId).template;
  const fn = Object.values<any>(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.FunctionName === functionName);
  if (!fn) throw new Error(`no function ${functionName} in ${stack.stackName}`);
  return environmentOf(template, fn, stage.assetOutdir);
}
