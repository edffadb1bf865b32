/**
 * One linear pass over a text that tells which anchor words occur at the start of a word (case-insensitive
 * ASCII prefixes, walked in a trie), and optionally notes what may hide text (base64 runs, invisible and tag
 * characters). The prompt-injection rules use it to skip every pattern whose anchors are absent: one pass with a
 * few table look-ups per character costs much less than running two dozen case-insensitive alternations.
 */
import { asciiClass } from './charset.ts';

/** What the pass noticed that may hide text. */
export interface Hidden {
  /** Flat [start, end, start, end, …] of base64-alphabet runs of at least {@link MIN_BASE64} characters. */
  readonly blobs: number[];
  /** Index of the first zero-width / invisible character, or -1. */
  invisibleAt: number;
  /** Index of the first tag character (high surrogate U+DB40), or -1. */
  tagAt: number;
}

/** Base64 runs shorter than this are words, not payloads. */
export const MIN_BASE64 = 24;

/** Standard and URL-safe base64 alphabets together. */
const BASE64 = asciiClass('A-Za-z0-9+/_-');

/** A set of lowercase a–z words, each with an id, matched as prefixes of the words of a text. */
export class AnchorIndex {
  /** Child of node n on letter l at `next[n * 26 + l]`; 0 means none (the root is never a child). */
  private next: Int32Array;
  /** Anchor id ending at each node, or -1. */
  private readonly terminal: Int32Array;
  /** 1 at `l1 * 26 + l2` when some anchor starts with those two letters: most words stop at this look-up. */
  private readonly pairs = new Uint8Array(26 * 26);
  private readonly ids = new Map<string, number>();

  constructor(words: readonly string[]) {
    const unique = [...new Set(words)];
    const capacity = 1 + unique.reduce((n, w) => n + w.length, 0);
    this.next = new Int32Array(capacity * 26);
    this.terminal = new Int32Array(capacity).fill(-1);
    let nodes = 1;
    for (const word of unique) {
      if (!/^[a-z]{2,}$/.test(word)) throw new Error(`anchor '${word}' must be two or more lowercase a-z`);
      this.pairs[(word.charCodeAt(0) - 97) * 26 + (word.charCodeAt(1) - 97)] = 1;
      let node = 0;
      for (let i = 0; i < word.length; i++) {
        const slot = node * 26 + (word.charCodeAt(i) - 97);
        if (this.next[slot] === 0) this.next[slot] = nodes++;
        node = this.next[slot]!;
      }
      const id = this.ids.size;
      this.ids.set(word, id);
      this.terminal[node] = id;
    }
    this.next = this.next.slice(0, nodes * 26);
  }

  /** The id of an anchor word given to the constructor. */
  id(word: string): number {
    const id = this.ids.get(word);
    if (id === undefined) throw new Error(`unknown anchor '${word}'`);
    return id;
  }

  /** Marks (by id) the anchors that start a word of `text`; fills `hidden` when given. Linear in `text`. */
  survey(text: string, hidden?: Hidden): Uint8Array {
    const present = new Uint8Array(this.ids.size);
    const { next, terminal, pairs } = this;
    const n = text.length;
    let run = -1; // start of the current base64-alphabet run, or -1
    let i = 0;
    while (i < n) {
      const letter = letterAt(text, i);
      if (letter >= 0) {
        // A word starts. When its first two letters begin an anchor, follow it down the trie.
        const second = i + 1 < n ? letterAt(text, i + 1) : -1;
        if (second >= 0 && pairs[letter * 26 + second] === 1) {
          let node = next[letter]!;
          for (let j = i + 1; node !== 0; j++) {
            const t = terminal[node]!;
            if (t >= 0) present[t] = 1;
            const l = j < n ? letterAt(text, j) : -1;
            if (l < 0) break;
            node = next[node * 26 + l]!;
          }
        }
        // Letters are base64 too: a run may start here. Skip the rest of the word.
        if (run < 0) run = i;
        i++;
        while (i < n && letterAt(text, i) >= 0) i++;
        continue;
      }
      if (hidden !== undefined) run = this.noteHidden(text, i, run, hidden);
      i++;
    }
    if (hidden !== undefined && run >= 0 && n - run >= MIN_BASE64) hidden.blobs.push(run, n);
    return present;
  }

  /** Tracks base64 runs and notes invisible and tag characters at a non-letter `i`; returns the run start. */
  private noteHidden(text: string, i: number, run: number, hidden: Hidden): number {
    const c = text.charCodeAt(i);
    if (c < 128 && BASE64[c] === 1) return run < 0 ? i : run;
    if (run >= 0 && i - run >= MIN_BASE64) hidden.blobs.push(run, i);
    if (c === 0xdb40) {
      if (hidden.tagAt < 0) hidden.tagAt = i;
    } else if (hidden.invisibleAt < 0 && isInvisible(c)) hidden.invisibleAt = i;
    return -1;
  }
}

/** 0–25 for an ASCII letter at `i` (either case), else -1. `i` must be inside the text. */
function letterAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 97 && c <= 122) return c - 97;
  if (c >= 65 && c <= 90) return c - 65;
  return -1;
}

/** U+00AD soft hyphen, U+200B–U+200D zero-width space/non-joiner/joiner, U+2060 word joiner, U+FEFF. */
export function isInvisible(c: number): boolean {
  return c === 0xad || (c >= 0x200b && c <= 0x200d) || c === 0x2060 || c === 0xfeff;
}
