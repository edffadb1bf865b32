import { describe, expect, it } from 'vitest';
import { type Match, regexDetector } from '../../src/policy/detectors/index.ts';
import { requiredLiteral } from '../../src/policy/detectors/regex.ts';

/** What the regex detector reported before it had a prefilter: every non-empty match of each pattern, by start. */
function reference(patterns: readonly string[], flags: string, text: string): Match[] {
  const out: Match[] = [];
  const unicode = flags.includes('u') || flags.includes('v');
  for (const p of patterns) {
    const re = new RegExp(p, `${flags}g`);
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length > 0) out.push({ kind: 'regex', start: m.index, end: m.index + m[0].length });
      else {
        const c = text.charCodeAt(m.index);
        const pair = unicode && c >= 0xd800 && c <= 0xdbff;
        re.lastIndex = m.index + (pair ? 2 : 1);
      }
    }
  }
  return out.sort((a, b) => a.start - b.start || b.end - a.end);
}

function scan(patterns: readonly string[], flags: string, text: string): Match[] {
  const out: Match[] = [];
  regexDetector(patterns, { flags }).scan(text, out);
  return out;
}

describe('the required literal of a pattern', () => {
  it('is the longest plain run at the top level, never inside groups, classes or quantifiers', () => {
    expect(requiredLiteral('\\b(?:[a-z0-9-]+\\.)+corp\\.internal(?![\\w-]|\\.[a-z0-9])', 'i')).toBe(
      'corp.internal',
    );
    expect(requiredLiteral('\\[/?INST\\]', '')).toBe('INST]');
    expect(requiredLiteral('TICKET-\\d+', '')).toBe('TICKET-');
    expect(requiredLiteral('hello?world', '')).toBe('world'); // the `o` is optional: runs end around it
    expect(requiredLiteral('abcd{2}x', '')).toBe('abc');
    expect(requiredLiteral('foo.bar', '')).toBe('foo');
    expect(requiredLiteral('project\\s+atlas', 'i')).toBe('project');
  });

  it('is none where a match need not contain one', () => {
    expect(requiredLiteral('abc|def', '')).toBeUndefined(); // top-level alternation
    expect(requiredLiteral('(?:abc)*x', '')).toBeUndefined();
    expect(requiredLiteral('abc+', '')).toBeUndefined(); // `ab` is too short to be worth a search
    expect(requiredLiteral('x\\x41bc', '')).toBeUndefined(); // an escape it does not follow
    expect(requiredLiteral('\\u0041bcd', 'u')).toBeUndefined();
    expect(requiredLiteral('[abc]def', 'v')).toBeUndefined(); // v-mode classes nest
    expect(requiredLiteral('😀abc😀', 'u')).toBe('abc');
  });
});

describe('the regex detector with its literal prefilter', () => {
  it('finds what the pattern finds, with case folding as the engine does it', () => {
    const hosts = ['\\b(?:[a-z0-9-]+\\.)+corp\\.internal(?![\\w-]|\\.[a-z0-9])'];
    const text = 'ping DB01.Corp.Internal and web.corp.internal.example, not corp.internals';
    expect(scan(hosts, 'i', text)).toEqual(reference(hosts, 'i', text));
    expect(scan(hosts, 'i', text)).toHaveLength(1);
    // Unicode case folding: ſ (long s) matches s, K (Kelvin sign) matches k, under iu only.
    expect(scan(['stop kit'], 'iu', 'ſtop Kit')).toHaveLength(1);
    expect(scan(['stop kit'], 'i', 'ſtop Kit')).toHaveLength(0);
  });

  it('reports the same matches as the bare patterns on random patterns and texts', () => {
    // A small deterministic generator (no dependency): patterns from a grammar of atoms, groups, classes,
    // quantifiers and assertions over a tiny alphabet, so that literals are often present, absent or case-changed.
    let seed = 42;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    const pick = <T>(xs: readonly T[]) => xs[rand(xs.length)]!;
    const LITERALS = ['a', 'b', 'c', 'A', 'k', 's', '\\.', '-', 'ab', 'bk', 'sa'];
    const OTHERS = ['.', '[ab]', '[^c]', '\\d', '\\w', '\\b', '^', '$'];
    const QUANT = ['', '', '', '', '', '', '*', '+', '?', '{2}', '{1,2}', '+?'];
    const atom = (depth: number): string => {
      const r = rand(10);
      if (r < 5 || depth > 1) return pick(LITERALS) + pick(QUANT);
      if (r < 7) return pick(OTHERS) + pick(QUANT);
      const inner = Array.from({ length: 1 + rand(3) }, () => atom(depth + 1)).join('');
      const alt = rand(2) ? `|${atom(depth + 1)}` : '';
      // Groups are at most optional: a repeated group of repeated atoms can backtrack for ever.
      return `${pick(['(?:', '(', '(?=', '(?!', '(?<='])}${inner}${alt})${pick(['', '', '?'])}`;
    };
    const pattern = () => {
      const seq = Array.from({ length: 1 + rand(8) }, () => atom(0)).join('');
      return rand(8) === 0 ? `${seq}|${atom(0)}` : seq;
    };
    const ALPHABET = 'abcABCkKsſ.-1 \n';
    const text = () => Array.from({ length: rand(40) }, () => ALPHABET[rand(ALPHABET.length)]).join('');
    let withLiteral = 0;
    let compared = 0;
    for (let i = 0; i < 4000; i++) {
      const flags = pick(['', 'i', 'u', 'iu', 'm', 's', 'im']);
      const p = pattern();
      try {
        new RegExp(p, flags);
      } catch {
        continue;
      }
      const lit = requiredLiteral(p, flags);
      if (lit !== undefined) withLiteral++;
      for (let j = 0; j < 8; j++) {
        // Half the texts hold the literal (sometimes in another case), so matches happen.
        let t = text();
        if (lit !== undefined && rand(2)) t = `${t}${rand(2) ? lit.toUpperCase() : lit}${text()}`;
        expect(scan([p], flags, t), `/${p}/${flags} on ${JSON.stringify(t)}`).toEqual(
          reference([p], flags, t),
        );
        compared++;
      }
    }
    expect(withLiteral).toBeGreaterThan(200);
    expect(compared).toBeGreaterThan(5000);
  });
});
