import type { ApiKind, AppIdentity, InputMessage, PolicyInput } from '../../core/policy-input.ts';
import { contentText, num, str, stringRecord } from '../text.ts';

type Body = Record<string, unknown>;

function chatMessages(body: Body): InputMessage[] {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  return msgs.map((m: { role?: unknown; content?: unknown }) => ({
    role: str(m?.role) ?? 'user',
    text: contentText(m?.content),
  }));
}

function responsesMessages(body: Body): InputMessage[] {
  const out: InputMessage[] = [];
  const instructions = str(body.instructions);
  if (instructions) out.push({ role: 'system', text: instructions });
  const input = body.input;
  if (typeof input === 'string') out.push({ role: 'user', text: input });
  else if (Array.isArray(input)) {
    for (const item of input as Array<Record<string, unknown>>) {
      if (!item || typeof item !== 'object') continue;
      if (item.type === 'function_call_output') out.push({ role: 'tool', text: contentText(item.output) });
      else if (item.content !== undefined)
        out.push({ role: str(item.role) ?? 'user', text: contentText(item.content) });
    }
  }
  return out;
}

function embeddingMessages(body: Body): InputMessage[] {
  const input = body.input;
  if (typeof input === 'string') return [{ role: 'user', text: input }];
  if (Array.isArray(input))
    return input.filter((s) => typeof s === 'string').map((text) => ({ role: 'user', text }));
  return [];
}

function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  const names: string[] = [];
  for (const t of tools as Array<{ name?: unknown; function?: { name?: unknown } }>) {
    const n = str(t?.function?.name) ?? str(t?.name);
    if (n) names.push(n);
  }
  return names;
}

/** Builds the PolicyInput for an OpenAI-API request body (chat, responses, embeddings). */
export function openaiPolicyInput(
  api: ApiKind,
  body: Body,
  app: AppIdentity,
  requestId: string,
): PolicyInput {
  const messages =
    api === 'openai.chat'
      ? chatMessages(body)
      : api === 'openai.responses'
        ? responsesMessages(body)
        : embeddingMessages(body);
  return {
    requestId,
    app,
    api,
    family: 'openai',
    model: str(body.model) ?? '',
    messages,
    tools: toolNames(body.tools),
    stream: body.stream === true,
    maxTokens: num(body.max_completion_tokens) ?? num(body.max_tokens) ?? num(body.max_output_tokens),
    endUser: str(body.user) ?? str(body.safety_identifier),
    metadata: stringRecord(body.metadata),
  };
}
