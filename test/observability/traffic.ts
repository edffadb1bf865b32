/**
 * Traffic for the Prometheus end-to-end test: requests through the official SDKs that give every dashboard panel
 * and alert something to show, with each request's ring chosen by its end user (the canary slice is sticky by
 * app + end user, so the test knows which ring enforces a request before sending it).
 */
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { fnv1a } from '../../src/rings/select.ts';

/** The test's applications: `web` is customer-facing (class external), `tools` internal (internal-general). */
export type App = 'web' | 'tools';

/** An end user of `app` whose requests fall inside (or outside) a canary slice of `percent` % of all traffic. */
export function userFor(app: App, inCanary: boolean, percent: number, skip = 0): string {
  let found = 0;
  for (let i = 0; ; i++) {
    const user = `user-${i}`;
    const inside = fnv1a(`${app}\u0000${user}`) % 10_000 < Math.round(percent * 100);
    if (inside === inCanary && found++ === skip) return user;
  }
}

/** One chat request; resolves with the HTTP status (an SDK error's status, 200 on success). */
export async function chat(
  client: OpenAI,
  content: string,
  opts: {
    user: string;
    model?: string;
    metadata?: Record<string, string> | null;
    headers?: Record<string, string>;
    stream?: boolean;
  },
): Promise<number> {
  const body = {
    model: opts.model ?? 'mock-gpt-mini',
    user: opts.user,
    messages: [{ role: 'user' as const, content }],
    // The test candidate's classification reads metadata.tier: without it, its evaluation throws.
    ...(opts.metadata === null ? {} : { metadata: opts.metadata ?? { tier: 'standard' } }),
  };
  try {
    if (opts.stream) {
      const stream = await client.chat.completions.create(
        { ...body, stream: true },
        { headers: opts.headers ?? {} },
      );
      for await (const _ of stream) {
        // drained: the request is recorded once its stream ends
      }
    } else await client.chat.completions.create(body, { headers: opts.headers ?? {} });
    return 200;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (typeof status === 'number') return status;
    throw err;
  }
}

/** One Anthropic Messages request (end user and tier in its metadata); resolves with the HTTP status. */
export async function message(client: Anthropic, content: string, user: string): Promise<number> {
  try {
    await client.messages.create({
      model: 'mock-claude',
      max_tokens: 64,
      messages: [{ role: 'user', content }],
      // `tier` is not in the SDK's type for metadata; the gateway reads every string entry.
      metadata: { user_id: user, tier: 'standard' } as { user_id: string },
    });
    return 200;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (typeof status === 'number') return status;
    throw err;
  }
}

/** Prompts per kind of traffic, per the example bundles (policy-bundles/production/bundle.yaml). */
export const PROMPTS = {
  plain: 'Summarize the release notes of version 2.3 in three bullet points.',
  email: 'Please update the e-mail on my account to jane.doe@example.com, thanks.',
  // production redacts phone numbers of external apps; the candidate blocks them (a divergence of action).
  phone: 'Call me back on +1 415 555 0134 about my order.',
  card: 'Charge my card 4111 1111 1111 1111 for the renewal.',
  ssn: 'Prepare the payroll correction for SSN 123-45-6789.',
  watchlist: 'What is the status of Project Bluebird this week?',
  // An AWS access key: production blocks it on the way in; the test candidate does not, so the mock echoes it
  // back and the output guardrail blocks the leak.
  secret: 'Why does aws s3 ls say access denied for AKIAIOSFODNN7EXAMPLE?',
} as const;
