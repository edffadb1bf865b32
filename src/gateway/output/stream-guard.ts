import type { CompiledBundle, CompiledGuardrail } from '../../policy/compile.ts';
import type { Match } from '../../policy/detectors/index.ts';
import { scanOutput } from '../../policy/evaluate.ts';
import type { OutputTally } from './guard.ts';
import type { StreamProtocol } from './protocol.ts';
import { parseFrame, SseFramer } from './sse.ts';

interface Held {
  raw: string;
  event: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: foreign JSON
  json: any;
  text: string | undefined;
}

/**
 * Inspects an SSE response as it streams: usage and tool calls from every event, and, when output guardrails
 * apply, a hold-back of `holdBackChars` of text so a match that straddles chunks is still caught before release.
 * A match no longer than the hold-back is always complete while every frame it touches is still held (a frame
 * is released only once `holdBackChars` of text follow it). Frames nobody changes leave byte for byte.
 */
export class StreamGuard {
  readonly #framer = new SseFramer();
  readonly #held: Held[] = [];
  #heldText = '';
  /** Absolute offset of the first held character. */
  #base = 0;
  // biome-ignore lint/suspicious/noExplicitAny: foreign JSON
  #first: any;
  #openBlock = false;
  #ended = false;
  /** Text arrived since the last scan. */
  #dirty = false;
  /** Start (in the held text) of a redact match still growing: nothing from here on is released yet. */
  #deferFrom = Number.POSITIVE_INFINITY;

  readonly cb: CompiledBundle;
  readonly cls: string;
  readonly guards: readonly CompiledGuardrail[];
  readonly checkTools: boolean;
  readonly protocol: StreamProtocol;
  readonly tally: OutputTally;

  constructor(o: {
    cb: CompiledBundle;
    cls: string;
    guards: readonly CompiledGuardrail[];
    checkTools: boolean;
    protocol: StreamProtocol;
    tally: OutputTally;
  }) {
    this.cb = o.cb;
    this.cls = o.cls;
    this.guards = o.guards;
    this.checkTools = o.checkTools;
    this.protocol = o.protocol;
    this.tally = o.tally;
  }

  /** True once the response is blocked: the caller sends `termination()` and stops reading upstream. */
  get blocked(): boolean {
    return this.tally.blockedBy !== undefined;
  }

  /**
   * Feeds upstream bytes; returns what may be sent to the client now. The held text is scanned once per chunk
   * (not per frame) and always before anything is released, so the straddle guarantee holds.
   */
  push(chunk: Uint8Array): string {
    let out = '';
    for (const f of this.#framer.push(chunk)) {
      out += this.#frame(f);
      if (this.blocked) return out;
    }
    if (!this.guards.length) return out;
    if (this.#dirty) {
      this.#dirty = false;
      this.#scan();
      if (this.blocked) return out;
    }
    return out + this.#release(this.#heldText.length - this.cb.holdBackChars);
  }

  /** The upstream ended: a last scan of what is held, then everything left. */
  end(): string {
    const rest = this.#framer.flush();
    let out = rest ? this.#frame(rest) : '';
    if (this.blocked) return out;
    this.#scan(true);
    if (this.blocked) return out;
    out += this.#release(Number.POSITIVE_INFINITY);
    this.#ended = true;
    return out;
  }

  /** The frames that end the stream as filtered, in the client's protocol. */
  termination(): string {
    return this.#ended ? '' : this.protocol.terminate(this.#first, this.#openBlock);
  }

