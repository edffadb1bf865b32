import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.ts';
import { APPROVALS_USAGE, runApprovals } from './approvals.ts';
import { AUDIT_USAGE, runAudit } from './audit.ts';
import { BUNDLE_USAGE, runBundle } from './bundle.ts';
import { DB_USAGE, runDb } from './db.ts';
import { GATE_USAGE, runGate } from './gate.ts';
import { KILL_USAGE, runKill } from './kill.ts';
import { OVERRIDE_USAGE, runOverride } from './override.ts';
import { ROLLOUT_USAGE, runRollout } from './rollout.ts';

const USAGE = `usage: ringfence <command> [options]

commands:
  serve --config FILE [--port N] [--admin-port N]   run the gateway
${BUNDLE_USAGE}${ROLLOUT_USAGE}${APPROVALS_USAGE}${KILL_USAGE}${GATE_USAGE}${OVERRIDE_USAGE}${AUDIT_USAGE}${DB_USAGE}  help                                              this text
`;

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError('(flags)', [`${flag}: expected a port number, got "${v}"`]);
  return n;
}

/** The `ringfence` command. Returns the process exit code (serve keeps running and returns undefined). */
export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const { values } = parseArgs({
          args: rest,
          options: {
            config: { type: 'string', short: 'c' },
            port: { type: 'string' },
            'admin-port': { type: 'string' },
          },
          strict: true,
        });
        if (!values.config) {
          process.stderr.write(`ringfence serve: --config FILE is required\n${USAGE}`);
          return 2;
        }
        // Loaded only here: the other commands talk to a running gateway and start faster without it.
        const { runServe } = await import('../main.ts');
        await runServe(values.config, {
          port: port(values.port, '--port'),
          adminPort: port(values['admin-port'], '--admin-port'),
        });
        return undefined;
      }
      case 'bundle':
        return rest[0] === 'push' ? runRollout('push', rest.slice(1)) : runBundle(rest);
      case 'rollout':
        return runRollout('rollout', rest);
      case 'approvals':
        return runApprovals(rest);
      case 'audit':
        return runAudit(rest);
      case 'db':
        return runDb(rest);
      case 'gate':
        return runGate(rest);
      case 'override':
        return runOverride(rest);
      case 'kill':
      case 'restore':
      case 'drill':
        return runKill(command, rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`ringfence: unknown command "${command}"\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ringfence: ${err.message}\n`);
      return 1;
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ringfence: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}
