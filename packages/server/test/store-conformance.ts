import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeSessionCursor, type PersistedGrant, type ServerSideSession, type Store, type StoredClient } from "../src/stores/interfaces.ts";
import { DEVICE_CODE_LIMITS, STORE_LIMITS, StoreValueError } from "../src/stores/values.ts";
import type { DeviceCodeRecord } from "../src/stores/interfaces.ts";

const deviceCode = (overrides: Partial<DeviceCodeRecord> = {}): DeviceCodeRecord => ({
  key: `d-${Math.random().toString(36).slice(2)}`,
  userCodeKey: `u-${Math.random().toString(36).slice(2)}`,
  clientId: "tv",
  scope: "openid offline_access",
  status: "pending",
  data: "{}",
  createdAt: 1000,
  expiresAt: 1600,
  interval: 5,
  ...overrides,
});

const grant = (overrides: Partial<PersistedGrant> = {}): PersistedGrant => ({
  key: `k-${Math.random().toString(36).slice(2)}`,
  kind: "authorization_code",
  clientId: "c1",
  subject: "s1",
  sessionId: "sid1",
  grantId: "g1",
  data: JSON.stringify({ hello: "world" }),
  createdAt: 1000,
  expiresAt: 2000,
  ...overrides,
});

/** The behaviour every Store must have; memory and SQL stores run this same suite. */
export function storeConformance(name: string, open: () => Promise<Store>): void {
  describe(`store conformance: ${name}`, () => {
    it("puts, gets and removes grants, keeping every field", async () => {
      const store = await open();
      try {
        const g = grant({ subject: undefined, sessionId: undefined, grantId: undefined });
        await store.grants.put(g);
        // Optional fields may come back absent or undefined; both mean "not set".
        const defined = (o: object | undefined) => JSON.parse(JSON.stringify(o ?? null));
        assert.deepEqual(defined(await store.grants.get(g.key)), defined(g));
        await store.grants.remove(g.key);
        assert.equal(await store.grants.get(g.key), undefined);
        assert.equal(await store.grants.get("missing"), undefined);
      } finally {
        await store.close();
      }
    });

    it("22 ping resolves while the store answers (the readiness probe)", async () => {
      const store = await open();
      try {
        await store.ping();
      } finally {
        await store.close();
      }
    });

    it("overwrites a grant put twice under one key", async () => {
      const store = await open();
      try {
        const g = grant();
        await store.grants.put(g);
        await store.grants.put({ ...g, data: "{}", expiresAt: 5000 });
        const stored = await store.grants.get(g.key);
        assert.equal(stored?.data, "{}");
        assert.equal(stored?.expiresAt, 5000);
      } finally {
        await store.close();
      }
    });

    it("consumes exactly once, even when racing", async () => {
      const store = await open();
      try {
        const g = grant();
        await store.grants.put(g);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.grants.consume(g.key, 1500)));
        assert.equal(results.filter((r) => r?.firstUse).length, 1);
        assert.ok(results.every((r) => r?.grant.consumedAt === 1500));
        assert.equal(await store.grants.consume("missing", 1), undefined);
      } finally {
        await store.close();
      }
    });

    it("removes by filter, and refuses an empty filter", async () => {
      const store = await open();
      try {
        const a = grant({ grantId: "family" });
        const b = grant({ grantId: "family", kind: "access_token" });
        const c = grant({ grantId: "other", subject: "s2" });
        for (const g of [a, b, c]) await store.grants.put(g);
        assert.equal(await store.grants.removeAll({ grantId: "family" }), 2);
        assert.equal(await store.grants.get(a.key), undefined);
        assert.ok(await store.grants.get(c.key));
        assert.equal(await store.grants.removeAll({ subject: "s2", clientId: "nope" }), 0);
        assert.equal(await store.grants.removeAll({ subject: "s2", clientId: "c1" }), 1);
        await assert.rejects(store.grants.removeAll({}));
      } finally {
        await store.close();
      }
    });

    it("puts if absent atomically, treating expired grants as absent", async () => {
      const store = await open();
      try {
        const g = grant({ kind: "replay", createdAt: 1000, expiresAt: 1100 });
        const results = await Promise.all(Array.from({ length: 10 }, () => store.grants.putIfAbsent(g)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await store.grants.putIfAbsent({ ...g, createdAt: 1050, expiresAt: 1200 }), false, "still live");
        assert.equal(await store.grants.putIfAbsent({ ...g, createdAt: 1101, expiresAt: 1300 }), true, "the old one expired");
        assert.equal((await store.grants.get(g.key))?.expiresAt, 1300);
      } finally {
        await store.close();
      }
    });

    it("finds grants by filter, oldest first, up to a limit", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 4; i++) await store.grants.put(grant({ subject: "finder", kind: "consent", createdAt: 100 - i }));
        await store.grants.put(grant({ subject: "finder", kind: "refresh_token" }));
        const found = await store.grants.findAll({ subject: "finder", kind: "consent" }, 3);
        assert.deepEqual(found.map((g) => g.createdAt), [97, 98, 99]);
        assert.equal((await store.grants.findAll({ subject: "finder" }, 10)).length, 5);
        await assert.rejects(store.grants.findAll({}, 1));
        assert.equal(await store.grants.count({ subject: "finder" }, 0), 5);
        assert.equal(await store.grants.count({ subject: "finder", kind: "consent" }, 0), (await store.grants.findAll({ subject: "finder", kind: "consent" }, 10)).length);
        await assert.rejects(store.grants.count({}, 0));
      } finally {
        await store.close();
      }
    });

    it("14.2 count with a max stops counting there (live grants only)", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 40; i++) await store.grants.put(grant({ subject: "capped", kind: "throttle", expiresAt: 2000 }));
        for (let i = 0; i < 10; i++) await store.grants.put(grant({ subject: "capped", kind: "throttle", expiresAt: 500 }));
        assert.equal(await store.grants.count({ subject: "capped", kind: "throttle" }, 1000, 5), 5);
        assert.equal(await store.grants.count({ subject: "capped", kind: "throttle" }, 1000, 40), 40);
        assert.equal(await store.grants.count({ subject: "capped", kind: "throttle" }, 1000, 100), 40, "expired grants never count, even under the cap");
        assert.equal(await store.grants.count({ subject: "capped", kind: "throttle" }, 100, 45), 45);
        assert.equal(await store.grants.count({ subject: "capped", kind: "throttle" }, 1000, 0), 0);
        assert.equal(await store.grants.count({ subject: "capped", kind: "consent" }, 1000, 5), 0);
      } finally {
        await store.close();
      }
    });

    it("14 counts live grants by filter, with no page-size cap", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 130; i++) await store.grants.put(grant({ subject: "counted", kind: "throttle", expiresAt: 2000 }));
        for (let i = 0; i < 3; i++) await store.grants.put(grant({ subject: "counted", kind: "throttle", expiresAt: 500 }));
        await store.grants.put(grant({ subject: "counted", kind: "consent", expiresAt: 2000 }));
        assert.equal(await store.grants.count({ subject: "counted", kind: "throttle" }, 1000), 130);
        assert.equal(await store.grants.count({ subject: "counted", kind: "throttle" }, 100), 133);
        assert.equal(await store.grants.count({ subject: "counted" }, 2000), 0, "a grant expiring at liveAt is not live");
        await assert.rejects(store.grants.count({}, 0));
      } finally {
        await store.close();
      }
    });

    it("removes expired grants in batches", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 5; i++) await store.grants.put(grant({ expiresAt: 100 + i }));
        const live = grant({ expiresAt: 10_000 });
        await store.grants.put(live);
        assert.equal(await store.grants.removeExpired(1000, 3), 3);
        assert.equal(await store.grants.removeExpired(1000, 3), 2);
        assert.equal(await store.grants.removeExpired(1000, 3), 0);
        assert.ok(await store.grants.get(live.key));
      } finally {
        await store.close();
      }
    });

    const session = (i: number, overrides: Partial<ServerSideSession> = {}): ServerSideSession => ({
      // Mixed case on purpose: paging must agree with the store's ordering of keys.
      // ("a…" sorts before "B…" by locale, after it by code unit.)
      key: `${i % 2 ? "B" : "a"}-key-${i}`,
      sessionId: `sid-${i}`,
      subject: `user-${i % 3}`,
      displayName: i % 2 ? `Alice ${i}` : `Bob_${i}`,
      created: 1000 + Math.floor(i / 2),
      renewed: 1000 + i,
      expires: 5000 + i,
      clientIds: ["a", "b"],
      ticket: "sealed",
      ...overrides,
    });

    it("keeps server-side sessions: put, get, by sid, update, remove", async () => {
      const store = await open();
      try {
        await store.sessions.put(session(1));
        const key1 = session(1).key;
        assert.deepEqual(await store.sessions.get(key1), session(1));
        assert.deepEqual(await store.sessions.getBySessionId("sid-1"), session(1));
        await store.sessions.put(session(1, { renewed: 2000, expires: 9000, clientIds: ["a", "b", "c"] }));
        assert.deepEqual((await store.sessions.get(key1))?.clientIds, ["a", "b", "c"]);
        assert.equal((await store.sessions.get(key1))?.expires, 9000);
        const removed = await store.sessions.remove([key1, "missing"]);
        assert.deepEqual(removed.map((s) => s.sessionId), ["sid-1"]);
        assert.equal(await store.sessions.get(key1), undefined);
        assert.deepEqual(await store.sessions.remove([key1]), []);
      } finally {
        await store.close();
      }
    });

    it("rekeys a session atomically: exactly one of racing moves wins, a missing key moves nothing", async () => {
      const store = await open();
      try {
        await store.sessions.put(session(1));
        const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.sessions.rekey(session(1).key, `new-key-${i}`)));
        assert.equal(results.filter(Boolean).length, 1);
        const winner = `new-key-${results.indexOf(true)}`;
        assert.equal(await store.sessions.get(session(1).key), undefined);
        assert.deepEqual(await store.sessions.get(winner), session(1, { key: winner }));
        assert.equal((await store.sessions.getBySessionId("sid-1"))?.key, winner);
        assert.equal(await store.sessions.rekey("missing", "other"), false);
        assert.equal(await store.sessions.get("other"), undefined);
        assert.equal((await store.sessions.query({ count: 10 })).sessions.length, 1);
      } finally {
        await store.close();
      }
    });

    it("updates a session only under an existing key, never inserting", async () => {
      const store = await open();
      try {
        assert.equal(await store.sessions.update(session(1)), false);
        assert.equal(await store.sessions.get(session(1).key), undefined, "nothing inserted");
        await store.sessions.put(session(1));
        assert.equal(await store.sessions.update(session(1, { clientIds: ["c"], expires: 9999 })), true);
        assert.deepEqual(await store.sessions.get(session(1).key), session(1, { clientIds: ["c"], expires: 9999 }));
        assert.equal(await store.sessions.rekey(session(1).key, "moved"), true);
        assert.equal(await store.sessions.update(session(1, { clientIds: ["stale"] })), false, "a stale key adds no row");
        assert.deepEqual((await store.sessions.query({ count: 10 })).sessions.map((s) => [s.key, s.clientIds]), [["moved", ["c"]]]);
      } finally {
        await store.close();
      }
    });

    it("creates a session only when neither its key nor its sid exists, never replacing", async () => {
      const store = await open();
      try {
        const results = await Promise.all(Array.from({ length: 5 }, () => store.sessions.create(session(1))));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await store.sessions.create(session(1, { clientIds: ["stale"], expires: 1 })), false, "same key");
        assert.equal(await store.sessions.create(session(1, { key: "other-key", clientIds: ["stale"] })), false, "same sid");
        assert.deepEqual(await store.sessions.get(session(1).key), session(1));
        assert.equal(await store.sessions.get("other-key"), undefined);
        assert.equal(await store.sessions.create(session(2)), true);
        assert.equal((await store.sessions.query({ count: 10 })).sessions.length, 2);
      } finally {
        await store.close();
      }
    });

    it("queries sessions by filters and pages them with a cursor", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 9; i++) await store.sessions.put(session(i));
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await store.sessions.query({ count: 4, cursor });
          seen.push(...page.sessions.map((s) => s.sessionId));
          if (!page.next) break;
          cursor = page.next;
        }
        // Creation order, then key order within one second.
        assert.deepEqual(seen.length, 9);
        assert.equal(new Set(seen).size, 9);
        const byCreated = seen.map((sid) => session(Number(sid.slice(4))).created);
        assert.deepEqual(byCreated, [...byCreated].sort((a, b) => a - b));
        assert.deepEqual((await store.sessions.query({ count: 10, subject: "USER-1" })).sessions.map((s) => s.sessionId), ["sid-1", "sid-4", "sid-7"]);
        assert.deepEqual((await store.sessions.query({ count: 10, displayName: "alice" })).sessions.length, 4);
        assert.deepEqual((await store.sessions.query({ count: 10, sessionId: "sid-8" })).sessions.map((s) => s.sessionId), ["sid-8"]);
        // LIKE wildcards in a filter are literal characters.
        assert.deepEqual((await store.sessions.query({ count: 10, displayName: "b_2" })).sessions.map((s) => s.sessionId), ["sid-2"]);
        assert.deepEqual((await store.sessions.query({ count: 10, displayName: "%" })).sessions, []);
        assert.equal((await store.sessions.query({ count: 3 })).next !== null, true);
        assert.equal((await store.sessions.query({ count: 9 })).next, null);
      } finally {
        await store.close();
      }
    });

    it("removes expired sessions once, even when racing", async () => {
      const store = await open();
      try {
        for (let i = 0; i < 6; i++) await store.sessions.put(session(i, { expires: i < 4 ? 100 : 10_000 }));
        const results = await Promise.all([store.sessions.removeExpired(1000, 10), store.sessions.removeExpired(1000, 10)]);
        assert.deepEqual(results.flat().map((s) => s.sessionId).sort(), ["sid-0", "sid-1", "sid-2", "sid-3"]);
        assert.equal((await store.sessions.query({ count: 10 })).sessions.length, 2);
      } finally {
        await store.close();
      }
    });

    // Bad input (review item 6): what one store keeps, every store keeps unchanged; what one refuses,
    // every store refuses with a StoreValueError (never a database error); lookups by it find nothing.
    const odd = ["名前", "🙂‍↔️", "e\u0301", "\u202Eevil", "\uFEFF", "\uFFFD", "'; drop table x; --", "%_!\\"];

    it("6 bad input: values at the column limits and odd unicode round-trip exactly", async () => {
      const store = await open();
      try {
        const g = grant({ key: "k".repeat(STORE_LIMITS.key), clientId: "c".repeat(STORE_LIMITS.clientId), subject: "ü".repeat(STORE_LIMITS.subject), sessionId: "s".repeat(STORE_LIMITS.sessionId), grantId: odd.join("").slice(0, STORE_LIMITS.grantId), data: JSON.stringify({ nul: "\u0000", odd }) });
        await store.grants.put(g);
        const defined = (o: object | undefined) => JSON.parse(JSON.stringify(o ?? null));
        assert.deepEqual(defined(await store.grants.get(g.key)), defined(g));
        assert.equal((await store.grants.findAll({ subject: g.subject!, grantId: g.grantId! }, 5)).length, 1);
        for (const [i, text] of odd.entries()) {
          const s = session(i, { subject: text, displayName: text.repeat(500), sessionId: `sid-${text}` });
          await store.sessions.put(s);
          assert.deepEqual(await store.sessions.getBySessionId(s.sessionId), s, JSON.stringify(text));
        }
        assert.deepEqual((await store.sessions.query({ count: 20, subject: "%_!\\" })).sessions.map((s) => s.subject), ["%_!\\"]);
      } finally {
        await store.close();
      }
    });

    it("6 bad input: too-long values, NUL and lone surrogates are refused with a StoreValueError on every write", async () => {
      const store = await open();
      try {
        const bad: Partial<PersistedGrant>[] = [
          { key: "k".repeat(STORE_LIMITS.key + 1) },
          { clientId: "c".repeat(STORE_LIMITS.clientId + 1) },
          { subject: "s".repeat(STORE_LIMITS.subject + 1) },
          { sessionId: "s".repeat(STORE_LIMITS.sessionId + 1) },
          { grantId: "g".repeat(STORE_LIMITS.grantId + 1) },
          { subject: "a\u0000b" },
          { clientId: "\u0000" },
          { data: "{\"x\":\"\u0000\"}" },
          { subject: "lone \uD800 surrogate" },
          { sessionId: "\uDC00" },
        ];
        for (const overrides of bad) {
          const g = grant(overrides);
          await assert.rejects(store.grants.put(g), StoreValueError, JSON.stringify(overrides).slice(0, 60));
          await assert.rejects(store.grants.putIfAbsent(g), StoreValueError);
        }
        for (const overrides of [{ subject: "s".repeat(STORE_LIMITS.subject + 1) }, { sessionId: "a\u0000" }, { displayName: "Bob\u0000" }, { ticket: "\uD800" }, { key: "\u0000" }]) {
          await assert.rejects(store.sessions.put(session(1, overrides)), StoreValueError, JSON.stringify(overrides).slice(0, 60));
        }
        await assert.rejects(store.keys.add({ kid: "k\u0000", alg: "RS256", protectedJwk: "jwe", createdAt: 1, activatesAt: 1 }), StoreValueError);
        await assert.rejects(store.keys.update(async () => ({ add: [{ kid: "k".repeat(STORE_LIMITS.kid + 1), alg: "RS256", protectedJwk: "jwe", createdAt: 1, activatesAt: 1 }], remove: [] })), StoreValueError);
        assert.deepEqual(await store.keys.list(), []);
        assert.equal((await store.sessions.query({ count: 10 })).sessions.length, 0, "nothing half-written");
      } finally {
        await store.close();
      }
    });

    it("6.5 bad input: a time that is not whole, safe Unix seconds (fractional, huge, not finite) is refused with a StoreValueError on every write", async () => {
      const store = await open();
      try {
        const notSeconds = [1.5, 1e300, 2 ** 53, -1e300, Number.NaN, Number.POSITIVE_INFINITY];
        for (const t of notSeconds) {
          for (const overrides of [{ expiresAt: t }, { createdAt: t }, { consumedAt: t }] as Partial<PersistedGrant>[]) {
            await assert.rejects(store.grants.put(grant(overrides)), StoreValueError, `${JSON.stringify(Object.keys(overrides))} ${t}`);
            await assert.rejects(store.grants.putIfAbsent(grant(overrides)), StoreValueError, `${JSON.stringify(Object.keys(overrides))} ${t}`);
          }
          for (const overrides of [{ created: t }, { renewed: t }, { expires: t }] as Partial<ServerSideSession>[]) {
            await assert.rejects(store.sessions.put(session(1, overrides)), StoreValueError, `${JSON.stringify(Object.keys(overrides))} ${t}`);
          }
          await assert.rejects(store.keys.add({ kid: "k1", alg: "RS256", protectedJwk: "jwe", createdAt: 1, activatesAt: t }), StoreValueError, `activatesAt ${t}`);
          await assert.rejects(store.keys.update(async () => ({ add: [{ kid: "k2", alg: "RS256", protectedJwk: "jwe", createdAt: t, activatesAt: 1 }], remove: [] })), StoreValueError, `createdAt ${t}`);
          await assert.rejects(store.keys.add({ kid: "k3", alg: "RS256", protectedJwk: "jwe", createdAt: 1, activatesAt: 1, retiresAt: t }), StoreValueError, `retiresAt ${t}`);
        }
        await assert.rejects(store.grants.put(grant({ expiresAt: 1.5 })), (e: unknown) => e instanceof StoreValueError && e.field === "expiresAt" && e.origin === "server", "times from requests are rounded first: any other is the server's fault");
        assert.deepEqual(await store.keys.list(), []);
        assert.equal((await store.sessions.query({ count: 10 })).sessions.length, 0, "nothing half-written");
        // Whole seconds at the edges of the safe range are kept exactly.
        const edge = grant({ createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, consumedAt: -1 });
        await store.grants.put(edge);
        assert.equal((await store.grants.get(edge.key))?.expiresAt, Number.MAX_SAFE_INTEGER);
      } finally {
        await store.close();
      }
    });

    it("6 bad input: lookups and filters by values no store keeps find nothing, and never throw", async () => {
      const store = await open();
      try {
        await store.grants.put(grant({ key: "live", subject: "s" }));
        await store.sessions.put(session(1));
        for (const value of ["a\u0000b", "\u0000", "x".repeat(5000), "\uD800", "\uDFFF"]) {
          assert.equal(await store.grants.get(value), undefined);
          assert.equal(await store.grants.consume(value, 1), undefined);
          await store.grants.remove(value);
          assert.deepEqual(await store.grants.findAll({ subject: value }, 5), []);
          assert.deepEqual(await store.grants.findAll({ clientId: value, kind: "consent" }, 5), []);
          assert.equal(await store.grants.removeAll({ sessionId: value }), 0);
          assert.equal(await store.grants.removeAll({ grantId: value }), 0);
          assert.equal(await store.sessions.get(value), undefined);
          assert.equal(await store.sessions.getBySessionId(value), undefined);
          assert.deepEqual(await store.sessions.remove([value, session(9).key]), []);
          for (const filter of ["subject", "displayName", "sessionId"] as const) {
            if (value.length > 100) continue; // a long substring is an ordinary filter
            assert.deepEqual((await store.sessions.query({ count: 5, [filter]: value })).sessions, [], `${filter} ${JSON.stringify(value)}`);
          }
          const forged = encodeSessionCursor({ created: 1, key: value });
          assert.equal((await store.sessions.query({ count: 5, cursor: forged })).sessions.length, 1, "a cursor no store made is ignored");
          await store.keys.remove(value);
        }
        assert.ok(await store.grants.get("live"));
        assert.ok(await store.sessions.get(session(1).key));
      } finally {
        await store.close();
      }
    });

    it("keeps keys, ignoring a second add of the same kid", async () => {
      const store = await open();
      try {
        const key = { kid: "k1", alg: "RS256", protectedJwk: "jwe", createdAt: 1, activatesAt: 1, retiresAt: undefined };
        await store.keys.add(key);
        await store.keys.add({ ...key, protectedJwk: "other" });
        await store.keys.add({ ...key, kid: "k2", createdAt: 2, retiresAt: 99 });
        const defined = (o: object) => JSON.parse(JSON.stringify(o));
        assert.deepEqual(defined(await store.keys.list()), defined([key, { ...key, kid: "k2", createdAt: 2, retiresAt: 99 }]));
        await store.keys.remove("k1");
        assert.deepEqual((await store.keys.list()).map((k) => k.kid), ["k2"]);
      } finally {
        await store.close();
      }
    });

    const storedClient = (id: string, overrides: Partial<StoredClient> = {}): StoredClient => ({
      clientId: id,
      metadata: JSON.stringify({ client_id: id, redirect_uris: ["https://rp.test/cb"] }),
      secrets: [{ id: "s1", hash: "h".repeat(43), createdAt: 1000 }],
      createdAt: 1000,
      updatedAt: 1000,
      ...overrides,
    });

    it("19 keeps run-time clients: create once, get, update, remove, every field kept", async () => {
      const store = await open();
      try {
        const a = storedClient("client-a", { registrationTokenHash: "t".repeat(43), secrets: [{ id: "s1", hash: "h".repeat(43), createdAt: 1000, expiresAt: 2000 }, { id: "s2", hash: "g".repeat(43), createdAt: 1500 }] });
        assert.equal(await store.clients.create(a), true);
        assert.equal(await store.clients.create({ ...a, metadata: "{}" }), false, "a second create with the id inserts nothing");
        const defined = (o: object | undefined) => JSON.parse(JSON.stringify(o ?? null));
        assert.deepEqual(defined(await store.clients.get("client-a")), defined(a));
        assert.equal(await store.clients.update({ ...a, metadata: '{"client_id":"client-a"}', secrets: [], updatedAt: 3000 }), true);
        const updated = await store.clients.get("client-a");
        assert.equal(updated?.metadata, '{"client_id":"client-a"}');
        assert.deepEqual(updated?.secrets, []);
        assert.equal(updated?.updatedAt, 3000);
        assert.equal(await store.clients.update(storedClient("missing")), false, "update never inserts");
        assert.equal(await store.clients.get("missing"), undefined);
        assert.equal(await store.clients.remove("client-a"), true);
        assert.equal(await store.clients.remove("client-a"), false);
        assert.equal(await store.clients.get("client-a"), undefined);
      } finally {
        await store.close();
      }
    });

    it("19 lists run-time clients in client_id order, a page at a time", async () => {
      const store = await open();
      try {
        for (const id of ["c3", "a1", "b2", "B0", "d4"]) await store.clients.create(storedClient(id));
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.clients.list({ after, count: 2 });
          if (page.length === 0) break;
          seen.push(...page.map((c) => c.clientId));
          after = page[page.length - 1]!.clientId;
        }
        assert.equal(seen.length, 5);
        assert.deepEqual([...seen].sort(), ["B0", "a1", "b2", "c3", "d4"].sort());
        assert.equal(new Set(seen).size, 5, "no client twice across pages");
        assert.deepEqual(await store.clients.list({ count: 0 }), []);
      } finally {
        await store.close();
      }
    });

    it("19 bad input: client values no store keeps are refused on write and find nothing on read", async () => {
      const store = await open();
      try {
        await assert.rejects(store.clients.create(storedClient("x".repeat(STORE_LIMITS.clientId + 1))), StoreValueError);
        await assert.rejects(store.clients.create(storedClient("nul\u0000")), StoreValueError);
        await assert.rejects(store.clients.create(storedClient("ok", { metadata: "\ud800" })), StoreValueError);
        await assert.rejects(store.clients.create(storedClient("ok", { createdAt: 1.5 })), StoreValueError);
        await assert.rejects(store.clients.create(storedClient("ok", { secrets: [{ id: "s", hash: "h", createdAt: Number.NaN }] })), StoreValueError);
        assert.equal(await store.clients.get("ok"), undefined, "nothing was stored by a refused write");
        assert.equal(await store.clients.get("nul\u0000"), undefined);
        assert.equal(await store.clients.get("x".repeat(500)), undefined);
        assert.equal(await store.clients.remove("nul\u0000"), false);
        assert.deepEqual(await store.clients.list({ after: "nul\u0000", count: 5 }), []);
      } finally {
        await store.close();
      }
    });

    it("18 device codes: created once per key and per user code, found by either, every field kept", async () => {
      const store = await open();
      try {
        const d = deviceCode();
        assert.equal(await store.deviceCodes.create(d), true);
        assert.equal(await store.deviceCodes.create({ ...deviceCode(), key: d.key }), false, "same device code key");
        assert.equal(await store.deviceCodes.create({ ...deviceCode(), userCodeKey: d.userCodeKey }), false, "same user code");
        const defined = (o: object | undefined) => JSON.parse(JSON.stringify(o ?? null));
        assert.deepEqual(defined(await store.deviceCodes.get(d.key)), defined(d));
        assert.deepEqual(defined(await store.deviceCodes.findByUserCode(d.userCodeKey)), defined(d));
        assert.equal(await store.deviceCodes.get("missing"), undefined);
        assert.equal(await store.deviceCodes.findByUserCode("missing"), undefined);
        await store.deviceCodes.remove(d.key);
        assert.equal(await store.deviceCodes.get(d.key), undefined);
        assert.equal(await store.deviceCodes.create({ ...deviceCode(), userCodeKey: d.userCodeKey }), true, "the user code is free again");
      } finally {
        await store.close();
      }
    });

    it("18 device codes: one decision lands, only while pending and live, even when racing", async () => {
      const store = await open();
      try {
        const d = deviceCode();
        await store.deviceCodes.create(d);
        assert.equal(await store.deviceCodes.decide(d.userCodeKey, { status: "approved", subject: "s1", sessionId: "sid1", data: '{"a":1}' }, 1600), false, "expired");
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.deviceCodes.decide(d.userCodeKey, i % 2 ? { status: "denied", data: "{}" } : { status: "approved", subject: "s1", sessionId: "sid1", data: '{"a":1}' }, 1100)),
        );
        assert.equal(results.filter(Boolean).length, 1);
        const decided = await store.deviceCodes.get(d.key);
        assert.equal(decided?.status, results.indexOf(true) % 2 ? "denied" : "approved");
        assert.equal(await store.deviceCodes.decide("missing", { status: "denied", data: "{}" }, 1100), false);
      } finally {
        await store.close();
      }
    });

    it("18 device codes: polls are compare-and-set on the last poll time, and consume is exactly once, even when racing", async () => {
      const store = await open();
      try {
        const d = deviceCode();
        await store.deviceCodes.create(d);
        const first = await Promise.all(Array.from({ length: 10 }, () => store.deviceCodes.recordPoll(d.key, undefined, 1100, 5)));
        assert.equal(first.filter(Boolean).length, 1);
        assert.equal(await store.deviceCodes.recordPoll(d.key, 1000, 1105, 5), false, "a stale last poll time");
        assert.equal(await store.deviceCodes.recordPoll(d.key, 1100, 1102, 10), true);
        const polled = await store.deviceCodes.get(d.key);
        assert.equal(polled?.lastPolledAt, 1102);
        assert.equal(polled?.interval, 10);
        assert.equal(await store.deviceCodes.recordPoll("missing", undefined, 1, 5), false);
        const taken = await Promise.all(Array.from({ length: 10 }, () => store.deviceCodes.consume(d.key, 1200)));
        assert.equal(taken.filter((t) => t?.firstUse).length, 1);
        assert.ok(taken.every((t) => t?.record.consumedAt === 1200));
        assert.equal(await store.deviceCodes.consume("missing", 1), undefined);
      } finally {
        await store.close();
      }
    });

    it("18 device codes: expired ones are removed in batches", async () => {
      const store = await open();
      try {
        const old = [deviceCode({ expiresAt: 100 }), deviceCode({ expiresAt: 200 }), deviceCode({ expiresAt: 300 })];
        const live = deviceCode({ expiresAt: 5000 });
        for (const d of [...old, live]) await store.deviceCodes.create(d);
        assert.equal(await store.deviceCodes.removeExpired(1000, 2), 2);
        assert.equal(await store.deviceCodes.removeExpired(1000, 10), 1);
        assert.ok(await store.deviceCodes.get(live.key));
        assert.equal(await store.deviceCodes.findByUserCode(old[0]!.userCodeKey), undefined);
      } finally {
        await store.close();
      }
    });

    it("18 device codes bad input: values at the limits round-trip; too long, NUL, lone surrogates and unsafe times are refused; lookups by them find nothing", async () => {
      const store = await open();
      try {
        const full = deviceCode({ key: "k".repeat(STORE_LIMITS.key), userCodeKey: "u".repeat(DEVICE_CODE_LIMITS.userCodeKey), clientId: "c".repeat(STORE_LIMITS.clientId), scope: "s".repeat(DEVICE_CODE_LIMITS.scope), data: "\u{1F600}".repeat(DEVICE_CODE_LIMITS.data / 2) });
        assert.equal(await store.deviceCodes.create(full), true);
        assert.deepEqual((await store.deviceCodes.get(full.key))?.data, full.data);
        const refused: Partial<DeviceCodeRecord>[] = [
          { key: "k".repeat(STORE_LIMITS.key + 1) },
          { userCodeKey: "u".repeat(DEVICE_CODE_LIMITS.userCodeKey + 1) },
          { clientId: "c".repeat(STORE_LIMITS.clientId + 1) },
          { scope: "s".repeat(DEVICE_CODE_LIMITS.scope + 1) },
          { data: "d".repeat(DEVICE_CODE_LIMITS.data + 1) },
          { subject: "x".repeat(STORE_LIMITS.subject + 1) },
          { clientId: "a\u0000b" },
          { data: "\ud800" },
          { expiresAt: 1.5 },
          { interval: Number.MAX_SAFE_INTEGER + 2 },
          { lastPolledAt: Number.NaN },
        ];
        for (const bad of refused) await assert.rejects(store.deviceCodes.create(deviceCode(bad)), StoreValueError, JSON.stringify(bad).slice(0, 80));
        const d = deviceCode();
        await store.deviceCodes.create(d);
        await assert.rejects(store.deviceCodes.decide(d.userCodeKey, { status: "approved", subject: "s".repeat(STORE_LIMITS.subject + 1), data: "{}" }, 1100), StoreValueError);
        await assert.rejects(store.deviceCodes.decide(d.userCodeKey, { status: "approved", data: "\u0000" }, 1100), StoreValueError);
        await assert.rejects(store.deviceCodes.recordPoll(d.key, undefined, 1.5, 5), StoreValueError);
        for (const value of ["\u0000", "\ud800", "k".repeat(5000)]) {
          assert.equal(await store.deviceCodes.get(value), undefined);
          assert.equal(await store.deviceCodes.findByUserCode(value), undefined);
          assert.equal(await store.deviceCodes.decide(value, { status: "denied", data: "{}" }, 1100), false);
          assert.equal(await store.deviceCodes.recordPoll(value, undefined, 1100, 5), false);
          assert.equal(await store.deviceCodes.consume(value, 1100), undefined);
          await store.deviceCodes.remove(value);
        }
        assert.equal((await store.deviceCodes.get(d.key))?.status, "pending", "nothing stored was changed");
      } finally {
        await store.close();
      }
    });
  });
}
