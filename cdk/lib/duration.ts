/**
 * The one duration grammar of ShiftGuard's settings, as the functions parse it
 * (`common/src/duration.rs`): a whole number with one unit — `500ms`, `90s`, `5m`, `1h` — or a
 * bare whole number of milliseconds; surrounding whitespace is ignored, nothing else is accepted
 * (no space before the unit, no fraction, no sign, one unit). In JSON a duration may also be a
 * whole number (milliseconds).
 */
export const DURATION_GRAMMAR = 'a duration such as 500ms, 90s, 5m or 1h';

/**
 * The grammar as the configuration's JSON Schema writes it (`shiftguard_common::duration::
 * json_schema`, in cdk/schema/shiftguard.schema.json); a test holds every duration of the schema
 * to this text, and parseDuration below uses it, so the three cannot drift apart.
 */
export const DURATION_PATTERN = '^\\s*[0-9]+(ms|s|m|h)?\\s*$';

/** What a duration may be, for error messages: the grammar and its edges. */
export const DURATION_EXPECTED = `${DURATION_GRAMMAR} (a whole number and one unit, no space or fraction) or a whole number of milliseconds`;

const UNIT_MS: Record<string, number> = { '': 1, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const GRAMMAR = new RegExp(DURATION_PATTERN, 'u');

/**
 * Milliseconds, or undefined for anything outside the grammar — and for a value beyond
 * 2^53 ms (about 285,000 years), which JavaScript cannot count exactly (the functions refuse
 * only past 2^64 ms).
 */
export function parseDuration(text: string): number | undefined {
  if (!GRAMMAR.test(text)) return undefined;
  const m = /^([0-9]+)(ms|s|m|h)?$/.exec(text.trim())!;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? ''];
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Milliseconds in the grammar's largest whole unit (900000 → `15m`), as the functions write them. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
