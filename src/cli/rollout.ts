import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GateResult } from '../rings/gates.ts';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';

/** Usage lines of the rollout commands. */
export const ROLLOUT_USAGE = `  bundle push FILE                                  register a bundle with the running gateway (prints its id)
  rollout status [--json]                           rings, bundles, slice, live gate table
  rollout shadow FILE|ID                            put a bundle in shadow (pushes FILE first)
  rollout canary [--apps A,B] [--classes C,D] [--percent N]
                                                    enter canary or widen its slice: requests an approval
                                                    (two keys); narrowing the slice applies at once
  rollout promote                                   canary → production: requests an approval (two keys)
  rollout rollback --reason TEXT                    drop the candidate, or revert production one step
  rollout gates                                     the gate table of the next transition
  rollout divergence [--json]                       divergence groups (production rule → candidate rule)
  rollout ack GROUP --reason TEXT                   acknowledge a divergence group
    (rollout and push take --admin URL and --token T, or RINGFENCE_ADMIN_URL / RINGFENCE_ADMIN_TOKEN)
`;

const list = (v: string | undefined) =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

/** Renders a gate table for a terminal. */
export function formatGates(transition: string | null | undefined, gates: readonly GateResult[]): string {
  if (!transition) return 'no candidate: no gates to evaluate\n';
  const rows = gates.map((g) => [
    g.name,
    g.observed === null ? '—' : String(g.observed),
    g.threshold,
    g.verdict.toUpperCase(),
    String(g.sampleSize),
  ]);
  const head = ['gate', 'observed', 'threshold', 'verdict', 'samples'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return `gates for ${transition.replaceAll('_', ' ')}:\n${[line(head), ...rows.map(line)].join('\n')}\n`;
}

interface PendingApproval {
  id: string;
  expiresAt: string;
  ask: { action: string };
}

/** What a requester is told after asking for a high-risk action. */
export function pendingApproval(a: PendingApproval): string {
  return `${a.ask.action} requested: approval ${a.id} (high risk) waits for a second key until ${a.expiresAt}.
an approver (a different identity) runs: ringfence approvals approve ${a.id}`;
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** `ringfence bundle push` and `ringfence rollout …`. Exit 0 done, 1 refused or failed, 2 usage. */
export async function runRollout(command: 'push' | 'rollout', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      admin: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      reason: { type: 'string' },
      apps: { type: 'string' },
      classes: { type: 'string' },
      percent: { type: 'string' },
    },
  });
  const t = adminTarget(values, process.env);
  const push = async (file: string) => {
    const r = await adminCall(t, 'POST', '/bundles', readFileSync(file, 'utf8'), 'application/yaml');
    return r as { id: string; name: string; version: string; created: boolean };
  };
  try {
    if (command === 'push') {
      const file = positionals[0];
      if (!file) return usage('bundle push FILE');
      const r = await push(file);
      out(`${r.created ? 'registered' : 'already registered'} ${r.name}@${r.version} ${r.id}`);
      return 0;
    }
    const [sub, arg] = positionals;
    switch (sub) {
      case 'status': {
        const s = await adminCall(t, 'GET', '/rollout');
        if (values.json) {
          out(JSON.stringify(s, null, 2));
          return 0;
        }
        const p = s.production as { name: string; version: string; id: string; since: string; by: string };
        const cand = s.candidate as null | {
          name: string;
          version: string;
          id: string;
          stage: string;
          slice?: unknown;
          stageSince: string;
          by: string;
        };
        out(`production  ${p.name}@${p.version}  ${p.id}  since ${p.since} by ${p.by}`);
        out(
          cand
            ? `candidate   ${cand.name}@${cand.version}  ${cand.id}  ${cand.stage} since ${cand.stageSince} by ${cand.by}${cand.slice ? `  slice ${JSON.stringify(cand.slice)}` : ''}`
            : 'candidate   none',
        );
        out(`state       version ${s.version}  change ${s.changeId}`);
        const g = s.gates as { transition: string; gates: GateResult[] } | null;
        out(formatGates(g?.transition, g?.gates ?? []));
        return 0;
      }
      case 'shadow': {
        if (!arg) return usage('rollout shadow FILE|ID');
        const bundleId = existsSync(arg) ? (await push(arg)).id : arg;
        const s = await adminCall(t, 'POST', '/rollout/shadow', { bundleId });
        out(`shadow: ${bundleId} (state version ${s.version})`);
        return 0;
      }
      case 'canary': {
        const slice: Record<string, unknown> = { apps: list(values.apps), classes: list(values.classes) };
        if (values.percent !== undefined) slice.percent = Number(values.percent);
        const s = await adminCall(t, 'POST', '/rollout/canary', slice);
        if (s.approval) {
          out(pendingApproval(s.approval as PendingApproval));
          return 0;
        }
        out(
          `canary: slice ${JSON.stringify((s.candidate as { slice: unknown }).slice)} (state version ${s.version})`,
        );
        return 0;
      }
      case 'promote': {
        const s = await adminCall(t, 'POST', '/rollout/promote', {});
        out(pendingApproval(s.approval as PendingApproval));
        return 0;
      }
      case 'rollback': {
        if (!values.reason) return usage('rollout rollback --reason TEXT');
        const r = await adminCall(t, 'POST', '/rollout/rollback', { reason: values.reason });
        out(
          `rolled back: production is ${(r.to as { production: string }).production} (${r.timeToRestoreMs} ms)`,
        );
        return 0;
      }
      case 'gates': {
        const g = (await adminCall(t, 'GET', '/rollout/gates')) as unknown as {
          transition: string | null;
          gates: GateResult[];
        };
        out(formatGates(g.transition, g.gates));
        return g.gates.every((x) => x.verdict === 'pass') ? 0 : 1;
      }
      case 'divergence': {
        const d = await adminCall(t, 'GET', '/rollout/divergence');
        if (values.json) {
          out(JSON.stringify(d, null, 2));
          return 0;
        }
        out(`${d.divergent} divergent of ${d.total} requests`);
        for (const g of d.groups as Array<{
          key: string;
          count: number;
          kinds: object;
          samples: string[];
          ack?: { by: string; reason: string };
        }>)
          out(
            `  ${g.count.toString().padStart(6)}  ${g.key}  ${JSON.stringify(g.kinds)}  e.g. ${g.samples.join(', ')}${g.ack ? `  [ack by ${g.ack.by}: ${g.ack.reason}]` : ''}`,
          );
        return 0;
      }
      case 'ack': {
        if (!arg || !values.reason) return usage('rollout ack GROUP --reason TEXT');
        await adminCall(t, 'POST', '/rollout/divergence/ack', { group: arg, reason: values.reason });
        out(`acknowledged: ${arg}`);
        return 0;
      }
      default:
        return usage('rollout status|shadow|canary|promote|rollback|gates|divergence|ack');
    }
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    process.stderr.write(`ringfence: ${err.code}: ${err.message}\n`);
    const gates = (err.body.error as { gates?: GateResult[] } | undefined)?.gates;
    if (gates?.length) process.stderr.write(formatGates('the requested transition', gates));
    return 1;
  }
}

function usage(what: string): number {
  process.stderr.write(`usage: ringfence ${what}\n`);
  return 2;
}
