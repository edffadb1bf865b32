import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type BundleChange, diffBundles } from '../policy/diff.ts';
import { type GateResult, type GateTransition, gatesPass } from '../rings/gates.ts';
import type { RingState, Slice } from '../rings/state.ts';
import { type GateOverride, NON_OVERRIDABLE_GATES, overrideSchema } from './override-schema.ts';
import { type AuditSink, GateBlockedError, type RingsController } from './rings-controller.ts';
import type { ControlStore } from './store.ts';

/** A store whose journals can refuse a second event with the same key (every store, once issue 10 landed). */
type UniqueStore = ControlStore & {
  appendEvent(journal: string, event: object, opts?: { uniqueKey?: string }): Promise<void>;
};

/**
 * Risk classes of control-plane actions. `read` needs any role; `fail_safe` actions make things safer or change
 * nothing that enforces (one key with the right role); `high` actions put a bundle in force for more traffic or
 * except a failed gate: requested by one identity, approved by a different one holding `approver`.
 */
export type RiskClass = 'read' | 'fail_safe' | 'high';

/** Every control-plane action, its risk class, and the roles that may request it. */
export const ACTIONS = Object.freeze({
  status: { risk: 'read', roles: ['viewer', 'operator', 'sre', 'approver'] },
  'bundle.register': { risk: 'fail_safe', roles: ['operator'] },
  shadow: { risk: 'fail_safe', roles: ['operator'] },
  'canary.enter': { risk: 'high', roles: ['operator'] },
  'canary.widen': { risk: 'high', roles: ['operator'] },
  'canary.narrow': { risk: 'fail_safe', roles: ['operator', 'sre'] },
  promote: { risk: 'high', roles: ['operator'] },
  override: { risk: 'high', roles: ['operator'] },
  rollback: { risk: 'fail_safe', roles: ['operator', 'sre'] },
  kill: { risk: 'fail_safe', roles: ['operator', 'sre'] },
  restore: { risk: 'fail_safe', roles: ['operator', 'sre'] },
  'divergence.ack': { risk: 'fail_safe', roles: ['operator'] },
  drill: { risk: 'fail_safe', roles: ['operator', 'sre'] },
} as const satisfies Record<string, { risk: RiskClass; roles: readonly string[] }>);
export type ActionName = keyof typeof ACTIONS;

/** Who asks: an admin identity (token id) and its roles. */
export interface Identity {
  readonly id: string;
  readonly roles: readonly string[];
}

/** A refusal of the governance rules, with a stable code for the admin API. */
export class GovernanceError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;
  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'GovernanceError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** The draft of an override, as requested (the record is completed at approval). */
export type OverrideDraft = Pick<GateOverride, 'rationale' | 'evidence' | 'expiry' | 'onExpiry'> & {
  readonly gates: ReadonlyArray<{ readonly name: string; readonly confidenceNote: string }>;
};

/** What a high-risk request asks for. */
export type Ask =
  | { readonly action: 'canary.enter' | 'canary.widen'; readonly slice: Slice }
  | { readonly action: 'promote' }
  | { readonly action: 'override'; readonly override: OverrideDraft };

/** Everything the approver must see, fixed at request time. */
export interface ApprovalSummary {
  readonly risk: RiskClass;
  readonly action: ActionName;
  readonly production: { readonly id: string; readonly name: string; readonly version: string };
  readonly candidate: {
    readonly id: string;
    readonly name: string;
    readonly version: string;
    readonly stage: string;
  };
  readonly diff: {
    readonly added: number;
    readonly removed: number;
    readonly changed: number;
    readonly loosened: readonly string[];
  };
  readonly slice: Slice | null;
  readonly currentSlice: Slice | null;
  readonly gates: { readonly transition: GateTransition | null; readonly gates: readonly GateResult[] };
}

/** A high-risk action waiting for its second key. */
export interface ApprovalRequest {
  readonly id: string;
  readonly ask: Ask;
  readonly summary: ApprovalSummary;
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly expiresAt: string;
  /** The ring state the request was made against: approval is refused if it changed meanwhile. */
  readonly stateVersion: number;
  readonly changeId: string;
  status: 'pending' | 'approved' | 'rejected' | 'expired' | 'failed';
  decidedBy?: string;
  decidedAt?: string;
  reason?: string;
  /** Why the approved action could not run (the gates, the state), when it failed. */
  error?: string;
}

