import {
  assertBundle,
  assertJournalName,
  bundleHex,
  type ControlStore,
  checkExpected,
  plainJson,
  StoreCorruptError,
  sha256Id,
  stateToStore,
  type Versioned,
} from './store.ts';

/**
 * The control-plane store in memory, for one replica without a state directory and for tests: the same rules as
 * the file store (compare-and-set, content-addressed bundles, validated journals), nothing survives a restart.
 * Values are kept as JSON text, so a caller mutating an object after saving it cannot change what is stored.
 */
export function memoryStore(): ControlStore {
  let state: { version: number; json: string } | undefined;
  const bundles = new Map<string, string>();
  const journals = new Map<string, string[]>();
  let closed = false;
  const open = (): void => {
    if (closed) throw new Error('control-plane store is closed');
  };

  return {
    async loadState<T extends Versioned>(): Promise<T | undefined> {
      open();
      return state === undefined ? undefined : (JSON.parse(state.json) as T);
    },

    async saveState<T extends Versioned>(next: T, expectedVersion: number | undefined): Promise<void> {
      open();
      const json = stateToStore(next, expectedVersion);
      // No await between the check and the write: the compare-and-set is atomic on the event loop.
      checkExpected(expectedVersion, state?.version);
      state = { version: next.version, json };
    },

    async putBundle(id: string, canonical: string): Promise<void> {
      open();
      assertBundle(id, canonical);
      if (!bundles.has(id)) bundles.set(id, canonical);
    },

    async getBundle(id: string): Promise<string | undefined> {
      open();
      if (bundleHex(id) === undefined) return undefined;
      const text = bundles.get(id);
      if (text !== undefined && sha256Id(text) !== id)
        throw new StoreCorruptError(`bundle ${id}`, 'content no longer hashes to its id');
      return text;
    },

    async listBundles(): Promise<string[]> {
      open();
      return [...bundles.keys()].sort();
    },

    async appendEvent(journal: string, event: object): Promise<void> {
      open();
      assertJournalName(journal);
      if (typeof event !== 'object' || event === null)
        throw new TypeError('a journal event must be an object');
      const line = plainJson(event, 'event');
      const lines = journals.get(journal) ?? [];
      lines.push(line);
      journals.set(journal, lines);
    },

    async readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }> {
      open();
      assertJournalName(journal);
      return { events: (journals.get(journal) ?? []).map((l) => JSON.parse(l) as unknown), torn: false };
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
