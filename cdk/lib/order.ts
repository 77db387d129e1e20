/**
 * `o` with its fields in `order` first, then the others as they come; undefined ones left out.
 * jsii hands a struct built in another language (Python) over with its fields sorted by name:
 * what the construct renders as JSON is put in one order, so that the same configuration renders
 * the same template whichever language gave it.
 */
export function inOrder<T>(o: T, order: readonly string[]): T {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return o;
  const from = o as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of [...order, ...Object.keys(from)]) {
    if (from[k] !== undefined && !(k in out)) out[k] = from[k];
  }
  return out as unknown as T;
}
