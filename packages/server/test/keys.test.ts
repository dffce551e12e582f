import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { DataProtector } from "../src/keys/data-protection.ts";
import { KeyManager } from "../src/keys/key-manager.ts";
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
