import type { RequestRecord } from '../gateway/context.ts';
import { decidingRule } from '../policy/divergence.ts';
import type { RingSample } from './ring-stats.ts';

/** Errors that are the provider's or the gateway's fault (what canary error-rate gates and triggers count). */
const ERROR_CODES = new Set([
  'upstream_unreachable',
  'upstream_timeout',
  'upstream_protocol_error',
  'upstream_circuit_open',
  'internal_error',
]);

/** Turns a request record into what the ring statistics count. */
export function sampleOf(r: RequestRecord): RingSample {
  const error = r.errorCode ? ERROR_CODES.has(r.errorCode) : r.status >= 500 || r.outcome === 'failed';
  const triggered =
    (r.decision?.verdicts.some((v) => v.verdict !== 'pass') ?? false) ||
    (r.output?.verdicts.some((v) => v.verdict !== 'pass') ?? false);
  const leakBlock = r.output?.verdicts.some((v) => v.verdict === 'block') ?? false;
  const [prod, cand] = r.ring === 'canary' ? [r.shadow, r.decision] : [r.decision, r.shadow];
  return {
    ring: r.ring,
    at: r.timings.startedAt,
    requestId: r.input.requestId,
    error,
    triggered,
    leakBlock,
    latencyMs: r.timings.totalMs,
    candidateEvalUs: r.timings.candidateEvalUs,
    candidatePolicyError: r.ring === 'production' ? r.shadowError : r.errorCode === 'policy_error',
    divergence:
      r.divergence?.length && prod && cand
        ? { kinds: r.divergence, prodRule: decidingRule(prod), candRule: decidingRule(cand) }
        : undefined,
  };
}
