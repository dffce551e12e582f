import { ProtocolError } from "@tessera/protocol";
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { SigningAlgorithm } from "../options.ts";
import type { KeyStore, StoredKey } from "../stores/interfaces.ts";
import type { DataProtector } from "./data-protection.ts";

/** A key ready to sign with. */
export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
}

/** Key lifetimes in seconds (IdentityServer's automatic key management model). */
export interface KeyRotationPolicy {
  /** Age at which a key stops signing. */
  rotationInterval: number;
  /** How long a new key is announced in JWKS before it signs. */
  propagationTime: number;
  /** How long a retired key stays in JWKS, so tokens it signed still verify. */
  retentionTime: number;
}

interface LoadedKey {
  stored: StoredKey;
  publicJwk: JWK;
  /** Only for configured algorithms; keys of others are published, never used. */
  privateKey: CryptoKey | undefined;
}

/** Longest time, in seconds, any process serves keys without re-reading the store, whatever its config. */
const MAX_RELOAD_SECONDS = 60;
/** How far apart the clocks of a deployment's processes may be, in seconds. */
const CLOCK_SKEW_SECONDS = 5;

/**
 * Seconds from a key's creation to its first signature under `policy`: the propagation time, plus the
 * longest reload interval any process uses (so every process, whatever its own config during a rolling
 * deploy, has published the key for the propagation time), plus a margin for clock skew between processes.
 */
export function keyActivationLead(policy: KeyRotationPolicy): number {
  return policy.propagationTime + MAX_RELOAD_SECONDS + CLOCK_SKEW_SECONDS;
}

/**
 * Seconds between two reads of the store's keys under `policy`: at most a minute, at most half the
 * propagation time (at least one second), so every process sees a new key soon enough for its promise.
 */
export function keyReloadInterval(policy: KeyRotationPolicy): number {
  return Math.max(1, Math.min(MAX_RELOAD_SECONDS, Math.floor(policy.propagationTime / 2)));
}

/** Newest activation first; ties broken by kid so every process picks the same key. */
const byActivation = (a: StoredKey, b: StoredKey) => b.activatesAt - a.activatesAt || b.createdAt - a.createdAt || a.kid.localeCompare(b.kid);

/**
 * Creates, announces, rotates and retires signing keys, kept encrypted in the store. Per algorithm: a
 * successor is created before the active key reaches `rotationInterval` and signs only from its stored
 * `activatesAt`, {@link keyActivationLead} after its creation: every process re-reads the keys within a
 * minute ({@link keyReloadInterval}), so each one publishes the new key at least `propagationTime` before
 * any process signs with it. An algorithm added to the config later is announced the same way while the
 * others keep signing; a default signature comes from the first configured algorithm with an active key.
 * A replaced key stays published for `retentionTime`, then is deleted; so does every key of an algorithm
 * no longer configured (other processes may still sign with it), once it can no longer be signing.
 */
export class KeyManager {
  private loaded: LoadedKey[] = [];
  private localSet: ReturnType<typeof createLocalJWKSet> | undefined;
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;
  private readonly reloadSeconds: number;

  constructor(
    private readonly store: KeyStore,
    private readonly protector: DataProtector,
    private readonly algorithms: readonly SigningAlgorithm[],
    private readonly clock: () => number,
    private readonly policy: KeyRotationPolicy = { rotationInterval: 7_776_000, propagationTime: 1_209_600, retentionTime: 1_209_600 },
    private readonly onChange: (change: { type: "key.created"; kid: string; alg: string; activatesAt: number } | { type: "key.removed"; kid: string }) => void = () => {},
  ) {
    this.reloadSeconds = keyReloadInterval(policy);
  }

  /**
   * The key to sign with for `alg`; by default the first configured algorithm that has an active key (an
   * algorithm just added to the config signs once its key has been announced). An `alg` whose key is still
   * being announced is a 503 `temporarily_unavailable`.
   */
  async signingKey(alg?: string): Promise<SigningKey> {
    await this.ensureLoaded();
    const now = this.nowSeconds();
    const activeKey = (wanted: string) =>
      this.loaded
        .filter((k) => k.stored.alg === wanted && k.privateKey && k.stored.activatesAt <= now)
        .sort((a, b) => byActivation(a.stored, b.stored))[0];
    const wanted = alg ?? this.algorithms.find((a) => activeKey(a)) ?? this.algorithms[0]!;
    const key = activeKey(wanted);
    if (!key) {
      if (this.loaded.some((k) => k.stored.alg === wanted && k.privateKey)) {
        throw new ProtocolError("temporarily_unavailable", `the ${wanted} signing key is still being announced`, { status: 503, headers: { "retry-after": "60" } });
      }
      throw new Error(`no signing key for ${wanted}`);
    }
    return { kid: key.stored.kid, alg: wanted as SigningAlgorithm, privateKey: key.privateKey! };
  }

