import type { ApiFamily } from './errors.ts';

/** Who is calling: resolved from the gateway key. */
export interface AppIdentity {
  readonly appId: string;
  readonly keyId: string;
  readonly tags: readonly string[];
}

/** Which provider API an endpoint belongs to. */
export type ApiKind =
  | 'openai.chat'
  | 'openai.responses'
  | 'openai.embeddings'
  | 'anthropic.messages'
  | 'anthropic.count_tokens';

/** One message's text, flattened from whatever content-part structure the API uses. */
export interface InputMessage {
  readonly role: string;
  readonly text: string;
}

/**
 * The one shape the policy sees, whatever the API: built by the provider adapter from the parsed body.
 * Text is flattened (tool schemas and images are not text); tool names are the tools offered to the model.
 */
export interface PolicyInput {
  readonly requestId: string;
  readonly app: AppIdentity;
  readonly api: ApiKind;
  readonly family: ApiFamily;
  readonly model: string;
  readonly messages: readonly InputMessage[];
  readonly tools: readonly string[];
  readonly stream: boolean;
  readonly maxTokens: number | undefined;
  readonly endUser: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
}
