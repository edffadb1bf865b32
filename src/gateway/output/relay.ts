import type { Readable } from 'node:stream';
import type { Decision } from '../../core/decision.ts';
import type { ApiKind } from '../../core/policy-input.ts';
import type { CompiledBundle } from '../../policy/compile.ts';
import { outputGuardsFor } from '../../policy/evaluate.ts';
import type { ScanCache } from '../../policy/scan-cache.ts';
import type { UpstreamResponse } from '../../upstream/forward.ts';
import { readAll, type StreamHooks } from '../stream.ts';
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
  /** The request's scan cache: a whole body's scans are kept for the observe-only bundle's check of the same text. */
  readonly scans?: ScanCache | undefined;
}

/**
 * What to send the client, after output guardrails and tool rules: a whole body, or a stream to relay from
 * `source` through `hooks` (the caller pipes it straight into the Node response, or wraps it as a web stream).
 */
export type Relayed =
  | {
      readonly kind: 'whole';
      readonly body: Uint8Array<ArrayBuffer>;
      readonly headers: Record<string, string | string[]>;
    }
  | {
      readonly kind: 'stream';
      readonly source: Readable;
      readonly hooks: StreamHooks;
      readonly headers: Record<string, string | string[]>;
    };

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
        kind: 'stream',
        source: up.body,
        hooks: { onError: ctx.onError, onClose: (o) => ctx.onDone(tally.report(), o) },
        headers: up.headers,
      };
    }
    if (!guards.length && !checkTools && !ctx.collect) {
      const usage = new UsageObserver(protocol, tally);
      const hooks: StreamHooks = {
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
      };
      return { kind: 'stream', source: up.body, hooks, headers: up.headers };
    }
    const guard = new StreamGuard({ cb, cls: decision.class, guards, checkTools, protocol, tally });
    const hooks: StreamHooks = {
      transform: (chunk) => guard.push(chunk),
      flush: () => guard.end(),
      stopped: () => guard.blocked,
      stop: () => guard.termination(),
      onError: ctx.onError,
      onClose: (o) => ctx.onDone(tally.report(), o),
    };
    return { kind: 'stream', source: up.body, hooks, headers: up.headers };
  }

  const raw = await readAll(up.body);
  const protocol = bodyProtocol(ctx.api);
  const type = up.headers['content-type'];
  if (!protocol || !ok || typeof type !== 'string' || !type.includes('json')) {
    ctx.onDone(tally.report(), 'completed');
    return { kind: 'whole', body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
  }
  // biome-ignore lint/suspicious/noExplicitAny: foreign JSON
  let json: any;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    ctx.onDone(tally.report(), 'completed');
    return { kind: 'whole', body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
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
      const r = guardText(cb, guards, text, base, tally, ctx.scans);
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
  if (!changed) return { kind: 'whole', body: raw as Uint8Array<ArrayBuffer>, headers: up.headers };
  const { 'content-length': _drop, ...headers } = up.headers;
  return { kind: 'whole', body: Buffer.from(JSON.stringify(json)) as Uint8Array<ArrayBuffer>, headers };
}
