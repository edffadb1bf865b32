/**
 * A bundle's own regular expressions, each compiled once at load; a pattern that does not compile fails the
 * load with its index and text. Patterns run as written on the JavaScript (backtracking) engine: the bundle
 * author owns their cost, and a pattern with nested quantifiers can be slow on hostile input. Empty matches
 * are skipped (they cannot be redacted), and the scan steps past them so it always terminates.
 *
 * A pattern that repeats a group (`(?:a|b)*`) can exhaust the engine's backtracking stack on a large text, and
 * the engine then throws. `scan` must not throw, and a text that could not be checked must not pass as clean,
 * so the scan fails closed: it reports one match over the whole text.
 */
import { checkKindName } from './options.ts';
import { byStart } from './spans.ts';
import type { Detector, Match } from './types.ts';

/** Options of {@link regexDetector}. */
export interface RegexOptions {
  /** Kind reported for every match; default `regex`. */
  readonly kind?: string;
  /** Any of `i`, `m`, `s`, `u`, `v`; `g` is implied. */
  readonly flags?: string;
}

/** Builds the regex detector; throws when a pattern does not compile or a flag is not allowed. */
export function regexDetector(patterns: readonly string[], opts: RegexOptions = {}): Detector {
  const kind = checkKindName(opts.kind ?? 'regex', 'regex');
  const flags = opts.flags ?? '';
  if (!/^[imsuv]*$/.test(flags)) {
    throw new Error(`regex detector: flags '${flags}' not allowed (use any of i, m, s, u, v; g is implied)`);
  }
  try {
    new RegExp('', flags);
  } catch {
    throw new Error(`regex detector: flags '${flags}' cannot be combined`);
  }
  if (patterns.length === 0) throw new Error(`regex detector: 'patterns' must list at least one pattern`);
  const res = patterns.map((p, i) => {
    try {
      return new RegExp(p, `${flags}g`);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`regex detector: pattern #${i} /${p}/ does not compile: ${why}`);
    }
  });
  const unicode = flags.includes('u') || flags.includes('v');
  return Object.freeze({
    name: 'regex',
    kinds: Object.freeze([kind]),
    scan(text: string, out: Match[]): void {
      const found: Match[] = [];
      try {
        for (const re of res) scanOne(re, text, kind, unicode, found);
      } catch {
        if (text.length > 0) out.push({ kind, start: 0, end: text.length });
        return;
      }
      if (res.length > 1) found.sort(byStart);
      for (const m of found) out.push(m);
    },
  });
}

function scanOne(re: RegExp, text: string, kind: string, unicode: boolean, out: Match[]): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (end > start) {
      out.push({ kind, start, end });
      continue;
    }
    // An empty match leaves lastIndex where it is: step one character (a whole code point in Unicode mode).
    const c = text.charCodeAt(start);
    re.lastIndex =
      start + (unicode && c >= 0xd800 && c <= 0xdbff && isLow(text.charCodeAt(start + 1)) ? 2 : 1);
  }
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
