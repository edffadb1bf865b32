import { sse } from './openai.ts';
import type { MockReply } from './reply.ts';

function content(r: MockReply): unknown[] {
  return r.tool
    ? [{ type: 'tool_use', id: 'toolu_mock_1', name: r.tool.name, input: JSON.parse(r.tool.args) }]
    : [{ type: 'text', text: r.text }];
}

/** An Anthropic Messages response body. */
export function message(r: MockReply, id: string): unknown {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: r.model,
    content: content(r),
    stop_reason: r.tool ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: r.inputTokens, output_tokens: r.outputTokens },
  };
}

/** The SSE frames of a streamed Anthropic message, in the documented event order. */
export function messageStream(r: MockReply, id: string): string[] {
  const ev = (type: string, rest: Record<string, unknown> = {}) => sse({ type, ...rest }, type);
  const frames = [
    ev('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: r.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: r.inputTokens, output_tokens: 1 },
      },
    }),
  ];
  if (r.tool) {
    frames.push(
      ev('content_block_start', {
        index: 0,
        content_block: { type: 'tool_use', id: 'toolu_mock_1', name: r.tool.name, input: {} },
      }),
    );
    frames.push(
      ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: r.tool.args } }),
    );
  } else {
    frames.push(ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
    frames.push(ev('ping'));
    for (const text of r.chunks)
      frames.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }));
  }
  frames.push(ev('content_block_stop', { index: 0 }));
  frames.push(
    ev('message_delta', {
      delta: { stop_reason: r.tool ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: { output_tokens: r.outputTokens },
    }),
  );
  frames.push(ev('message_stop'));
  return frames;
}
