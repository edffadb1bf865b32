import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { ApiFamily } from '../core/errors.ts';
import type { Breakers } from './breakers.ts';
import { dispatch } from './dispatch.ts';
import { forward, upstreamHeaders } from './forward.ts';
import type { Upstreams } from './targets.ts';

/** Who answered a probe: a target (`provider/model`), or the chain's degraded / fail end. */
export interface ProbeResult {
  readonly kind: 'upstream' | 'degraded' | 'fail' | 'error';
  readonly servedBy: string;
  readonly status: number;
}

/**
 * Sends one tiny synthetic request for a target (`provider` or `provider/model`) through the same dispatch as
 * traffic (breakers, kill switches, fallback chain), and says who answered. Used by kill-switch drills.
 */
export function createProbe(deps: {
  config: Config;
  upstreams: Upstreams;
  breakers: Breakers;
  killed: () => readonly { target: string }[];
}): (target: string) => Promise<ProbeResult> {
  return async (target) => {
    const slash = target.indexOf('/');
    const providerId = slash < 0 ? target : target.slice(0, slash);
    const p = deps.config.providers[providerId];
    if (!p) throw new Error(`unknown provider "${providerId}"`);
    const family: ApiFamily = p.kind === 'anthropic' ? 'anthropic' : 'openai';
    const model = slash < 0 ? (p.models[0] ?? 'probe') : target.slice(slash + 1);
    const id = `drill_${randomUUID()}`;
    const killed = deps.killed();
    const path = family === 'openai' ? '/v1/chat/completions' : '/v1/messages';
    try {
      const r = await dispatch({
        family,
        providerId,
        model,
        upstreams: deps.upstreams,
        breakers: deps.breakers,
        fallbacks: deps.config.fallbacks,
        killed: (pid, m) => killed.some((k) => k.target === pid || k.target === `${pid}/${m}`),
        send: (to, m, sig) =>
          forward(
            to,
            'POST',
            path,
            upstreamHeaders(
              { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
              to,
              id,
            ),
            Buffer.from(
              JSON.stringify({
                model: m,
                max_tokens: 1,
                messages: [{ role: 'user', content: 'ringfence kill-switch drill' }],
              }),
            ),
            sig,
            id,
          ),
      });
      if (r.kind !== 'upstream')
        return { kind: r.kind, servedBy: r.kind, status: r.kind === 'fail' ? 503 : 200 };
      for await (const _ of r.response.body) {
        // read to the end: the breaker counts the call when the body ends
      }
      return { kind: 'upstream', servedBy: `${r.target.providerId}/${r.model}`, status: r.response.status };
    } catch (err) {
      return { kind: 'error', servedBy: (err as Error).message, status: 0 };
    }
  };
}
