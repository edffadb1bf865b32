import type { Logger } from 'pino';
import { type Counters, NOTHING_HELD, type Reservation, type ReserveResult } from '../control/counters.ts';
import type { Decision } from '../core/decision.ts';
import { GatewayError } from '../core/errors.ts';
import type { PolicyInput } from '../core/policy-input.ts';
import type { CompiledBundle } from '../policy/compile.ts';
import { type Match, redact } from '../policy/detectors/index.ts';
import { evaluate } from '../policy/evaluate.ts';
import type { ScanCache } from '../policy/scan-cache.ts';
import { requestTextSlots } from '../providers/request-text.ts';

/**
 * Evaluates the enforcing bundle. Fails closed: an exception inside evaluation denies this request with
 * `policy_error` (logged with the bundle id), and touches nothing else. `scans` is the request's scan cache,
 * shared with the other bundle's evaluation.
 */
export function decide(cb: CompiledBundle, input: PolicyInput, logger: Logger, scans?: ScanCache): Decision {
  try {
    return evaluate(cb, input, scans);
  } catch (err) {
    logger.error(
      { requestId: input.requestId, bundleId: cb.id, err },
      'policy evaluation failed: request denied',
    );
    throw new GatewayError(
      'policy_error',
      `policy evaluation failed (bundle ${cb.name}@${cb.version}); request denied`,
    );
  }
}

/**
 * Admits the request against its budgets, or refuses it: first the per-request caps (`maxRequestTokens`, local),
 * then a reservation of `tokens` (its expected size) in every budget window that applies, atomically. Returns
 * what the request holds, to settle after the response (`counters.settle`). Synchronous with the in-memory
 * counters (a plain value, no microtask); a promise only with a remote store, bounded by its timeout.
 *
 * Refusals: `budget_exceeded` (429, `retry-after` when the window resets) or, when the store cannot answer and a
 * budget fails closed, `budget_store_unavailable` (503).
 */
export function reserveBudgets(
  decision: Decision,
  counters: Counters,
  tokens: number,
  now: number,
  requested?: number,
): Reservation | Promise<Reservation> {
  for (const b of decision.budgets)
    if (b.maxRequestTokens !== undefined && requested !== undefined && requested > b.maxRequestTokens)
      throw new GatewayError(
        'budget_exceeded',
        `the request asks for ${requested} tokens, over the per-request cap of ${b.maxRequestTokens} (budget ${b.id})`,
      );
  if (decision.budgets.length === 0) return NOTHING_HELD.reservation;
  const r = counters.reserve(decision.budgets, tokens, now);
  return r instanceof Promise ? r.then(admitted) : admitted(r);
}

function admitted(r: ReserveResult): Reservation {
  if (r.ok) return r.reservation;
  const b = r.budget;
  if (r.reason === 'unavailable')
    throw new GatewayError(
      'budget_store_unavailable',
      `the budget counter store did not answer, and token budget ${b.id} fails closed`,
      { headers: { 'retry-after': '1' } },
    );
  throw new GatewayError(
    'budget_exceeded',
    `token budget ${b.id} is spent for this window (${b.maxTokens} tokens; no room left for this request)`,
    { headers: { 'retry-after': String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))) } },
  );
}

/**
 * The bytes to send upstream: the client's own bytes when the decision changes nothing, else the body with
 * redacted spans replaced (`[REDACTED:kind]`) and the routed model set. The provider never sees a redacted span.
 */
export function rewriteRequest(
  cb: CompiledBundle,
  input: PolicyInput,
  decision: Decision,
  body: Record<string, unknown>,
  raw: Buffer,
): Buffer {
  let changed = false;
  if (decision.route.model !== input.model) {
    body.model = decision.route.model;
    changed = true;
  }
  if (decision.action === 'redact') {
    const redactors = cb.inputGuards.filter(
      (g) =>
        g.action === 'redact' &&
        decision.verdicts.some((v) => v.guardrail === g.id && v.verdict === 'redact'),
    );
    for (const slot of requestTextSlots(input.api, body)) {
      const text = slot.get();
      const matches: Match[] = [];
      for (const g of redactors) {
        const found: Match[] = [];
        if (g.scanKey) cb.inputScan.get(g.scanKey)?.scan(text, found);
        for (const m of found) if (!g.kinds || g.kinds.has(m.kind)) matches.push(m);
      }
      if (matches.length) {
        slot.set(redact(text, matches, (m) => `[REDACTED:${m.kind}]`));
        changed = true;
      }
    }
  }
  return changed ? Buffer.from(JSON.stringify(body)) : raw;
}
