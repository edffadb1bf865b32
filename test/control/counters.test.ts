import { describe, expect, it } from 'vitest';
import { type BudgetWindow, MemoryCounters } from '../../src/control/counters.ts';
import type { Decision } from '../../src/core/decision.ts';
import { GatewayError } from '../../src/core/errors.ts';
import { reserveBudgets } from '../../src/gateway/enforce.ts';

const budget = (over: Partial<BudgetWindow> = {}): BudgetWindow => ({
  id: 'b',
  key: 'b:app:app',
  maxTokens: 100,
  windowMs: 60_000,
  mode: 'failOpen',
  ...over,
});
const NOW = 1_800_000_000_000;

describe('MemoryCounters', () => {
  it('answers synchronously and admits exactly floor(N / tokens) reservations', () => {
    const c = new MemoryCounters();
    const b = budget({ maxTokens: 100 });
    let admitted = 0;
    for (let i = 0; i < 50; i++) {
      const r = c.reserve([b], 7, NOW);
      expect(r instanceof Promise).toBe(false);
      if (r.ok) admitted++;
      else expect(r).toMatchObject({ reason: 'spent', retryAfterMs: 60_000 - (NOW % 60_000) });
    }
    expect(admitted).toBe(Math.floor(100 / 7));
    expect(c.used(b.key, b.windowMs, NOW)).toBe(admitted * 7);
  });

  it('reserves in all budgets or none; settle replaces the reservation with the tokens used', () => {
    const c = new MemoryCounters();
    const wide = budget({ id: 'w', key: 'w:app:a', maxTokens: 100 });
    const narrow = budget({ id: 'n', key: 'n:app:a', maxTokens: 10 });
    const r = c.reserve([wide, narrow], 8, NOW);
    if (!r.ok) throw new Error('refused');
    expect(c.reserve([wide, narrow], 8, NOW)).toMatchObject({ ok: false, budget: { id: 'n' } });
    expect(c.used(wide.key, wide.windowMs, NOW)).toBe(8);
    c.settle(r.reservation, 3);
    expect(c.used(wide.key, wide.windowMs, NOW)).toBe(3);
    expect(c.used(narrow.key, narrow.windowMs, NOW)).toBe(3);
  });

  it('a settlement after its window ended changes nothing; a new window counts afresh', () => {
    const c = new MemoryCounters();
    const b = budget({ maxTokens: 10 });
    const r = c.reserve([b], 10, NOW);
    if (!r.ok) throw new Error('refused');
    const later = NOW + 60_000;
    const r2 = c.reserve([b], 4, later);
    expect(r2.ok).toBe(true);
    c.settle(r.reservation, 0);
    expect(c.used(b.key, b.windowMs, later)).toBe(4);
  });

  it('a request larger than the budget is admitted only into an empty window', () => {
    const c = new MemoryCounters();
    const b = budget({ maxTokens: 10 });
    expect(c.reserve([b], 500, NOW).ok).toBe(true);
    expect(c.reserve([b], 1, NOW).ok).toBe(false);
  });
});

describe('reserveBudgets', () => {
  const decision = (budgets: Decision['budgets']) => ({ budgets }) as unknown as Decision;
  const check = { ...budget(), maxRequestTokens: 50 };

  it('stays synchronous on the in-memory store (a plain value, never a promise)', () => {
    const r = reserveBudgets(decision([check]), new MemoryCounters(), 10, NOW, 10);
    expect(r instanceof Promise).toBe(false);
    expect(reserveBudgets(decision([]), new MemoryCounters(), 10, NOW) instanceof Promise).toBe(false);
  });

  it('refuses over the per-request cap, and a spent budget with retry-after', () => {
    const c = new MemoryCounters();
    expect(() => reserveBudgets(decision([check]), c, 60, NOW, 51)).toThrow(/per-request cap of 50/);
    reserveBudgets(decision([check]), c, 100, NOW);
    try {
      reserveBudgets(decision([check]), c, 1, NOW);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      const e = err as GatewayError;
      expect(e.code).toBe('budget_exceeded');
      expect(Number(e.headers['retry-after'])).toBe(Math.ceil((60_000 - (NOW % 60_000)) / 1000));
    }
  });
});
