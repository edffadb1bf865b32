/**
 * ASCII character-class lookup tables for the hand-written scanners. A table lookup is the cheapest way to
 * walk a token run one character at a time; anything at or above U+0080 is never a member.
 */

/** A 128-entry membership table: `table[code] === 1` when the ASCII character is in the class. */
export type AsciiClass = Uint8Array;

/** Builds a table from a regex-class-like spec: `a-z` ranges and literal characters (a `-` first or last is literal). */
export function asciiClass(spec: string): AsciiClass {
  const table = new Uint8Array(128);
  for (let i = 0; i < spec.length; i++) {
    const from = spec.charCodeAt(i);
    if (spec[i + 1] === '-' && i + 2 < spec.length) {
      const to = spec.charCodeAt(i + 2);
      for (let c = from; c <= to; c++) table[c] = 1;
      i += 2;
    } else table[from] = 1;
  }
  return table;
}

/** True when `code` (a UTF-16 code unit, or NaN past the end of a string) is in `table`. */
export function inClass(table: AsciiClass, code: number): boolean {
  return table[code] === 1;
}

/** ASCII letters and digits. */
export const ALNUM: AsciiClass = asciiClass('A-Za-z0-9');
/** ASCII letters, digits and `_` (what `\w` matches). */
export const WORD: AsciiClass = asciiClass('A-Za-z0-9_');

/** True for '0'..'9'. */
export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}
