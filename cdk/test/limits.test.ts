// The construct refuses at synth what the functions refuse: every row of
// tests/schema/cases/refused.json (the same rows tests/schema/tests/limits.rs holds the Rust
// parsers to) is a problem naming the row's field.
import * as fs from 'fs';
import * as path from 'path';
import { configurationProblems, ConfigurationKind } from '../lib/validate';

interface Row { root: ConfigurationKind; field: string; document: unknown }
const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'tests', 'schema', 'cases', 'refused.json'), 'utf8')) as {
  bases: Record<string, unknown>;
  cases: Row[];
};

function document(row: Row): unknown {
  const base = table.bases[row.root];
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  return isObject(base) && isObject(row.document) ? { ...base, ...row.document } : row.document;
}

test('every base is accepted', () => {
  for (const [root, base] of Object.entries(table.bases)) expect([root, configurationProblems(root as ConfigurationKind, base)]).toEqual([root, []]);
});

test.each(table.cases.map((row) => [row.root, row.field, JSON.stringify(row.document), row] as const))('%s refuses %s: %s', (_root, field, _text, row) => {
  const problems = configurationProblems(row.root, document(row));
  expect(problems.length).toBeGreaterThan(0);
  expect(problems.join('\n')).toContain(field);
});

test('a duration bound is said in the grammar', () => {
  expect(configurationProblems('checkSet', { checks: [{ name: 'smoke', kind: 'invoke', timeout: '16m' }] }))
    .toEqual(['checks[0].timeout: expected a duration from 1ms to 15m, got "16m"']);
  expect(configurationProblems('checkSet', { checks: [{ name: 'm', kind: 'metrics', window: 30_000 }] }))
    .toEqual(['checks[0].window: expected a duration from 1m to 24h, got 30000']);
  expect(configurationProblems('checkSet', { checks: [{ name: 'smoke', kind: 'invoke', functions: [' '] }] }))
    .toEqual(['checks[0].functions[0]: is blank; expected a non-blank string']);
  expect(configurationProblems('checkSet', { checks: [] })).toEqual(['checks: is empty; expected a list of at least 1, each an object with kind: invoke, http, burst, metrics, compare, logs, artifact']);
});
