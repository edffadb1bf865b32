/**
 * Credentials in free text: cloud and SaaS keys with a recognisable prefix, PEM private keys, JWTs, bearer
 * tokens and AWS secret keys written next to their variable name.
 *
 * Prefixed tokens are found by ONE alternation over their prefixes; the token body is then walked by hand with
 * a character table and its length checked, and the scan resumes after the whole run. Never re-entering a run
 * keeps the cost linear even on adversarial input such as `sk-sk-sk-…` (a regex `sk-[\w-]{20,}` would rescan
 * the run from every prefix). Where kinds overlap the specific one wins: a private key block over anything in
 * it, a GitHub token or JWT over the `Bearer` that carries it.
 */
import { type AsciiClass, asciiClass, inClass, isDigit } from './charset.ts';
import { checkKinds } from './options.ts';
import { mergeDisjoint, type Scanner } from './spans.ts';
import type { Detector, Match, ScanMemo } from './types.ts';

/** Every kind the secrets detector reports. */
export const SECRET_KINDS = [
  'secret.aws_access_key',
  'secret.aws_secret_key',
  'secret.gcp_api_key',
  'secret.github_token',
  'secret.slack_token',
  'secret.private_key',
  'secret.openai_key',
  'secret.anthropic_key',
  'secret.bearer_token',
  'secret.jwt',
] as const;

/** One of {@link SECRET_KINDS}. */
export type SecretKind = (typeof SECRET_KINDS)[number];

/** A token recognised by a literal prefix followed by a run of token characters. */
interface TokenSpec {
  readonly kind: SecretKind;
  /** Regex source for the prefix, without capturing groups. */
  readonly prefix: string;
  /** Characters that continue the token: the run after the prefix extends over these. */
  readonly run: AsciiClass;
  /** Length bounds of the run (after the prefix). */
  readonly min: number;
  readonly max: number;
  /** When set, every run character must be in this narrower class. */
  readonly charset?: AsciiClass;
  /** Final say on a candidate `[start, end)`: the (possibly shortened) end, or -1 to reject. */
  readonly check?: (text: string, start: number, end: number) => number;
}

const BASE62 = asciiClass('A-Za-z0-9');
const BASE62_ = asciiClass('A-Za-z0-9_');
const BASE64URL = asciiClass('A-Za-z0-9_-');
const UPPER_DIGITS = asciiClass('A-Z0-9');
const SLACK = asciiClass('A-Za-z0-9-');
const JWT_RUN = asciiClass('A-Za-z0-9_.-');
/** RFC 7235 token68, without the trailing `=` padding (handled apart). */
const TOKEN68 = asciiClass('A-Za-z0-9._~+/-');
const AWS_SECRET_RUN = asciiClass('A-Za-z0-9/+=');
const AWS_SECRET_CHARS = asciiClass('A-Za-z0-9/+');

const DOT = 46;
const EQUALS = 61;

/** Prefix order matters only where one prefix extends another (`sk-ant-` before `sk-`). */
const TOKENS: readonly TokenSpec[] = [
  {
    kind: 'secret.aws_access_key',
    prefix: 'A(?:KIA|SIA)',
    run: BASE62,
    min: 16,
    max: 16,
    charset: UPPER_DIGITS,
  },
  { kind: 'secret.gcp_api_key', prefix: 'AIza', run: BASE64URL, min: 35, max: 35 },
  { kind: 'secret.github_token', prefix: 'gh[pousr]_', run: BASE62_, min: 36, max: 251, charset: BASE62 },
  { kind: 'secret.github_token', prefix: 'github_pat_', run: BASE62_, min: 22, max: 244 },
  { kind: 'secret.slack_token', prefix: 'xox[abprs]-', run: SLACK, min: 10, max: 250, check: hasDigit },
  { kind: 'secret.anthropic_key', prefix: 'sk-ant-', run: BASE64URL, min: 20, max: 400 },
  // `sk-` plus a hyphenated phrase ("sk-learn-compatible-…") is prose, not a key: random keys carry digits.
  { kind: 'secret.openai_key', prefix: 'sk-(?!ant-)', run: BASE64URL, min: 20, max: 400, check: hasDigit },
  { kind: 'secret.jwt', prefix: 'eyJ', run: JWT_RUN, min: 16, max: 65_536, check: jwtEnd },
];

/** Order in which kinds found by different passes win overlaps (first wins). */
const PASSES = ['private_key', 'tokens', 'aws_secret', 'bearer'] as const;

/** Builds the secrets detector for `kinds` (default: all of {@link SECRET_KINDS}); throws on an unknown kind. */
export function secretsDetector(kinds: readonly string[] = SECRET_KINDS): Detector {
  const enabled = new Set(checkKinds(kinds, SECRET_KINDS, 'secrets'));
  const passes: Record<(typeof PASSES)[number], Scanner | undefined> = {
    private_key: enabled.has('secret.private_key') ? privateKeyScanner() : undefined,
    tokens: tokenScanner(TOKENS.filter((t) => enabled.has(t.kind))),
    aws_secret: enabled.has('secret.aws_secret_key') ? awsSecretScanner() : undefined,
    bearer: enabled.has('secret.bearer_token') ? bearerScanner() : undefined,
  };
  const scanners = PASSES.map((p) => passes[p]).filter((s) => s !== undefined);
  const kindsOn = Object.freeze(SECRET_KINDS.filter((k) => enabled.has(k)));
  // Secrets detectors of the same kind set report the same matches on a text: they share one scan per text.
  const memoKey = `secrets:${kindsOn.join(',')}`;
  return Object.freeze({
    name: 'secrets',
    kinds: kindsOn,
    scan(text: string, out: Match[], memo?: ScanMemo): void {
      let found = memo?.get(memoKey);
      if (!found) {
        let merged: Match[] = [];
        for (const scanner of scanners) merged = mergeDisjoint(merged, scanner(text));
        found = merged;
        memo?.set(memoKey, found);
      }
      for (const m of found) out.push(m);
    },
  });
}

