import { GatewayError } from '../core/errors.ts';
import type { ApiKind } from '../core/policy-input.ts';

/** The response header that marks a canned degraded answer; its value is the failing `provider/model`. */
export const DEGRADED_HEADER = 'x-ringfence-degraded';

/** A complete response the gateway writes itself. */
export interface CannedReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What a degraded answer says and to whom. */
export interface DegradedOptions {
  readonly message: string;
  /** The model the client asked for, echoed in the body as a provider would. */
  readonly model: string;
  readonly stream: boolean;
  /** The failing target (`DispatchResult.from`), sent in the marker header. */
  readonly from: string;
}

const frame = (data: unknown, event?: string) =>
  `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

function chat(o: DegradedOptions, created: number): string {
  const id = 'chatcmpl-ringfence-degraded';
  if (!o.stream)
    return JSON.stringify({
      id,
      object: 'chat.completion',
      created,
      model: o.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: o.message, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  const chunk = (delta: unknown, finish: string | null) =>
    frame({
      id,
      object: 'chat.completion.chunk',
      created,
      model: o.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  return (
    chunk({ role: 'assistant', content: '' }, null) +
    chunk({ content: o.message }, null) +
    chunk({}, 'stop') +
    frame('[DONE]')
  );
}

function responses(o: DegradedOptions, created: number): string {
  const item = (status: 'in_progress' | 'completed') => ({
    type: 'message',
    id: 'msg_ringfence_degraded',
    status,
    role: 'assistant',
    content: status === 'completed' ? [{ type: 'output_text', text: o.message, annotations: [] }] : [],
  });
  const response = (status: 'in_progress' | 'completed') => ({
    id: 'resp_ringfence_degraded',
    object: 'response',
    created_at: created,
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    model: o.model,
    output: status === 'completed' ? [item('completed')] : [],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage:
      status === 'completed'
        ? {
            input_tokens: 0,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: 0,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: 0,
          }
        : null,
  });
  if (!o.stream) return JSON.stringify(response('completed'));
  // The Responses API names its events and ends with `response.completed` (no `[DONE]`).
  let seq = 0;
  const ev = (type: string, rest: Record<string, unknown>) =>
    frame({ type, sequence_number: seq++, ...rest }, type);
  const at = { item_id: 'msg_ringfence_degraded', output_index: 0, content_index: 0 };
  const part = { type: 'output_text', text: o.message, annotations: [] };
  return [
    ev('response.created', { response: response('in_progress') }),
    ev('response.output_item.added', { output_index: 0, item: item('in_progress') }),
    ev('response.content_part.added', { ...at, part: { ...part, text: '' } }),
    ev('response.output_text.delta', { ...at, delta: o.message }),
    ev('response.output_text.done', { ...at, text: o.message }),
    ev('response.content_part.done', { ...at, part }),
    ev('response.output_item.done', { output_index: 0, item: item('completed') }),
    ev('response.completed', { response: response('completed') }),
  ].join('');
}

function messages(o: DegradedOptions): string {
  const message = {
    id: 'msg_ringfence_degraded',
    type: 'message',
    role: 'assistant',
    model: o.model,
    content: [{ type: 'text', text: o.message }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 0, output_tokens: 0 },
  };
  if (!o.stream) return JSON.stringify(message);
  const ev = (type: string, rest: Record<string, unknown> = {}) => frame({ type, ...rest }, type);
  return [
    ev('message_start', { message: { ...message, content: [], stop_reason: null } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: o.message } }),
    ev('content_block_stop', { index: 0 }),
    ev('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 0 },
    }),
    ev('message_stop'),
  ].join('');
}

/**
 * The canned degraded answer in the SDK's success shape for `api` (JSON, or a minimal valid SSE stream whose only
 * text is the message), marked with `x-ringfence-degraded`. Undefined for APIs with no text answer (embeddings,
 * token counting): answer those with `circuitOpenError` instead.
 */
export function degradedReply(api: ApiKind, o: DegradedOptions): CannedReply | undefined {
  const created = Math.floor(Date.now() / 1000);
  const body =
    api === 'openai.chat'
      ? chat(o, created)
      : api === 'openai.responses'
        ? responses(o, created)
        : api === 'anthropic.messages'
          ? messages(o)
          : undefined;
  if (body === undefined) return undefined;
  const headers: Record<string, string> = o.stream
    ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }
    : { 'content-type': 'application/json' };
  headers[DEGRADED_HEADER] = o.from;
  return { status: 200, headers, body };
}

/** The hard failure of a target whose breaker is open: 503 `upstream_circuit_open` with `retry-after`. */
export function circuitOpenError(from: string, retryAfterSeconds: number): GatewayError {
  const s = Math.max(1, Math.ceil(retryAfterSeconds));
  return new GatewayError(
    'upstream_circuit_open',
    `${from} is failing (circuit open) and no fallback could serve; retry in ${s} s`,
    { headers: { 'retry-after': String(s) } },
  );
}
