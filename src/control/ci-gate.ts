import { z } from 'zod';
import type { BundleChange, BundleRef } from '../policy/diff.ts';
import type { GateResult, GateTransition } from '../rings/gates.ts';
import { type GateOverride, NON_OVERRIDABLE_GATES } from './override-schema.ts';

/**
 * The CI gate behind `ringfence gate evaluate`: one pure function from what a pipeline knows about a candidate
 * bundle (does it validate, do its golden cases pass, what does it loosen, how did it measure in the rings, which
 * overrides were committed) to ALLOW, BLOCK or REQUIRE_OVERRIDE, with one row per gate saying why.
 */

/** The pipeline's answer; the CLI exits 0, 1 and 2 for them. */
export type CiVerdict = 'ALLOW' | 'BLOCK' | 'REQUIRE_OVERRIDE';

/** Exit code of each verdict (3 is left for usage and input errors). */
export const CI_EXIT: Readonly<Record<CiVerdict, number>> = Object.freeze({
  ALLOW: 0,
  BLOCK: 1,
  REQUIRE_OVERRIDE: 2,
});

/** Gates of the CI check itself. The first three can never be overridden: the bundle or its evidence is wrong. */
export const CI_GATES = Object.freeze({
  bundleValid: 'bundle_valid',
  goldenCases: 'golden_cases',
  gateTableCandidate: 'gate_table_candidate',
  loosening: 'guardrail_loosening',
  measured: 'measured_gates',
});

const INTRINSIC_NON_OVERRIDABLE = [CI_GATES.bundleValid, CI_GATES.goldenCases, CI_GATES.gateTableCandidate];

/** One row of the gate table. */
export interface CiGateRow {
  readonly gate: string;
  /** Where the figure comes from: the bundle file, its golden set, the diff against production, the rings. */
  readonly source: 'bundle' | 'golden' | 'diff' | 'measured';
  readonly observed: number | string | null;
  readonly threshold: string;
  /** `skipped`: the input to evaluate it was not given (no --cases, no production bundle, no stats). */
  readonly verdict: 'pass' | 'fail' | 'insufficient_data' | 'skipped';
  readonly sampleSize: number | null;
  readonly overridable: boolean;
  /** The id of the override that covers this gate, when one does. */
  readonly coveredBy: string | null;
  readonly outcome: CiVerdict;
  /** Why the outcome is what it is, when the verdict alone does not say. */
  readonly note: string | null;
}

/** An override file, parsed (`override`) or not (`issues`: `path: problem` lines). */
export interface OverrideSource {
  readonly source: string;
  readonly override?: GateOverride;
  readonly issues?: readonly string[];
}

/** What became of one override. */
export interface OverrideOutcome {
  readonly id: string | null;
  readonly source: string;
  readonly honoured: boolean;
  /** Gates this override covers (empty when ignored). */
  readonly covers: readonly string[];
  /** Why it was ignored, or why it does not cover some gate it names. */
  readonly reasons: readonly string[];
}

/** The measured gate table: GET /admin/v1/rollout `gates` (or /rollout/gates), plus whose table it is. */
export interface MeasuredGates {
  readonly transition: GateTransition | null;
  readonly gates: readonly GateResult[];
  /** The candidate the rings measured, when the source says (the rollout status does). */
  readonly candidateId?: string | null;
}

/** Everything `evaluateCiGate` judges; the CLI gathers it from files and the admin API. */
export interface CiGateInput {
  /** The candidate bundle: its id when it parses (`null` otherwise), and every validation problem. */
  readonly candidate: {
    readonly id: string | null;
    readonly name?: string;
    readonly version?: string;
    readonly issues: readonly string[];
  };
  /** Golden-set results, or the problems that kept the case files from loading. Absent: not run. */
  readonly golden?:
    | {
        readonly results: readonly {
          readonly name: string;
          readonly passed: boolean;
          readonly mismatches: readonly string[];
        }[];
      }
    | { readonly loadIssues: readonly string[] };
  /** The diff from production to the candidate. Absent: no production bundle given. */
  readonly diff?: { readonly production: BundleRef; readonly changes: readonly BundleChange[] };
  /** Production's id, when known, to check overrides' `controlBundleId`. */
  readonly productionId?: string;
  /** The rings' gate table. Absent: no stats given. */
  readonly measured?: MeasuredGates;
  readonly overrides: readonly OverrideSource[];
  /** Gates to treat as non-overridable besides `NON_OVERRIDABLE_GATES` (`--non-overridable a,b`). */
  readonly nonOverridable?: readonly string[];
  readonly now: Date;
}

