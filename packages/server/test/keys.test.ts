import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { DataProtector } from "../src/keys/data-protection.ts";
import { ProtocolError } from "@tessera/protocol";
import { KeyManager, type KeyRotationPolicy } from "../src/keys/key-manager.ts";
import type { KeyStore } from "../src/stores/interfaces.ts";
import { createMemoryStore } from "../src/stores/memory/index.ts";

describe("key manager", () => {
  it("creates one key per algorithm, encrypted at rest, and publishes only public parts", async () => {
    const store = createMemoryStore();
    const protector = new DataProtector(randomBytes(32));
    const manager = new KeyManager(store.keys, protector, ["RS256", "ES256", "EdDSA", "PS256"], Date.now);
    const jwks = await manager.jwks();
    assert.deepEqual(jwks.keys.map((k) => k.alg), ["RS256", "ES256", "EdDSA", "PS256"]);
    for (const key of jwks.keys) assert.equal(key.d, undefined);
    for (const stored of await store.keys.list()) {
      assert.doesNotMatch(stored.protectedJwk, /"d"/);
      assert.equal(stored.protectedJwk.split(".").length, 5, "a compact JWE");
    }
    assert.equal((await manager.signingKey()).alg, "RS256");
    assert.equal((await manager.signingKey("EdDSA")).alg, "EdDSA");
  });

  it("settles on one key when several processes create keys at once", async () => {
    const store = createMemoryStore();
    const key = randomBytes(32);
    const managers = Array.from({ length: 4 }, () => new KeyManager(store.keys, new DataProtector(key), ["ES256"], Date.now));
    const kids = await Promise.all(managers.map(async (m) => (await m.signingKey()).kid));
    // Each may have inserted a key, but after reloading all of them sign with the same (oldest) one.
    const reloaded = await Promise.all(
      Array.from({ length: 4 }, () => new KeyManager(store.keys, new DataProtector(key), ["ES256"], Date.now).signingKey()),
    );
    assert.equal(new Set(reloaded.map((k) => k.kid)).size, 1);
    assert.ok(kids.length === 4);
  });

  it("refuses to start with keys it cannot decrypt (a changed data key)", async () => {
    const store = createMemoryStore();
    await new KeyManager(store.keys, new DataProtector(randomBytes(32)), ["RS256"], Date.now).jwks();
    const other = new KeyManager(store.keys, new DataProtector(randomBytes(32)), ["RS256"], Date.now);
    await assert.rejects(other.jwks(), /data key/);
  });
});

