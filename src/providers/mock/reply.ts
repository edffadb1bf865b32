import type { IncomingHttpHeaders } from 'node:http';
import { contentText } from '../text.ts';

/** What the mock decided to answer, computed once per request from the body. */
export interface MockReply {
  readonly model: string;
  readonly text: string;
  readonly chunks: readonly string[];
  readonly tool: { readonly name: string; readonly args: string } | undefined;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

const MAX_ECHO = 4096;

/** Rough token count (4 characters a token) so usage looks plausible and is deterministic. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** Splits text into `n` pieces on code-point boundaries (never inside a surrogate pair). */
export function splitText(text: string, n: number): string[] {
  // ASCII splits by index; anything else by code point so no surrogate pair is cut.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
  const cps = /^[\x00-\x7f]*$/.test(text) ? text : Array.from(text);
  const count = Math.max(1, Math.min(n, cps.length));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.floor((i * cps.length) / count);
    const to = Math.floor(((i + 1) * cps.length) / count);
    out.push(typeof cps === 'string' ? cps.slice(from, to) : cps.slice(from, to).join(''));
  }
  return out;
}

function lastUserText(body: Record<string, unknown>): string {
  if (typeof body.input === 'string') return body.input;
  const list = (
    Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : []
  ) as Array<{
    role?: string;
    content?: unknown;
  }>;
  for (let i = list.length - 1; i >= 0; i--)
    if (list[i]?.role === 'user') return contentText(list[i]?.content);
  return '';
}

function allText(body: Record<string, unknown>): string {
  return [body.system, body.instructions, body.messages, body.input]
    .map((v) =>
      Array.isArray(v)
        ? v.map((m: { content?: unknown }) => contentText(m?.content ?? m)).join('\n')
        : contentText(v),
    )
    .join('\n');
}

/**
 * A deterministic reply: it echoes the last user message (so byte-exact passthrough is testable) and calls the
 * first offered tool when the last message is the user's and tools are offered.
 */
export function computeReply(body: Record<string, unknown>, headers: IncomingHttpHeaders): MockReply {
  const model = typeof body.model === 'string' ? body.model : 'mock-model';
  const user = lastUserText(body);
  const cps = Array.from(user);
  const echo = cps.length <= MAX_ECHO ? user : `${cps.slice(0, 64).join('')}… (${cps.length} characters)`;
  // `x-mock-reply-bytes: N` asks for an N-byte ASCII reply instead of the echo (large streams, back-pressure tests).
  const size = Number(headers['x-mock-reply-bytes'] ?? 0);
  const text =
    size > 0
      ? 'abcdefghijklmnopqrstuvwxyz0123456789 '.repeat(Math.ceil(size / 37)).slice(0, size)
      : `Mock reply: ${echo}`;
  const chunkCount =
    Number(headers['x-mock-chunks'] ?? 0) ||
    Math.min(50, Math.max(1, Math.ceil(Array.from(text).length / 8)));
  const tools = Array.isArray(body.tools)
    ? (body.tools as Array<{ name?: string; function?: { name?: string } }>)
    : [];
  const msgs = (Array.isArray(body.messages) ? body.messages : []) as Array<{ role?: string }>;
  const lastIsUser = msgs.length === 0 || msgs[msgs.length - 1]?.role === 'user';
  const toolName = tools[0]?.function?.name ?? tools[0]?.name;
  const tool =
    toolName && lastIsUser && body.tool_choice !== 'none'
      ? { name: toolName, args: JSON.stringify({ query: echo.slice(0, 100) }) }
      : undefined;
  return {
    model,
    text,
    chunks: splitText(text, chunkCount),
    tool,
    inputTokens: estimateTokens(allText(body)),
    outputTokens: estimateTokens(tool ? tool.args : text),
  };
}
