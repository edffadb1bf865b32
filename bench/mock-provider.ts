import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

/**
 * The bench's upstream: a tiny OpenAI chat-completions provider whose answers are computed once at start, so it is
 * never the bottleneck. It does not parse the request: it drains it and looks for `"stream":true` in the bytes.
 * The src mock (src/providers/mock) is not used here on purpose: it computes a reply per request.
 */

/** Content chunks in one streamed answer (plus the `[DONE]` terminator). */
export const STREAM_CHUNKS = 50;
const ID = 'chatcmpl-bench';
const CREATED = 1_700_000_000;
const MODEL = 'mock-gpt';
const WORDS = Array.from({ length: STREAM_CHUNKS - 2 }, (_, i) => `word${i} `);

/** The assistant text of every answer, streamed or not. */
export const REPLY_TEXT = WORDS.join('');

/** The non-stream answer body. */
export const JSON_BODY = Buffer.from(
  JSON.stringify({
    id: ID,
    object: 'chat.completion',
    created: CREATED,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: REPLY_TEXT, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 500, completion_tokens: WORDS.length, total_tokens: 500 + WORDS.length },
  }),
);

function frame(delta: Record<string, unknown>, finish: string | null): Buffer {
  const chunk = {
    id: ID,
    object: 'chat.completion.chunk',
    created: CREATED,
    model: MODEL,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
  return Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`);
}

/** The SSE frames of a streamed answer: role, 48 words, finish, then `data: [DONE]`. */
export const SSE_FRAMES: readonly Buffer[] = [
  frame({ role: 'assistant', content: '' }, null),
  ...WORDS.map((w) => frame({ content: w }, null)),
  frame({}, 'stop'),
  Buffer.from('data: [DONE]\n\n'),
];

/** Total bytes of a streamed answer's body. */
export const SSE_BYTES = SSE_FRAMES.reduce((n, f) => n + f.length, 0);

const STREAM_MARK = Buffer.from('"stream":true');
const JSON_HEAD = { 'content-type': 'application/json', 'content-length': String(JSON_BODY.length) };
const SSE_HEAD = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/**
 * Writes the frames one per event-loop turn (setImmediate), so each is its own write on the socket as from a real
 * provider (only much faster); waits for `drain` when the client is slow.
 */
function writeFrames(res: ServerResponse): void {
  let i = 0;
  const next = (): void => {
    if (res.destroyed) return;
    const f = SSE_FRAMES[i++]!;
    if (i === SSE_FRAMES.length) res.end(f);
    else if (res.write(f)) setImmediate(next);
    else res.once('drain', next);
  };
  next();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
    res.end('{}');
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"bench mock: no such route","type":"invalid_request_error"}}');
    } else if (body.includes(STREAM_MARK)) {
      res.writeHead(200, SSE_HEAD);
      writeFrames(res);
    } else {
      res.writeHead(200, JSON_HEAD);
      res.end(JSON_BODY);
    }
  });
}

/** A running bench mock. */
export interface BenchMock {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Starts the bench mock on loopback (port 0: an ephemeral one). */
export async function startBenchMock(opts: { host?: string; port?: number } = {}): Promise<BenchMock> {
  const server = createServer(handle);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address}:${a.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const mock = await startBenchMock({ port: Number(values.port) });
  const stop = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`READY ${mock.url}\n`);
}