  /** The public keys to publish (RFC 7517 JWK Set): announced, active and retained ones. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.ensureLoaded();
    return { keys: this.loaded.map((k) => k.publicJwk) };
  }

  /** A key resolver over the published keys, for verifying tokens issued here (rebuilt only when keys reload). */
  async verificationKeys(): Promise<ReturnType<typeof createLocalJWKSet>> {
    await this.ensureLoaded();
    this.localSet ??= createLocalJWKSet({ keys: this.loaded.map((k) => k.publicJwk) });
    return this.localSet;
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }

  private async ensureLoaded(): Promise<void> {
    if (this.clock() - this.loadedAt < this.reloadSeconds * 1000 && this.loaded.length > 0) return;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    await this.loading;
  }

  private async load(): Promise<void> {
    const now = this.nowSeconds();
    // Decided under the store's lock, so simultaneous processes create or rotate a key only once.
    let changes: { add: StoredKey[]; remove: string[] } = { add: [], remove: [] };
    await this.store.update(async (current) => {
      const add: StoredKey[] = [];
      const remove: string[] = [];
      const { rotationInterval, retentionTime } = this.policy;
      const lead = keyActivationLead(this.policy);
      // Some configured algorithm can sign right now: a new algorithm's first key need not sign unannounced.
      const othersSign = current.some((k) => this.algorithms.includes(k.alg as SigningAlgorithm) && k.activatesAt <= now);
      for (const alg of this.algorithms) {
        const mine = current.filter((k) => k.alg === alg);
        const newest = [...mine].sort(byActivation)[0];
        if (!newest && othersSign) {
          // An algorithm added to the config: announced like a successor while the others keep signing.
          add.push(await this.createKey(alg, now, now + lead));
        } else if (!newest || now - newest.activatesAt >= rotationInterval + lead || (!othersSign && alg === this.algorithms[0] && newest.activatesAt > now)) {
          // Nothing usable (first start; every process was down or idle far past the rotation; or no configured
          // algorithm can sign while this one is still announced): a key that signs at once.
          add.push(await this.createKey(alg, now, now));
        } else if (newest.activatesAt <= now && now - newest.activatesAt >= rotationInterval - lead) {
          // Time to announce the successor. The current key signs until it activates, even past its
          // rotation age when no request came in time: a new key never signs unannounced.
          add.push(await this.createKey(alg, now, now + lead));
        }
        // A key retires when its successor activates, and is deleted once retained long enough.
        const ordered = [...mine].sort((a, b) => a.activatesAt - b.activatesAt || a.kid.localeCompare(b.kid));
        for (let i = 0; i < ordered.length - 1; i++) {
          const successorActivates = ordered[i + 1]!.activatesAt;
          if (successorActivates <= now && successorActivates + retentionTime < now) remove.push(ordered[i]!.kid);
        }
      }
      // Keys of algorithms no longer configured stay published: processes still on the old config may sign
      // with one until it would have been rotated (rotation plus lead after it activated); retained after that.
      for (const key of current) {
        if (!this.algorithms.includes(key.alg as SigningAlgorithm) && key.activatesAt + rotationInterval + lead + retentionTime < now) remove.push(key.kid);
      }
      changes = { add, remove };
      return changes;
    });
    for (const key of changes.add) this.onChange({ type: "key.created", kid: key.kid, alg: key.alg, activatesAt: key.activatesAt });
    for (const kid of changes.remove) this.onChange({ type: "key.removed", kid });
    // The keys served are as old as this read, however long decrypting them takes.
    const readAt = this.clock();
    const stored = await this.store.list();
    const loaded: LoadedKey[] = [];
    for (const key of stored) {
      const json = await this.protector.unprotect("signing-keys", key.protectedJwk);
      if (!json) throw new Error(`signing key ${key.kid} cannot be decrypted: was the data key changed?`);
      const jwk = JSON.parse(json) as JWK;
      const configured = this.algorithms.includes(key.alg as SigningAlgorithm);
      const privateKey = configured ? ((await importJWK(jwk, key.alg)) as CryptoKey) : undefined;
      loaded.push({ stored: key, publicJwk: publicPart(jwk, key), privateKey });
    }
    this.loaded = loaded;
    this.localSet = undefined;
    this.loadedAt = readAt;
  }

  private async createKey(alg: SigningAlgorithm, now: number, activatesAt: number): Promise<StoredKey> {
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
      activatesAt,
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
