/**
 * Contact details for the pii detector: e-mail addresses and phone numbers. Each scanner returns its matches in
 * start order, without overlaps.
 */
import { ALNUM, asciiClass, inClass, isDigit, WORD } from './charset.ts';
import { mergeDisjoint, type Scanner } from './spans.ts';
import type { Match } from './types.ts';

// ---------------------------------------------------------------------------------------------------- e-mail

const DOT = 46;
const APOSTROPHE = 39;
/** Local-part characters we accept: the common subset of RFC 5322 atext, plus dots. */
const LOCAL = asciiClass("A-Za-z0-9._%+'-");
/** RFC 5321 §4.5.3.1.1: a local part is at most 64 octets. */
const MAX_LOCAL = 64;

/**
 * E-mail addresses, anchored on each `@` and walked by hand both ways: a regex that looks for the local part
 * first is quadratic on long runs of word characters with no `@`, and a repeated group for the domain labels
 * grows the engine's backtracking stack with the input. Dotted hostnames with an alphabetic (or punycode) TLD
 * only; no IP literals, no quoted local parts, no internationalised addresses.
 */
export function emailScanner(): Scanner {
  return (text) => {
    const found: Match[] = [];
    let from = 0;
    let floor = 0; // no local part may reach back into the previous address
    for (;;) {
      const at = text.indexOf('@', from);
      if (at < 0) return found;
      from = at + 1;
      const limit = Math.max(floor, at - MAX_LOCAL);
      let start = at;
      while (start > limit) {
        const c = text.charCodeAt(start - 1);
        if (!inClass(LOCAL, c)) break;
        if (c === DOT && text.charCodeAt(start - 2) === DOT) break; // `see...john@` → `john@`
        start--;
      }
      if (start === limit && limit > floor && inClass(LOCAL, text.charCodeAt(start - 1))) continue; // too long
      while (start < at && (text.charCodeAt(start) === DOT || text.charCodeAt(start) === APOSTROPHE)) start++;
      if (start === at || text.charCodeAt(at - 1) === DOT) continue;
      const end = domainEnd(text, at + 1);
      if (end < 0) continue;
      found.push({ kind: 'pii.email', start, end });
      floor = end;
      from = end;
    }
  };
}

const LABEL = asciiClass('A-Za-z0-9-');
const HYPHEN = 45;
/** RFC 1035 §2.3.4: labels of at most 63 octets, names of at most 253 characters (without the final dot). */
const MAX_LABEL = 63;
const MAX_DOMAIN = 253;

/**
 * The end of the host name starting at `from`: two or more labels (letters, digits, inner hyphens) ending in a
 * TLD of 2–63 letters or a punycode `xn--` label; -1 when there is none. Stops before a trailing dot.
 */
function domainEnd(text: string, from: number): number {
  let end = -1;
  let labels = 0;
  let i = from;
  for (;;) {
    const start = i;
    while (inClass(LABEL, text.charCodeAt(i))) i++;
    const len = i - start;
    if (len === 0 || len > MAX_LABEL || i - from > MAX_DOMAIN) break;
    if (text.charCodeAt(start) === HYPHEN || text.charCodeAt(i - 1) === HYPHEN) break;
    if (++labels >= 2 && isTld(text, start, i)) end = i;
    if (text.charCodeAt(i) !== DOT || !inClass(ALNUM, text.charCodeAt(i + 1))) break;
    i++;
  }
  return end;
}

function isTld(text: string, start: number, end: number): boolean {
  if (end - start >= 5 && text.slice(start, start + 4).toLowerCase() === 'xn--') return true;
  if (end - start < 2) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) | 0x20;
    if (c < 97 || c > 122) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------- phone

const PLUS = 43;
const CLOSE_PAREN = 41;
/** Characters that, just before a phone candidate, mean it is part of something longer. */
const PHONE_BEFORE = asciiClass('A-Za-z0-9_+./-');

/**
 * Phone numbers in three shapes, each required to carry a `+` or separators so that plain digit runs (order
 * ids, timestamps) are left alone:
 * - international: `+CC` then groups (E.164, 8–15 digits), e.g. `+1 (415) 555-2671`, `+442079460958`;
 * - NANP: `(415) 555-2671`, `415-555-2671`, `1-800-555-0199` (area and exchange start 2–9);
 * - European national: a trunk `0` and one consistent separator, 9–13 digits, e.g. `030 1234567`,
 *   `06 12 34 56 78`, `020 7946 0958`, `(030) 1234567`.
 * `AAA-GG-SSSS` is the shape of a US SSN, never of a phone number, and is not reported here even when the SSN
 * kind is not scanned: a guardrail's phone verdict must not depend on which other kinds are asked for.
 */
export function phoneScanner(): Scanner {
  const intl = /\+[1-9]\d{0,14}(?:[ .-]?\(\d{1,5}\)|[ .-]\d{1,14}){0,8}(?!\d)/g;
  const nanp = /(?:1[ .-]?)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?!\w|[.-]\d)/g;
  const national =
    /(?:0\d{1,4}([ ./-])\d{2,8}(?:\1\d{2,8}){0,4}|\(0\d{1,4}\) ?\d{2,8}(?:[ -]\d{2,8}){0,3})(?!\w|[ ./-]\d)/g;
  return (text) => {
    let found: Match[] = [];
    found = mergeDisjoint(found, scanIntl(intl, text));
    found = mergeDisjoint(found, scanDigits(nanp, text, 10, 11));
    found = mergeDisjoint(found, scanDigits(national, text, 9, 13));
    return found;
  };
}

function scanIntl(re: RegExp, text: string): Match[] {
  const found: Match[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const prev = text.charCodeAt(start - 1);
    if (inClass(WORD, prev) || prev === PLUS) continue;
    // Keep the longest prefix ending on a whole group with at most 15 digits (trailing numbers are not ours).
    let digits = 0;
    let end = -1;
    let endDigits = 0;
    const stop = start + m[0].length;
    for (let i = start + 1; i < stop; i++) {
      if (!isDigit(text.charCodeAt(i))) continue;
      digits++;
      if (digits > 15) break;
      if (i + 1 === stop || !isDigit(text.charCodeAt(i + 1))) {
        end = text.charCodeAt(i + 1) === CLOSE_PAREN ? i + 2 : i + 1;
        endDigits = digits;
      }
    }
    if (end < 0 || endDigits < 8) continue;
    found.push({ kind: 'pii.phone', start, end });
    re.lastIndex = Math.max(re.lastIndex, end);
  }
  return found;
}

/** `ddd-dd-dddd` exactly. */
function isSsnShaped(text: string, start: number, end: number): boolean {
  return end - start === 11 && text.charCodeAt(start + 3) === HYPHEN && text.charCodeAt(start + 6) === HYPHEN;
}

/** Runs a separator-shaped phone pattern, keeping candidates with a clean left edge and `min`–`max` digits. */
function scanDigits(re: RegExp, text: string, min: number, max: number): Match[] {
  const found: Match[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (inClass(PHONE_BEFORE, text.charCodeAt(start - 1))) {
      re.lastIndex = start + 1;
      continue;
    }
    let digits = 0;
    for (let i = start; i < end; i++) if (isDigit(text.charCodeAt(i))) digits++;
    if (digits < min || digits > max || isSsnShaped(text, start, end)) {
      re.lastIndex = start + 1;
      continue;
    }
    found.push({ kind: 'pii.phone', start, end });
  }
  return found;
}
