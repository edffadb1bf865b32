import type { GuardrailVerdict, ToolVerdict, Verdict } from '../../core/decision.ts';
import type { CompiledBundle, CompiledGuardrail } from '../../policy/compile.ts';
import type { Match } from '../../policy/detectors/index.ts';
import { redact } from '../../policy/detectors/index.ts';
import { checkTool, scanOutput, verdictOf } from '../../policy/evaluate.ts';
import type { Usage } from './protocol.ts';

/** What the output inspection observed over a whole response. */
export interface OutputReport {
  verdicts: GuardrailVerdict[];
  tools: ToolVerdict[];
  usage: Usage | undefined;
  /** The guardrail or tool rule that blocked the response, if one did. */
  blockedBy: string | undefined;
}

/** Accumulates verdicts per guardrail (spans deduplicated by absolute offset) and tool verdicts. */
export class OutputTally {
  readonly #guards: readonly CompiledGuardrail[];
  readonly #spans = new Map<string, { seen: Set<number>; kinds: Set<string> }>();
  readonly tools: ToolVerdict[] = [];
  blockedBy: string | undefined;
  usage: Usage | undefined;

  constructor(guards: readonly CompiledGuardrail[]) {
    this.#guards = guards;
  }

  /** Records a guardrail's matches at `base` (the absolute offset of the scanned text). */
  record(g: CompiledGuardrail, matches: readonly Match[], base: number): void {
    let s = this.#spans.get(g.id);
    if (!s) {
      s = { seen: new Set(), kinds: new Set() };
      this.#spans.set(g.id, s);
    }
    for (const m of matches) {
      s.seen.add(base + m.start);
      s.kinds.add(m.kind);
    }
    if (g.action === 'block') this.blockedBy ??= g.id;
  }

  /** Checks a tool the model calls; a refused one blocks the response. */
  tool(cb: CompiledBundle, cls: string, name: string): void {
    const v = checkTool(cb, cls, 'response', name);
    this.tools.push(v);
    if (v.verdict === 'deny') this.blockedBy ??= v.rule;
  }

  addUsage(u: Partial<Usage>): void {
    this.usage ??= { input: 0, output: 0 };
    if (u.input) this.usage.input = u.input;
    if (u.output) this.usage.output = u.output;
  }

  report(): OutputReport {
    const verdicts = this.#guards.map((g): GuardrailVerdict => {
      const s = this.#spans.get(g.id);
      const verdict: Verdict = s ? verdictOf(g) : 'pass';
      return {
        stage: 'output',
        guardrail: g.id,
        detector: g.detector,
        verdict,
        spans: s?.seen.size ?? 0,
        kinds: s ? [...s.kinds] : [],
      };
    });
    return { verdicts, tools: this.tools, usage: this.usage, blockedBy: this.blockedBy };
  }
}

/** Scans a text with the guardrails; records matches; returns the redacted text when a redact guardrail matched. */
export function guardText(
  cb: CompiledBundle,
  guards: readonly CompiledGuardrail[],
  text: string,
  base: number,
  tally: OutputTally,
): { text: string; redacted: boolean } {
  const hits = scanOutput(cb, guards, text);
  if (!hits.length) return { text, redacted: false };
  const toRedact: Match[] = [];
  for (const { guard, matches } of hits) {
    tally.record(guard, matches, base);
    if (guard.action === 'redact') toRedact.push(...matches);
  }
  if (!toRedact.length) return { text, redacted: false };
  return { text: redact(text, toRedact, (m) => `[REDACTED:${m.kind}]`), redacted: true };
}