/** An override in force or ended, with its bookkeeping. */
export interface OverrideRecord {
  readonly override: GateOverride;
  /** Canary requests counted when it was granted (for `expiry.maxRequests`). */
  readonly baseRequests: number;
  ended?: { at: string; reason: string; action: 'none' | 'block_widening' | 'rollback' };
}

type Journaled =
  | { type: 'requested'; request: ApprovalRequest }
  | { type: 'claimed'; id: string; by: string; at: string }
  | {
      type: 'decided';
      id: string;
      status: ApprovalRequest['status'];
      by: string;
      at: string;
      reason?: string;
      error?: string;
    };

type OverrideEvent =
  | { type: 'granted'; record: OverrideRecord }
  | { type: 'ended'; id: string; at: string; reason: string; action: 'none' | 'block_widening' | 'rollback' }
  | { type: 'unblocked'; candidateBundleId: string; at: string; by: string };

const within = (sub: readonly string[], sup: readonly string[]) =>
  sup.length === 0 || (sub.length > 0 && sub.every((x) => sup.includes(x)));

/** True when `next` selects no traffic that `cur` does not (a narrowing: fail-safe, one key). */
export function isNarrowing(cur: Slice, next: Slice): boolean {
  return next.percent <= cur.percent && within(next.apps, cur.apps) && within(next.classes, cur.classes);
}

/**
 * The governed control plane: declared risk per action, two keys for high-risk ones, overrides as logged
 * decisions with an expiry, and the expiry actions. Sits in front of the RingsController (which executes).
 * Requests, decisions and overrides are journaled (`approvals`, `overrides`) and audited.
 */
export class Governance {
  readonly #rings: RingsController;
  readonly #store: ControlStore;
  readonly #audit: AuditSink | undefined;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #nonOverridable: ReadonlySet<string>;
  readonly #requests = new Map<string, ApprovalRequest>();
  readonly #overrides = new Map<string, OverrideRecord>();
  /** Candidates whose widening an expired override blocked (until gates pass or a new override covers them). */
  readonly #blocked = new Map<string, string>();
  /** Approval requests some replica has started to execute (used once, whoever gets there first). */
  readonly #claimed = new Set<string>();
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  /** Told when overrides change (metrics). */
  onOverrides: ((active: readonly GateOverride[]) => void) | undefined;

  private constructor(opts: GovernanceOptions) {
    this.#rings = opts.rings;
    this.#store = opts.store;
    this.#audit = opts.audit;
    this.#logger = opts.logger;
    this.#ttlMs = opts.approvalTtlMs;
    this.#nonOverridable = new Set([...NON_OVERRIDABLE_GATES, ...(opts.nonOverridableGates ?? [])]);
  }

  /** Opens governance, replaying its journals. */
  static async open(opts: GovernanceOptions): Promise<Governance> {
    const g = new Governance(opts);
    await g.#replay();
    return g;
  }