/** The outcome: the verdict, the table, and every override with what it covered or why it was ignored. */
export interface CiGateResult {
  readonly verdict: CiVerdict;
  readonly rows: readonly CiGateRow[];
  readonly honouredOverrides: readonly OverrideOutcome[];
  readonly ignoredOverrides: readonly OverrideOutcome[];
  /** The loosening changes behind `guardrail_loosening`. */
  readonly loosened: readonly BundleChange[];
}

const gateResultSchema = z.object({
  name: z.string().min(1),
  observed: z.number().nullable(),
  threshold: z.string(),
  verdict: z.enum(['pass', 'fail', 'insufficient_data']),
  sampleSize: z.number().int().nonnegative(),
  window: z.object({ since: z.string(), until: z.string() }),
});
const gateTableSchema = z.object({
  transition: z.enum(['shadow_to_canary', 'canary_to_production']).nullable(),
  gates: z.array(gateResultSchema),
});
/** `--stats FILE`: the whole GET /admin/v1/rollout body, or only its gate table (GET /admin/v1/rollout/gates). */
export const gateStatsSchema = z.union([
  gateTableSchema,
  z.object({
    candidate: z.object({ id: z.string() }).nullable().optional(),
    production: z.object({ id: z.string() }).optional(),
    gates: gateTableSchema.nullable(),
  }),
]);

/** The measured gates and production id in a stats document (see `gateStatsSchema`). */
export function measuredFromStats(stats: z.infer<typeof gateStatsSchema>): {
  measured: MeasuredGates;
  productionId?: string;
} {
  if ('transition' in stats) return { measured: { transition: stats.transition, gates: stats.gates } };
  return {
    measured: {
      transition: stats.gates?.transition ?? null,
      gates: stats.gates?.gates ?? [],
      candidateId: stats.candidate === undefined ? undefined : (stats.candidate?.id ?? null),
    },
    ...(stats.production ? { productionId: stats.production.id } : {}),
  };
}

const norm = (s: string) => s.trim().toLowerCase();
const short = (id: string) => (id.startsWith('sha256:') ? `${id.slice(0, 19)}…` : id);

/**
 * Why an override cannot be honoured for this candidate at `now`, whatever gate it names: not bound to the
 * candidate (or production) by sha256, expired or due for re-evaluation, or not two-keyed. Empty: it is valid.
 */
export function overrideProblems(
  o: GateOverride,
  candidateId: string | null,
  productionId: string | undefined,
  now: Date,
): string[] {
  const out: string[] = [];
  const t = now.getTime();
  if (candidateId === null)
    out.push('the candidate bundle is invalid, so it has no id to bind an override to');
  else if (o.candidateBundleId !== candidateId)
    out.push(`candidateBundleId ${short(o.candidateBundleId)} is not the candidate (${short(candidateId)})`);
  if (productionId !== undefined && o.controlBundleId !== productionId)
    out.push(`controlBundleId ${short(o.controlBundleId)} is not production (${short(productionId)})`);
  const { expiresAt, reevaluateAt } = o.expiry;
  if (expiresAt === undefined && reevaluateAt === undefined)
    out.push('no time bound (expiry.expiresAt or expiry.reevaluateAt): CI cannot tell when it ends');
  if (expiresAt !== undefined && Date.parse(expiresAt) <= t) out.push(`expired at ${expiresAt}`);
  if (reevaluateAt !== undefined && Date.parse(reevaluateAt) <= t)
    out.push(`re-evaluation was due at ${reevaluateAt}`);
  if (norm(o.requestedBy) === norm(o.approvedBy))
    out.push(`requested and approved by the same identity "${o.approvedBy.trim()}": two keys are required`);
  if (Date.parse(o.approvedAt) <= Date.parse(o.requestedAt))
    out.push(`approvedAt ${o.approvedAt} is not after requestedAt ${o.requestedAt}`);
  if (Date.parse(o.approvedAt) > t) out.push(`approvedAt ${o.approvedAt} is in the future`);
  return out;
}

