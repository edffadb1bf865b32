import { describe, expect, it } from 'vitest';
import { ConfigError, hashKey, parseConfig } from '../../src/config/load.ts';
import { fallbackChain } from '../../src/upstream/dispatch.ts';

/** Three providers (one per kind) and `rest` at the top level. */
function doc(rest: string, breaker = ''): string {
  return `
providers:
  oa: { kind: openai, baseUrl: "https://api.example.com/v1"${breaker} }
  an: { kind: anthropic, baseUrl: "https://anthropic.example.com" }
  mock: { kind: mock }
applications:
  - id: app
    keys: [{ id: k1, sha256: ${hashKey('k')} }]
${rest}`;
}

function issues(text: string): readonly string[] {
  try {
    parseConfig(text, 'test.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

describe('breaker options', () => {
  it('default per provider, with no call timeout', () => {
    const { config } = parseConfig(doc(''), 'test.yaml', {});
    expect(config.providers.oa?.breaker).toEqual({
      errorThresholdPercentage: 50,
      volumeThreshold: 10,
      rollingCountTimeoutMs: 10_000,
      rollingCountBuckets: 10,
      resetTimeoutMs: 30_000,
    });
    expect(config.fallbacks).toEqual([]);
  });

  it('are validated by name', () => {
    expect(issues(doc('', ', breaker: { errorThresholdPercentage: 100 }'))).toEqual([
      'providers.oa.breaker.errorThresholdPercentage: Too big: expected number to be <100',
    ]);
    expect(issues(doc('', ', breaker: { rollingCountTimeoutMs: 50, rollingCountBuckets: 10 }'))[0]).toMatch(
      /^providers\.oa\.breaker\.rollingCountBuckets: .*at least 10 ms/,
    );
    expect(issues(doc('', ', breaker: { resetTimeout: 5 }'))).toEqual([
      'providers.oa.breaker: unknown field(s) resetTimeout',
    ]);
  });
});

describe('fallbacks', () => {
  it('parse into typed steps; the exact target wins over the provider-wide one', () => {
    const { config } = parseConfig(
      doc(`
fallbacks:
  - target: oa
    then: [{ provider: mock }, { fail: {} }]
  - target: oa/gpt-4o
    then:
      - { provider: mock, model: mock-gpt }
      - { degraded: { message: "busy" } }
  - target: an/org/model-with-slash
    then: [{ fail: { retryAfterSeconds: 5 } }]
`),
      'test.yaml',
      {},
    );
    expect(fallbackChain(config.fallbacks, 'oa', 'gpt-4o')).toEqual([
      { kind: 'target', provider: 'mock', model: 'mock-gpt' },
      { kind: 'degraded', message: 'busy' },
    ]);
    expect(fallbackChain(config.fallbacks, 'oa', 'gpt-4o-mini')).toEqual([
      { kind: 'target', provider: 'mock', model: undefined },
      { kind: 'fail', retryAfterSeconds: undefined },
    ]);
    expect(fallbackChain(config.fallbacks, 'an', 'org/model-with-slash')).toEqual([
      { kind: 'fail', retryAfterSeconds: 5 },
    ]);
    expect(fallbackChain(config.fallbacks, 'an', 'other')).toEqual([]);
  });

  it('report each malformed step by its path', () => {
    expect(
      issues(
        doc(`
fallbacks:
  - target: oa
    then: [{ provider: mock, degraded: { message: "x" } }, { modle: x }, { model: m }]
  - target: an
    then: [{ degraded: { message: "" } }, { fail: { retryAfterSeconds: 0 } }]
  - target: "mock/"
    then: []
`),
      ),
    ).toEqual([
      'fallbacks[0].then[0]: expected exactly one of provider, degraded, fail',
      'fallbacks[0].then[1]: unknown field(s) modle',
      'fallbacks[0].then[1]: expected exactly one of provider, degraded, fail',
      'fallbacks[0].then[2]: expected exactly one of provider, degraded, fail',
      'fallbacks[0].then[2].model: `model` goes with `provider`',
      'fallbacks[1].then[0].degraded.message: Too small: expected string to have >=1 characters',
      'fallbacks[1].then[1].fail.retryAfterSeconds: Too small: expected number to be >0',
      'fallbacks[2].target: expected PROVIDER or PROVIDER/MODEL',
      'fallbacks[2].then: Too small: expected array to have >=1 items',
    ]);
  });

  it('cross-references: unknown providers, API mismatch, self-steps, misplaced terminals, duplicates', () => {
    expect(
      issues(
        doc(`
fallbacks:
  - target: nope/gpt-4o
    then: [{ provider: mock }]
  - target: oa
    then:
      - { degraded: { message: "x" } }
      - { provider: ghost }
      - { provider: an }
      - { provider: oa }
  - target: oa
    then: [{ provider: oa, model: gpt-4o-mini }]
`),
      ),
    ).toEqual([
      'fallbacks[0].target: unknown provider "nope"',
      'fallbacks[1].then[0]: degraded must be the last step',
      'fallbacks[1].then[1].provider: unknown provider "ghost"',
      'fallbacks[1].then[2].provider: provider "an" is anthropic; requests for "oa" are openai',
      'fallbacks[1].then[3]: falls back to "oa" itself',
      'fallbacks[2].target: duplicate fallback for "oa"',
    ]);
  });
});
