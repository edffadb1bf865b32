import type { PolicyInput } from '../core/policy-input.ts';
import type { Detector, Match, ScanMemo } from './detectors/index.ts';

/**
 * Detector results of ONE request, shared by every bundle evaluated on it (production and candidate, in shadow or
 * canary). Entries are keyed by a detector's canonical spec (its name and options, computed once at compile time:
 * `CompiledBundle.inputSpecs` / `outputSpecs`): two detectors with the same spec report the same matches on the
 * same text, so the second bundle reads the first one's scan instead of running it again. Detectors are pure and
 * deterministic, so a decision made with a shared cache is identical to one made without.
 *
 * Detectors with different specs still share the parts they have in common (the pii detectors of different kind
 * sets scan each kind once per text) through a memo per text.
 *
 * The match arrays handed out are shared and frozen: readers must not change them.
 */
export class ScanCache {
  /** The request whose messages the input scans ran over. */
  readonly input: PolicyInput;
  readonly #inputs = new Map<string, readonly Match[]>();
  readonly #outputs = new Map<string, { readonly text: string; readonly matches: readonly Match[] }>();
  /** Part results per input message (by message index), and for the last output text scanned. */
  readonly #messageMemos: ScanMemo[] = [];
  #outputMemo: { text: string; memo: ScanMemo } | undefined;

  constructor(input: PolicyInput) {
    this.input = input;
  }

  /** The matches of `detector` (canonical spec `spec`) over every message of the input, in message order. */
  inputMatches(spec: string, detector: Detector): readonly Match[] {
    const known = this.#inputs.get(spec);
    if (known) return known;
    const out: Match[] = [];
    const messages = this.input.messages;
    for (let i = 0; i < messages.length; i++) {
      const text = messages[i]!.text;
      if (!text) continue;
      detector.scan(text, out, this.messageMemo(i));
    }
    const frozen = Object.freeze(out);
    this.#inputs.set(spec, frozen);
    return frozen;
  }

  /**
   * The part results kept for input message `i` (see {@link ScanMemo}): a later scan of that same text with a
   * detector that shares parts with the bundles' (the decision log's redaction) reuses what they found.
   */
  messageMemo(i: number): ScanMemo {
    let memo = this.#messageMemos[i];
    if (!memo) {
      memo = new Map();
      this.#messageMemos[i] = memo;
    }
    return memo;
  }

  /** The part results kept for `text` if it is the output text last scanned; otherwise none. */
  outputMemo(text: string): ScanMemo | undefined {
    return this.#outputMemo?.text === text ? this.#outputMemo.memo : undefined;
  }

  /** The matches of `detector` (canonical spec `spec`) in an output text; reused only for the same text. */
  outputMatches(spec: string, detector: Detector, text: string): readonly Match[] {
    const known = this.#outputs.get(spec);
    if (known && known.text === text) return known.matches;
    const out: Match[] = [];
    if (this.#outputMemo?.text !== text) this.#outputMemo = { text, memo: new Map() };
    detector.scan(text, out, this.#outputMemo.memo);
    const matches = Object.freeze(out);
    this.#outputs.set(spec, { text, matches });
    return matches;
  }
}
