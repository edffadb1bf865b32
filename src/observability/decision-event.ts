import type { ContentLogging, Decision, GuardrailVerdict, ToolVerdict } from '../core/decision.ts';
import type { RequestRecord } from '../gateway/context.ts';
import { createDetector, type Match, redact, type ScanMemo } from '../policy/detectors/index.ts';
import type { Pricing } from './cost.ts';

/** One guardrail that did not pass (verdicts that passed are left out to keep lines short). */
export interface LoggedVerdict {
  readonly stage: 'input' | 'output';
  readonly guardrail: string;
  readonly verdict: string;
  readonly spans: number;
  readonly kinds: readonly string[];
}

/** What one bundle decided, as logged. Never content: rule ids, class, route, verdict counts. */
export interface LoggedDecision {
  readonly bundleId: string;
  readonly class: string;
  readonly confidence: number;
  readonly action: Decision['action'];
  readonly route: { readonly provider: string | null; readonly model: string; readonly rule: string | null };
  readonly matchedRules: readonly string[];
  readonly deny: { readonly rule: string; readonly message: string } | null;
  readonly input: readonly LoggedVerdict[];
  /** Output verdicts: enforced for the enforcing bundle, observed for the other one. */
  readonly output: readonly LoggedVerdict[] | null;
}

/** A tool offered in the request (scope `request`) or called by the model (scope `response`), and what happened. */
export interface LoggedTool {
  readonly tool: string;
  readonly scope: 'request' | 'response';
  readonly outcome: 'allow' | 'deny';
  readonly rule: string | null;
}

/**
 * The decision log line, version 1: one per governed request, written after its response ended. Stable: fields
 * are only ever added; a change in meaning is a new version. `null` means "did not happen" (no shadow bundle,
 * no upstream call). Latencies in milliseconds, rounded to the microsecond.
 */
export interface DecisionEventV1 {
  readonly v: 1;
  readonly type: 'decision';
  readonly ts: string;
  readonly requestId: string;
  readonly app: { readonly id: string; readonly keyId: string };
  readonly api: string;
  readonly stream: boolean;
  readonly model: string;
  readonly ring: string;
  readonly stateVersion: number;
  readonly changeId: string;
  readonly bundles: { readonly enforcing: string; readonly shadow: string | null };
  readonly enforcing: LoggedDecision | null;
  readonly shadow: LoggedDecision | null;
  readonly shadowError: boolean;
  readonly divergence: readonly string[];
  readonly tools: readonly LoggedTool[];
  readonly target: { readonly provider: string; readonly model: string } | null;
  readonly tokens: { readonly input: number; readonly output: number; readonly estimated: boolean } | null;
  readonly costUsd: number | null;
  readonly status: number;
  readonly outcome: string;
  readonly error: string | null;
  readonly blockedBy: string | null;
  readonly latencyMs: {
    readonly auth: number;
    readonly parse: number;
    readonly enforcingEval: number;
    readonly shadowEval: number | null;
    readonly upstreamTtfb: number | null;
    readonly upstreamTotal: number | null;
    readonly outputGuardrails: number | null;
    readonly overhead: number;
    readonly total: number;
  };
  /** Prompt and response text, only when the enforcing bundle's `logging.content` allows it for the class. */
  readonly content?: LoggedContent;
}

/** Content as logged: `redacted` replaces PII and secrets; `full` still replaces secrets (credentials never). */
export interface LoggedContent {
  readonly mode: 'redacted' | 'full';
  readonly prompt: ReadonlyArray<{ readonly role: string; readonly text: string }>;
  readonly response: string | null;
  /** Some text was cut at `log.decisions.maxContentChars`. */
  readonly truncated: boolean;
}

const ms = (x: number) => Math.round(x * 1000) / 1000;
const usToMs = (x: number) => Math.round(x) / 1000;

function verdicts(vs: readonly GuardrailVerdict[] | undefined): LoggedVerdict[] {
  const out: LoggedVerdict[] = [];
  for (const v of vs ?? [])
    if (v.verdict !== 'pass')
      out.push({
        stage: v.stage,
        guardrail: v.guardrail,
        verdict: v.verdict,
        spans: v.spans,
        kinds: v.kinds,
      });
  return out;
}

function logged(d: Decision, output: readonly GuardrailVerdict[] | undefined): LoggedDecision {
  return {
    bundleId: d.bundleId,
    class: d.class,
    confidence: d.confidence,
    action: d.action,
    route: { provider: d.route.provider ?? null, model: d.route.model, rule: d.route.rule ?? null },
    matchedRules: d.matchedRules,
    deny: d.deny ?? null,
    input: verdicts(d.verdicts),
    output: output ? verdicts(output) : null,
  };
}

