import type { BundleChange, DiffSection } from './diff.ts';

/** Building blocks shared by the section comparisons of `diffBundles`. */

/** `a, b, c`. */
export const fmt = (xs: readonly string[]) => xs.join(', ');
/** Entries of `a` not in `b`. */
export const minus = (a: readonly string[], b: readonly string[]) => a.filter((x) => !b.includes(x));
/** Deep equality of plain data (both sides come from the same schema, so key order matches). */
export const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

/** One change record. */
export function ch(
  section: DiffSection,
  op: BundleChange['op'],
  id: string,
  field: string | undefined,
  before: unknown,
  after: unknown,
  explanation: string,
  loosened: boolean,
): BundleChange {
  return { section, op, id, field, before, after, explanation, loosened };
}

/** Compares two lists of rules by id: removed, changed (via `changed`), added, then a note if the order moved. */
export function byId<T extends { id: string }>(
  was: readonly T[],
  now: readonly T[],
  onRemoved: (r: T) => BundleChange,
  onChanged: (r: T, n: T) => BundleChange[],
  onAdded: (n: T) => BundleChange,
): BundleChange[] {
  const out: BundleChange[] = [];
  for (const r of was) {
    const n = now.find((x) => x.id === r.id);
    if (n) out.push(...onChanged(r, n));
    else out.push(onRemoved(r));
  }
  for (const n of now) if (!was.some((r) => r.id === n.id)) out.push(onAdded(n));
  return out;
}

/** A note when rules present on both sides are evaluated in a different order (first match wins). */
export function orderChange(
  section: DiffSection,
  was: readonly { id: string }[],
  now: readonly { id: string }[],
  what: string,
) {
  const kept = was.map((r) => r.id).filter((id) => now.some((n) => n.id === id));
  const keptNow = now.map((r) => r.id).filter((id) => kept.includes(id));
  if (same(kept, keptNow)) return [];
  const text = `${what} order changed: ${fmt(kept)} → ${fmt(keptNow)} (the first match decides)`;
  return [ch(section, 'changed', 'order', 'order', kept, keptNow, text, false)];
}
