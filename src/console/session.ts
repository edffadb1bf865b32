import { createHash, randomBytes } from 'node:crypto';
import type { AdminIdentity } from '../config/load.ts';

/** A one-shot message shown on the next page (after a form's redirect). */
export interface Flash {
  readonly kind: 'ok' | 'error';
  readonly text: string;
}

/** A console session: who logged in (never their token), the session's CSRF token, and its clock. */
export interface Session {
  readonly who: AdminIdentity;
  /** The per-session CSRF token every state-changing form carries in a hidden field. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  flash: Flash | undefined;
}

export interface SessionOptions {
  /** A session unused this long ends (8 h). */
  readonly idleMs?: number;
  /** A session ends this long after login whatever its use (12 h). */
  readonly absoluteMs?: number;
  /** At most this many live sessions; the least recently used is dropped beyond it. */
  readonly max?: number;
  readonly now?: () => number;
}

const HOUR = 3_600_000;

/** The map key of a session id: its sha256, so the ids themselves are never held (nor compared) in memory. */
const keyOf = (id: string) => createHash('sha256').update(id).digest('hex');

/**
 * Server-side sessions of the operator console. The cookie carries only a random 32-byte id; the identity and
 * roles live here, in this process (a restart logs everyone out, and each replica has its own sessions).
 */
export class Sessions {
  readonly idleMs: number;
  readonly absoluteMs: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #byKey = new Map<string, Session>();

  constructor(opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 8 * HOUR;
    this.absoluteMs = opts.absoluteMs ?? 12 * HOUR;
    this.#max = opts.max ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Starts a session for `who`: returns the id to put in the cookie. */
  create(who: AdminIdentity): { id: string; session: Session } {
    this.#sweep();
    const id = randomBytes(32).toString('base64url');
    const now = this.#now();
    const session: Session = {
      who,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeen: now,
      flash: undefined,
    };
    this.#byKey.set(keyOf(id), session);
    while (this.#byKey.size > this.#max) {
      const oldest = this.#byKey.keys().next().value;
      if (oldest === undefined) break;
      this.#byKey.delete(oldest);
    }
    return { id, session };
  }

  /** The live session of `id` (its idle clock restarted), or undefined when unknown or expired (then dropped). */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 128) return undefined;
    const key = keyOf(id);
    const s = this.#byKey.get(key);
    if (!s) return undefined;
    const now = this.#now();
    if (this.#expired(s, now)) {
      this.#byKey.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    // Most recently used last: the eviction order of `create`.
    this.#byKey.delete(key);
    this.#byKey.set(key, s);
    return s;
  }

  /** Ends the session `id` (logout). */
  delete(id: string | undefined): void {
    if (id) this.#byKey.delete(keyOf(id));
  }

  /** Live sessions (expired ones are dropped first). */
  get size(): number {
    this.#sweep();
    return this.#byKey.size;
  }

  #expired(s: Session, now: number): boolean {
    return now - s.lastSeen >= this.idleMs || now - s.createdAt >= this.absoluteMs;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, s] of this.#byKey) if (this.#expired(s, now)) this.#byKey.delete(k);
  }
}