/** All prefixed tokens in one pass: `\b(?:(p1)|(p2)|…)`, the matching group says which spec. */
function tokenScanner(specs: readonly TokenSpec[]): Scanner | undefined {
  if (specs.length === 0) return undefined;
  const re = new RegExp(`\\b(?:${specs.map((s) => `(${s.prefix})`).join('|')})`, 'g');
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      let g = 1;
      while (m[g] === undefined) g++;
      const spec = specs[g - 1]!;
      const start = m.index;
      const from = start + m[0].length;
      let stop = from;
      while (inClass(spec.run, text.charCodeAt(stop))) stop++;
      re.lastIndex = stop; // never rescan this run
      const len = stop - from;
      if (len < spec.min || len > spec.max) continue;
      if (spec.charset !== undefined && !allIn(spec.charset, text, from, stop)) continue;
      const end = spec.check === undefined ? stop : spec.check(text, start, stop);
      if (end > start) found.push({ kind: spec.kind, start, end });
    }
    return found;
  };
}

/**
 * PEM / OpenPGP private key blocks, `-----BEGIN … PRIVATE KEY-----` through the matching END line; with no END
 * line (a truncated paste), through the end of the text.
 */
function privateKeyScanner(): Scanner {
  const begin = /-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
  const end = /-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
  return (text) => {
    const found: Match[] = [];
    begin.lastIndex = 0;
    for (let m = begin.exec(text); m !== null; m = begin.exec(text)) {
      end.lastIndex = m.index + m[0].length;
      const e = end.exec(text);
      const stop = e === null ? text.length : e.index + e[0].length;
      found.push({ kind: 'secret.private_key', start: m.index, end: stop });
      if (e === null) break;
      begin.lastIndex = stop;
    }
    return found;
  };
}

/**
 * AWS secret access keys: 40 base64 characters are too generic on their own, so only when assigned to a name
 * like `aws_secret_access_key`, `AWS_SECRET_ACCESS_KEY`, `SecretAccessKey` or `secret` (`=`, `:`, `=>`, `:=`,
 * quoted or not). The match covers the value only.
 */
function awsSecretScanner(): Scanner {
  const re =
    /\b(?:aws[_-]?)?secret(?:[_-]?access)?(?:[_-]?key)?["']?[ \t]{0,4}(?:=>|:=|[:=])[ \t]{0,4}["']?/gi;
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const start = m.index + m[0].length;
      let stop = start;
      while (inClass(AWS_SECRET_RUN, text.charCodeAt(stop))) stop++;
      re.lastIndex = stop;
      if (stop - start !== 40 || !allIn(AWS_SECRET_CHARS, text, start, stop) || !isMixed(text, start, stop))
        continue;
      found.push({ kind: 'secret.aws_secret_key', start, end: stop });
    }
    return found;
  };
}

/**
 * `Bearer <token>` (as in `Authorization: Bearer …`), any case, with a token68 of at least 20 characters that
 * holds a digit and a letter (so "the bearer of this letter" is not a credential). The match covers the token.
 */
function bearerScanner(): Scanner {
  const re = /\bbearer[ \t]+/gi;
  return (text) => {
    const found: Match[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const start = m.index + m[0].length;
      let stop = start;
      while (inClass(TOKEN68, text.charCodeAt(stop))) stop++;
      re.lastIndex = stop;
      while (stop > start && text.charCodeAt(stop - 1) === DOT) stop--; // a sentence's full stop
      while (text.charCodeAt(stop) === EQUALS) stop++;
      const len = stop - start;
      if (len < 20 || len > 8192 || hasDigit(text, start, stop) < 0 || !hasLetter(text, start, stop))
        continue;
      found.push({ kind: 'secret.bearer_token', start, end: stop });
    }
    return found;
  };
}

/** JWS compact form (three base64url segments) or JWE (five); a trailing full stop is not part of it. */
function jwtEnd(text: string, start: number, stop: number): number {
  let end = stop;
  while (end > start && text.charCodeAt(end - 1) === DOT) end--;
  let dots = 0;
  let segment = 0;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) !== DOT) {
      segment++;
      continue;
    }
    if (segment === 0) return -1; // empty segment
    dots++;
    segment = 0;
  }
  return (dots === 2 || dots === 4) && segment > 0 ? end : -1;
}

function allIn(table: AsciiClass, text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!inClass(table, text.charCodeAt(i))) return false;
  return true;
}

/** `end` when `[start, end)` holds a digit, else -1 (shaped as a {@link TokenSpec.check}). */
function hasDigit(text: string, start: number, end: number): number {
  for (let i = start; i < end; i++) if (isDigit(text.charCodeAt(i))) return end;
  return -1;
}

function hasLetter(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) | 0x20;
    if (c >= 97 && c <= 122) return true;
  }
  return false;
}

/** Upper case, lower case and a digit, as any randomly generated 40-character key has. */
function isMixed(text: string, start: number, end: number): boolean {
  let upper = false;
  let lower = false;
  let digit = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
    else if (isDigit(c)) digit = true;
  }
  return upper && lower && digit;
}
