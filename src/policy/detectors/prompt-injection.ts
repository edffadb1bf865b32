/**
 * Prompt-injection HEURISTICS. This is a weighted list of phrasings seen in published jailbreak and injection
 * corpora, not a classifier: it has no notion of intent or context, so it misses paraphrases, other languages,
 * homoglyphs and anything novel, and it fires on text that merely quotes an attack (an article about "ignore
 * previous instructions" scores like the attack itself). Use it as one cheap signal, tuned by `threshold`.
 *
 * How a text is scored:
 * - every rule is a case-insensitive pattern (runs of whitespace tolerated) with a weight; a rule counts once
 *   however often it matches;
 * - obfuscation adds signals of its own and is looked through: zero-width characters inside words are removed,
 *   invisible Unicode "tag" characters (ASCII smuggling) and base64 blobs are decoded, and the rules run again
 *   on the result (a rule found only there counts once, located at the hidden text);
 * - when the summed weight reaches `threshold` (default 1.0) ONE match is reported, spanning the hit of the
 *   heaviest rule (the earliest among equals). Weights of 1.0 are phrasings that are injections on their own;
 *   lighter ones need company.
 *
 * Cost: one pass over the text finds which rule anchors occur (see anchor-index.ts) and notes hidden-text
 * candidates; only rules whose anchors are all present run their pattern, so benign text costs little more
 * than that pass. At most HIDDEN_BUDGET characters of tag/base64 text are decoded per text, so a payload
 * placed after that much decoy encoding is not looked at.
 */
import { Buffer } from 'node:buffer';
import { AnchorIndex, type Hidden, isInvisible } from './anchor-index.ts';
import { RULES } from './prompt-injection-rules.ts';
import type { Detector, Match } from './types.ts';

/** The one kind this detector reports. */
export const INJECTION_KIND = 'injection.prompt';

/** Options of {@link promptInjectionDetector}. */
export interface PromptInjectionOptions {
  /** Summed rule weight at which a text is reported; default 1.0. */
  readonly threshold?: number;
}

interface Rule {
  readonly weight: number;
  /** Non-global (no `lastIndex` state): only the first hit matters. */
  readonly re: RegExp;
  /** Anchor ids by group: the rule runs when every group has one present. */
  readonly groups: readonly (readonly number[])[];
}

/** Zero-width and invisible formatting characters (all in the BMP). */
const INVISIBLE = '\\u200B-\\u200D\\u2060\\uFEFF\\u00AD';
/** A zero-width character between two ASCII letters ("ig\u200Bnore"); ZWNJ/ZWJ in scripts and emoji are left alone. */
const ZW_IN_WORD_WEIGHT = 0.4;
/** A run of invisible tag characters (U+E0020–E007E mirror ASCII) this long; flag emoji use at most seven. */
const MIN_TAGS = 8;
const TAG_RUN_WEIGHT = 0.6;
/** Decoded base64 / tag text that itself trips a rule. */
const HIDDEN_PAYLOAD_WEIGHT = 0.5;
/** At most this many characters of hidden text (tags, base64) are decoded per text (think data-URI images). */
const HIDDEN_BUDGET = 65_536;

