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
  const flags = opts.caseSensitive === true ? 'u' : 'iu';
  // `bare` finds where some keyword starts; with whole words, `word` (sticky) then decides at that position with
  // the boundaries. The result is the one regex's, `(?<!W)(?:a|b)(?!W)` run with `g`: a position where `word`
  // matches is one where `bare` does, so the leftmost `bare` hit is the first place `word` can match, and where
  // `word` fails there (every keyword tried, longest first) the search goes on from the next position. It is
  // ~2x cheaper: a pattern that starts with a lookbehind is tried at every position of the text, the bare
  // alternation skips ahead on its first characters (43 -> 21 µs on a 32 KB prompt; test/policy/keywords.test.ts
  // checks the two agree on random texts).
  const bare = new RegExp(alternation, `g${flags}`);
  const word =
    opts.wholeWord === false
      ? undefined
      : new RegExp(`(?<!${WORD_CHAR})(?:${alternation})(?!${WORD_CHAR})`, `y${flags}`);
  return Object.freeze({
    name: 'keywords',
    kinds: Object.freeze([kind]),
    scan(text: string, out: Match[]): void {
      bare.lastIndex = 0;
      for (let m = bare.exec(text); m !== null; m = bare.exec(text)) {
        if (word === undefined) {
          out.push({ kind, start: m.index, end: m.index + m[0].length });
          continue;
        }
        word.lastIndex = m.index;
        const w = word.exec(text);
        if (w === null) {
          // Past the whole code point: in `u` mode a lastIndex inside a surrogate pair is moved back to its start.
          bare.lastIndex = m.index + ((text.codePointAt(m.index) as number) > 0xffff ? 2 : 1);
          continue;
        }
        const end = w.index + w[0].length;
        out.push({ kind, start: w.index, end });
        bare.lastIndex = end;
      }
    },
  });
}

/** Escapes the characters that are syntax in a `u`-mode pattern (where escaping anything else is an error). */
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
