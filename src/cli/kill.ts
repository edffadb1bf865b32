import { parseArgs } from 'node:util';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';

/** Usage lines of the kill-switch commands. */
export const KILL_USAGE = `  kill target PROVIDER[/MODEL] --reason TEXT       stop sending traffic to a target (its fallback serves)
  kill candidate --reason TEXT                      all traffic back to production at once
  restore target PROVIDER[/MODEL]|candidate --reason TEXT
                                                    lift a kill switch
  drill kill-switch PROVIDER[/MODEL]                kill, verify the fallback serves, restore, record
`;

/** `ringfence kill|restore|drill`. Exit 0 done (drill passed), 1 refused or failed, 2 usage. */
export async function runKill(command: 'kill' | 'restore' | 'drill', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      admin: { type: 'string' },
      token: { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const t = adminTarget(values, process.env);
  const [what, name] = positionals;
  try {
    if (command === 'drill') {
      if (what !== 'kill-switch' || !name) return usage('drill kill-switch PROVIDER[/MODEL]');
      const r = (await adminCall(t, 'POST', '/drill', { target: name })) as {
        passed: boolean;
        note: string;
        durationMs: number;
      };
      process.stdout.write(
        values.json
          ? `${JSON.stringify(r, null, 2)}\n`
          : `drill ${r.passed ? 'PASSED' : 'FAILED'} in ${r.durationMs} ms: ${r.note}\n`,
      );
      return r.passed ? 0 : 1;
    }
    const body =
      what === 'candidate' ? { candidate: true } : what === 'target' && name ? { target: name } : undefined;
    if (!body || !values.reason) return usage(`${command} target PROVIDER[/MODEL]|candidate --reason TEXT`);
    const s = await adminCall(t, 'POST', `/${command}`, { ...body, reason: values.reason });
    process.stdout.write(
      `${command === 'kill' ? 'killed' : 'restored'} ${what === 'candidate' ? 'candidate' : name} (state version ${s.version})\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    process.stderr.write(`ringfence: ${err.code}: ${err.message}\n`);
    return 1;
  }
}

function usage(what: string): number {
  process.stderr.write(`usage: ringfence ${what}\n`);
  return 2;
}
