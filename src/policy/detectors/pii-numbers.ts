/**
 * Numbers for the pii detector: payment cards (Luhn), IBANs (ISO 13616 mod-97 and registered lengths) and US
 * SSNs. Each scanner returns its matches in start order, without overlaps.
 */
import { ALNUM, inClass, isDigit } from './charset.ts';
import type { Scanner } from './spans.ts';
import type { Match } from './types.ts';

// ---------------------------------------------------------------------------------------------------- card

/**
 * Payment cards: 13–19 digits, optionally grouped with single spaces or dashes, starting 2–6 (the major-industry
 * digits of card schemes: Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6), confirmed by Luhn.
 * When the whole run fails, shorter prefixes ending on a group boundary are tried, so a card followed by its
 * CVV (`4111 1111 1111 1111 123`) is still found.
 */
export function cardScanner(): Scanner {
  const re = /[2-6](?:[ -]?\d){12,18}/g;
  const digits = new Uint8Array(19); // scratch, reused: scan is synchronous
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const start = m.index;
      const end = inClass(ALNUM, text.charCodeAt(start - 1))
        ? -1
        : cardEnd(text, start, start + m[0].length, digits);
      if (end < 0) {
        re.lastIndex = start + 1;
        continue;
      }
      found.push({ kind: 'pii.card', start, end });
      re.lastIndex = end;
    }
    return found;
  };
}

/** The end of the longest Luhn-valid card starting at `start` inside the candidate, or -1. */
function cardEnd(text: string, start: number, stop: number, digits: Uint8Array): number {
  let n = 0;
  for (let i = start; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) digits[n++] = c - 48;
  }
  if (!inClass(ALNUM, text.charCodeAt(stop)) && luhn(digits, n)) return stop;
  let k = n;
  for (let i = stop - 1; i > start; i--) {
    if (isDigit(text.charCodeAt(i))) {
      k--;
      continue;
    }
    if (k < 13) break;
    if (luhn(digits, k)) return i; // a separator: the card is everything before it
  }
  return -1;
}

/** The Luhn (mod 10) check over the first `n` digits. */
export function luhn(digits: ArrayLike<number>, n: number = digits.length): boolean {
  let sum = 0;
  let double = false;
  for (let i = n - 1; i >= 0; i--) {
    let v = digits[i]!;
    if (double) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    double = !double;
  }
  return sum % 10 === 0;
}

// ---------------------------------------------------------------------------------------------------- IBAN

/** IBAN lengths by country, from the SWIFT IBAN registry. Unlisted countries fall back to 15–34. */
// biome-ignore format: a registry table reads better dense
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22,
  GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30,
  KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31,
  MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24,
  SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

/** The same table keyed by the two char codes, so the hot path does not slice strings. */
const IBAN_LENGTH_BY_CODE = new Map<number, number>(
  Object.entries(IBAN_LENGTHS).map(([cc, len]) => [cc.charCodeAt(0) * 256 + cc.charCodeAt(1), len]),
);

const SPACE = 32;

/**
 * IBANs (ISO 13616), in upper case, either contiguous or printed in groups of four separated by single spaces.
 * Confirmed by the country's registered length (when known; otherwise 15–34) and the mod-97 check.
 */
export function ibanScanner(): Scanner {
  const re = /[A-Z]{2}\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|[A-Z0-9]{11,30})/g;
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const start = m.index;
      const end = inClass(ALNUM, text.charCodeAt(start - 1)) ? -1 : ibanEnd(text, start, start + m[0].length);
      if (end < 0) {
        re.lastIndex = start + 1;
        continue;
      }
      found.push({ kind: 'pii.iban', start, end });
      re.lastIndex = end;
    }
    return found;
  };
}

/** The end of a valid IBAN starting at `start` inside the candidate `[start, stop)`, or -1. */
function ibanEnd(text: string, start: number, stop: number): number {
  const length = IBAN_LENGTH_BY_CODE.get(text.charCodeAt(start) * 256 + text.charCodeAt(start + 1));
  if (length !== undefined) {
    let count = 0;
    for (let i = start; i < stop; i++) {
      if (text.charCodeAt(i) === SPACE) continue;
      if (++count === length) {
        const end = i + 1;
        return !inClass(ALNUM, text.charCodeAt(end)) && mod97(text, start, end) ? end : -1;
      }
    }
    return -1;
  }
  // Unknown country: the whole candidate, then shorter ones ending on a group boundary, down to 15 characters.
  let count = 0;
  for (let i = start; i < stop; i++) if (text.charCodeAt(i) !== SPACE) count++;
  if (count <= 34 && !inClass(ALNUM, text.charCodeAt(stop)) && mod97(text, start, stop)) return stop;
  for (let i = stop - 1; i > start; i--) {
    if (text.charCodeAt(i) !== SPACE) {
      count--;
      continue;
    }
    if (count < 15) break;
    if (count <= 34 && mod97(text, start, i)) return i;
  }
  return -1;
}

/** ISO 13616 check: move the first four characters to the end, letters as 10..35, the number mod 97 must be 1. */
function mod97(text: string, start: number, end: number): boolean {
  let r = 0;
  let seen = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE) continue;
    if (++seen > 4) r = mod97Step(r, c);
  }
  seen = 0;
  for (let i = start; i < end && seen < 4; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE) continue;
    seen++;
    r = mod97Step(r, c);
  }
  return r === 1;
}

function mod97Step(r: number, c: number): number {
  return isDigit(c) ? (r * 10 + (c - 48)) % 97 : (r * 100 + (c - 55)) % 97;
}

// ---------------------------------------------------------------------------------------------------- SSN

/**
 * US Social Security numbers written `AAA-GG-SSSS`, minus the ranges the SSA never issues: area 000, 666 and
 * 900–999, group 00, serial 0000. Undashed nine-digit runs are not reported (too many false positives).
 */
export function ssnScanner(): Scanner {
  const re = /(?<![\w-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])/g;
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      found.push({ kind: 'pii.ssn', start: m.index, end: m.index + m[0].length });
    }
    return found;
  };
}
