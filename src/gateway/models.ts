import type { Handler } from 'hono';
import type { Upstreams } from '../upstream/targets.ts';
import type { DataEnv } from './context.ts';

/**
 * `GET /v1/models`: the models the configuration routes, in the caller's shape (Anthropic's when the client sends
 * `anthropic-version`, OpenAI's otherwise). The list is computed once; it changes only with the config.
 */
export function listModels(upstreams: Upstreams): Handler<DataEnv> {
  const created = Math.floor(Date.now() / 1000);
  const owner = (family: 'openai' | 'anthropic', id: string) =>
    upstreams.targets.find((t) => t.family === family && t.models.includes(id))?.providerId ?? 'ringfence';
  const oa = upstreams.models('openai');
  const an = upstreams.models('anthropic');
  const openaiBody = JSON.stringify({
    object: 'list',
    data: oa.map((id) => ({ id, object: 'model', created, owned_by: owner('openai', id) })),
  });
  const anthropicBody = JSON.stringify({
    data: an.map((id) => ({
      type: 'model',
      id,
      display_name: id,
      created_at: new Date(created * 1000).toISOString(),
    })),
    has_more: false,
    first_id: an[0] ?? null,
    last_id: an.at(-1) ?? null,
  });
  return function models(c) {
    const body = c.get('family') === 'anthropic' ? anthropicBody : openaiBody;
    return c.body(body, 200, { 'content-type': 'application/json' });
  };
}
