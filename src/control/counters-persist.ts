import type { Logger } from 'pino';
import type { MemoryCounters } from './counters.ts';
import type { ControlStore } from './store.ts';

interface Saved {
  version: number;
  entries: Array<[string, { start: number; used: number }]>;
}

/**
 * Keeps the budget counters across restarts: restored at start, saved every `everyMs` and at shutdown through a
 * store of their own (atomic, checksummed). Saving runs off the request path on a timer.
 */
export async function persistCounters(
  counters: MemoryCounters,
  store: ControlStore,
  logger: Logger,
  everyMs = 5000,
): Promise<{ flush(): Promise<void>; stop(): Promise<void> }> {
  const saved = await store.loadState<Saved>();
  if (saved) counters.restore(saved.entries);
  let version = saved?.version;
  let chain: Promise<void> = Promise.resolve();
  const flush = () => {
    chain = chain.then(async () => {
      const next = { version: (version ?? 0) + 1, entries: counters.entries() };
      await store.saveState(next, version);
      version = next.version;
    });
    chain = chain.catch((err: unknown) => logger.error({ err }, 'saving budget counters failed'));
    return chain;
  };
  const timer = setInterval(flush, everyMs);
  timer.unref();
  return {
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
