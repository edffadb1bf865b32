/**
 * Personal data in free text: e-mail addresses, phone numbers, payment cards, IBANs and US SSNs.
 *
 * Each kind finds candidates with a bounded, linear-time pattern (or a hand-written scan where a regex would go
 * quadratic, as e-mail local parts do), then confirms them in code: Luhn for cards, ISO 13616 mod-97 and the
 * per-country length for IBANs, digit counts and neighbours for phones. Where two kinds claim the same text the
 * more specific one wins (email > iban > card > ssn > phone), so `078-05-1120` is an SSN, not a phone.
 */
import { checkKinds } from './options.ts';
import { emailScanner, phoneScanner } from './pii-contact.ts';
import { cardScanner, ibanScanner, ssnScanner } from './pii-numbers.ts';
import { mergeDisjoint, type Scanner } from './spans.ts';
import type { Detector, Match, ScanMemo } from './types.ts';

/** Every kind the pii detector reports. */
export const PII_KINDS = ['pii.email', 'pii.phone', 'pii.card', 'pii.iban', 'pii.ssn'] as const;

/** One of {@link PII_KINDS}. */
export type PiiKind = (typeof PII_KINDS)[number];

/** The order in which kinds win overlaps (first wins). */
const PRIORITY: readonly PiiKind[] = ['pii.email', 'pii.iban', 'pii.card', 'pii.ssn', 'pii.phone'];

/** Builds the pii detector for `kinds` (default: all of {@link PII_KINDS}); throws on an unknown kind. */
export function piiDetector(kinds: readonly string[] = PII_KINDS): Detector {
  const enabled = checkKinds(kinds, PII_KINDS, 'pii');
  const factories: Record<PiiKind, () => Scanner> = {
    'pii.email': emailScanner,
    'pii.phone': phoneScanner,
    'pii.card': cardScanner,
    'pii.iban': ibanScanner,
    'pii.ssn': ssnScanner,
  };
  const scanners = PRIORITY.filter((k) => enabled.includes(k)).map((k) => [k, factories[k]()] as const);
  return Object.freeze({
    name: 'pii',
    kinds: Object.freeze(PII_KINDS.filter((k) => enabled.includes(k))),
    scan(text: string, out: Match[], memo?: ScanMemo): void {
      let found: Match[] = [];
      for (const [kind, scanner] of scanners) {
        // A kind's scanner depends on nothing but the text: pii detectors of other kind sets share its result.
        let mine = memo?.get(kind) as Match[] | undefined;
        if (!mine) {
          mine = scanner(text);
          memo?.set(kind, mine);
        }
        found = mergeDisjoint(found, mine);
      }
      for (const m of found) out.push(m);
    },
  });
}

export { luhn } from './pii-numbers.ts';
