import type { Match } from './types.ts';

/** A scanner of one kind (or one pass): its matches in start order, without overlaps. */
export type Scanner = (text: string) => Match[];

/**
 * Merges two match lists, each sorted by start with no overlaps inside it, into one such list. Where a match
 * of `extra` overlaps one of `base`, `base` wins: callers pass lists in priority order (the more specific kind
 * first), so one stretch of text is reported as one thing. Linear in the two lengths.
 */
export function mergeDisjoint(base: Match[], extra: Match[]): Match[] {
  if (extra.length === 0) return base;
  if (base.length === 0) return extra;
  const out: Match[] = [];
  let i = 0;
  for (const m of extra) {
    while (i < base.length && base[i]!.end <= m.start) out.push(base[i++]!);
    // base[i], if any, ends after m starts: they overlap when it also starts before m ends.
    if (i < base.length && base[i]!.start < m.end) continue;
    out.push(m);
  }
  while (i < base.length) out.push(base[i++]!);
  return out;
}

/** Orders matches by start, then the longer one first. */
export function byStart(a: Match, b: Match): number {
  return a.start - b.start || b.end - a.end;
}
