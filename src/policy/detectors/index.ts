/**
 * The guardrail detectors: pure, synchronous scanners built once per bundle load (every pattern compiled there)
 * and run per text on the request path. `createDetector` is the one entry the bundle compiler needs.
 */
import { type KeywordsOptions, keywordsDetector } from './keywords.ts';
import { optBoolean, optNumber, optString, stringList } from './options.ts';
import { PII_KINDS, piiDetector } from './pii.ts';
import { INJECTION_KIND, promptInjectionDetector } from './prompt-injection.ts';
import { type RegexOptions, regexDetector } from './regex.ts';
import { SECRET_KINDS, secretsDetector } from './secrets.ts';
import type { Detector } from './types.ts';

export { escapeRegex, type KeywordsOptions, keywordsDetector } from './keywords.ts';
export { luhn, PII_KINDS, type PiiKind, piiDetector } from './pii.ts';
export { INJECTION_KIND, type PromptInjectionOptions, promptInjectionDetector } from './prompt-injection.ts';
export { redact } from './redact.ts';
export { type RegexOptions, regexDetector } from './regex.ts';
export { SECRET_KINDS, type SecretKind, secretsDetector } from './secrets.ts';
export type { Detector, Match, ScanMemo } from './types.ts';

/** The kinds of the detectors whose kinds are fixed, by detector name, for checking references at load. */
export const DETECTOR_KINDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  pii: PII_KINDS,
  secrets: SECRET_KINDS,
  prompt_injection: Object.freeze([INJECTION_KIND]),
});

/** Every detector name a bundle may use. */
export const DETECTOR_NAMES = Object.freeze([
  'pii',
  'secrets',
  'prompt_injection',
  'keywords',
  'regex',
] as const);

/**
 * Builds the detector `name` from a bundle's options (values as parsed, checked here; unknown keys are ignored).
 * Throws an Error naming the detector and option on anything invalid, and on an unknown name.
 */
export function createDetector(name: string, opts: Record<string, unknown>): Detector {
  switch (name) {
    case 'pii':
      return piiDetector(stringList(opts, 'kinds', name));
    case 'secrets':
      return secretsDetector(stringList(opts, 'kinds', name));
    case 'prompt_injection': {
      const threshold = optNumber(opts, 'threshold', name);
      return promptInjectionDetector(threshold === undefined ? {} : { threshold });
    }
    case 'keywords': {
      const keywords = stringList(opts, 'keywords', name);
      if (keywords === undefined) throw new Error(`keywords detector: 'keywords' is required`);
      const o: { -readonly [K in keyof KeywordsOptions]: KeywordsOptions[K] } = {};
      const kind = optString(opts, 'kind', name);
      const caseSensitive = optBoolean(opts, 'caseSensitive', name);
      const wholeWord = optBoolean(opts, 'wholeWord', name);
      if (kind !== undefined) o.kind = kind;
      if (caseSensitive !== undefined) o.caseSensitive = caseSensitive;
      if (wholeWord !== undefined) o.wholeWord = wholeWord;
      return keywordsDetector(keywords, o);
    }
    case 'regex': {
      const patterns = stringList(opts, 'patterns', name);
      if (patterns === undefined) throw new Error(`regex detector: 'patterns' is required`);
      const o: { -readonly [K in keyof RegexOptions]: RegexOptions[K] } = {};
      const kind = optString(opts, 'kind', name);
      const flags = optString(opts, 'flags', name);
      if (kind !== undefined) o.kind = kind;
      if (flags !== undefined) o.flags = flags;
      return regexDetector(patterns, o);
    }
    default:
      throw new Error(`unknown detector '${name}' (known: ${DETECTOR_NAMES.join(', ')})`);
  }
}
