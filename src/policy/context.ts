import type { PolicyInput } from '../core/policy-input.ts';
import type { CelRequest } from './cel.ts';
import type { CompiledBundle } from './compile.ts';
import type { Match } from './detectors/index.ts';
import { ScanCache } from './scan-cache.ts';

/**
 * Per-evaluation scratch state: computed once per request, read by every compiled predicate. Input detectors run
 * lazily, each at most once per request (through the ScanCache): a detector whose result no rule that applies
 * reads is never run, and a second bundle reuses the first one's scans.
 */
export interface EvalContext {
  readonly input: PolicyInput;
  /** Estimated input tokens (characters / 4, rounded up). */
  readonly tokens: number;
  /** Whether any input detector of the bundle finds `kind` anywhere in the input. */
  hasKind(kind: string): boolean;
  /** Matches of one scan key across all messages (empty when it found nothing). */
  matches(scanKey: string): readonly Match[];
  /** The class, once classification has run. */
  cls: string | undefined;
  /** The CEL binding for `request`, built on first use. */
  celRequest(): CelRequest;
}

const NONE: readonly Match[] = Object.freeze([]);

/**
 * Builds the context: the token estimate now, detector results on demand. `cache` is the request's shared scan
 * cache; one of its own is used when none is given, or when the cache belongs to another input.
 */
export function createContext(cb: CompiledBundle, input: PolicyInput, cache?: ScanCache): EvalContext {
  let chars = 0;
  for (const m of input.messages) chars += m.text.length;
  const scans = cache?.input === input ? cache : new ScanCache(input);

  const matches = (key: string): readonly Match[] => {
    const detector = cb.inputScan.get(key);
    return detector ? scans.inputMatches(cb.inputSpecs.get(key) ?? key, detector) : NONE;
  };
  const hasKind = (kind: string): boolean => {
    const keys = cb.kindSources.get(kind);
    if (keys) for (const key of keys) for (const m of matches(key)) if (m.kind === kind) return true;
    return false;
  };
  /** Every kind found, in the order a full scan in plan order meets them (the order CEL's `detects` lists). */
  let detects: string[] | undefined;
  const allKinds = (): string[] => {
    if (!detects) {
      const seen = new Set<string>();
      for (const key of cb.inputScan.keys()) for (const m of matches(key)) seen.add(m.kind);
      detects = [...seen];
    }
    return detects;
  };

  let cel: CelRequest | undefined;
  const ctx: EvalContext = {
    input,
    tokens: Math.ceil(chars / 4),
    hasKind,
    matches,
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
          // Scanned only if the expression reads it.
          get detects() {
            return allKinds();
          },
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