  /**
   * Rebuilds the requests and overrides from the journals: the store is the truth, shared by every replica (a
   * request made on one replica is approved on another). Cheap at control-plane volumes.
   */
  async #replay(): Promise<void> {
    const requests = new Map<string, ApprovalRequest>();
    const claimed = new Set<string>();
    for (const ev of (await this.#store.readEvents('approvals')).events as Journaled[]) {
      if (ev.type === 'requested') requests.set(ev.request.id, { ...ev.request });
      else if (ev.type === 'claimed') claimed.add(ev.id);
      else {
        const r = requests.get(ev.id);
        if (r)
          Object.assign(r, {
            status: ev.status,
            decidedBy: ev.by,
            decidedAt: ev.at,
            ...(ev.reason !== undefined ? { reason: ev.reason } : {}),
            ...(ev.error !== undefined ? { error: ev.error } : {}),
          });
      }
    }
    const overrides = new Map<string, OverrideRecord>();
    const blocked = new Map<string, string>();
    for (const ev of (await this.#store.readEvents('overrides')).events as OverrideEvent[]) {
      if (ev.type === 'granted') overrides.set(ev.record.override.id, { ...ev.record });
      else if (ev.type === 'ended') {
        const r = overrides.get(ev.id);
        if (r && !r.ended) r.ended = { at: ev.at, reason: ev.reason, action: ev.action };
        if (r && ev.action === 'block_widening') blocked.set(r.override.candidateBundleId, ev.id);
      } else blocked.delete(ev.candidateBundleId);
    }
    this.#requests.clear();
    for (const [k, v] of requests) this.#requests.set(k, v);
    this.#claimed.clear();
    for (const k of claimed) this.#claimed.add(k);
    this.#overrides.clear();
    for (const [k, v] of overrides) this.#overrides.set(k, v);
    this.#blocked.clear();
    for (const [k, v] of blocked) this.#blocked.set(k, v);
  }

  /** Re-reads the journals (another replica may have asked, approved or granted); for reads on the admin API. */
  refresh(): Promise<void> {
    return this.#serial(async () => {
      await this.#replay();
      this.onOverrides?.(this.active());
    });
  }

  /** Appends a journal event, exactly once per `uniqueKey` across replicas (false: someone else already did). */
  async #once(journal: string, event: object, uniqueKey: string): Promise<boolean> {
    try {
      await (this.#store as UniqueStore).appendEvent(journal, event, { uniqueKey });
      return true;
    } catch (err) {
      if ((err as Error).name === 'DuplicateEventError') return false;
      throw err;
    }
  }

  /** Checks override expiry every `intervalMs`. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      this.checkExpiry().catch((err: unknown) => this.#logger.error({ err }, 'override expiry check failed'));
    }, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#chain.catch(() => {});
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Refuses unless `who` holds one of the roles `action` needs. */
  static authorize(action: ActionName, who: Identity): void {
    const roles: readonly string[] = ACTIONS[action].roles;
    if (!who.roles.some((r) => roles.includes(r)))
      throw new GovernanceError(
        'forbidden',
        403,
        `${who.id} lacks the role for ${action} (needs one of: ${roles.join(', ')})`,
      );
  }

  /** The risk class of a canary slice change: entering, widening (high) or narrowing (fail-safe). */
  classifyCanary(slice: Slice): 'canary.enter' | 'canary.widen' | 'canary.narrow' {
    const c = this.#rings.runtime.snapshot().state.candidate;
    if (!c || c.stage === 'shadow') return 'canary.enter';
    return c.slice && isNarrowing(c.slice, slice) ? 'canary.narrow' : 'canary.widen';
  }

  /** Active overrides (not ended). */
  active(): GateOverride[] {
    return [...this.#overrides.values()].filter((r) => !r.ended).map((r) => r.override);
  }

  /** Every override ever granted, with how it ended. */
  allOverrides(): OverrideRecord[] {
    return [...this.#overrides.values()];
  }

  /** Approval requests, newest first (pending ones have their expiry applied). */
  requests(): ApprovalRequest[] {
    const now = Date.now();
    for (const r of this.#requests.values())
      if (r.status === 'pending' && Date.parse(r.expiresAt) <= now) r.status = 'expired';
    return [...this.#requests.values()].sort((a, b) => b.requestedAt.localeCompare(a.requestedAt));
  }

  request(id: string): ApprovalRequest | undefined {
    return this.requests().find((r) => r.id === id);
  }

  /** Whether an active override bound to the current candidate covers a gate of `transition`. */
  covered(transition: GateTransition): (gate: string) => boolean {
    const snap = this.#rings.runtime.snapshot();
    const cand = snap.state.candidate?.bundleId;
    const now = Date.now();
    return (gate) =>
      !this.#nonOverridable.has(gate) &&
      !(snap.candidate?.loaded.bundle.metadata.nonOverridableGates ?? []).includes(gate) &&
      this.active().some(
        (o) =>
          o.candidateBundleId === cand &&
          o.controlBundleId === snap.state.production.bundleId &&
          o.transition === transition &&
          o.gates.some((g) => g.name === gate) &&
          (o.expiry.expiresAt === undefined || Date.parse(o.expiry.expiresAt) > now),
      );
  }

  #summary(action: ActionName, slice: Slice | null): ApprovalSummary {
    const snap = this.#rings.runtime.snapshot();
    const cand = snap.candidate;
    const c = snap.state.candidate;
    if (!cand || !c) throw new GovernanceError('no_candidate', 409, 'no candidate is in shadow or canary');
    const changes: readonly BundleChange[] = diffBundles(
      snap.production.loaded.bundle,
      cand.loaded.bundle,
    ).changes;
    const table = this.#rings.gates();
    return {
      risk: ACTIONS[action].risk,
      action,
      production: { id: snap.production.id, name: snap.production.name, version: snap.production.version },
      candidate: { id: cand.id, name: cand.name, version: cand.version, stage: c.stage },
      diff: {
        added: changes.filter((x) => x.op === 'added').length,
        removed: changes.filter((x) => x.op === 'removed').length,
        changed: changes.filter((x) => x.op === 'changed').length,
        loosened: changes.filter((x) => x.loosened).map((x) => x.explanation),
      },
      slice,
      currentSlice: c.slice ?? null,
      gates: table ?? { transition: null, gates: [] },
    };
  }

  /** Checks the preconditions of an ask against the current state (at request and again at approval). */
  #precheck(ask: Ask): void {
    const snap = this.#rings.runtime.snapshot();
    const c = snap.state.candidate;
    if (!c) throw new GovernanceError('no_candidate', 409, 'no candidate is in shadow or canary');
    if (ask.action === 'promote' && c.stage !== 'canary')
      throw new GovernanceError(
        'wrong_stage',
        409,
        `promotion needs the candidate in canary (it is in ${c.stage})`,
      );
    if ((ask.action === 'canary.widen' || ask.action === 'promote') && this.#blocked.has(c.bundleId)) {
      const table = this.#rings.gates();
      if (!table?.gates.every((g) => g.verdict === 'pass'))
        throw new GovernanceError(
          'widening_blocked',
          409,
          `widening is blocked for this candidate: override ${this.#blocked.get(c.bundleId)} expired while its gate still failed; the gates must pass or a new override must cover them`,
        );
    }
  }

  #draftOverride(draft: OverrideDraft): void {
    const table = this.#rings.gates();
    if (!table) throw new GovernanceError('no_candidate', 409, 'no candidate: nothing to override');
    // Built-in and config gates, plus what the candidate bundle itself marks as never overridable.
    const marked = this.#rings.runtime.snapshot().candidate?.loaded.bundle.metadata.nonOverridableGates ?? [];
    const refused = draft.gates
      .filter((g) => this.#nonOverridable.has(g.name) || marked.includes(g.name))
      .map((g) => g.name);
    if (refused.length)
      throw new GovernanceError(
        'not_overridable',
        422,
        `gate ${refused.join(', ')} cannot be overridden (candidate policy errors, output data-leak blocks and failed rollback drills never can; config governance.nonOverridableGates and the bundle's metadata.nonOverridableGates add to them): fix the candidate instead`,
        { gates: refused },
      );
    for (const g of draft.gates) {
      const row = table.gates.find((x) => x.name === g.name);
      if (!row)
        throw new GovernanceError(
          'unknown_gate',
          422,
          `gate ${g.name} is not a gate of the ${table.transition} transition (gates: ${table.gates.map((x) => x.name).join(', ')})`,
        );
      if (row.verdict === 'pass')
        throw new GovernanceError('gate_passes', 422, `gate ${g.name} passes: there is nothing to override`);
    }
  }

  /** Refuses at once a transition whose gates fail and no override covers (the approver would only see it fail). */
  #gated(ask: Ask): void {
    const transition =
      ask.action === 'canary.enter'
        ? 'shadow_to_canary'
        : ask.action === 'promote'
          ? 'canary_to_production'
          : undefined;
    const table = transition && this.#rings.gates();
    if (!table || table.transition !== transition) return;
    if (!gatesPass(table.gates, this.covered(transition)))
      throw new GateBlockedError(`${transition.replaceAll('_', ' ')} gates do not pass`, table.gates);
  }

  /** Requests a high-risk action: validated now, executed only when a different identity approves it. */
  ask(ask: Ask, who: Identity, now = new Date()): Promise<ApprovalRequest> {
    return this.#serial(async () => {
      await this.#replay();
      // Gates judge the fleet: read the other replicas' latest statistics first.
      await this.#rings.sync();
      Governance.authorize(ask.action, who);
      this.#precheck(ask);
      this.#gated(ask);
      if (ask.action === 'override') this.#draftOverride(ask.override);
      const snap = this.#rings.runtime.snapshot();
      const req: ApprovalRequest = {
        id: `apr_${randomUUID()}`,
        ask,
        summary: this.#summary(ask.action, 'slice' in ask ? ask.slice : null),
        requestedBy: who.id,
        requestedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + this.#ttlMs).toISOString(),
        stateVersion: snap.state.version,
        changeId: snap.state.changeId,
        status: 'pending',
      };
      await this.#store.appendEvent('approvals', { type: 'requested', request: req });
      this.#requests.set(req.id, req);
      await this.#audit?.append('approval.requested', who.id, { request: req }, snap.state.changeId);
      this.#logger.info({ approval: req.id, action: ask.action, by: who.id }, 'approval requested');
      return req;
    });
  }

  async #decide(
    req: ApprovalRequest,
    status: ApprovalRequest['status'],
    who: string,
    at: Date,
    reason?: string,
    error?: string,
  ): Promise<void> {
    req.status = status;
    req.decidedBy = who;
    req.decidedAt = at.toISOString();
    if (reason !== undefined) req.reason = reason;
    if (error !== undefined) req.error = error;
    await this.#store.appendEvent('approvals', {
      type: 'decided',
      id: req.id,
      status,
      by: who,
      at: req.decidedAt,
      ...(reason !== undefined ? { reason } : {}),
      ...(error !== undefined ? { error } : {}),
    });
  }

  /** The request `id` if `who` may decide on it now; an expired one is recorded as expired (once) and refused. */
  async #pending(id: string, who: Identity, now: Date): Promise<ApprovalRequest> {
    const req = this.#requests.get(id);
    if (!req) throw new GovernanceError('not_found', 404, `no approval request ${id}`);
    if (req.status === 'pending' && !this.#claimed.has(id) && Date.parse(req.expiresAt) <= now.getTime()) {
      if (
        await this.#once(
          'approvals',
          { type: 'claimed', id, by: who.id, at: now.toISOString() },
          `claim:${id}`,
        )
      ) {
        await this.#decide(req, 'expired', who.id, now);
        await this.#audit?.append(
          'approval.expired',
          who.id,
          { approval: id, expiresAt: req.expiresAt },
          req.changeId,
        );
      }
      throw new GovernanceError(
        'expired',
        409,
        `approval request ${id} expired at ${req.expiresAt}; ask again`,
      );
    }
    if (req.status !== 'pending' || this.#claimed.has(id))
      throw new GovernanceError(
        'not_pending',
        409,
        `approval request ${id} is ${req.status === 'pending' ? 'being used' : req.status}; it can be used once`,
      );
    if (who.id.trim().toLowerCase() === req.requestedBy.trim().toLowerCase())
      throw new GovernanceError(
        'same_identity',
        403,
        `${who.id} requested this action and cannot also approve it: the second key must be a different identity`,
      );
    if (!who.roles.includes('approver'))
      throw new GovernanceError('forbidden', 403, `${who.id} lacks the approver role`);
    return req;
  }

  /** The second key: a different identity with the approver role approves, and the action runs. */
  approve(
    id: string,
    who: Identity,
    reason?: string,
    now = new Date(),
  ): Promise<{ request: ApprovalRequest; result: unknown }> {
    return this.#serial(async () => {
      await this.#replay();
      const req = await this.#pending(id, who, now);
      // Claim it: across replicas exactly one approval of a request runs its action.
      if (
        !(await this.#once(
          'approvals',
          { type: 'claimed', id, by: who.id, at: now.toISOString() },
          `claim:${id}`,
        ))
      )
        throw new GovernanceError(
          'not_pending',
          409,
          `approval request ${id} is already being used; it can be used once`,
        );
      this.#claimed.add(id);
      await this.#rings.sync();
      const snap = this.#rings.runtime.snapshot();
      if (snap.state.version !== req.stateVersion) {
        await this.#decide(
          req,
          'failed',
          who.id,
          now,
          reason,
          'stale: the ring state changed since the request',
        );
        throw new GovernanceError(
          'stale',
          409,
          `the ring state changed since the request (version ${req.stateVersion} → ${snap.state.version}): ask again so the approver sees the current state`,
        );
      }
      const actor = { by: `${req.requestedBy}+${who.id}`, at: now };
      let result: unknown;
      try {
        this.#precheck(req.ask);
        result = await this.#execute(req, who, now, actor);
      } catch (err) {
        await this.#decide(req, 'failed', who.id, now, reason, (err as Error).message);
        await this.#audit?.append(
          'promotion.decided',
          who.id,
          {
            approval: req.id,
            action: req.ask.action,
            outcome: 'failed',
            error: (err as Error).message,
            requestedBy: req.requestedBy,
            approvedBy: who.id,
            gates: this.#rings.gates() ?? null,
          },
          snap.state.changeId,
        );
        throw err;
      }
      await this.#decide(req, 'approved', who.id, now, reason);
      const after = this.#rings.runtime.snapshot().state;
      await this.#audit?.append(
        req.ask.action === 'override' ? 'approval.granted' : 'promotion.decided',
        who.id,
        {
          approval: req.id,
          action: req.ask.action,
          outcome: 'approved',
          requestedBy: req.requestedBy,
          approvedBy: who.id,
          gates: req.summary.gates,
          slice: req.summary.slice,
          reason: reason ?? null,
          stateVersion: after.version,
        },
        after.changeId,
      );
      this.#logger.warn(
        { approval: req.id, action: req.ask.action, requestedBy: req.requestedBy, approvedBy: who.id },
        'approved',
      );
      return { request: req, result };
    });
  }

  async #execute(
    req: ApprovalRequest,
    who: Identity,
    now: Date,
    actor: { by: string; at: Date },
  ): Promise<unknown> {
    const ask = req.ask;
    if (ask.action === 'canary.enter' || ask.action === 'canary.widen')
      return this.#rings.canary(ask.slice, actor, this.covered('shadow_to_canary'));
    if (ask.action === 'promote') return this.#rings.promote(actor, this.covered('canary_to_production'));
    if (ask.action === 'override') return this.#grant(req, ask.override, who, now);
    throw new GovernanceError('invalid_request', 400, 'unknown action');
  }

  async #grant(req: ApprovalRequest, draft: OverrideDraft, who: Identity, now: Date): Promise<GateOverride> {
    this.#draftOverride(draft);
    const snap = this.#rings.runtime.snapshot();
    const table = this.#rings.gates()!;
    const o = overrideSchema.parse({
      apiVersion: 'ringfence/v1',
      kind: 'GateOverride',
      id: `ovr_${randomUUID()}`,
      changeId: snap.state.changeId,
      controlBundleId: snap.state.production.bundleId,
      candidateBundleId: snap.state.candidate!.bundleId,
      transition: table.transition,
      gates: draft.gates.map((g) => {
        const row = table.gates.find((x) => x.name === g.name)!;
        return {
          name: g.name,
          observed: row.observed,
          threshold: row.threshold,
          verdict: row.verdict === 'pass' ? 'fail' : row.verdict,
          confidenceNote: g.confidenceNote,
        };
      }),
      rationale: draft.rationale,
      evidence: draft.evidence,
      expiry: draft.expiry,
      onExpiry: draft.onExpiry,
      requestedBy: req.requestedBy,
      requestedAt: req.requestedAt,
      approvedBy: who.id,
      approvedAt: now.toISOString(),
    });
    const record: OverrideRecord = { override: o, baseRequests: snap.stats.counters.canary.requests };
    if (!(await this.#once('overrides', { type: 'granted', record }, `granted:${req.id}`)))
      throw new GovernanceError(
        'not_pending',
        409,
        `approval request ${req.id} already granted its override`,
      );
    this.#overrides.set(o.id, record);
    this.#blocked.delete(o.candidateBundleId);
    await this.#audit?.append('override.created', who.id, { override: o }, o.changeId);
    this.onOverrides?.(this.active());
    return o;
  }

  /** Rejects a pending request (an approver, not the requester). */
  reject(id: string, who: Identity, reason: string, now = new Date()): Promise<ApprovalRequest> {
    return this.#serial(async () => {
      await this.#replay();
      const req = await this.#pending(id, who, now);
      if (
        !(await this.#once(
          'approvals',
          { type: 'claimed', id, by: who.id, at: now.toISOString() },
          `claim:${id}`,
        ))
      )
        throw new GovernanceError('not_pending', 409, `approval request ${id} is already decided`);
      await this.#decide(req, 'rejected', who.id, now, reason);
      await this.#audit?.append(
        'approval.rejected',
        who.id,
        { approval: req.id, action: req.ask.action, reason },
        req.changeId,
      );
      return req;
    });
  }

  /**
   * Ends overrides whose bound is reached, evaluates their gates again and, when the state still depends on them
   * and the gate still fails, runs the declared action (block widening, or roll back). Every end is audited.
   */
  checkExpiry(now = new Date()): Promise<void> {
    return this.#serial(async () => {
      await this.#replay();
      for (const rec of this.#overrides.values()) {
        if (rec.ended) continue;
        const why = this.#bound(rec, now);
        if (why) await this.#end(rec, why, now);
      }
    });
  }

  #bound(rec: OverrideRecord, now: Date): string | undefined {
    const e = rec.override.expiry;
    const t = now.getTime();
    if (e.expiresAt && Date.parse(e.expiresAt) <= t) return `time box ended at ${e.expiresAt}`;
    if (e.reevaluateAt && Date.parse(e.reevaluateAt) <= t)
      return `mandatory re-evaluation at ${e.reevaluateAt}`;
    const snap = this.#rings.runtime.snapshot();
    if (e.maxRequests !== undefined && snap.state.candidate?.bundleId === rec.override.candidateBundleId) {
      const served = snap.stats.counters.canary.requests - rec.baseRequests;
      if (served >= e.maxRequests)
        return `traffic cap reached (${served} ≥ ${e.maxRequests} canary requests)`;
    }
    if (e.revertWhen) {
      const row = this.#rings.gates()?.gates.find((g) => g.name === e.revertWhen!.gate);
      if (row?.observed != null && row.observed > e.revertWhen.above)
        return `auto-revert: ${row.name} ${row.observed} > ${e.revertWhen.above}`;
    }
    return undefined;
  }

  /** Whether the ring state still stands on this override: its candidate is where the overridden transition led. */
  #dependsOn(o: GateOverride, s: RingState): boolean {
    if (o.transition === 'shadow_to_canary')
      return s.candidate?.bundleId === o.candidateBundleId && s.candidate.stage === 'canary';
    return s.production.bundleId === o.candidateBundleId || s.candidate?.bundleId === o.candidateBundleId;
  }

  async #end(rec: OverrideRecord, why: string, now: Date): Promise<void> {
    const o = rec.override;
    const state = this.#rings.runtime.snapshot().state;
    const table = this.#rings.gates(now.getTime());
    const stillFailing = o.gates
      .map((g) => table?.gates.find((x) => x.name === g.name))
      .filter((row) => row === undefined || row.verdict !== 'pass');
    let action: 'none' | 'block_widening' | 'rollback' = 'none';
    if (this.#dependsOn(o, state) && stillFailing.length > 0) action = o.onExpiry;
    // One replica ends it and runs the action; the others find it ended.
    const ended = { type: 'ended', id: o.id, at: now.toISOString(), reason: why, action };
    if (!(await this.#once('overrides', ended, `ended:${o.id}`))) {
      await this.#replay();
      return;
    }
    rec.ended = { at: ended.at, reason: why, action };
    await this.#audit?.append(
      'override.expired',
      'override-expiry',
      { override: o.id, reason: why, action, gates: table?.gates ?? [] },
      state.changeId,
    );
    this.#logger.warn({ override: o.id, reason: why, action }, 'override ended');
    if (action === 'block_widening') this.#blocked.set(o.candidateBundleId, o.id);
    if (action === 'rollback')
      await this.#rings.rollback(
        { by: 'override-expiry', at: now },
        `override ${o.id} ended (${why}) and gate ${o.gates.map((g) => g.name).join(', ')} still fails`,
      );
    this.onOverrides?.(this.active());
  }

  /** Whether an expired override blocks widening for the current candidate. */
  wideningBlocked(): string | undefined {
    const c = this.#rings.runtime.snapshot().state.candidate;
    return c ? this.#blocked.get(c.bundleId) : undefined;
  }
}

export interface GovernanceOptions {
  readonly rings: RingsController;
  readonly store: ControlStore;
  readonly audit?: AuditSink;
  readonly logger: Logger;
  readonly approvalTtlMs: number;
  readonly nonOverridableGates?: readonly string[];
}
