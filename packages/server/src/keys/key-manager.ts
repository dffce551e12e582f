import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { SigningAlgorithm } from "../options.ts";
import type { KeyStore, StoredKey } from "../stores/interfaces.ts";
import type { DataProtector } from "./data-protection.ts";

/** A key ready to sign with. */
export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
}

interface LoadedKey {
  stored: StoredKey;
  publicJwk: JWK;
  privateKey: CryptoKey;
}

const RELOAD_INTERVAL_MS = 60_000;

/**
 * Creates signing keys on first use, keeps them encrypted in the store, and picks the active key per
 * algorithm. Several processes may start at once: each inserts a key if it saw none, then all of them
 * settle on the oldest key, so they sign with the same one.
 */
export class KeyManager {
  private loaded: LoadedKey[] = [];
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: KeyStore,
    private readonly protector: DataProtector,
    private readonly algorithms: readonly SigningAlgorithm[],
    private readonly clock: () => number,
  ) {}

  /** The key to sign with for `alg` (default: the first configured algorithm). */
  async signingKey(alg?: string): Promise<SigningKey> {
    await this.ensureLoaded();
    const wanted = (alg ?? this.algorithms[0]) as SigningAlgorithm;
    const now = Math.floor(this.clock() / 1000);
    const candidates = this.loaded
      .filter((k) => k.stored.alg === wanted && k.stored.activatesAt <= now && (k.stored.retiresAt ?? Infinity) > now)
      .sort((a, b) => a.stored.createdAt - b.stored.createdAt || a.stored.kid.localeCompare(b.stored.kid));
    const key = candidates[0];
    if (!key) throw new Error(`no signing key for ${wanted}`);
    return { kid: key.stored.kid, alg: wanted, privateKey: key.privateKey };
  }

  /** The public keys to publish (RFC 7517 JWK Set). */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.ensureLoaded();
    return { keys: this.loaded.map((k) => k.publicJwk) };
  }

  /** True when `alg` has keys kept for it. */
  supports(alg: string): boolean {
    return this.algorithms.includes(alg as SigningAlgorithm);
  }

  private async ensureLoaded(): Promise<void> {
    if (this.clock() - this.loadedAt < RELOAD_INTERVAL_MS && this.loaded.length > 0) return;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    await this.loading;
  }

  private async load(): Promise<void> {
    let stored = await this.store.list();
    const now = Math.floor(this.clock() / 1000);
    let created = false;
    for (const alg of this.algorithms) {
      if (!stored.some((k) => k.alg === alg && (k.retiresAt ?? Infinity) > now)) {
        await this.store.add(await this.createKey(alg, now));
        created = true;
      }
    }
    if (created) stored = await this.store.list();
    const loaded: LoadedKey[] = [];
    for (const key of stored) {
      const json = await this.protector.unprotect("signing-keys", key.protectedJwk);
      if (!json) throw new Error(`signing key ${key.kid} cannot be decrypted: was the data key changed?`);
      const jwk = JSON.parse(json) as JWK;
      const privateKey = (await importJWK(jwk, key.alg)) as CryptoKey;
      loaded.push({ stored: key, publicJwk: publicPart(jwk, key), privateKey });
    }
    this.loaded = loaded;
    this.loadedAt = this.clock();
  }

  private async createKey(alg: SigningAlgorithm, now: number): Promise<StoredKey> {
    const options = alg === "EdDSA" ? { extractable: true, crv: "Ed25519" } : alg.startsWith("RS") || alg.startsWith("PS") ? { extractable: true, modulusLength: 2048 } : { extractable: true };
    const { privateKey } = await generateKeyPair(alg, options);
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk);
    jwk.kid = kid;
    jwk.alg = alg;
    jwk.use = "sig";
    return {
      kid,
      alg,
      protectedJwk: await this.protector.protect("signing-keys", JSON.stringify(jwk)),
      createdAt: now,
      activatesAt: now,
    };
  }
}

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

function publicPart(jwk: JWK, key: StoredKey): JWK {
  const pub: JWK = {};
  for (const [name, value] of Object.entries(jwk)) {
    if (!PRIVATE_MEMBERS.includes(name)) (pub as Record<string, unknown>)[name] = value;
  }
  pub.kid = key.kid;
  pub.alg = key.alg;
  pub.use = "sig";
  return pub;
}
