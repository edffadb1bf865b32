import type { PolicyInput } from '../core/policy-input.ts';
import type { CelRequest } from './cel.ts';
import type { Match } from './detectors/index.ts';

/** Per-evaluation scratch state: computed once per request, read by every compiled predicate. */
export interface EvalContext {
  readonly input: PolicyInput;
  /** Estimated input tokens (characters / 4, rounded up). */
  readonly tokens: number;
  /** Detector kinds found anywhere in the input. */
  readonly hits: Set<string>;
  /** Matches per scan key, across all messages. */
  readonly found: Map<string, Match[]>;
  /** The class, once classification has run. */
  cls: string | undefined;
  /** The CEL binding for `request`, built on first use. */
  celRequest(): CelRequest;
}

/** Builds the context: token estimate and one pass of every input detector over every message. */
export function createContext(
  input: PolicyInput,
  scan: ReadonlyMap<string, { scan(t: string, out: Match[]): void }>,
): EvalContext {
  let chars = 0;
  const hits = new Set<string>();
  const found = new Map<string, Match[]>();
  for (const m of input.messages) chars += m.text.length;
  if (scan.size) {
    for (const [key, detector] of scan) {
      const out: Match[] = [];
      for (const m of input.messages) if (m.text) detector.scan(m.text, out);
      if (out.length) {
        found.set(key, out);
        for (const x of out) hits.add(x.kind);
      }
    }
  }
  let cel: CelRequest | undefined;
  const ctx: EvalContext = {
    input,
    tokens: Math.ceil(chars / 4),
    hits,
    found,
    cls: undefined,
    celRequest() {
      if (!cel || cel.class !== (ctx.cls ?? '')) {
        cel = {
          app: input.app.appId,
          appTags: input.app.tags,
          api: input.api,
          model: input.model,
          endUser: input.endUser ?? '',
          metadata: input.metadata,
          tokens: BigInt(ctx.tokens),
          stream: input.stream,
          detects: [...hits],
          tools: input.tools,
          class: ctx.cls ?? '',
          messages: BigInt(input.messages.length),
        };
      }
      return cel;
    },
  };
  return ctx;
}
