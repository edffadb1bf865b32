import {
  type AppendOptions,
  assertBundle,
  assertJournalName,
  assertSharedName,
  assertUniqueKey,
  bundleHex,
  type ControlStore,
  checkExpected,
  DuplicateEventError,
  eventToStore,
  type SharedDoc,
  StoreCorruptError,
  sha256Id,
  stateToStore,
  type Versioned,
} from './store.ts';

/**
 * The control-plane store in memory, for one replica without a state directory and for tests: the same rules as
 * the file store (compare-and-set, content-addressed bundles, validated journals), nothing survives a restart.
 * Values are kept as JSON text, so a caller mutating an object after saving it cannot change what is stored.
 * Every method runs its check and its write without an await in between, so each is atomic on the event loop.
 * No change feed (`subscribe`): nobody else writes it.
 */
export function memoryStore(): ControlStore {
  let state: { version: number; json: string } | undefined;
  const bundles = new Map<string, string>();
  const journals = new Map<string, string[]>();
  const uniqueKeys = new Map<string, Set<string>>();
  const shared = new Map<string, Map<string, { json: string; updatedAt: string }>>();
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

    async appendEvent(journal: string, event: object, opts?: AppendOptions): Promise<void> {
      open();
      assertJournalName(journal);
      const line = eventToStore(event);
      const key = opts?.uniqueKey;
      if (key !== undefined) {
        assertUniqueKey(key);
        const keys = uniqueKeys.get(journal) ?? new Set<string>();
        if (keys.has(key)) throw new DuplicateEventError(journal, key);
        keys.add(key);
        uniqueKeys.set(journal, keys);
      }
      const lines = journals.get(journal) ?? [];
      lines.push(line);
      journals.set(journal, lines);
    },

    async appendChained<T extends object>(journal: string, build: (last: unknown) => T): Promise<T> {
      open();
      assertJournalName(journal);
      const lines = journals.get(journal) ?? [];
      const tail = lines.at(-1);
      const next = build(tail === undefined ? undefined : JSON.parse(tail));
      lines.push(eventToStore(next));
      journals.set(journal, lines);
      return next;
    },

    async readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }> {
      open();
      assertJournalName(journal);
      return { events: (journals.get(journal) ?? []).map((l) => JSON.parse(l) as unknown), torn: false };
    },

    async putShared(namespace: string, key: string, doc: object): Promise<void> {
      open();
      assertSharedName('namespace', namespace);
      assertSharedName('key', key);
      const json = eventToStore(doc, 'doc');
      const docs = shared.get(namespace) ?? new Map<string, { json: string; updatedAt: string }>();
      docs.set(key, { json, updatedAt: new Date().toISOString() });
      shared.set(namespace, docs);
    },

    async listShared(namespace: string): Promise<SharedDoc[]> {
      open();
      assertSharedName('namespace', namespace);
      const docs = shared.get(namespace);
      if (docs === undefined) return [];
      return [...docs.keys()].sort().map((key) => {
        const d = docs.get(key)!;
        return { key, doc: JSON.parse(d.json) as unknown, updatedAt: d.updatedAt };
      });
    },

    async stateVersion(): Promise<number | undefined> {
      open();
      return state?.version;
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
