import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { message, messageStream } from './anthropic.ts';
import {
  chatCompletion,
  chatCompletionStream,
  embeddings,
  responsesResponse,
  responsesStream,
} from './openai.ts';
import { computeReply } from './reply.ts';

/** One request as the mock received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Options for the mock provider. */
export interface MockProviderOptions {
  host?: string;
  port?: number;
  /** When set, requests must carry this key (Bearer, `api-key` or `x-api-key`) or get 401. */
  expectKey?: string;
  /** Models `GET /v1/models` lists. */
  models?: readonly string[];
  /** How many requests to keep for inspection (oldest dropped first). */
  record?: number;
}

/** A running mock provider. */
export interface MockProvider {
  readonly url: string;
  readonly server: Server;
  readonly received: RecordedRequest[];
  /** A fault applied to every request until cleared (a provider that starts failing): `{ status: 500 }`. */
  fault: { status: number } | undefined;
  /** Streams started and streams whose client went away before the end. */
  readonly stats: {
    streamsStarted: number;
    streamsAborted: number;
    streamsCompleted: number;
    openStreams: number;
  };
  close(): Promise<void>;
}

const ANTHROPIC_ERROR: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

function errorPayload(anthropic: boolean, status: number, msg: string): string {
  if (anthropic)
    return JSON.stringify({
      type: 'error',
      error: { type: ANTHROPIC_ERROR[status] ?? 'api_error', message: msg },
    });
  const type =
    status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return JSON.stringify({ error: { message: msg, type, param: null, code: type } });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function presentedKey(h: IncomingHttpHeaders): string | undefined {
  const auth = h.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  return (h['x-api-key'] as string | undefined) ?? (h['api-key'] as string | undefined);
}

/**
 * Starts a mock LLM provider on loopback that speaks the OpenAI and Anthropic APIs well enough for their SDKs.
 * It is the built-in `mock` provider of `npm start` and the provider of the end-to-end tests. Faults are asked
 * for with request headers: `x-mock-status`, `x-mock-delay-ms`, `x-mock-chunk-delay-ms`, `x-mock-chunks`,
 * `x-mock-drop: connect|mid-stream`.
 */
export async function startMockProvider(opts: MockProviderOptions = {}): Promise<MockProvider> {
  const received: RecordedRequest[] = [];
  const keep = opts.record ?? 200;
  const stats = { streamsStarted: 0, streamsAborted: 0, streamsCompleted: 0, openStreams: 0 };
  const models = opts.models ?? ['mock-gpt', 'mock-claude'];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?')[0]!;
    received.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    if (received.length > keep) received.shift();
    const anthropic = path.startsWith('/v1/messages') || req.headers['anthropic-version'] !== undefined;
    const json = (status: number, payload: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': randomUUID(), ...extra });
      res.end(payload);
    };

    if (req.headers['x-mock-drop'] === 'connect') {
      req.socket.destroy();
      return;
    }
    const delay = Number(req.headers['x-mock-delay-ms'] ?? 0);
    if (delay > 0) await sleep(delay);
    if (opts.expectKey !== undefined && presentedKey(req.headers) !== opts.expectKey)
      return json(401, errorPayload(anthropic, 401, 'mock: invalid provider key'));
    const forced = Number(req.headers['x-mock-status'] ?? 0) || (provider.fault?.status ?? 0);
    if (forced >= 400)
      return json(
        forced,
        errorPayload(anthropic, forced, `mock: forced ${forced}`),
        forced === 429 ? { 'retry-after': '7' } : {},
      );

    if (req.method === 'GET' && path === '/v1/models') {
      const now = Math.floor(Date.now() / 1000);
      return json(
        200,
        JSON.stringify(
          anthropic
            ? {
                data: models.map((id) => ({
                  type: 'model',
                  id,
                  display_name: id,
                  created_at: new Date(0).toISOString(),
                })),
                has_more: false,
                first_id: models[0] ?? null,
                last_id: models.at(-1) ?? null,
              }
            : {
                object: 'list',
                data: models.map((id) => ({ id, object: 'model', created: now, owned_by: 'mock' })),
              },
        ),
      );
    }
    if (req.method !== 'POST')
      return json(404, errorPayload(anthropic, 404, `mock: no route ${req.method} ${path}`));
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return json(400, errorPayload(anthropic, 400, 'mock: invalid JSON'));
    }
    const reply = computeReply(parsed, req.headers);
    const stream = parsed.stream === true;
    let frames: string[] | undefined;
    switch (path) {
      case '/v1/chat/completions':
        if (!stream) return json(200, JSON.stringify(chatCompletion(reply, 'chatcmpl-mock')));
        frames = chatCompletionStream(
          reply,
          'chatcmpl-mock',
          (parsed.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true,
        );
        break;
      case '/v1/responses':
        if (!stream) return json(200, JSON.stringify(responsesResponse(reply, 'resp_mock')));
        frames = responsesStream(reply, 'resp_mock');
        break;
      case '/v1/embeddings':
        return json(200, JSON.stringify(embeddings(parsed, reply.model)));
      case '/v1/messages':
        if (!stream) return json(200, JSON.stringify(message(reply, 'msg_mock')));
        frames = messageStream(reply, 'msg_mock');
        break;
      case '/v1/messages/count_tokens':
        return json(200, JSON.stringify({ input_tokens: reply.inputTokens }));
      default:
        return json(404, errorPayload(anthropic, 404, `mock: no route POST ${path}`));
    }
    await writeStream(req, res, frames);
  }

  async function writeStream(req: IncomingMessage, res: ServerResponse, frames: string[]): Promise<void> {
    stats.streamsStarted++;
    stats.openStreams++;
    let closed = false;
    res.on('close', () => {
      closed = true;
      if (!res.writableFinished) stats.streamsAborted++;
      stats.openStreams--;
    });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const gap = Number(req.headers['x-mock-chunk-delay-ms'] ?? 0);
    const dropAt = req.headers['x-mock-drop'] === 'mid-stream' ? Math.floor(frames.length / 2) : -1;
    for (let i = 0; i < frames.length; i++) {
      if (closed) return;
      if (i === dropAt) {
        res.socket?.destroy();
        return;
      }
      if (!res.write(frames[i])) await new Promise((r) => res.once('drain', r));
      if (gap > 0) await sleep(gap);
    }
    stats.streamsCompleted++;
    res.end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorPayload(false, 500, `mock: ${(err as Error).message}`));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  const provider: MockProvider = {
    url: `http://${addr.address}:${addr.port}`,
    server,
    received,
    stats,
    fault: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return provider;
}
