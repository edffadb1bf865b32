/**
 * A bundle's own regular expressions, each compiled once at load; a pattern that does not compile fails the
 * load with its index and text. Patterns run as written on the JavaScript (backtracking) engine: the bundle
 * author owns their cost, and a pattern with nested quantifiers can be slow on hostile input. Empty matches
 * are skipped (they cannot be redacted), and the scan steps past them so it always terminates.
 *
 * A pattern that repeats a group (`(?:a|b)*`) can exhaust the engine's backtracking stack on a large text, and
 * the engine then throws. `scan` must not throw, and a text that could not be checked must not pass as clean,
 * so the scan fails closed: it reports one match over the whole text.
 *
 * Prefilter: most patterns hold a run of plain characters every match must contain (`corp\.internal` in
 * `\b(?:[a-z0-9-]+\.)+corp\.internal\b`). Searching for that literal alone, with the pattern's own flags (so
 * case folding is the engine's), is many times cheaper than running the pattern at every position; when it is
 * absent the pattern cannot match, and is not run. A text proven that way to hold no match is checked, so it
 * passes as clean even where running the pattern would have exhausted the engine.
 */
import { escapeRegex } from './keywords.ts';
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
  const prefilters = patterns.map((p) => {
    const lit = requiredLiteral(p, flags);
    return lit === undefined ? undefined : new RegExp(escapeRegex(lit), flags);
  });
  return Object.freeze({
    name: 'regex',
    kinds: Object.freeze([kind]),
    scan(text: string, out: Match[]): void {
      const found: Match[] = [];
      try {
        for (let i = 0; i < res.length; i++) {
          if (prefilters[i]?.test(text) === false) continue;
          scanOne(res[i]!, text, kind, unicode, found);
        }
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

/** Shortest literal worth a prefilter search: shorter ones are too common to rule much out. */
const MIN_LITERAL = 3;
/** Characters `\\` may escape to stand for themselves (outside a class). */
const SYNTAX = new Set([...'^$\\.*+?()[]{}|/-']);
/** Escapes that are one character long and match a class or a position (`\\d`, `\\b`): not literal, but safe to step over. */
const SHORT_ESCAPES = new Set([...'bBdDwWsSnrtfv']);

/**
 * The longest run of plain characters at the top level of a pattern (outside groups and classes, not quantified),
 * which every match must contain; undefined when there is none of {@link MIN_LITERAL} characters, or when the
 * pattern has a top-level `|` or anything this reader does not follow (most escapes, `v`-mode classes).
 * Conservative: whatever it is unsure of ends the current run, and never joins two runs.
 */
export function requiredLiteral(source: string, flags: string): string | undefined {
  if (flags.includes('v')) return undefined;
  let best = '';
  let run = '';
  const end = () => {
    if (run.length > best.length) best = run;
    run = '';
  };
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      const e = source[i + 1];
      if (e === undefined) return undefined;
      if (SYNTAX.has(e)) {
        run += e;
        i += 2;
        continue;
      }
      if (!SHORT_ESCAPES.has(e)) return undefined;
      end();
      i += 2;
      continue;
    }
    if (c === '|') return undefined;
    if (c === '(' || c === '[') {
      const close = c === '(' ? skipGroup(source, i) : skipClass(source, i);
      if (close < 0) return undefined;
      end();
      i = close;
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      const q = c === '{' ? /^\{\d+(?:,\d*)?\}/.exec(source.slice(i)) : [c];
      // The quantified atom is optional or repeated: drop it from the run, which ends before it.
      run = run.slice(0, -1);
      end();
      i += q ? q[0]!.length : 1;
      if (q && source[i] === '?') i++; // lazy
      continue;
    }
    const code = c.charCodeAt(0);
    if (
      c === '.' ||
      c === '^' ||
      c === '$' ||
      c === ')' ||
      c === ']' ||
      c === '}' ||
      (code >= 0xd800 && code <= 0xdfff)
    ) {
      end();
      i++;
      continue;
    }
    run += c;
    i++;
  }
  end();
  return best.length >= MIN_LITERAL ? best : undefined;
}

/** Index just past the `)` closing the group opened at `open`, or -1. */
function skipGroup(source: string, open: number): number {
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '[') {
      i = skipClass(source, i) - 1;
      if (i < 0) return -1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return -1;
}

/** Index just past the `]` closing the class opened at `open` (no nested classes: not `v` mode), or -1. */
function skipClass(source: string, open: number): number {
  for (let i = open + 1; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === ']') return i + 1;
  }
  return -1;
}
