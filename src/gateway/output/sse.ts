/**
 * Splits an SSE byte stream into whole frames (events end with a blank line, WHATWG HTML §9.2.6), keeping each
 * frame's exact text so frames the gateway does not change are relayed byte for byte. A library parser would
 * hand back parsed events, not the original frames, hence this small splitter.
 */
export class SseFramer {
  #buf = '';
  readonly #decoder = new TextDecoder('utf-8');

  /** Feeds a chunk; returns the frames it completed (each including its trailing blank line). */
  push(chunk: Uint8Array): string[] {
    this.#buf += this.#decoder.decode(chunk, { stream: true });
    const frames: string[] = [];
    let from = 0;
    for (;;) {
      const lf = this.#buf.indexOf('\n\n', from);
      const crlf = this.#buf.indexOf('\r\n\r\n', from);
      if (lf < 0 && crlf < 0) break;
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf + 2;
      frames.push(this.#buf.slice(from, end));
      from = end;
    }
    this.#buf = this.#buf.slice(from);
    return frames;
  }

  /** What is left when the stream ends (a final frame without its blank line), or ''. */
  flush(): string {
    const rest = this.#buf + this.#decoder.decode();
    this.#buf = '';
    return rest;
  }
}

/** The `event:` name and joined `data:` payload of a frame. */
export function parseFrame(frame: string): { event: string | undefined; data: string | undefined } {
  let event: string | undefined;
  let data: string | undefined;
  for (const line of frame.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === undefined ? v : `${data}\n${v}`;
    } else if (line.startsWith('event:')) event = line.slice(line.charCodeAt(6) === 32 ? 7 : 6);
  }
  return { event, data };
}
