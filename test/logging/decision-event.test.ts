import { describe, expect, it } from 'vitest';
import { Pricing } from '../../src/observability/cost.ts';
import { redactForLog } from '../../src/observability/decision-event.ts';
import { piiDetector } from '../../src/policy/detectors/pii.ts';
import { secretsDetector } from '../../src/policy/detectors/secrets.ts';
import type { Match, ScanMemo } from '../../src/policy/detectors/types.ts';

const AWS = 'AKIAIOSFODNN7EXAMPLE';

describe('content for the decision log', () => {
  it('redacted: PII and secrets replaced by their kind; full: secrets still replaced, PII kept', () => {
    const text = `mail jane@example.com, key ${AWS}`;
    expect(redactForLog(text, 'redacted', 1000)).toEqual({
      text: 'mail [REDACTED:pii.email], key [REDACTED:secret.aws_access_key]',
      cut: false,
    });
    const full = redactForLog(text, 'full', 1000);
    expect(full.text).toContain('jane@example.com');
    expect(full.text).not.toContain(AWS);
  });

  it('reuses the scans a bundle made of the same text, with the same result as scanning afresh', () => {
    const text = `mail jane@example.com, call 415-555-2671, card 5500 0000 0000 0004, key ${AWS}`;
    const fresh = redactForLog(text, 'redacted', 1000);
    // What an evaluation leaves in the request's memo for this text: a few pii kinds, every secret.
    const memo: ScanMemo = new Map();
    piiDetector(['pii.email', 'pii.card']).scan(text, [] as Match[], memo);
    secretsDetector().scan(text, [] as Match[], memo);
    const before = new Map(memo);
    expect(redactForLog(text, 'redacted', 1000, memo)).toEqual(fresh);
    for (const [k, v] of before) expect(memo.get(k)).toBe(v); // read, not scanned again
    expect(memo.has('pii.phone')).toBe(true); // the kinds the bundle did not scan were added
    expect(fresh.text).toBe(
      'mail [REDACTED:pii.email], call [REDACTED:pii.phone], card [REDACTED:pii.card], key [REDACTED:secret.aws_access_key]',
    );
    // A text cut for the log is another text: the memo is not used for it.
    const poisoned: ScanMemo = new Map([['pii.email', []]]);
    expect(redactForLog(text, 'redacted', 20, poisoned).text).toBe(redactForLog(text, 'redacted', 20).text);
  });

  it('a secret straddling the cut is found and not half-logged', () => {
    const text = `${'a '.repeat(45)}${AWS} and more text after it`;
    const cutAt = text.indexOf(AWS) + 8; // the cut falls inside the key
    const r = redactForLog(text, 'full', cutAt);
    expect(r.cut).toBe(true);
    expect(r.text).toHaveLength(cutAt);
    expect(r.text).not.toContain(AWS.slice(0, 8));
  });
});

describe('pricing', () => {
  const p = new Pricing({
    a: {
      kind: 'mock',
      query: {},
      headers: {},
      models: ['listed'],
      connections: 1,
      timeouts: { connectMs: 1, headersMs: 1, bodyMs: 1 },
      breaker: {} as never,
      pricing: { priced: { inputPerMTok: 2, outputPerMTok: 8 }, '*': { inputPerMTok: 1, outputPerMTok: 1 } },
    },
  });
  it('prices by model, else by *, per million tokens', () => {
    expect(p.cost('a', 'priced', { input: 1_000_000, output: 500_000 })).toBe(6);
    expect(p.cost('a', 'other', { input: 1000, output: 1000 })).toBeCloseTo(0.002, 12);
    expect(p.cost('b', 'x', { input: 1, output: 1 })).toBeUndefined();
  });
  it('model labels: listed or priced models keep their name, any other is *', () => {
    expect(p.modelLabel('a', 'listed')).toBe('listed');
    expect(p.modelLabel('a', 'priced')).toBe('priced');
    expect(p.modelLabel('a', 'random-model-123')).toBe('*');
    expect(p.modelLabel('nope', 'listed')).toBe('*');
  });
});
