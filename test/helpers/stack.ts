import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { RequestObserver } from '../../src/gateway/context.ts';
import { type RunningGateway, startGateway } from '../../src/main.ts';
import {
  type MockProvider,
  type MockProviderOptions,
  startMockProvider,
} from '../../src/providers/mock/server.ts';

/** The gateway key of the test application, and the provider key the mock demands. */
export const APP_KEY = 'rf-test-app-key-0123456789';
export const PROVIDER_KEY = 'sk-provider-secret-abcdef987654';

/** A log sink that keeps every line, so tests can grep what the gateway logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(chunk.toString('utf8'));
    cb();
  }
  get text(): string {
    return this.lines.join('');
  }
}

/** A mock provider on loopback and a gateway in front of it, both on real sockets with ephemeral ports. */
export interface Stack {
  readonly mock: MockProvider;
  readonly gw: RunningGateway;
  /** OpenAI SDK base URL (with /v1). */
  readonly openaiBase: string;
  /** Anthropic SDK base URL. */
  readonly anthropicBase: string;
  readonly logs: LogCapture;
  readonly configFile: string;
  close(): Promise<void>;
}

/** Writes a config file to a fresh temp dir and returns its path. */
export function writeConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringfence-test-'));
  const file = join(dir, 'ringfence.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** The default test config: one mock provider reached over its own URL with a provider key from the env. */
export function stackConfig(mockUrl: string, extra = ''): string {
  return `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  mock:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt, mock-claude]
    timeouts: { connectMs: 2000, headersMs: 3000, bodyMs: 3000 }
applications:
  - id: test-app
    tags: [internal]
    keys:
      - { id: test-key, env: TEST_APP_KEY }
limits:
  maxBodyBytes: 4mb
  shutdownGraceMs: 5000
${extra}`;
}

/** Starts the mock provider and a gateway in this process. Close it in afterAll. */
export async function startStack(
  opts: {
    mock?: MockProviderOptions;
    config?: (mockUrl: string) => string;
    observe?: RequestObserver;
    env?: Record<string, string | undefined>;
  } = {},
): Promise<Stack> {
  const mock = await startMockProvider({ expectKey: PROVIDER_KEY, ...opts.mock });
  const configFile = writeConfig((opts.config ?? stackConfig)(mock.url));
  const logs = new LogCapture();
  const gw = await startGateway({
    configFile,
    env: { ...opts.env, TEST_PROVIDER_KEY: PROVIDER_KEY, TEST_APP_KEY: APP_KEY },
    logger: pino({ level: 'debug' }, logs),
    ...(opts.observe ? { observe: opts.observe } : {}),
  });
  return {
    mock,
    gw,
    openaiBase: `${gw.dataUrl}/v1`,
    anthropicBase: gw.dataUrl,
    logs,
    configFile,
    close: async () => {
      await gw.shutdown(1000);
      await mock.close();
    },
  };
}
