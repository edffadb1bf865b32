import type { ApiKind } from '../../core/policy-input.ts';

// biome-ignore lint/suspicious/noExplicitAny: provider payloads are foreign JSON, inspected defensively
type Json = any;

/** Token usage reported by the provider. */
export interface Usage {
  input: number;
  output: number;
}

/** What one streamed event carries that policy cares about. */
export interface FrameInfo {
  /** Output text in this event. */
  text?: string;
  /** A tool the model starts calling. */
  toolName?: string;
  usage?: Partial<Usage>;
}

/** How to read, rewrite and end the stream of one API. */
export interface StreamProtocol {
  inspect(event: string | undefined, json: Json): FrameInfo;
  /** Re-serialises the event with its text replaced. */
  withText(event: string | undefined, json: Json, text: string): string;
  /** Frames that end the stream as filtered, in the client's protocol. `first` is the first event's JSON. */
  terminate(first: Json, openBlock: boolean): string;
}

const frame = (event: string | undefined, json: unknown) =>
  `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(json)}\n\n`;

const openaiChat: StreamProtocol = {
  inspect(_e, j) {
    const info: FrameInfo = {};
    const delta = j?.choices?.[0]?.delta;
    if (typeof delta?.content === 'string') info.text = delta.content;
    const name = delta?.tool_calls?.[0]?.function?.name;
    if (typeof name === 'string' && name) info.toolName = name;
    if (j?.usage) info.usage = { input: j.usage.prompt_tokens ?? 0, output: j.usage.completion_tokens ?? 0 };
    return info;
  },
  withText(e, j, text) {
    j.choices[0].delta.content = text;
    return frame(e, j);
  },
  terminate(first) {
    const chunk = {
      id: first?.id ?? 'chatcmpl-filtered',
      object: 'chat.completion.chunk',
      created: first?.created ?? Math.floor(Date.now() / 1000),
      model: first?.model ?? '',
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'content_filter' }],
    };
    return `${frame(undefined, chunk)}data: [DONE]\n\n`;
  },
};

const openaiResponses: StreamProtocol = {
  inspect(e, j) {
    const type = j?.type ?? e;
    if (type === 'response.output_text.delta' && typeof j.delta === 'string') return { text: j.delta };
    if (type === 'response.output_item.added' && j.item?.type === 'function_call')
      return { toolName: j.item.name };
    if (type === 'response.completed' && j.response?.usage)
      return {
        usage: { input: j.response.usage.input_tokens ?? 0, output: j.response.usage.output_tokens ?? 0 },
      };
    return {};
  },
  withText(e, j, text) {
    j.delta = text;
    return frame(e, j);
  },
  terminate(first) {
    const r = first?.response ?? {};
    const response = {
      ...r,
      status: 'incomplete',
      incomplete_details: { reason: 'content_filter' },
      output: [],
    };
    return frame('response.incomplete', {
      type: 'response.incomplete',
      sequence_number: 1_000_000,
      response,
    });
  },
};

const anthropicMessages: StreamProtocol = {
  inspect(e, j) {
    const type = j?.type ?? e;
    if (type === 'content_block_delta' && j.delta?.type === 'text_delta') return { text: j.delta.text };
    if (type === 'content_block_start' && j.content_block?.type === 'tool_use')
      return { toolName: j.content_block.name };
    if (type === 'message_start' && j.message?.usage)
      return { usage: { input: j.message.usage.input_tokens ?? 0 } };
    if (type === 'message_delta' && j.usage) return { usage: { output: j.usage.output_tokens ?? 0 } };
    return {};
  },
  withText(e, j, text) {
    j.delta.text = text;
    return frame(e, j);
  },
  terminate(_first, openBlock) {
    return (
      (openBlock ? frame('content_block_stop', { type: 'content_block_stop', index: 0 }) : '') +
      frame('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'refusal', stop_sequence: null },
        usage: { output_tokens: 0 },
      }) +
      frame('message_stop', { type: 'message_stop' })
    );
  },
};

/** The stream protocol of an API, or undefined when the API does not stream. */
export function streamProtocol(api: ApiKind): StreamProtocol | undefined {
  return api === 'openai.chat'
    ? openaiChat
    : api === 'openai.responses'
      ? openaiResponses
      : api === 'anthropic.messages'
        ? anthropicMessages
        : undefined;
}

/** A text slot in a whole response body: read it, replace it. */
export interface TextSlot {
  get(): string;
  set(v: string): void;
}

/** How to read and rewrite a whole (non-streamed) response of one API. */
export interface BodyProtocol {
  texts(j: Json): TextSlot[];
  toolNames(j: Json): string[];
  usage(j: Json): Usage | undefined;
  /** Rewrites the body in place as filtered (no content, the API's content-filter stop reason). */
  block(j: Json): void;
}

const slot = (obj: Json, key: string): TextSlot => ({ get: () => obj[key], set: (v) => (obj[key] = v) });

const bodies: Partial<Record<ApiKind, BodyProtocol>> = {
  'openai.chat': {
    texts: (j) =>
      (j?.choices ?? [])
        .filter((c: Json) => typeof c?.message?.content === 'string')
        .map((c: Json) => slot(c.message, 'content')),
    toolNames: (j) =>
      (j?.choices ?? []).flatMap((c: Json) =>
        (c?.message?.tool_calls ?? []).map((t: Json) => t?.function?.name).filter(Boolean),
      ),
    usage: (j) =>
      j?.usage ? { input: j.usage.prompt_tokens ?? 0, output: j.usage.completion_tokens ?? 0 } : undefined,
    block(j) {
      for (const c of j?.choices ?? []) {
        c.message = { role: 'assistant', content: '', refusal: null };
        c.finish_reason = 'content_filter';
      }
    },
  },
  'openai.responses': {
    texts: (j) =>
      (j?.output ?? []).flatMap((o: Json) =>
        (o?.content ?? []).filter((p: Json) => typeof p?.text === 'string').map((p: Json) => slot(p, 'text')),
      ),
    toolNames: (j) =>
      (j?.output ?? []).filter((o: Json) => o?.type === 'function_call').map((o: Json) => o.name),
    usage: (j) =>
      j?.usage ? { input: j.usage.input_tokens ?? 0, output: j.usage.output_tokens ?? 0 } : undefined,
    block(j) {
      j.status = 'incomplete';
      j.incomplete_details = { reason: 'content_filter' };
      j.output = [];
    },
  },
  'anthropic.messages': {
    texts: (j) =>
      (j?.content ?? []).filter((b: Json) => b?.type === 'text').map((b: Json) => slot(b, 'text')),
    toolNames: (j) => (j?.content ?? []).filter((b: Json) => b?.type === 'tool_use').map((b: Json) => b.name),
    usage: (j) =>
      j?.usage ? { input: j.usage.input_tokens ?? 0, output: j.usage.output_tokens ?? 0 } : undefined,
    block(j) {
      j.content = [];
      j.stop_reason = 'refusal';
    },
  },
  'openai.embeddings': {
    texts: () => [],
    toolNames: () => [],
    usage: (j) => (j?.usage ? { input: j.usage.prompt_tokens ?? 0, output: 0 } : undefined),
    block() {},
  },
};

/** The body protocol of an API, or undefined when its responses carry nothing to inspect. */
export function bodyProtocol(api: ApiKind): BodyProtocol | undefined {
  return bodies[api];
}
