import type { Client, ClientStore } from "../clients.ts";

/** Bounds of the per-process cache of stored clients. */
export interface ClientCacheOptions {
  /** Seconds a looked-up client is reused before the store is asked again (the staleness bound). */
  ttl: number;
  /** Seconds an unknown client id is remembered as unknown. */
  negativeTtl: number;
  /** Most entries kept; the least recently used go first. */
  maxEntries: number;
}

interface Entry {
  client: Client | undefined;
  /** Milliseconds (real time). */
  expires: number;
}

/**
 * A bounded LRU cache in front of the client store: a client created, changed or deleted by another
 * process is seen here within `ttl` seconds (`negativeTtl` for a newly created id this process had looked
 * up before); changes made through this process are seen at once ({@link invalidate}). Real time, not the
 * injected clock: it bounds store round trips, not protocol lifetimes.
 */
export class CachedClientStore implements ClientStore {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Client | undefined>>();
  /** Bumped by invalidate, so a load that started before a change never caches the stale result. */
  private generation = 0;

  constructor(
    private readonly load: (clientId: string) => Promise<Client | undefined>,
    private readonly options: ClientCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async findClientById(clientId: string): Promise<Client | undefined> {
    const entry = this.entries.get(clientId);
    if (entry && entry.expires > this.now()) {
      // Most recently used last: Map order is the eviction order.
      this.entries.delete(clientId);
      this.entries.set(clientId, entry);
      return entry.client;
    }
    let pending = this.loading.get(clientId);
    if (!pending) {
      const generation = this.generation;
      pending = this.load(clientId).then(
        (client) => {
          this.loading.delete(clientId);
          if (generation === this.generation) this.remember(clientId, client);
          return client;
        },
        (error: unknown) => {
          this.loading.delete(clientId);
          throw error;
        },
      );
      this.loading.set(clientId, pending);
    }
    return pending;
  }

  /** Forgets a client, so this process's next lookup reads the store. */
  invalidate(clientId: string): void {
    this.generation++;
    this.entries.delete(clientId);
    this.loading.delete(clientId);
  }

  private remember(clientId: string, client: Client | undefined): void {
    const seconds = client ? this.options.ttl : this.options.negativeTtl;
    if (seconds <= 0 || this.options.maxEntries <= 0) return;
    this.entries.delete(clientId);
    this.entries.set(clientId, { client, expires: this.now() + seconds * 1000 });
    while (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** Configured clients first (they win on an id clash), then the stored ones. */
export function layeredClientStore(config: ClientStore, stored: ClientStore): ClientStore {
  return {
    async findClientById(clientId) {
      return (await config.findClientById(clientId)) ?? stored.findClientById(clientId);
    },
  };
}
