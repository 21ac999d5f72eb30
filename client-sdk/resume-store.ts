/**
 * Where resume state lives between runs: one JSON document per transfer, keyed by the source's
 * fingerprint (uploads) or the file and destination (downloads). Node: `FileResumeStore`
 * (node-resume-store.ts, a directory); browsers: `LocalStorageResumeStore`.
 */
export interface ResumeStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Keeps state for the life of the process only (tests, or `resume: false`-like behaviour with a shared client). */
export class MemoryResumeStore implements ResumeStore {
  readonly #m = new Map<string, string>();
  async get(key: string): Promise<unknown> {
    const v = this.#m.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.#m.set(key, JSON.stringify(value));
  }
  async delete(key: string): Promise<void> {
    this.#m.delete(key);
  }
}

/** Browser: `localStorage` under `prefix` (state documents are small: ~70 bytes per chunk). */
export class LocalStorageResumeStore implements ResumeStore {
  constructor(
    readonly storage: Storage = globalThis.localStorage,
    readonly prefix = 'conveyor:',
  ) {}
  async get(key: string): Promise<unknown> {
    const v = this.storage.getItem(this.prefix + key);
    return v === null ? undefined : JSON.parse(v);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.storage.setItem(this.prefix + key, JSON.stringify(value));
  }
  async delete(key: string): Promise<void> {
    this.storage.removeItem(this.prefix + key);
  }
}
