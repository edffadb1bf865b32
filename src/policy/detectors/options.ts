/**
 * Load-time checks for detector options as they arrive from a bundle (`unknown` values). Every failure throws
 * an Error naming the detector and the option, so a bad bundle is rejected when it is loaded, never per request.
 */

/** Validates a `kinds` option against the detector's closed list; returns it deduplicated. */
export function checkKinds<K extends string>(
  kinds: readonly string[],
  known: readonly K[],
  name: string,
): K[] {
  if (kinds.length === 0) throw new Error(`${name} detector: 'kinds' must list at least one kind`);
  for (const k of kinds) {
    if (!(known as readonly string[]).includes(k)) {
      throw new Error(`${name} detector: unknown kind '${k}' (known: ${known.join(', ')})`);
    }
  }
  return [...new Set(kinds)] as K[];
}

/** `opts[key]` as a list of strings, or undefined when absent. */
export function stringList(opts: Record<string, unknown>, key: string, name: string): string[] | undefined {
  const v = opts[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new Error(`${name} detector: '${key}' must be a list of strings`);
  }
  return v;
}

/** `opts[key]` as a string, or undefined when absent. */
export function optString(opts: Record<string, unknown>, key: string, name: string): string | undefined {
  const v = opts[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`${name} detector: '${key}' must be a string`);
  return v;
}

/** `opts[key]` as a boolean, or undefined when absent. */
export function optBoolean(opts: Record<string, unknown>, key: string, name: string): boolean | undefined {
  const v = opts[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new Error(`${name} detector: '${key}' must be true or false`);
  return v;
}

/** `opts[key]` as a finite number, or undefined when absent. */
export function optNumber(opts: Record<string, unknown>, key: string, name: string): number | undefined {
  const v = opts[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`${name} detector: '${key}' must be a number`);
  return v;
}

/** A custom kind name: any non-empty string without whitespace. */
export function checkKindName(kind: string, name: string): string {
  if (typeof kind !== 'string' || !/^\S+$/.test(kind)) {
    throw new Error(`${name} detector: kind '${String(kind)}' must be a non-empty string without whitespace`);
  }
  return kind;
}
