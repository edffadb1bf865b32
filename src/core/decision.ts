import type { PolicyInput } from './policy-input.ts';

/** What a guardrail concluded. */
export type Verdict = 'pass' | 'flag' | 'redact' | 'block';

/** One guardrail's verdict on one request (or response). Counts spans; never carries the matched text. */
export interface GuardrailVerdict {
  readonly stage: 'input' | 'output';
  readonly guardrail: string;
  readonly detector: string;
  readonly verdict: Verdict;
  readonly spans: number;
  /** Detector kinds found, e.g. `pii.email`. */
  readonly kinds: readonly string[];
}

/** A tool offered in the request or called in the response, checked against the bundle's tool rules. */
export interface ToolVerdict {
  readonly stage: 'request' | 'response';
  readonly tool: string;
  readonly verdict: 'allow' | 'deny';
  readonly rule: string | undefined;
}

/** A token budget that applies to this request, with the counter key it is charged to. */
export interface BudgetCheck {
  readonly id: string;
  readonly key: string;
  readonly maxTokens: number;
  readonly maxRequestTokens: number | undefined;
  readonly windowMs: number;
  readonly mode: 'failOpen' | 'failClosed';
}

/** How prompt and response content may appear in the decision log for this request. */
export type ContentLogging = 'none' | 'redacted' | 'full';

/** The explainable outcome of evaluating one request against one bundle. Deterministic. */
export interface Decision {
  readonly bundleId: string;
  readonly action: 'allow' | 'deny' | 'redact' | 'reroute';
  readonly class: string;
  readonly confidence: number;
  /** Rule ids that matched, in evaluation order (classification, routing, guardrails, tools). */
  readonly matchedRules: readonly string[];
  readonly route: {
    readonly provider: string | undefined;
    readonly model: string;
    readonly rule: string | undefined;
  };
  readonly verdicts: readonly GuardrailVerdict[];
  readonly tools: readonly ToolVerdict[];
  readonly budgets: readonly BudgetCheck[];
  /** Why the request is denied (the first blocking rule), when it is. */
  readonly deny: { readonly rule: string; readonly message: string } | undefined;
  readonly contentLogging: ContentLogging;
}

/** The seam between the data plane and policy: decides synchronously from the normalised input. */
export interface Enforcer {
  decide(input: PolicyInput): Decision;
}
