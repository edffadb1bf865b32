/** One finding in a text: which kind, and where (UTF-16 offsets, end exclusive). Never the matched text itself. */
export interface Match {
  readonly kind: string;
  readonly start: number;
  readonly end: number;
}

/** Part results of detectors on one text, by part (e.g. `pii.card`): see {@link Detector.scan}. */
export type ScanMemo = Map<string, readonly Match[]>;

/** A compiled detector: built once at bundle load, then `scan` is called per text on the hot path. */
export interface Detector {
  /** Detector name as written in bundles: 'pii' | 'secrets' | 'prompt_injection' | 'keywords' | 'regex'. */
  readonly name: string;
  /** Every kind this detector can report, e.g. ['pii.email', 'pii.phone', ...]. */
  readonly kinds: readonly string[];
  /**
   * Appends the matches found in `text` to `out` (in ascending start order for this detector). Must not throw.
   * `memo`, when given, belongs to this one text: a detector may keep the results of its parts there (by a key
   * naming the part), and reuse what another detector left (the pii detectors of a request share their per-kind
   * scans). Entries are never changed once set.
   */
  scan(text: string, out: Match[], memo?: ScanMemo): void;
}
