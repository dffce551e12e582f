/** An access token as cached. */
export interface CachedToken {
  accessToken: string;
  tokenType: "Bearer" | "DPoP";
  /** Unix milliseconds. */
  expiresAt: number;
  scope?: string;
}

/** Where client-credentials tokens are kept: memory by default, a shared store (e.g. Redis) for several processes. */
export interface TokenCache {
  get(key: string): Promise<CachedToken | undefined> | CachedToken | undefined;
  set(key: string, token: CachedToken): Promise<void> | void;
  delete(key: string): Promise<void> | void;
}

/** A cache in this process. */
export function createMemoryTokenCache(): TokenCache {
  const tokens = new Map<string, CachedToken>();
  return {
    get: (key) => tokens.get(key),
    set: (key, token) => void tokens.set(key, token),
    delete: (key) => void tokens.delete(key),
  };
}

/** Runs one call per key at a time; concurrent callers of the same key share its result. */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = work().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }
}
