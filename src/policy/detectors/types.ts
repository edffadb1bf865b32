/** One finding in a text: which kind, and where (UTF-16 offsets, end exclusive). Never the matched text itself. */
export interface Match {
  readonly kind: string;
  readonly start: number;
  readonly end: number;
}

/** A compiled detector: built once at bundle load, then `scan` is called per text on the hot path. */
export interface Detector {
  /** Detector name as written in bundles: 'pii' | 'secrets' | 'prompt_injection' | 'keywords' | 'regex'. */
  readonly name: string;
  /** Every kind this detector can report, e.g. ['pii.email', 'pii.phone', ...]. */
  readonly kinds: readonly string[];
  /** Appends the matches found in `text` to `out` (in ascending start order for this detector). Must not throw. */
  scan(text: string, out: Match[]): void;
}
