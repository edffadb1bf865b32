/** Where the admin API is and who calls it: flags, else RINGFENCE_ADMIN_URL / RINGFENCE_ADMIN_TOKEN. */
export interface AdminTarget {
  readonly url: string;
  readonly token: string | undefined;
}

/** An answer of the admin API that is not a success. */
export class AdminCallError extends Error {
  readonly status: number;
  readonly code: string;
  readonly body: Record<string, unknown>;
  constructor(status: number, code: string, message: string, body: Record<string, unknown>) {
    super(message);
    this.name = 'AdminCallError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Resolves the admin target from flags and the environment. */
export function adminTarget(
  flags: { admin?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv,
): AdminTarget {
  return {
    url: (flags.admin ?? env.RINGFENCE_ADMIN_URL ?? 'http://127.0.0.1:8081').replace(/\/+$/, ''),
    token: flags.token ?? env.RINGFENCE_ADMIN_TOKEN,
  };
}

/** Calls the admin API; resolves with the JSON body of a 2xx, throws AdminCallError otherwise. */
export async function adminCall(
  t: AdminTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = {};
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  let res: Response;
  try {
    res = await fetch(`${t.url}/admin/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new AdminCallError(
      0,
      'unreachable',
      `cannot reach the admin API at ${t.url}: ${(err as Error).cause ?? (err as Error).message}`,
      {},
    );
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { raw: text };
  }
  if (!res.ok) {
    const e = (json.error ?? {}) as { code?: string; message?: string };
    throw new AdminCallError(res.status, e.code ?? `http_${res.status}`, e.message ?? text, json);
  }
  return json;
}
