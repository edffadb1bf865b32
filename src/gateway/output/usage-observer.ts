import type { OutputTally } from './guard.ts';
import type { StreamProtocol } from './protocol.ts';
import { parseFrame, SseFramer } from './sse.ts';

/**
 * The cheap path for streams nothing needs to inspect but the token usage (no output guardrails, no tool rules,
 * no observe-only bundle): chunks pass through as they are, and only frames that mention `usage` are parsed.
 */
export class UsageObserver {
  readonly #framer = new SseFramer();
  readonly #protocol: StreamProtocol;
  readonly #tally: OutputTally;

  constructor(protocol: StreamProtocol, tally: OutputTally) {
    this.#protocol = protocol;
    this.#tally = tally;
  }

  /** Observes a chunk; the caller relays it unchanged. */
  push(chunk: Uint8Array): void {
    for (const f of this.#framer.push(chunk)) this.#frame(f);
  }

  end(): void {
    const rest = this.#framer.flush();
    if (rest) this.#frame(rest);
  }

  #frame(raw: string): void {
    if (!raw.includes('"usage"')) return;
    const { event, data } = parseFrame(raw);
    if (data === undefined || data === '[DONE]') return;
    try {
      const info = this.#protocol.inspect(event, JSON.parse(data));
      if (info.usage) this.#tally.addUsage(info.usage);
    } catch {
      // not JSON: nothing to count
    }
  }
}