interface Draft {
  gate: string;
  source: CiGateRow['source'];
  observed: CiGateRow['observed'];
  threshold: string;
  verdict: CiGateRow['verdict'];
  sampleSize: number | null;
  /** The transition a measured gate belongs to: an override for another transition does not cover it. */
  transition?: GateTransition;
  note?: string;
}

function draftRows(input: CiGateInput): { drafts: Draft[]; loosened: BundleChange[] } {
  const drafts: Draft[] = [];
  const { candidate, golden, diff, measured } = input;
  const problems = candidate.issues.length;
  drafts.push({
    gate: CI_GATES.bundleValid,
    source: 'bundle',
    observed: problems === 0 ? 'valid' : `${problems} problem${problems === 1 ? '' : 's'}`,
    threshold: 'validates and compiles',
    verdict: problems === 0 ? 'pass' : 'fail',
    sampleSize: null,
    ...(problems ? { note: candidate.issues[0] } : {}),
  });
  if (!golden)
    drafts.push({ ...skipped(CI_GATES.goldenCases, 'golden', 'all pass'), note: 'no --cases given' });
  else if (problems)
    drafts.push({ ...skipped(CI_GATES.goldenCases, 'golden', 'all pass'), note: 'the bundle is invalid' });
  else if ('loadIssues' in golden)
    drafts.push({
      gate: CI_GATES.goldenCases,
      source: 'golden',
      observed: 'cases did not load',
      threshold: 'all pass',
      verdict: 'fail',
      sampleSize: null,
      note: golden.loadIssues[0] ?? 'invalid case files',
    });
  else {
    const failed = golden.results.filter((r) => !r.passed);
    const n = golden.results.length;
    drafts.push({
      gate: CI_GATES.goldenCases,
      source: 'golden',
      observed: `${n - failed.length}/${n} passed`,
      threshold: 'all pass',
      verdict: failed.length === 0 && n > 0 ? 'pass' : 'fail',
      sampleSize: n,
      ...(failed.length ? { note: `failed: ${failed.map((f) => f.name).join('; ')}` } : {}),
      ...(n === 0 ? { note: 'no cases' } : {}),
    });
  }
  const loosened = diff ? diff.changes.filter((c) => c.loosened) : [];
  if (!diff)
    drafts.push({ ...skipped(CI_GATES.loosening, 'diff', '= 0 loosened'), note: 'no production bundle' });
  else
    drafts.push({
      gate: CI_GATES.loosening,
      source: 'diff',
      observed: loosened.length,
      threshold: '= 0 loosened',
      verdict: loosened.length === 0 ? 'pass' : 'fail',
      sampleSize: diff.changes.length,
      ...(loosened.length
        ? { note: `vs production ${diff.production.name} ${diff.production.version}: high-risk change` }
        : {}),
    });
  if (!measured)
    drafts.push({ ...skipped(CI_GATES.measured, 'measured', 'every gate passes'), note: 'no stats given' });
  else {
    if (measured.candidateId !== undefined && candidate.id !== null && measured.candidateId !== candidate.id)
      drafts.push({
        gate: CI_GATES.gateTableCandidate,
        source: 'measured',
        observed: measured.candidateId === null ? 'no candidate' : short(measured.candidateId),
        threshold: `= ${short(candidate.id)}`,
        verdict: 'fail',
        sampleSize: null,
        note: 'the rings measured another bundle: their gates say nothing about this candidate',
      });
    if (!measured.transition)
      drafts.push({
        gate: CI_GATES.measured,
        source: 'measured',
        observed: 'no gate table',
        threshold: 'every gate passes',
        verdict: 'insufficient_data',
        sampleSize: 0,
        note: 'no candidate in the rings: nothing was measured',
      });
    else
      for (const g of measured.gates)
        drafts.push({
          gate: g.name,
          source: 'measured',
          observed: g.observed,
          threshold: g.threshold,
          verdict: g.verdict,
          sampleSize: g.sampleSize,
          transition: measured.transition,
        });
  }
  return { drafts, loosened };
}

function skipped(gate: string, source: CiGateRow['source'], threshold: string): Draft {
  return { gate, source, observed: null, threshold, verdict: 'skipped', sampleSize: null };
}

const needsCover = (d: Draft) => d.verdict === 'fail' || d.verdict === 'insufficient_data';