function tools(vs: readonly ToolVerdict[]): LoggedTool[] {
  return vs.map((t) => ({ tool: t.tool, scope: t.stage, outcome: t.verdict, rule: t.rule ?? null }));
}

/** Detectors of what must never reach a log: every PII kind, every secret kind. Built once. */
const PII = createDetector('pii', {});
const SECRETS = createDetector('secrets', {});
/** Scanned beyond the cut, so a secret straddling it is still found and not half-logged. */
const MARGIN = 256;

/** Redacts `text` for the log (`redacted`: PII and secrets; `full`: secrets), cut to `max` characters. */
export function redactForLog(
  text: string,
  mode: 'redacted' | 'full',
  max: number,
  memo?: ScanMemo,
): { text: string; cut: boolean } {
  const cut = text.length > max;
  const scanned = cut ? text.slice(0, max + MARGIN) : text;
  // The memo belongs to the whole text: a cut text is another text.
  const m = cut ? undefined : memo;
  const matches: Match[] = [];
  SECRETS.scan(scanned, matches, m);
  if (mode === 'redacted') PII.scan(scanned, matches, m);
  const clean = matches.length ? redact(scanned, matches, (m) => `[REDACTED:${m.kind}]`) : scanned;
  return cut ? { text: clean.slice(0, max), cut } : { text: clean, cut };
}

function content(r: RequestRecord, mode: ContentLogging, max: number): LoggedContent | undefined {
  if (mode === 'none') return undefined;
  let truncated = false;
  // The request's evaluations already scanned these texts: their per-text results are reused where the
  // detectors share parts (every pii kind; secrets of the same kind set).
  const scans = r.scans?.input === r.input ? r.scans : undefined;
  const prompt = r.input.messages.map((m, i) => {
    const t = redactForLog(m.text, mode, max, scans?.messageMemo(i));
    truncated ||= t.cut;
    return { role: m.role, text: t.text };
  });
  let response: string | null = null;
  const said = r.output?.collected?.text;
  if (said !== undefined) {
    const t = redactForLog(said, mode, max, scans?.outputMemo(said));
    truncated ||= t.cut;
    response = t.text;
  }
  return { mode, prompt, response, truncated };
}

/** Builds the decision log line of one request. Pure: no I/O, no clock. */
export function decisionEvent(r: RequestRecord, pricing: Pricing, maxContentChars: number): DecisionEventV1 {
  const t = r.timings;
  const d = r.decision;
  const upstream = t.upstreamTotalMs ?? t.upstreamHeadersMs;
  const [enforcingOut, shadowOut] = [r.output?.verdicts, r.shadowOutput];
  const cost =
    r.tokens && r.target && r.target.provider !== 'degraded'
      ? pricing.cost(r.target.provider, r.target.model, r.tokens)
      : undefined;
  const ev: DecisionEventV1 = {
    v: 1,
    type: 'decision',
    ts: new Date(t.startedAt).toISOString(),
    requestId: r.input.requestId,
    app: { id: r.input.app.appId, keyId: r.input.app.keyId },
    api: r.input.api,
    stream: r.input.stream,
    model: r.input.model,
    ring: r.ring,
    stateVersion: r.stateVersion,
    changeId: r.changeId,
    bundles: { enforcing: r.enforcingBundleId, shadow: r.shadowBundleId ?? null },
    enforcing: d ? logged(d, enforcingOut) : null,
    shadow: r.shadow ? logged(r.shadow, shadowOut) : null,
    shadowError: r.shadowError,
    divergence: r.divergence ?? [],
    tools: [...tools(d?.tools ?? []), ...tools(r.output?.tools ?? [])],
    target: r.target ?? null,
    tokens: r.tokens ?? null,
    costUsd: cost === undefined ? null : Math.round(cost * 1e9) / 1e9,
    status: r.status,
    outcome: r.outcome,
    error: r.errorCode ?? null,
    blockedBy: r.output?.blockedBy ?? null,
    latencyMs: {
      auth: usToMs(t.authUs),
      parse: usToMs(t.parseUs),
      enforcingEval: usToMs(t.evalUs),
      shadowEval: t.observedEvalUs === undefined ? null : usToMs(t.observedEvalUs),
      upstreamTtfb: t.upstreamHeadersMs === undefined ? null : ms(t.upstreamHeadersMs),
      upstreamTotal: t.upstreamTotalMs === undefined ? null : ms(t.upstreamTotalMs),
      outputGuardrails: t.outputGuardUs === undefined ? null : usToMs(t.outputGuardUs),
      overhead: ms(Math.max(0, t.totalMs - (upstream ?? 0))),
      total: ms(t.totalMs),
    },
  };
  const c = d ? content(r, d.contentLogging, maxContentChars) : undefined;
  return c ? { ...ev, content: c } : ev;
}
