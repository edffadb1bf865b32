/**
 * A bundle's own word list, compiled into ONE regex alternation at load (escaped, longest first, so at any
 * position the longest keyword wins). Whole-word matching uses Unicode-aware boundaries: a keyword must not be
 * preceded or followed by a letter, combining mark, digit or `_` of any script, so `ban` misses "urban" and
 * "bánh", and `café` misses "cafés". Case-insensitive matching uses Unicode simple case folding (the `u` flag);
 * text is not normalised, so a keyword in NFC does not match the same word written in NFD.
 */
import { checkKindName } from './options.ts';
import type { Detector, Match } from './types.ts';

/** Options of {@link keywordsDetector}. */
export interface KeywordsOptions {
  /** Kind reported for every match; default `keyword`. */
  readonly kind?: string;
  /** Default false. */
  readonly caseSensitive?: boolean;
  /** Default true: a keyword only matches as a whole word. */
  readonly wholeWord?: boolean;
}

/** Word characters of any script, for the whole-word boundaries. */
const WORD_CHAR = '[\\p{L}\\p{M}\\p{N}_]';

/** Builds the keywords detector; throws when the list is empty or holds an empty keyword. */
export function keywordsDetector(keywords: readonly string[], opts: KeywordsOptions = {}): Detector {
  const kind = checkKindName(opts.kind ?? 'keyword', 'keywords');
  if (keywords.length === 0) throw new Error(`keywords detector: 'keywords' must list at least one keyword`);
  for (const k of keywords) {
    if (typeof k !== 'string' || k.length === 0) throw new Error('keywords detector: a keyword is empty');
  }
  const sorted = [...new Set(keywords)].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  const alternation = sorted.map(escapeRegex).join('|');
  const source =
    opts.wholeWord === false ? alternation : `(?<!${WORD_CHAR})(?:${alternation})(?!${WORD_CHAR})`;
  const re = new RegExp(source, opts.caseSensitive === true ? 'gu' : 'giu');
  return Object.freeze({
    name: 'keywords',
    kinds: Object.freeze([kind]),
    scan(text: string, out: Match[]): void {
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        out.push({ kind, start: m.index, end: m.index + m[0].length });
      }
    },
  });
}

/** Escapes the characters that are syntax in a `u`-mode pattern (where escaping anything else is an error). */
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
