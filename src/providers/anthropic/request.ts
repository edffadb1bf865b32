import type { ApiKind, AppIdentity, InputMessage, PolicyInput } from '../../core/policy-input.ts';
import { contentText, num, str, stringRecord } from '../text.ts';

type Body = Record<string, unknown>;

/** Builds the PolicyInput for an Anthropic Messages request body (messages, count_tokens). */
export function anthropicPolicyInput(
  api: ApiKind,
  body: Body,
  app: AppIdentity,
  requestId: string,
): PolicyInput {
  const messages: InputMessage[] = [];
  const system = contentText(body.system);
  if (system) messages.push({ role: 'system', text: system });
  if (Array.isArray(body.messages)) {
    for (const m of body.messages as Array<{ role?: unknown; content?: unknown }>) {
      messages.push({ role: str(m?.role) ?? 'user', text: contentText(m?.content) });
    }
  }
  const tools: string[] = [];
  if (Array.isArray(body.tools))
    for (const t of body.tools as Array<{ name?: unknown }>) if (str(t?.name)) tools.push(t.name as string);
  const metadata = stringRecord(body.metadata);
  return {
    requestId,
    app,
    api,
    family: 'anthropic',
    model: str(body.model) ?? '',
    messages,
    tools,
    stream: body.stream === true,
    maxTokens: num(body.max_tokens),
    endUser: metadata.user_id,
    metadata,
  };
}
