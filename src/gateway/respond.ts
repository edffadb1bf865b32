import type { Context } from 'hono';
import { type ErrorCode, errorBody, GatewayError } from '../core/errors.ts';
import type { DataEnv } from './context.ts';

/** Answers with a gateway error in the client's own SDK shape. */
export function errorResponse(c: Context<DataEnv>, err: GatewayError): Response {
  const family = c.get('family') ?? 'openai';
  const requestId = c.get('requestId') ?? '';
  c.set('errorCode', err.code);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...err.headers };
  // Anthropic's SDK reads the request id from `request-id` (`err.requestID`).
  if (family === 'anthropic') headers['request-id'] = requestId;
  return c.body(errorBody(family, err.code, err.message, requestId), err.status as 400, headers);
}

/** Shorthand: build and answer a GatewayError. */
export function fail(
  c: Context<DataEnv>,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
): Response {
  return errorResponse(c, new GatewayError(code, message, headers ? { headers } : {}));
}
