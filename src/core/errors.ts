/**
 * The closed set of errors the gateway itself raises, and one table that maps each code to an HTTP status
 * and to the error type each SDK family understands. Every error response the gateway writes comes from here.
 */

/** The API family a client speaks; decides the error shape. */
export type ApiFamily = 'openai' | 'anthropic';

interface ErrorSpec {
  readonly status: number;
  /** `error.type` in OpenAI's shape. */
  readonly openai: string;
  /** `error.type` in Anthropic's shape (see Anthropic's documented error types). */
  readonly anthropic: string;
  readonly summary: string;
}

/** Every code the gateway can answer with. Documented one by one in docs/errors.md (a test checks). */
export const ERROR_CODES = {
  invalid_json: {
    status: 400,
    openai: 'invalid_request_error',
    anthropic: 'invalid_request_error',
    summary: 'The request body is not valid JSON, or not a JSON object.',
  },
  invalid_request: {
    status: 400,
    openai: 'invalid_request_error',
    anthropic: 'invalid_request_error',
    summary: 'The request body is JSON but lacks a field the gateway needs (for example `model`).',
  },
  unauthenticated: {
    status: 401,
    openai: 'authentication_error',
    anthropic: 'authentication_error',
    summary: 'No gateway key was presented, or the key is unknown.',
  },
  policy_denied: {
    status: 403,
    openai: 'permission_error',
    anthropic: 'permission_error',
    summary: 'The policy bundle in force denied the request; the message names the rule.',
  },
  policy_error: {
    status: 403,
    openai: 'permission_error',
    anthropic: 'permission_error',
    summary:
      'Evaluating the policy failed; the gateway fails closed and denies the request (counted, logged).',
  },
  route_not_found: {
    status: 404,
    openai: 'invalid_request_error',
    anthropic: 'not_found_error',
    summary: 'No such endpoint on the gateway.',
  },
  model_not_routed: {
    status: 404,
    openai: 'invalid_request_error',
    anthropic: 'not_found_error',
    summary: 'No configured provider serves this model for this API.',
  },
  method_not_allowed: {
    status: 405,
    openai: 'invalid_request_error',
    anthropic: 'invalid_request_error',
    summary: 'The endpoint exists but not for this HTTP method.',
  },
  body_too_large: {
    status: 413,
    openai: 'invalid_request_error',
    anthropic: 'request_too_large',
    summary: 'The request body is over `limits.maxBodyBytes`.',
  },
  upstream_unreachable: {
    status: 502,
    openai: 'server_error',
    anthropic: 'api_error',
    summary: 'The provider refused or dropped the connection before answering.',
  },
  upstream_protocol_error: {
    status: 502,
    openai: 'server_error',
    anthropic: 'api_error',
    summary: 'The provider answered with something that is not HTTP the gateway can relay.',
  },
  budget_exceeded: {
    status: 429,
    openai: 'rate_limit_exceeded',
    anthropic: 'rate_limit_error',
    summary: 'A token budget of the bundle is spent for this window; `retry-after` says when it resets.',
  },
  not_ready: {
    status: 503,
    openai: 'server_error',
    anthropic: 'overloaded_error',
    summary: 'The gateway is starting or shutting down and takes no new requests.',
  },
  upstream_circuit_open: {
    status: 503,
    openai: 'server_error',
    anthropic: 'overloaded_error',
    summary:
      'The target has been failing: its circuit breaker is open and no fallback could serve. `retry-after` says when to try again.',
  },
  budget_store_unavailable: {
    status: 503,
    openai: 'server_error',
    anthropic: 'overloaded_error',
    summary:
      'The budget counter store did not answer within `counters.timeoutMs` and a token budget that applies fails closed (`mode: failClosed`).',
  },
  upstream_timeout: {
    status: 504,
    openai: 'server_error',
    anthropic: 'timeout_error',
    summary: 'The provider did not answer within the configured timeouts.',
  },
  internal_error: {
    status: 500,
    openai: 'server_error',
    anthropic: 'api_error',
    summary: 'A bug in the gateway. The request id in the response finds it in the logs.',
  },
} as const satisfies Record<string, ErrorSpec>;

/** A stable gateway error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** An error the gateway answers with on purpose: stable code, safe message, optional extra headers. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.headers = opts.headers ?? {};
  }
}

/** The JSON body for an error, in the shape the family's SDK parses. */
export function errorBody(family: ApiFamily, code: ErrorCode, message: string, requestId: string): string {
  const spec = ERROR_CODES[code];
  if (family === 'anthropic') {
    return JSON.stringify({
      type: 'error',
      error: { type: spec.anthropic, message, code },
      request_id: requestId,
    });
  }
  return JSON.stringify({ error: { message, type: spec.openai, param: null, code } });
}