  #frame(raw: string): string {
    const { event, data } = parseFrame(raw);
    // biome-ignore lint/suspicious/noExplicitAny: foreign JSON
    let json: any;
    if (data !== undefined && data !== '[DONE]') {
      try {
        json = JSON.parse(data);
      } catch {
        json = undefined;
      }
    }
    let text: string | undefined;
    if (json !== undefined) {
      this.#first ??= json;
      const info = this.protocol.inspect(event, json);
      if (info.usage) this.tally.addUsage(info.usage);
      const type = json.type ?? event;
      if (type === 'content_block_start') this.#openBlock = true;
      else if (type === 'content_block_stop') this.#openBlock = false;
      if (info.toolName) {
        if (this.checkTools) {
          this.tally.tool(this.cb, this.cls, info.toolName);
          if (this.blocked) return '';
        } else this.tally.collectTool(info.toolName);
      }
      text = info.text;
      if (text) this.tally.collectText(text);
    }
    if (!this.guards.length) return raw;
    if (data === '[DONE]') {
      // The end marker: everything held is final.
      this.#dirty = false;
      this.#scan(true);
      if (this.blocked) return '';
      return this.#release(Number.POSITIVE_INFINITY) + raw;
    }
    this.#held.push({ raw, event, json, text });
    if (text) {
      this.#heldText += text;
      this.#dirty = true;
      return '';
    }
    // A text-less frame (message_start, pings, role chunks): when all held text is scanned, what may go, goes now.
    return this.#dirty ? '' : this.#release(this.#heldText.length - this.cb.holdBackChars);
  }

  /** Scans the held text; records verdicts; blocks, or redacts across the held frames. */
  /**
   * Scans the held text; records verdicts; blocks, or redacts. A redact match that reaches into the last
   * `holdBackChars` may still grow with the next chunk (`a@example.or` before its `g`): it is redacted once it is
   * clear of that tail (or at the end), and nothing from its start on is released meanwhile.
   */
  #scan(final = false): void {
    this.#deferFrom = Number.POSITIVE_INFINITY;
    if (!this.#heldText) return;
    const t0 = performance.now();
    const hits = scanOutput(this.cb, this.guards, this.#heldText);
    this.tally.guardUs += (performance.now() - t0) * 1000;
    const tail = this.#heldText.length - this.cb.holdBackChars;
    const now: Match[] = [];
    let deferred = false;
    for (const { guard, matches } of hits) {
      this.tally.record(guard, matches, this.#base);
      if (guard.action !== 'redact') continue;
      for (const m of matches) {
        if (final || m.end <= tail) now.push(m);
        else deferred = true;
      }
    }
    if (this.blocked) return;
    if (now.length) this.#redact(now);
    if (!deferred) return;
    // Offsets moved if something was redacted: find the pending matches where they are now.
    for (const { guard, matches } of now.length ? scanOutput(this.cb, this.guards, this.#heldText) : hits) {
      if (guard.action !== 'redact') continue;
      for (const m of matches)
        if (m.end > this.#heldText.length - this.cb.holdBackChars)
          this.#deferFrom = Math.min(this.#deferFrom, m.start);
    }
  }

  /** Replaces each span with a marker, placed in the frame where the span starts; the rest of it is cut. */
  #redact(spans: Match[]): void {
    spans.sort((a, b) => a.start - b.start);
    const merged: Match[] = [];
    for (const m of spans) {
      const last = merged.at(-1);
      if (last && m.start < last.end)
        merged[merged.length - 1] = { kind: last.kind, start: last.start, end: Math.max(last.end, m.end) };
      else merged.push(m);
    }
    let offset = 0;
    let newText = '';
    for (const h of this.#held) {
      if (h.text === undefined) continue;
      const a = offset;
      const b = offset + h.text.length;
      offset = b;
      let t = '';
      let pos = a;
      for (const m of merged) {
        if (m.end <= a || m.start >= b) continue;
        if (m.start > pos) t += this.#heldText.slice(pos, m.start);
        if (m.start >= a) t += `[REDACTED:${m.kind}]`;
        pos = Math.min(m.end, b);
      }
      if (pos === a && t === '') {
        newText += h.text;
        continue;
      }
      t += this.#heldText.slice(pos, b);
      h.text = t;
      h.raw = this.protocol.withText(h.event, h.json, t);
      newText += t;
    }
    this.#heldText = newText;
  }

  /** Releases held frames whose text ends at or before `upTo` (relative to the held text). */
  #release(limit: number): string {
    const upTo = Math.min(limit, this.#deferFrom);
    let out = '';
    let end = 0;
    let n = 0;
    for (const h of this.#held) {
      const next = end + (h.text?.length ?? 0);
      // Text-less frames (message_start, pings, role chunks) at the front go at once: nothing to hold them for.
      if (next > Math.max(upTo, 0)) break;
      end = next;
      out += h.raw;
      n++;
    }
    if (n) {
      this.#held.splice(0, n);
      this.#heldText = this.#heldText.slice(end);
      this.#base += end;
      this.#deferFrom -= end;
    }
    return out;
  }
}
