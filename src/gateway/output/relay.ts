import type { Decision } from '../../core/decision.ts';
import type { ApiKind } from '../../core/policy-input.ts';
import type { CompiledBundle } from '../../policy/compile.ts';
import { outputGuardsFor } from '../../policy/evaluate.ts';
import type { UpstreamResponse } from '../../upstream/forward.ts';
import { pullStream, readAll, type StreamHooks } from '../stream.ts';
import { guardText, type OutputReport, OutputTally } from './guard.ts';
import { bodyProtocol, streamProtocol } from './protocol.ts';
import { StreamGuard } from './stream-guard.ts';
import { UsageObserver } from './usage-observer.ts';

/** What relaying needs to know about the request. */
export interface RelayContext {
  readonly api: ApiKind;
  readonly cb: CompiledBundle;
  readonly decision: Decision;
  /** Called once with what the output inspection saw, when the response has ended (however it ended). */
  readonly onDone: (report: OutputReport, outcome: string) => void;
  readonly onError: StreamHooks['onError'];
  /** Keep the response text and tool calls for a second, observe-only bundle. */
  readonly collect: boolean;
}

/** The body and headers to send the client, after output guardrails and tool rules. */
export interface Relayed {
  readonly body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer>;
  readonly headers: Record<string, string | string[]>;
}

/**
 * Relays a provider response through the output side of the policy: SSE is inspected as it streams (hold-back,
 * block by ending the stream in the client's protocol, redaction, tool calls, usage); a whole body is inspected
 * at once. Responses that need no inspection are relayed untouched.
 */
export async function relay(up: UpstreamResponse, isStream: boolean, ctx: RelayContext): Promise<Relayed> {
  const { cb, decision } = ctx;
  const guards = outputGuardsFor(cb, decision.class);
  const checkTools = cb.toolRules.length > 0;
  const tally = new OutputTally(guards, ctx.collect);
  const ok = up.status >= 200 && up.status < 300;

  if (isStream) {
    const protocol = streamProtocol(ctx.api);
    if (!protocol || !ok) {
      return {
        body: pullStream(up.body, { onError: ctx.onError, onClose: (o) => ctx.onDone(tally.report(), o) }),
        headers: up.headers,
      };
    }
    if (!guards.length && !checkTools && !ctx.collect) {
      const usage = new UsageObserver(protocol, tally);
      const body = pullStream(up.body, {
        transform: (chunk) => {
          usage.push(chunk);
          return chunk;
        },
        flush: () => {
          usage.end();
          return undefined;
        },
        onError: ctx.onError,
        onClose: (o) => ctx.onDone(tally.report(), o),
      });
      return { body, headers: up.headers };
    }
    const guard = new StreamGuard({ cb, cls: decision.class, guards, checkTools, protocol, tally });
    const body = pullStream(up.body, {
      transform: (chunk) => guard.push(chunk),
      flush: () => guard.end(),
      stopped: () => guard.blocked,
      stop: () => guard.termination(),
      onError: ctx.onError,
      onClose: (o) => ctx.onDone(tally.report(), o),
    });
    return { body, headers: up.headers };
  }

  const raw = await readAll(up.body);
  const protocol = bodyProtocol(ctx.api);
  const type = up.headers['content-type'];
  if (!protocol || !ok || typeof type !== 'string' || !type.includes('json')) {
    ctx.onDone(tally.report(), 'completed');
    return { body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
  }
  // biome-ignore lint/suspicious/noExplicitAny: foreign JSON
  let json: any;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    ctx.onDone(tally.report(), 'completed');
    return { body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
  }
  const usage = protocol.usage(json);
  if (usage) tally.addUsage(usage);
  for (const name of protocol.toolNames(json)) {
    if (checkTools) tally.tool(cb, decision.class, name);
    else tally.collectTool(name);
  }
  if (tally.collected) for (const slot of protocol.texts(json)) tally.collectText(slot.get());
  let changed = false;
  if (guards.length) {
    let base = 0;
    for (const slot of protocol.texts(json)) {
      const text = slot.get();
      const r = guardText(cb, guards, text, base, tally);
      base += text.length;
      if (r.redacted) {
        slot.set(r.text);
        changed = true;
      }
    }
  }
  if (tally.blockedBy) {
    protocol.block(json);
    changed = true;
  }
  ctx.onDone(tally.report(), tally.blockedBy ? 'stopped' : 'completed');
  if (!changed) return { body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
  const { 'content-length': _drop, ...headers } = up.headers;
  return { body: Buffer.from(JSON.stringify(json)) as Uint8Array<ArrayBuffer>, headers };
}
