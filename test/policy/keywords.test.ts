import { describe, expect, it } from 'vitest';
import { escapeRegex, keywordsDetector } from '../../src/policy/detectors/keywords.ts';
import type { Match } from '../../src/policy/detectors/types.ts';

/** The definition: one regex, `(?<!W)(?:longest|…|shortest)(?!W)` run with `g` (what the detector replaced). */
function reference(
  keywords: readonly string[],
  text: string,
  caseSensitive: boolean,
): Array<[number, number]> {
  const W = '[\\p{L}\\p{M}\\p{N}_]';
  const sorted = [...new Set(keywords)].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  const re = new RegExp(
    `(?<!${W})(?:${sorted.map(escapeRegex).join('|')})(?!${W})`,
    caseSensitive ? 'gu' : 'giu',
  );
  const out: Array<[number, number]> = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push([m.index, m.index + m[0].length]);
  return out;
}

function scan(keywords: readonly string[], text: string, caseSensitive: boolean): Array<[number, number]> {
  const out: Match[] = [];
  keywordsDetector(keywords, { caseSensitive }).scan(text, out);
  return out.map((m) => [m.start, m.end]);
}

/** A small seeded generator (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Letters that fold (A/a, Ä/ä, Σ/σ/ς, K/k/K), word and non-word characters, a combining mark, digits, an astral
// letter (𝐀, a word character) and an astral non-word character (😀), spaces and punctuation.
const ALPHABET = [
  'a',
  'b',
  'A',
  'B',
  'n',
  'ä',
  'Ä',
  'σ',
  'Σ',
  'ς',
  'k',
  'K',
  '\u212a',
  '\u0301',
  '1',
  '_',
  '𝐀',
  '😀',
  ' ',
  '-',
  '.',
];

describe('keywords detector: the two-step scan equals the one-regex definition', () => {
  it('on fixed cases where a longer keyword fails its boundary and a shorter one at the same place holds', () => {
    const kw = ['new york', 'new', 'york city', 'ban', 'bank', 'urban', '😀x', '𝐀b'];
    for (const text of [
      'new yorker in new york, new',
      'banks bank ban urban_ban 1ban ban1',
      '😀x 😀xy a😀x 𝐀b x𝐀b 𝐀bc',
      'NEW YORK New York city York City',
    ]) {
      expect(scan(kw, text, false)).toEqual(reference(kw, text, false));
      expect(scan(kw, text, true)).toEqual(reference(kw, text, true));
    }
    // Not vacuous: the shorter keyword is found where the longer one's boundary fails.
    expect(scan(['new york', 'new'], 'new yorker', false)).toEqual([[0, 3]]);
  });

  it('on 1,000 random keyword lists and texts (seeded)', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const r = rng(seed);
      const word = (min: number, max: number) => {
        const n = min + Math.floor(r() * (max - min + 1));
        let s = '';
        for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
        return s;
      };
      const keywords = Array.from({ length: 1 + Math.floor(r() * 4) }, () => word(1, 4));
      const text = word(0, 60);
      const cs = r() < 0.3;
      expect(scan(keywords, text, cs), `seed ${seed}: ${JSON.stringify({ keywords, text, cs })}`).toEqual(
        reference(keywords, text, cs),
      );
    }
  });
});
