import type { GuardrailVerdict, ToolVerdict, Verdict } from '../../core/decision.ts';
import type { CompiledBundle, CompiledGuardrail } from '../../policy/compile.ts';
import type { Match } from '../../policy/detectors/index.ts';
import { redact } from '../../policy/detectors/index.ts';
import { checkTool, scanOutput, verdictOf } from '../../policy/evaluate.ts';
import type { ScanCache } from '../../policy/scan-cache.ts';
import type { Usage } from './protocol.ts';

/** What the output inspection observed over a whole response. */
export interface OutputReport {
  verdicts: GuardrailVerdict[];
  tools: ToolVerdict[];
  usage: Usage | undefined;
  /** The guardrail or tool rule that blocked the response, if one did. */
  blockedBy: string | undefined;
  /** What was kept for an observe-only check by a second bundle, when asked for. */
  collected: { text: string; tools: readonly string[] } | undefined;
  /** Time spent scanning the response with the enforcing bundle's output guardrails (µs). */
  guardUs: number;
}

/** Accumulates verdicts per guardrail (spans deduplicated by absolute offset) and tool verdicts. */
export class OutputTally {
  readonly #guards: readonly CompiledGuardrail[];
  readonly #spans = new Map<string, { seen: Set<number>; kinds: Set<string> }>();
  readonly tools: ToolVerdict[] = [];
  blockedBy: string | undefined;
  usage: Usage | undefined;
  /** Response text and tool names kept for a second bundle's observe-only output check (shadow). */
  readonly collected: { text: string; tools: string[] } | undefined;
  /** Time spent in the output guardrails' scans so far (µs). */
  guardUs = 0;

  constructor(guards: readonly CompiledGuardrail[], collect = false) {
    this.#guards = guards;
    this.collected = collect ? { text: '', tools: [] } : undefined;
  }

  /** Keeps response text for the observe-only check (bounded: 1 MiB characters). */
  collectText(t: string): void {
    if (this.collected && this.collected.text.length < 1_048_576) this.collected.text += t;
  }

  /** Keeps a tool name the model called, for the observe-only check. */
  collectTool(name: string): void {
    this.collected?.tools.push(name);
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
    this.collectTool(name);
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
    return {
      verdicts,
      tools: this.tools,
      usage: this.usage,
      blockedBy: this.blockedBy,
      collected: this.collected,
      guardUs: Math.round(this.guardUs),
    };
  }
}

/**
 * Scans a text with the guardrails; records matches; returns the redacted text when a redact guardrail matched.
 * `scans` (the request's scan cache) shares the detector runs with the other bundle's check of the same text.
 */
export function guardText(
  cb: CompiledBundle,
  guards: readonly CompiledGuardrail[],
  text: string,
  base: number,
  tally: OutputTally,
  scans?: ScanCache,
): { text: string; redacted: boolean } {
  const t0 = performance.now();
  const hits = scanOutput(cb, guards, text, scans);
  tally.guardUs += (performance.now() - t0) * 1000;
  if (!hits.length) return { text, redacted: false };
  const toRedact: Match[] = [];
  for (const { guard, matches } of hits) {
    tally.record(guard, matches, base);
    if (guard.action === 'redact') toRedact.push(...matches);
  }
  if (!toRedact.length) return { text, redacted: false };
  return { text: redact(text, toRedact, (m) => `[REDACTED:${m.kind}]`), redacted: true };
}

/**
 * The output verdicts a second bundle would have given on the same response (observe only: shadow, or
 * production on canary traffic), from the text and tool calls the relay collected. With the request's scan cache,
 * a detector the enforcing bundle already ran on the same text is not run again.
 */
export function observeOutput(
  cb: CompiledBundle,
  cls: string,
  collected: { text: string; tools: readonly string[] },
  scans?: ScanCache,
): { verdicts: GuardrailVerdict[]; tools: ToolVerdict[] } {
  const guards = cb.outputGuards.filter((g) => g.classes === undefined || g.classes.has(cls));
  const tally = new OutputTally(guards);
  if (guards.length && collected.text) guardText(cb, guards, collected.text, 0, tally, scans);
  if (cb.toolRules.length) for (const t of collected.tools) tally.tool(cb, cls, t);
  const r = tally.report();
  return { verdicts: r.verdicts, tools: r.tools };
}
