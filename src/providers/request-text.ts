import type { ApiKind } from '../core/policy-input.ts';

/** A string in a request body that carries prompt text: read it, replace it. */
export interface TextSlot {
  get(): string;
  set(v: string): void;
}

type Obj = Record<string, unknown>;

function slotsOfContent(holder: Obj, key: string, out: TextSlot[]): void {
  const v = holder[key];
  if (typeof v === 'string') out.push({ get: () => holder[key] as string, set: (s) => (holder[key] = s) });
  else if (Array.isArray(v))
    for (const part of v as Obj[]) {
      if (!part || typeof part !== 'object') continue;
      if (typeof part.text === 'string') slotsOfContent(part, 'text', out);
      else if (part.content !== undefined) slotsOfContent(part, 'content', out);
      else if (typeof part.output === 'string') slotsOfContent(part, 'output', out);
    }
}

/**
 * Every prompt-text string of a request body, for redaction before it leaves the gateway. Mirrors what the
 * adapters read into PolicyInput, so whatever the policy saw is what gets rewritten.
 */
export function requestTextSlots(api: ApiKind, body: Obj): TextSlot[] {
  const out: TextSlot[] = [];
  switch (api) {
    case 'openai.chat':
      for (const m of (Array.isArray(body.messages) ? body.messages : []) as Obj[])
        if (m) slotsOfContent(m, 'content', out);
      break;
    case 'openai.responses':
      slotsOfContent(body, 'instructions', out);
      if (typeof body.input === 'string') slotsOfContent(body, 'input', out);
      else
        for (const item of (Array.isArray(body.input) ? body.input : []) as Obj[]) {
          if (!item) continue;
          if (item.content !== undefined) slotsOfContent(item, 'content', out);
          else if (typeof item.output === 'string') slotsOfContent(item, 'output', out);
        }
      break;
    case 'openai.embeddings':
      if (typeof body.input === 'string') slotsOfContent(body, 'input', out);
      else if (Array.isArray(body.input)) {
        const arr = body.input as unknown[];
        arr.forEach((v, i) => {
          if (typeof v === 'string') out.push({ get: () => arr[i] as string, set: (s) => (arr[i] = s) });
        });
      }
      break;
    case 'anthropic.messages':
    case 'anthropic.count_tokens':
      slotsOfContent(body, 'system', out);
      for (const m of (Array.isArray(body.messages) ? body.messages : []) as Obj[])
        if (m) slotsOfContent(m, 'content', out);
      break;
  }
  return out;
}