/**
 * Judges a candidate for a pipeline. A failing or unmeasured gate BLOCKs when it cannot be overridden (the
 * bundle's validity, its golden set, `NON_OVERRIDABLE_GATES` and `nonOverridable`), is ALLOWed when a valid
 * override names it, and otherwise REQUIREs an OVERRIDE. Any BLOCK makes the verdict BLOCK, else any
 * REQUIRE_OVERRIDE makes it REQUIRE_OVERRIDE.
 */
export function evaluateCiGate(input: CiGateInput): CiGateResult {
  const { drafts, loosened } = draftRows(input);
  const fixed = new Set([
    ...NON_OVERRIDABLE_GATES,
    ...INTRINSIC_NON_OVERRIDABLE,
    ...(input.nonOverridable ?? []),
  ]);
  const byGate = new Map<string, Draft>();
  for (const d of drafts) if (!byGate.has(d.gate)) byGate.set(d.gate, d);

  const coveredBy = new Map<string, string>();
  const refusedNotes = new Map<string, string[]>();
  const outcomes: OverrideOutcome[] = [];
  const sources = [...input.overrides].sort((a, b) => a.source.localeCompare(b.source));
  for (const s of sources) {
    const o = s.override;
    if (!o) {
      outcomes.push({
        id: null,
        source: s.source,
        honoured: false,
        covers: [],
        reasons: [`not a valid GateOverride: ${(s.issues ?? ['unreadable']).join('; ')}`],
      });
      continue;
    }
    const reasons = overrideProblems(o, input.candidate.id, input.productionId, input.now);
    const covers: string[] = [];
    const notes: string[] = [];
    for (const named of o.gates) {
      const d = byGate.get(named.name);
      if (!d || !needsCover(d)) notes.push(`gate ${named.name} does not need an override here`);
      else if (fixed.has(named.name)) {
        notes.push(`gate ${named.name} is non-overridable: no override can pass it`);
        refusedNotes.set(named.name, [...(refusedNotes.get(named.name) ?? []), o.id]);
      } else if (d.transition !== undefined && d.transition !== o.transition)
        notes.push(`gate ${named.name} is for ${d.transition}, the override for ${o.transition}`);
      else if (reasons.length === 0) covers.push(named.name);
    }
    if (reasons.length === 0 && covers.length === 0)
      reasons.push(
        `names none of the gates that need an override (${o.gates.map((g) => g.name).join(', ')})`,
      );
    if (reasons.length === 0) for (const g of covers) if (!coveredBy.has(g)) coveredBy.set(g, o.id);
    outcomes.push({
      id: o.id,
      source: s.source,
      honoured: reasons.length === 0,
      covers: reasons.length === 0 ? covers : [],
      reasons: [...reasons, ...notes],
    });
  }

  const rows: CiGateRow[] = drafts.map((d) => {
    const overridable = !fixed.has(d.gate);
    const cover = overridable && needsCover(d) ? (coveredBy.get(d.gate) ?? null) : null;
    const outcome: CiVerdict = !needsCover(d)
      ? 'ALLOW'
      : !overridable
        ? 'BLOCK'
        : cover
          ? 'ALLOW'
          : 'REQUIRE_OVERRIDE';
    const refused = refusedNotes.get(d.gate);
    const notes = [
      d.note,
      refused &&
        `non-overridable: ${refused.join(', ')} name${refused.length === 1 ? 's' : ''} it, not honoured`,
      cover && `covered by override ${cover}`,
    ].filter(Boolean);
    return {
      gate: d.gate,
      source: d.source,
      observed: d.observed,
      threshold: d.threshold,
      verdict: d.verdict,
      sampleSize: d.sampleSize,
      overridable,
      coveredBy: cover,
      outcome,
      note: notes.length ? notes.join('; ') : null,
    };
  });
  const verdict: CiVerdict = rows.some((r) => r.outcome === 'BLOCK')
    ? 'BLOCK'
    : rows.some((r) => r.outcome === 'REQUIRE_OVERRIDE')
      ? 'REQUIRE_OVERRIDE'
      : 'ALLOW';
  return {
    verdict,
    rows,
    honouredOverrides: outcomes.filter((o) => o.honoured),
    ignoredOverrides: outcomes.filter((o) => !o.honoured),
    loosened,
  };
}
