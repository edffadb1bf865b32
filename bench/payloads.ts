import { JSON_BODY, SSE_BYTES } from './mock-provider.ts';

/** One request shape the bench sends: an OpenAI chat completion of a given prompt size, streamed or not. */
export interface Payload {
  /** Stable key in results (`2k-json`). */
  readonly id: string;
  /** Human label (`2KB non-stream`). */
  readonly label: string;
  readonly stream: boolean;
  readonly body: Buffer;
  /** Bytes of the answer body the bench mock sends back, relayed unchanged by every mode. */
  readonly responseBytes: number;
}

/** The model the bench asks for: the project mock's name, which the example bundles allow. */
export const BENCH_MODEL = 'mock-gpt';

const FILLER =
  'Summarise the incident report below for the on-call channel and list the follow-up actions with owners. ';

/** A chat body of about `bytes` bytes: a system message and one long user prompt. */
export function chatBody(bytes: number, stream: boolean): Buffer {
  const withPrompt = (content: string) =>
    Buffer.from(
      JSON.stringify({
        model: BENCH_MODEL,
        stream,
        max_tokens: 256,
        temperature: 0.2,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content },
        ],
      }),
    );
  const need = Math.max(0, bytes - withPrompt('').length);
  return withPrompt(FILLER.repeat(Math.ceil(need / FILLER.length)).slice(0, need));
}

function payload(kb: number, stream: boolean): Payload {
  return {
    id: `${kb}k-${stream ? 'sse' : 'json'}`,
    label: `${kb}KB ${stream ? 'stream' : 'non-stream'}`,
    stream,
    body: chatBody(kb * 1024, stream),
    responseBytes: stream ? SSE_BYTES : JSON_BODY.length,
  };
}

/** Every payload, in report order. */
export const PAYLOADS: readonly Payload[] = [
  payload(2, false),
  payload(2, true),
  payload(32, false),
  payload(32, true),
];
