/**
 * A gateway in this process for the console tests: a production bundle, a candidate in shadow whose
 * shadow → canary gates pass after a few requests, and admin tokens for every role.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { RequestObserver } from '../../src/gateway/context.ts';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');

/** Tokens by identity: olivia operator, alex and sam approvers, pat operator+approver, vic viewer, rita sre. */
export const TOKENS = {
  olivia: 'rf-console-operator-0123456789',
  alex: 'rf-console-approver-0123456789',
  sam: 'rf-console-approver2-0123456789',
  pat: 'rf-console-both-0123456789',
  vic: 'rf-console-viewer-0123456789',
  rita: 'rf-console-sre-0123456789',
} as const;

const config = (mockUrl: string) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt]
    pricing: { mock-gpt: { inputPerMTok: 2.5, outputPerMTok: 10 } }
  b:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt-b]
    pricing: { mock-gpt-b: { inputPerMTok: 0.5, outputPerMTok: 1.5 } }
defaults: { openai: a }
applications:
  - { id: jobs, tags: [internal], keys: [{ id: jobs-key, env: TEST_APP_KEY }] }
  - { id: storefront, tags: [external], keys: [{ id: web-key, env: TEST_WEB_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
log: { level: warn, decisions: { enabled: false } }
admin:
  tokens:
    - { id: olivia, env: T_OLIVIA, roles: [operator] }
    - { id: alex, env: T_ALEX, roles: [approver] }
    - { id: sam, env: T_SAM, roles: [approver, viewer] }
    - { id: pat, env: T_PAT, roles: [operator, approver] }
    - { id: vic, env: T_VIC, roles: [viewer] }
    - { id: rita, env: T_RITA, roles: [sre] }
rings:
  gates:
    shadowToCanary: { minSamples: 3, minDurationS: 0, maxCandidateEvalP95Us: 1000000000, ackMinGroupCount: 1000000 }
    canaryToProduction:
      minSamples: 2
      minDurationS: 0
      maxErrorRateDelta: 1
      maxTriggerRateDelta: 1
      maxLatencyP50DeltaMs: 100000
      maxLatencyP95DeltaMs: 100000
  triggers: { checkIntervalMs: 3600000 }
governance: { approvalTtlS: 600, expiryCheckIntervalMs: 3600000 }
`;

export const WEB_KEY = 'rf-console-web-key-0123456789';

export interface ConsoleStack {
  readonly stack: Stack;
  readonly candidateId: string;
  /** Sends `n` chat completions, alternating the internal and the external app. */
  traffic(n: number, opts?: { bluebird?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** Starts the gateway, registers the candidate and puts it in shadow, with enough traffic for its gates. */
export async function startConsoleStack(observe?: RequestObserver): Promise<ConsoleStack> {
  const stack = await startStack({
    config,
    env: {
      T_OLIVIA: TOKENS.olivia,
      T_ALEX: TOKENS.alex,
      T_SAM: TOKENS.sam,
      T_PAT: TOKENS.pat,
      T_VIC: TOKENS.vic,
      T_RITA: TOKENS.rita,
      TEST_WEB_KEY: WEB_KEY,
    },
    ...(observe ? { observe } : {}),
  });
  const internal = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  const external = new OpenAI({ apiKey: WEB_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  const text = readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8');
  const cand = await stack.gw.rings.registerBundle(text, 'candidate.yaml', 'olivia');
  await stack.gw.rings.shadow(cand.id, { by: 'olivia', at: new Date() });
  const traffic = async (n: number, opts: { bluebird?: boolean } = {}) => {
    for (let i = 0; i < n; i++) {
      const client = i % 2 ? external : internal;
      await client.chat.completions
        .create({
          model: 'mock-gpt',
          messages: [
            { role: 'user', content: `${opts.bluebird && i % 3 === 0 ? 'bluebird ' : ''}hello ${i}` },
          ],
        })
        .catch(() => undefined);
    }
  };
  await traffic(6);
  return { stack, candidateId: cand.id, traffic, close: () => stack.close() };
}