/** Builds the prompt-injection detector; `threshold` must be a positive number. */
export function promptInjectionDetector(opts: PromptInjectionOptions = {}): Detector {
  const threshold = opts.threshold ?? 1;
  if (!(typeof threshold === 'number' && Number.isFinite(threshold) && threshold > 0)) {
    throw new Error(
      `prompt_injection detector: 'threshold' must be a positive number, got ${String(threshold)}`,
    );
  }
  const index = new AnchorIndex(RULES.flatMap((r) => r.anchors.flat()));
  const rules: Rule[] = RULES.map((r) => ({
    weight: r.weight,
    re: new RegExp(r.pattern, 'im'),
    groups: r.anchors.map((g) => g.map((word) => index.id(word))),
  }));
  const maxWeight = Math.max(...rules.map((r) => r.weight));
  const slots = { zeroWidth: rules.length, tags: rules.length + 1, payload: rules.length + 2 };
  const zwInWord = new RegExp(`[A-Za-z][${INVISIBLE}]+[A-Za-z]`, 'g');

  /** Runs the rules not yet counted whose anchors `text` holds; hits are credited where `locate` says. */
  function runRules(text: string, score: Score, hidden: Hidden | undefined, locate?: Locate): boolean {
    const present = index.survey(text, hidden);
    let hit = false;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (score.seen[i] === 1 || !anchored(rule, present)) continue;
      const m = rule.re.exec(text);
      if (m === null) continue;
      const [start, end] = locate ? locate(m.index, m.index + m[0].length) : [m.index, m.index + m[0].length];
      score.add(i, rule.weight, start, end);
      hit = true;
    }
    return hit;
  }

  return Object.freeze({
    name: 'prompt_injection',
    kinds: Object.freeze([INJECTION_KIND]),
    scan(text: string, out: Match[]): void {
      const score = new Score(rules.length + 3);
      const hidden: Hidden = { blobs: [], invisibleAt: -1, tagAt: -1 };
      runRules(text, score, hidden);
      // Enough already, and nothing hidden could weigh more: skip looking through obfuscation.
      if (!(score.total >= threshold && score.bestWeight >= maxWeight)) {
        if (hidden.invisibleAt >= 0) {
          zwInWord.lastIndex = Math.max(0, hidden.invisibleAt - 1);
          const signal = zwInWord.exec(text);
          if (signal !== null) {
            score.add(slots.zeroWidth, ZW_IN_WORD_WEIGHT, signal.index, signal.index + signal[0].length);
            runRules(stripInvisible(text), score, undefined, (s, e) => originSpan(text, s, e));
          }
        }
        let budget = HIDDEN_BUDGET;
        for (let start = hidden.tagAt; start >= 0 && budget > 0; start = text.indexOf('\uDB40', start + 1)) {
          const end = tagRunEnd(text, start);
          if (end - start >= 2 * MIN_TAGS) {
            score.add(slots.tags, TAG_RUN_WEIGHT, start, end);
            const decoded = decodeTags(text, start, end, budget);
            budget -= decoded.length;
            if (runRules(decoded, score, undefined, () => [start, end])) {
              score.add(slots.payload, HIDDEN_PAYLOAD_WEIGHT, start, end);
            }
          }
          if (end > start) start = end - 1; // resume after this run
        }
        for (let i = 0; i < hidden.blobs.length && budget > 0; i += 2) {
          const start = hidden.blobs[i]!;
          const end = hidden.blobs[i + 1]!;
          const take = Math.min(end - start, budget) & ~3;
          budget -= take;
          const decoded = printableAscii(Buffer.from(text.slice(start, start + take), 'base64'));
          if (decoded !== undefined && runRules(decoded, score, undefined, () => [start, end])) {
            score.add(slots.payload, HIDDEN_PAYLOAD_WEIGHT, start, end);
          }
        }
      }
      if (score.total >= threshold)
        out.push({ kind: INJECTION_KIND, start: score.bestStart, end: score.bestEnd });
    },
  });
}

type Locate = (start: number, end: number) => readonly [number, number];

function anchored(rule: Rule, present: Uint8Array): boolean {
  for (const group of rule.groups) {
    let any = false;
    for (const id of group) {
      if (present[id] === 1) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

/** Running total for one text; each rule (and each obfuscation signal) counts once. */
class Score {
  total = 0;
  bestWeight = -1;
  bestStart = 0;
  bestEnd = 0;
  readonly seen: Uint8Array;

  constructor(slots: number) {
    this.seen = new Uint8Array(slots);
  }

  add(slot: number, weight: number, start: number, end: number): void {
    if (this.seen[slot] === 1) return;
    this.seen[slot] = 1;
    this.total += weight;
    if (weight > this.bestWeight || (weight === this.bestWeight && start < this.bestStart)) {
      this.bestWeight = weight;
      this.bestStart = start;
      this.bestEnd = end;
    }
  }
}

/** The text without its invisible characters (a copy of the code units: `replace` is slow with many hits). */
function stripInvisible(text: string): string {
  const units = new Uint16Array(text.length);
  let kept = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isInvisible(c)) units[kept++] = c;
  }
  return Buffer.from(units.buffer, 0, kept * 2).toString('utf16le');
}

/** Maps `[start, end)` in the text with invisible characters removed back to the original text (rare: per hit). */
function originSpan(text: string, start: number, end: number): readonly [number, number] {
  let kept = 0;
  let from = -1;
  for (let i = 0; i < text.length; i++) {
    if (isInvisible(text.charCodeAt(i))) continue;
    if (kept === start) from = i;
    if (kept === end - 1) return [from, i + 1];
    kept++;
  }
  return [Math.max(from, 0), text.length];
}

/** The end of the run of tag characters U+E0020–E007E (surrogate pairs U+DB40 U+DC20–DC7E) starting at `start`. */
function tagRunEnd(text: string, start: number): number {
  let i = start;
  while (text.charCodeAt(i) === 0xdb40) {
    const low = text.charCodeAt(i + 1);
    if (!(low >= 0xdc20 && low <= 0xdc7e)) break;
    i += 2;
  }
  return i;
}

/** Tag characters U+E0020–E007E back to the ASCII they mirror (at most `limit` of them). */
function decodeTags(text: string, start: number, end: number, limit: number): string {
  const bytes = Buffer.allocUnsafe(Math.min((end - start) >> 1, limit));
  for (let k = 0; k < bytes.length; k++) bytes[k] = text.charCodeAt(start + 2 * k + 1) - 0xdc00;
  return bytes.toString('latin1');
}

/** The bytes as text when they look like text (at least 95% printable ASCII or whitespace), else undefined. */
function printableAscii(bytes: Buffer): string | undefined {
  if (bytes.length < 12) return undefined;
  let bad = 0;
  const allowed = bytes.length / 20;
  for (const b of bytes) {
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b > 0x7e) {
      if (++bad > allowed) return undefined;
    }
  }
  return bytes.toString('latin1');
}
