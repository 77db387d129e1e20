/**
 * The one duration grammar of ShiftGuard's settings, as the functions parse it
 * (`common/src/duration.rs`): a whole number with one unit — `500ms`, `90s`, `5m`, `1h` — or a
 * bare whole number of milliseconds. Returns milliseconds, or undefined for anything else.
 */
export const DURATION_GRAMMAR = 'a duration such as 500ms, 90s, 5m or 1h';

const UNIT_MS: Record<string, number> = { '': 1, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? ''];
  return Number.isSafeInteger(ms) ? ms : undefined;
}
