import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/**
 * The reference proxy: the floor for any Node gateway that looks at the request. It reads the whole body, parses
 * it as JSON (as a gateway must, to see the model and the prompt), forwards the original bytes over an undici
 * keep-alive Pool, and streams the answer back with back-pressure (undici's `stream()` writes straight into the
 * ServerResponse and pauses on `drain`). Nothing else: no auth, no policy, no logging, no header rewriting beyond
 * what HTTP requires of a proxy.
 */

/** Hop-by-hop request headers (RFC 9110 §7.6.1) and framing the proxy redoes. */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);
/** Hop-by-hop response headers. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade']);

/** Options for the reference proxy. */
export interface ReferenceProxyOptions {
  /** Upstream origin (any path is ignored: the client's path is forwarded as is). */
  upstream: string;
  host?: string;
  port?: number;
  connections?: number;
  maxBodyBytes?: number;
}

/** A running reference proxy. */
export interface ReferenceProxy {
  readonly url: string;
  close(): Promise<void>;
}

function fail(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code: null } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Starts the reference proxy on loopback. */
export async function startReferenceProxy(opts: ReferenceProxyOptions): Promise<ReferenceProxy> {
  const pool = new Pool(new URL(opts.upstream).origin, {
    connections: opts.connections ?? 128,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const limit = opts.maxBodyBytes ?? 8 * 1024 * 1024;

  function forward(req: IncomingMessage, res: ServerResponse, raw: Buffer | null): void {
    const headers: Record<string, string | string[]> = {};
    for (const name in req.headers) {
      const v = req.headers[name];
      if (v !== undefined && !DROP_REQUEST.has(name)) headers[name] = v;
    }
    pool
      .stream(
        { method: req.method as 'POST', path: req.url ?? '/', headers, body: raw, opaque: res },
        ({ statusCode, headers: upHeaders, opaque }) => {
          const out: OutgoingHttpHeaders = {};
          for (const name in upHeaders) if (!DROP_RESPONSE.has(name)) out[name] = upHeaders[name];
          opaque.writeHead(statusCode, out);
          // ServerResponse is a writable stream in all but its type (write/end/drain/destroy/finished).
          return opaque as unknown as Writable;
        },
      )
      .catch((err: Error) => fail(res, 502, `reference proxy: upstream error ${err.message}`));
  }

  const server = createServer((req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      req.resume();
      forward(req, res, null);
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        fail(res, 413, 'request body too large');
      } else parts.push(c);
    });
    req.on('end', () => {
      const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      try {
        JSON.parse(raw.toString('utf8'));
      } catch {
        fail(res, 400, 'request body is not valid JSON');
        return;
      }
      forward(req, res, raw);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address}:${a.port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } },
  });
  if (!values.upstream) throw new Error('reference-proxy: --upstream URL is required');
  const proxy = await startReferenceProxy({ upstream: values.upstream, port: Number(values.port) });
  const stop = () => proxy.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`READY ${proxy.url}\n`);
}
