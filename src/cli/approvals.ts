import { parseArgs } from 'node:util';
import type { ApprovalRequest } from '../control/governance.ts';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';
import { formatGates } from './rollout.ts';

/** Usage lines of the approvals commands. */
export const APPROVALS_USAGE = `  approvals list [--all] [--json]                   high-risk requests waiting for a second key
  approvals show ID [--json]                        everything the approver approves: action, bundles, diff,
                                                    slice, gate table, risk, requester, expiry
  approvals approve ID [--reason TEXT]              the second key (approver role, not the requester): runs it
  approvals reject ID --reason TEXT                 refuse it
`;

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** Renders one approval request for the person who must decide on it. */
export function formatApproval(r: ApprovalRequest): string {
  const s = r.summary;
  const lines = [
    `approval ${r.id}: ${s.action} (risk: ${s.risk}) — ${r.status}`,
    `requested by ${r.requestedBy} at ${r.requestedAt}; expires ${r.expiresAt}`,
    `production  ${s.production.name}@${s.production.version} ${s.production.id}`,
    `candidate   ${s.candidate.name}@${s.candidate.version} ${s.candidate.id} (${s.candidate.stage})`,
    `diff        ${s.diff.added} added, ${s.diff.removed} removed, ${s.diff.changed} changed`,
    ...s.diff.loosened.map((l) => `  LOOSENED   ${l}`),
  ];
  if (s.slice) lines.push(`slice       ${JSON.stringify(s.currentSlice)} → ${JSON.stringify(s.slice)}`);
  if (r.ask.action === 'override') {
    const o = r.ask.override;
    lines.push(
      `override    gates ${o.gates.map((g) => g.name).join(', ')}; on expiry: ${o.onExpiry}`,
      `            expiry ${JSON.stringify(o.expiry)}`,
      `            rationale: ${o.rationale}`,
      `            evidence: ${o.evidence.sampleSize} samples, severity ${JSON.stringify(o.evidence.severityMix)}, mitigation: ${o.evidence.mitigation}`,
    );
  }
  if (r.decidedBy)
    lines.push(`decided by ${r.decidedBy} at ${r.decidedAt}${r.reason ? `: ${r.reason}` : ''}`);
  if (r.error) lines.push(`failed: ${r.error}`);
  return `${lines.join('\n')}\n${formatGates(s.gates.transition, s.gates.gates)}`;
}

/** `ringfence approvals …`. Exit 0 done, 1 refused or failed, 2 usage. */
export async function runApprovals(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      admin: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      reason: { type: 'string' },
    },
    strict: true,
  });
  const [sub, id] = positionals;
  const t = adminTarget(values, process.env);
  const usage = (u: string) => {
    process.stderr.write(`usage: ringfence ${u}\n`);
    return 2;
  };
  try {
    switch (sub) {
      case 'list': {
        const r = await adminCall(t, 'GET', `/approvals${values.all ? '' : '?status=pending'}`);
        const list = r.approvals as ApprovalRequest[];
        if (values.json) out(JSON.stringify(list, null, 2));
        else if (!list.length) out(values.all ? 'no approval requests' : 'no pending approval requests');
        else
          for (const a of list)
            out(
              `${a.id}  ${a.status.padEnd(8)}  ${a.summary.action.padEnd(13)}  by ${a.requestedBy}  expires ${a.expiresAt}`,
            );
        return 0;
      }
      case 'show': {
        if (!id) return usage('approvals show ID');
        const r = (await adminCall(
          t,
          'GET',
          `/approvals/${encodeURIComponent(id)}`,
        )) as unknown as ApprovalRequest;
        out(values.json ? JSON.stringify(r, null, 2) : formatApproval(r));
        return 0;
      }
      case 'approve': {
        if (!id) return usage('approvals approve ID [--reason TEXT]');
        const body = values.reason ? { reason: values.reason } : {};
        const r = await adminCall(t, 'POST', `/approvals/${encodeURIComponent(id)}/approve`, body);
        const req = r.request as ApprovalRequest;
        out(
          `approved ${req.id} (${req.summary.action}), requested by ${req.requestedBy}, approved by ${req.decidedBy}`,
        );
        return 0;
      }
      case 'reject': {
        if (!id || !values.reason) return usage('approvals reject ID --reason TEXT');
        const r = await adminCall(t, 'POST', `/approvals/${encodeURIComponent(id)}/reject`, {
          reason: values.reason,
        });
        out(`rejected ${r.id as string}`);
        return 0;
      }
      default:
        return usage('approvals list|show|approve|reject');
    }
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    process.stderr.write(`ringfence approvals ${sub}: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
    const gates = (err.body.error as { gates?: unknown } | undefined)?.gates;
    if (Array.isArray(gates)) process.stderr.write(formatGates('the transition', gates));
    return 1;
  }
}