describe("10 key rotation across processes and config changes (fake clock)", () => {
  it("10.4 rolling deploy: processes with different propagation times on one store; each key is in every process's JWKS at least its creator's propagation time before it signs", async () => {
    const store = createMemoryStore();
    const dataKey = randomBytes(32);
    let t = 1_800_000_000;
    const clock = () => t * 1000;
    // The signer (new config) rotates quickly with a short propagation; the publisher (old config) has a
    // long one, so it re-reads the store only every 60 s.
    const signerPolicy: KeyRotationPolicy = { rotationInterval: 300, propagationTime: 20, retentionTime: 100 };
    const publisherPolicy: KeyRotationPolicy = { rotationInterval: 100_000, propagationTime: 10_000, retentionTime: 10_000 };
    const signer = new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, signerPolicy);
    const publisher = new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, publisherPolicy);
    const firstSeen = new Map<string, number>();
    const firstSigned = new Map<string, number>();
    const start = t;
    for (; t <= start + 1500; t++) {
      for (const key of (await publisher.jwks()).keys) if (!firstSeen.has(key.kid!)) firstSeen.set(key.kid!, t);
      const { kid } = await signer.signingKey();
      if (!firstSigned.has(kid)) firstSigned.set(kid, t);
    }
    const signed = [...firstSigned.entries()].sort((a, b) => a[1] - b[1]);
    assert.ok(signed.length >= 4, `rotated (${signed.length} signing keys)`);
    for (const [kid, at] of signed.slice(1)) {
      const seen = firstSeen.get(kid);
      assert.ok(seen !== undefined && at - seen >= 20, `kid ${kid.slice(0, 8)} in the publisher's JWKS at +${seen! - start}s, signing at +${at - start}s`);
    }
  });

  it("10.5 the reload interval counts from the moment the store was read, not from when decrypting the keys finished", async () => {
    const inner = createMemoryStore();
    let lists = 0;
    const counting: KeyStore = { ...inner.keys, update: (change) => inner.keys.update(change), list: () => (lists++, inner.keys.list()) };
    let t = 1_800_000_000_000;
    class SlowProtector extends DataProtector {
      override async unprotect(...args: Parameters<DataProtector["unprotect"]>) {
        t += 4000; // decrypting (or a slow event loop) takes 4 s
        return super.unprotect(...args);
      }
    }
    const manager = new KeyManager(counting, new SlowProtector(randomBytes(32)), ["ES256"], () => t, { rotationInterval: 1000, propagationTime: 20, retentionTime: 100 });
    const readAt = t;
    await manager.signingKey();
    assert.equal(lists, 1);
    t = readAt + 10_000; // the reload interval (10 s) after the store was read
    await manager.signingKey();
    assert.equal(lists, 2, "reloaded: the keys it serves are at most the reload interval older than the store");
  });

  const policy: KeyRotationPolicy = { rotationInterval: 1000, propagationTime: 100, retentionTime: 300 };

  it("10.6 an algorithm added to the config is announced before it signs; meanwhile the first configured algorithm with an active key signs", async () => {
    const store = createMemoryStore();
    const dataKey = randomBytes(32);
    let t = 1_800_000_000;
    const clock = () => t * 1000;
    const before = new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, policy);
    const es = await before.signingKey();
    t += 10;
    // RS256 added first in the list: it is the one that should sign, once every process publishes it.
    const after = new KeyManager(store.keys, new DataProtector(dataKey), ["RS256", "ES256"], clock, policy);
    const jwks = await after.jwks();
    const rs = jwks.keys.find((k) => k.alg === "RS256");
    assert.ok(rs, "the new algorithm's key is published at once");
    const stored = (await store.keys.list()).find((k) => k.kid === rs.kid)!;
    assert.ok(stored.activatesAt >= t + policy.propagationTime + 60, `announced first (activates at +${stored.activatesAt - t}s)`);
    const meanwhile = await after.signingKey();
    assert.deepEqual([meanwhile.kid, meanwhile.alg], [es.kid, "ES256"], "the ES256 key keeps signing");
    const explicit = await after.signingKey("RS256").catch((e: unknown) => e);
    assert.ok(explicit instanceof ProtocolError && explicit.status === 503, `a client asking for RS256 waits: ${String(explicit)}`);
    t = stored.activatesAt;
    assert.equal((await after.signingKey()).kid, rs.kid, "RS256 signs once it activates");
  });

  it("10.6 replacing the only algorithm switches at once (nothing else could sign); the old key stays in JWKS until retention", async () => {
    const store = createMemoryStore();
    const dataKey = randomBytes(32);
    let t = 1_800_000_000;
    const clock = () => t * 1000;
    const es = await new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, policy).signingKey();
    t += 10;
    const rsOnly = new KeyManager(store.keys, new DataProtector(dataKey), ["RS256"], clock, policy);
    assert.equal((await rsOnly.signingKey()).alg, "RS256");
    assert.ok((await rsOnly.jwks()).keys.some((k) => k.kid === es.kid), "the ES256 key still verifies");
  });

  it("10.6 dropping the signing algorithm while an added one is still announced does not stop signing", async () => {
    const store = createMemoryStore();
    const dataKey = randomBytes(32);
    let t = 1_800_000_000;
    const clock = () => t * 1000;
    await new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, policy).signingKey();
    t += 10;
    await new KeyManager(store.keys, new DataProtector(dataKey), ["ES256", "RS256"], clock, policy).jwks(); // RS256 announced
    t += 10;
    const rsOnly = new KeyManager(store.keys, new DataProtector(dataKey), ["RS256"], clock, policy);
    assert.equal((await rsOnly.signingKey()).alg, "RS256");
  });

  it("10.7 keys of an algorithm removed from the config stay in JWKS (tokens they signed verify) until retention deletes them", async () => {
    const store = createMemoryStore();
    const dataKey = randomBytes(32);
    let t = 1_800_000_000;
    const clock = () => t * 1000;
    const both = new KeyManager(store.keys, new DataProtector(dataKey), ["ES256", "RS256"], clock, policy);
    const rs = await both.signingKey("RS256");
    t += 10;
    const esOnly = new KeyManager(store.keys, new DataProtector(dataKey), ["ES256"], clock, policy);
    assert.ok((await esOnly.jwks()).keys.some((k) => k.kid === rs.kid), "published while another process may still sign with it");
    const verify = await esOnly.verificationKeys();
    assert.ok(await verify({ alg: "RS256", kid: rs.kid }));
    // Past the longest it can have signed (its rotation, plus the lead) and the retention after that.
    t += policy.rotationInterval + policy.propagationTime + 65 + policy.retentionTime + 1;
    assert.ok(!(await esOnly.jwks()).keys.some((k) => k.kid === rs.kid), "deleted after retention");
    assert.ok(!(await store.keys.list()).some((k) => k.kid === rs.kid));
  });
});

describe("data protector", () => {
  it("round-trips, and refuses tampering and other purposes", async () => {
    const protector = new DataProtector(randomBytes(32));
    const sealed = await protector.protect("session-cookie", "hello");
    assert.equal(await protector.unprotect("session-cookie", sealed), "hello");
    assert.equal(await protector.unprotect("signing-keys", sealed), undefined);
    assert.equal(await protector.unprotect("session-cookie", sealed.slice(0, -2) + "AA"), undefined);
    assert.equal(await new DataProtector(randomBytes(32)).unprotect("session-cookie", sealed), undefined);
    assert.throws(() => new DataProtector(randomBytes(16)));
  });
});
