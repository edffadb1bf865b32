import { type DestinationStream, pino } from 'pino';
import type { RequestRecord } from '../gateway/context.ts';
import type { Pricing } from './cost.ts';
import { decisionEvent } from './decision-event.ts';

/** pino's async destination (SonicBoom): a buffer flushed by libuv writes, bounded by `maxLength`. */
export type Sink = DestinationStream & {
  on(event: 'drop', fn: (data: unknown) => void): unknown;
  end(): void;
  /** SonicBoom's own state: bytes buffered and whether a write is in flight (read to wait for a drain). */
  readonly _len?: number;
  readonly _writing?: boolean;
};

/** Resolves once the sink has written everything it buffered, or after `timeoutMs` if it is stuck. */
export function drained(sink: Sink, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = () => {
      if ((!sink._writing && !sink._len) || Date.now() >= deadline) resolve();
      else setTimeout(check, 10);
    };
    check();
  });
}

/** Opens an async destination for `stdout`, `stderr` or a file path, holding at most `bufferBytes`. */
export function openSink(destination: string, bufferBytes: number): Sink {
  const dest = destination === 'stdout' ? 1 : destination === 'stderr' ? 2 : destination;
  return pino.destination({
    dest,
    sync: false,
    mkdir: typeof dest === 'string',
    maxLength: bufferBytes,
  }) as unknown as Sink;
}

/**
 * The decision log: one DecisionEventV1 line per governed request, on pino's async destination (SonicBoom; shared
 * with the process logger when both go to stdout). Writing never blocks the request path (it runs after the
 * response ended, and only appends to the buffer); when the sink cannot keep up and the buffer is full, the event
 * is dropped and counted, never queued without bound.
 *
 * The line is serialised with JSON.stringify rather than through a pino logger: the event is a fixed schema of
 * plain data (no circular references, no errors to serialise), and pino's generic path (safe stringify, level
 * formatting, path redaction) cost ~10 % of a 2 KB request's CPU in the bench profile. No credential can appear:
 * decisionEvent() carries key ids, never keys, and content only through redactForLog() (the e2e greps the log).
 */
export class DecisionLog {
  readonly #sink: Sink;
  readonly #pricing: Pricing;
  readonly #maxContent: number;
  readonly #counts: { written(): void; dropped(): void };
  #closed = false;
  #dropped = false;

  constructor(opts: {
    sink: Sink;
    pricing: Pricing;
    maxContentChars: number;
    counts: { written(): void; dropped(): void };
  }) {
    this.#sink = opts.sink;
    this.#pricing = opts.pricing;
    this.#maxContent = opts.maxContentChars;
    this.#counts = opts.counts;
    // SonicBoom emits 'drop' synchronously inside the write that did not fit.
    this.#sink.on('drop', () => {
      this.#dropped = true;
    });
  }

  /** Writes the event of one request (after its response ended); drops and counts it when the buffer is full. */
  write(r: RequestRecord): void {
    if (this.#closed) return;
    this.#dropped = false;
    // `"log":"decision"` first: a shipper reading a stdout shared with the process log routes on it.
    const json = JSON.stringify(decisionEvent(r, this.#pricing, this.#maxContent));
    (this.#sink as unknown as { write(s: string): unknown }).write(`{"log":"decision",${json.slice(1)}\n`);
    if (this.#dropped) this.#counts.dropped();
    else this.#counts.written();
  }

  /** Waits until what is buffered is written (shutdown), at most `timeoutMs`. */
  flush(timeoutMs = 2000): Promise<void> {
    return drained(this.#sink, timeoutMs);
  }

  /** Flushes and closes the destination (unless it is shared with the process log). */
  async close(endSink: boolean): Promise<void> {
    await this.flush();
    this.#closed = true;
    if (endSink) this.#sink.end();
  }
}
