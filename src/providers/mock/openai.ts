import type { MockReply } from './reply.ts';

/** One SSE frame: `event:` only when the API names its events (Responses does, Chat Completions does not). */
export function sse(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

const created = () => Math.floor(Date.now() / 1000);

/** A Chat Completions response body. */
export function chatCompletion(r: MockReply, id: string): unknown {
  const message = r.tool
    ? {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          { id: 'call_mock_1', type: 'function', function: { name: r.tool.name, arguments: r.tool.args } },
        ],
      }
    : { role: 'assistant', content: r.text, refusal: null };
  return {
    id,
    object: 'chat.completion',
    created: created(),
    model: r.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: r.tool ? 'tool_calls' : 'stop' }],
    usage: {
      prompt_tokens: r.inputTokens,
      completion_tokens: r.outputTokens,
      total_tokens: r.inputTokens + r.outputTokens,
    },
  };
}

/** The SSE frames of a streamed Chat Completion, `[DONE]` included. */
export function chatCompletionStream(r: MockReply, id: string, includeUsage: boolean): string[] {
  const base = { id, object: 'chat.completion.chunk', created: created(), model: r.model };
  const chunk = (delta: unknown, finish: string | null) =>
    sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const frames = [chunk({ role: 'assistant', content: r.tool ? null : '' }, null)];
  if (r.tool) {
    frames.push(
      chunk(
        {
          tool_calls: [
            { index: 0, id: 'call_mock_1', type: 'function', function: { name: r.tool.name, arguments: '' } },
          ],
        },
        null,
      ),
    );
    for (const piece of [r.tool.args.slice(0, 5), r.tool.args.slice(5)])
      frames.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null));
    frames.push(chunk({}, 'tool_calls'));
  } else {
    for (const c of r.chunks) frames.push(chunk({ content: c }, null));
    frames.push(chunk({}, 'stop'));
  }
  if (includeUsage) {
    frames.push(
      sse({
        ...base,
        choices: [],
        usage: {
          prompt_tokens: r.inputTokens,
          completion_tokens: r.outputTokens,
          total_tokens: r.inputTokens + r.outputTokens,
        },
      }),
    );
  }
  frames.push(sse('[DONE]'));
  return frames;
}

function responseObject(
  r: MockReply,
  id: string,
  status: 'in_progress' | 'completed',
): Record<string, unknown> {
  const done = status === 'completed';
  return {
    id,
    object: 'response',
    created_at: created(),
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    model: r.model,
    output: done
      ? [
          r.tool
            ? {
                type: 'function_call',
                id: 'fc_mock_1',
                call_id: 'call_mock_1',
                name: r.tool.name,
                arguments: r.tool.args,
                status: 'completed',
              }
            : {
                type: 'message',
                id: 'msg_mock_1',
                status: 'completed',
                role: 'assistant',
                content: [{ type: 'output_text', text: r.text, annotations: [] }],
              },
        ]
      : [],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: done
      ? {
          input_tokens: r.inputTokens,
          output_tokens: r.outputTokens,
          total_tokens: r.inputTokens + r.outputTokens,
        }
      : null,
  };
}

/** A Responses API response body. */
export function responsesResponse(r: MockReply, id: string): unknown {
  return responseObject(r, id, 'completed');
}

/** The SSE frames of a streamed Responses API call (text only; a tool call is sent whole at the end). */
export function responsesStream(r: MockReply, id: string): string[] {
  let seq = 0;
  const ev = (type: string, rest: Record<string, unknown>) =>
    sse({ type, sequence_number: seq++, ...rest }, type);
  const frames = [ev('response.created', { response: responseObject(r, id, 'in_progress') })];
  if (!r.tool) {
    const item = { type: 'message', id: 'msg_mock_1', status: 'in_progress', role: 'assistant', content: [] };
    frames.push(ev('response.output_item.added', { output_index: 0, item }));
    frames.push(
      ev('response.content_part.added', {
        item_id: 'msg_mock_1',
        output_index: 0,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] },
      }),
    );
    for (const delta of r.chunks)
      frames.push(
        ev('response.output_text.delta', { item_id: 'msg_mock_1', output_index: 0, content_index: 0, delta }),
      );
    frames.push(
      ev('response.output_text.done', {
        item_id: 'msg_mock_1',
        output_index: 0,
        content_index: 0,
        text: r.text,
      }),
    );
  }
  frames.push(ev('response.completed', { response: responseObject(r, id, 'completed') }));
  return frames;
}

/** An embeddings response; honours `encoding_format: base64` (the SDK's default) as little-endian float32. */
export function embeddings(body: Record<string, unknown>, model: string): unknown {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const dims = 8;
  let tokens = 0;
  const data = inputs.map((inp, index) => {
    const s = typeof inp === 'string' ? inp : JSON.stringify(inp);
    tokens += Math.max(1, Math.ceil(s.length / 4));
    const vec = new Float32Array(dims);
    for (let i = 0; i < s.length; i++) vec[i % dims]! += (s.charCodeAt(i) % 31) / 31;
    const norm = Math.hypot(...vec) || 1;
    for (let i = 0; i < dims; i++) vec[i]! /= norm;
    const embedding =
      body.encoding_format === 'base64' ? Buffer.from(vec.buffer).toString('base64') : Array.from(vec);
    return { object: 'embedding', index, embedding };
  });
  return { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}
