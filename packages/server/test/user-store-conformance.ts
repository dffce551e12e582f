import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccountConflictError, type AccountCredential, type StoredAccount } from "../src/stores/accounts.ts";
import type { Store } from "../src/stores/interfaces.ts";
import { StoreValueError } from "../src/stores/values.ts";
import { UserDirectory, AccountInputError, FixedAccountError } from "../src/accounts/user-directory.ts";
import { createArgon2Hasher } from "../src/security/passwords.ts";
import type { TesseraEvent } from "../src/events.ts";

let n = 0;
const account = (overrides: Partial<StoredAccount> = {}): StoredAccount => {
  n++;
  return {
    sub: `sub-${n}-${Math.random().toString(36).slice(2)}`,
    username: `user${n}`,
    email: `user${n}@example.com`,
    emailVerified: false,
    passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    claims: { name: `User ${n}`, role: ["reader"] },
    disabled: false,
    createdAt: 1000 + n,
    updatedAt: 1000 + n,
    ...overrides,
  };
};

const credential = (subject: string, overrides: Partial<AccountCredential> = {}): AccountCredential => ({
  id: `cred-${Math.random().toString(36).slice(2)}`,
  subject,
  type: "passkey",
  name: "Laptop",
  secret: "pQECAyYgASFYIE",
  counter: 0,
  transports: ["internal", "hybrid"],
  data: JSON.stringify({ backedUp: true }),
  createdAt: 2000,
  ...overrides,
});

/** Optional fields may come back absent or undefined; both mean "not set". */
const plain = (o: unknown) => JSON.parse(JSON.stringify(o ?? null)) as unknown;

/** The behaviour every AccountStore must have; memory, SQLite and PostgreSQL run this same suite. */
export function userStoreConformance(name: string, open: () => Promise<Store>): void {
  describe(`user store conformance: ${name}`, () => {
    const withStore = async (fn: (store: Store) => Promise<void>) => {
      const store = await open();
      try {
        assert.ok(store.accounts, "the store has accounts");
        await fn(store);
      } finally {
        await store.close();
      }
    };

    it("20 creates and finds an account by sub, username and email (case-insensitively), keeping every field", () =>
      withStore(async ({ accounts }) => {
        const a = account({ username: "Alice.Smith", email: "Alice@Example.COM", emailVerified: true, claims: { name: "Alice Ünïcödé 😀", nested: { list: [1, "two", null] } } });
        await accounts!.create(a);
        assert.deepEqual(plain(await accounts!.findBySubject(a.sub)), plain(a));
        assert.equal((await accounts!.findByUsername("alice.smith"))?.sub, a.sub);
        assert.equal((await accounts!.findByUsername("ALICE.SMITH"))?.sub, a.sub);
        assert.equal((await accounts!.findByEmail("alice@example.com"))?.sub, a.sub);
        assert.equal(await accounts!.findBySubject("missing"), undefined);
        assert.equal(await accounts!.findByUsername("nobody"), undefined);
        assert.equal(await accounts!.findByEmail("nobody@example.com"), undefined);
        const noEmail = account({ email: undefined, passwordHash: undefined });
        await accounts!.create(noEmail);
        assert.deepEqual(plain(await accounts!.findBySubject(noEmail.sub)), plain(noEmail));
      }));

    it("20 refuses a taken sub, username or email (any case); accounts without email never clash", () =>
      withStore(async ({ accounts }) => {
        const a = account({ username: "bob", email: "bob@example.com" });
        await accounts!.create(a);
        await assert.rejects(accounts!.create(account({ sub: a.sub })), (e: unknown) => e instanceof AccountConflictError && e.field === "sub");
        await assert.rejects(accounts!.create(account({ username: "BOB" })), (e: unknown) => e instanceof AccountConflictError && e.field === "username");
        await assert.rejects(accounts!.create(account({ email: "BOB@example.com" })), (e: unknown) => e instanceof AccountConflictError && e.field === "email");
        await accounts!.create(account({ email: undefined }));
        await accounts!.create(account({ email: undefined }));
        const other = account();
        await accounts!.create(other);
        await assert.rejects(accounts!.update(other.sub, { username: "Bob", updatedAt: 5000 }), (e: unknown) => e instanceof AccountConflictError && e.field === "username");
        await assert.rejects(accounts!.update(other.sub, { email: "bob@EXAMPLE.com", updatedAt: 5000 }), (e: unknown) => e instanceof AccountConflictError && e.field === "email");
        // Nothing changed by the refused updates.
        assert.deepEqual(plain(await accounts!.findBySubject(other.sub)), plain(other));
      }));

    it("20 updates fields, clears email and password, and reports a missing account", () =>
      withStore(async ({ accounts }) => {
        const a = account();
        await accounts!.create(a);
        const updated = await accounts!.update(a.sub, { username: "renamed", email: "new@example.com", emailVerified: true, claims: { name: "New Name" }, disabled: true, sessionsValidAfter: 1_764_590_400_123, updatedAt: 9000 });
        assert.equal(updated?.sessionsValidAfter, 1_764_590_400_123, "milliseconds fit");
        assert.equal(updated?.username, "renamed");
        assert.equal(updated?.email, "new@example.com");
        assert.equal(updated?.emailVerified, true);
        assert.equal(updated?.disabled, true);
        assert.deepEqual(updated?.claims, { name: "New Name" });
        assert.equal(updated?.updatedAt, 9000);
        assert.equal(updated?.createdAt, a.createdAt);
        assert.equal((await accounts!.findByUsername(a.username)), undefined, "the old username is free");
        assert.equal((await accounts!.findByUsername("RENAMED"))?.sub, a.sub);
        const cleared = await accounts!.update(a.sub, { email: null, passwordHash: null, updatedAt: 9001 });
        assert.equal(cleared?.email, undefined);
        assert.equal(cleared?.passwordHash, undefined);
        assert.equal(await accounts!.findByEmail("new@example.com"), undefined);
        assert.equal(await accounts!.update("missing", { disabled: true, updatedAt: 1 }), undefined);
      }));

    it("20 lists accounts in creation order a page at a time, searching sub, username, email and name", () =>
      withStore(async ({ accounts }) => {
        const created: StoredAccount[] = [];
        for (let i = 0; i < 5; i++) {
          const a = account({ username: `page${i}`, email: `page${i}@corp.example`, claims: { name: `Pager Number ${i}` }, createdAt: 100 + Math.floor(i / 2) });
          created.push(a);
          await accounts!.create(a);
        }
        await accounts!.create(account({ username: "zed", email: "zed@elsewhere.example", claims: { name: "Zed" }, createdAt: 50 }));
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await accounts!.query({ query: "PAGE", cursor, count: 2 });
          assert.ok(page.accounts.length <= 2);
          seen.push(...page.accounts.map((a) => a.sub));
          cursor = page.next ?? undefined;
        } while (cursor);
        const expected = [...created].sort((a, b) => a.createdAt - b.createdAt || (a.sub < b.sub ? -1 : 1)).map((a) => a.sub);
        assert.deepEqual(seen, expected);
        assert.equal((await accounts!.query({ query: "corp.example", count: 10 })).accounts.length, 5);
        assert.equal((await accounts!.query({ query: "number 3", count: 10 })).accounts[0]?.username, "page3");
        assert.equal((await accounts!.query({ query: created[1]!.sub, count: 10 })).accounts[0]?.sub, created[1]!.sub);
        assert.equal((await accounts!.query({ query: "100%_!", count: 10 })).accounts.length, 0, "LIKE wildcards are literal");
        const all = await accounts!.query({ count: 100 });
        assert.equal(all.accounts.length, 6);
        assert.equal(all.accounts[0]?.username, "zed");
        assert.equal(all.next, null);
        assert.deepEqual(await accounts!.query({ cursor: "not-a-cursor", count: 100 }).then((p) => p.accounts.length), 6, "a bad cursor starts at the beginning");
      }));

    it("20 removes an account with its credentials, tokens and links", () =>
      withStore(async ({ accounts }) => {
        const a = account();
        await accounts!.create(a);
        const c = credential(a.sub);
        await accounts!.addCredential(c);
        await accounts!.putToken({ key: "tok-remove", subject: a.sub, purpose: "password_reset", createdAt: 1, expiresAt: 10_000 });
        await accounts!.addLink({ issuer: "https://idp.example", externalSubject: "ext-1", subject: a.sub, createdAt: 1 });
        assert.equal(await accounts!.remove(a.sub), true);
        assert.equal(await accounts!.remove(a.sub), false);
        assert.equal(await accounts!.findBySubject(a.sub), undefined);
        assert.equal(await accounts!.getCredential(c.id), undefined);
        assert.equal(await accounts!.consumeToken("tok-remove", "password_reset", 2), undefined);
        assert.equal(await accounts!.findByExternalLink("https://idp.example", "ext-1"), undefined);
        assert.deepEqual(await accounts!.listLinks(a.sub), []);
      }));

    it("20 credentials: add, find by id, list by type, counters advance only upwards, removal is single-use", () =>
      withStore(async ({ accounts }) => {
        const a = account();
        const b = account();
        await accounts!.create(a);
        await accounts!.create(b);
        const passkey = credential(a.sub, { createdAt: 10 });
        const totp = credential(a.sub, { type: "totp", name: undefined, transports: undefined, data: undefined, secret: "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..x.y.z", createdAt: 11 });
        const codes = [credential(a.sub, { type: "recovery_code", id: "rc-hash-1", name: undefined, transports: undefined, createdAt: 12 }), credential(a.sub, { type: "recovery_code", id: "rc-hash-2", name: undefined, transports: undefined, createdAt: 12 })];
        for (const c of [passkey, totp, ...codes]) await accounts!.addCredential(c);
        await assert.rejects(accounts!.addCredential({ ...passkey, subject: b.sub }), AccountConflictError);
        assert.deepEqual(plain(await accounts!.getCredential(passkey.id)), plain(passkey));
        assert.deepEqual(plain(await accounts!.getCredential(totp.id)), plain(totp));
        assert.deepEqual((await accounts!.listCredentials(a.sub)).map((c) => c.id), [passkey.id, totp.id, "rc-hash-1", "rc-hash-2"]);
        assert.deepEqual((await accounts!.listCredentials(a.sub, "recovery_code")).map((c) => c.id), ["rc-hash-1", "rc-hash-2"]);
        assert.deepEqual(await accounts!.listCredentials(b.sub), []);
        // TOTP steps and passkey counters: a step once, never one at or below the last.
        assert.equal(await accounts!.advanceCounter(totp.id, 55_000_000, 3000), true);
        assert.equal(await accounts!.advanceCounter(totp.id, 55_000_000, 3001), false);
        assert.equal(await accounts!.advanceCounter(totp.id, 54_999_999, 3002), false);
        const raced = await Promise.all([accounts!.advanceCounter(totp.id, 55_000_001, 3003), accounts!.advanceCounter(totp.id, 55_000_001, 3003)]);
        assert.deepEqual(raced.sort(), [false, true]);
        assert.equal((await accounts!.getCredential(totp.id))?.counter, 55_000_001);
        assert.equal((await accounts!.getCredential(totp.id))?.lastUsedAt, 3003);
        assert.equal(await accounts!.advanceCounter("missing", 5, 1), false);
        // Rename within the owner only.
        assert.equal(await accounts!.updateCredential(b.sub, passkey.id, { name: "Stolen" }), false);
        assert.equal(await accounts!.updateCredential(a.sub, passkey.id, { name: "YubiKey", lastUsedAt: 4000 }), true);
        assert.equal((await accounts!.getCredential(passkey.id))?.name, "YubiKey");
        // A recovery code works once, also when two uses race; another user cannot remove it.
        assert.equal(await accounts!.removeCredential(b.sub, "rc-hash-1"), false);
        const uses = await Promise.all([accounts!.removeCredential(a.sub, "rc-hash-1"), accounts!.removeCredential(a.sub, "rc-hash-1")]);
        assert.deepEqual(uses.sort(), [false, true]);
        assert.equal(await accounts!.removeCredentials(a.sub, "recovery_code"), 1);
        assert.equal(await accounts!.removeCredentials(a.sub), 2);
        assert.deepEqual(await accounts!.listCredentials(a.sub), []);
      }));

    it("20 one-time tokens: consumed once, never when expired or for another purpose", () =>
      withStore(async ({ accounts }) => {
        const a = account();
        await accounts!.create(a);
        const token = { key: "hash-of-token-1", subject: a.sub, purpose: "email_verification", data: JSON.stringify({ email: a.email }), createdAt: 100, expiresAt: 200 };
        await accounts!.putToken(token);
        assert.equal(await accounts!.consumeToken(token.key, "password_reset", 150), undefined, "another purpose");
        const raced = await Promise.all([accounts!.consumeToken(token.key, "email_verification", 150), accounts!.consumeToken(token.key, "email_verification", 150)]);
        assert.deepEqual(plain(raced.find(Boolean)), plain(token));
        assert.equal(raced.filter(Boolean).length, 1);
        await accounts!.putToken({ ...token, key: "hash-expired" });
        assert.equal(await accounts!.consumeToken("hash-expired", "email_verification", 200), undefined, "expired at expiresAt");
        await accounts!.putToken({ ...token, key: "r1", purpose: "password_reset" });
        await accounts!.putToken({ ...token, key: "r2", purpose: "password_reset" });
        await accounts!.putToken({ ...token, key: "v1" });
        assert.equal(await accounts!.removeTokens(a.sub, "password_reset"), 2);
        assert.equal(await accounts!.consumeToken("r1", "password_reset", 150), undefined);
        assert.ok(await accounts!.consumeToken("v1", "email_verification", 150));
        await accounts!.putToken({ ...token, key: "old", expiresAt: 120 });
        await accounts!.putToken({ ...token, key: "live", expiresAt: 500 });
        assert.equal(await accounts!.removeExpiredTokens(300, 100), 1);
        assert.ok(await accounts!.consumeToken("live", "email_verification", 300));
      }));

    it("20 external links: one account per (issuer, subject), found by the pair only", () =>
      withStore(async ({ accounts }) => {
        const a = account();
        const b = account();
        await accounts!.create(a);
        await accounts!.create(b);
        const issuer = `https://idp.example/${"x".repeat(1500)}`;
        await accounts!.addLink({ issuer, externalSubject: "u1", subject: a.sub, createdAt: 5 });
        await assert.rejects(accounts!.addLink({ issuer, externalSubject: "u1", subject: b.sub, createdAt: 6 }), AccountConflictError);
        await accounts!.addLink({ issuer: "https://other.example", externalSubject: "u1", subject: b.sub, createdAt: 6 });
        assert.equal((await accounts!.findByExternalLink(issuer, "u1"))?.sub, a.sub);
        assert.equal((await accounts!.findByExternalLink("https://other.example", "u1"))?.sub, b.sub);
        assert.equal(await accounts!.findByExternalLink(issuer, "U1"), undefined);
        assert.deepEqual((await accounts!.listLinks(a.sub)).map((l) => l.externalSubject), ["u1"]);
        assert.equal(await accounts!.removeLink(b.sub, issuer, "u1"), false);
        assert.equal(await accounts!.removeLink(a.sub, issuer, "u1"), true);
        assert.equal(await accounts!.findByExternalLink(issuer, "u1"), undefined);
      }));

    it("20 bad input: over-long values, NUL and lone surrogates are refused on write and find nothing on read", () =>
      withStore(async ({ accounts }) => {
        const bad = ["x".repeat(300), "nul\u0000byte", "lone\uD800surrogate", "\uDC00"];
        for (const value of bad) {
          await assert.rejects(accounts!.create(account({ username: value })), StoreValueError);
          await assert.rejects(accounts!.create(account({ email: `${value}@example.com` })), StoreValueError);
          await assert.rejects(accounts!.create(account({ claims: { name: value.length > 10 ? "\u0000" : value } })), StoreValueError);
          assert.equal(await accounts!.findBySubject(value), undefined);
          assert.equal(await accounts!.findByUsername(value), undefined);
          assert.equal(await accounts!.findByEmail(value), undefined);
          assert.equal(await accounts!.getCredential(value), undefined);
          assert.equal(await accounts!.consumeToken(value, "password_reset", 1), undefined);
          assert.equal(await accounts!.findByExternalLink(value, value), undefined);
          assert.deepEqual((await accounts!.query({ query: value, count: 5 })).accounts, []);
          assert.equal(await accounts!.removeCredential(value, value), false);
          assert.equal(await accounts!.remove(value), false);
        }
        await assert.rejects(accounts!.create(account({ username: "\uFDFA".repeat(100) })), StoreValueError, "a username too long once normalized");
        await assert.rejects(accounts!.create(account({ claims: { ["key\u0000"]: 1 } })), StoreValueError);
        await assert.rejects(accounts!.create(account({ createdAt: 1.5 })), StoreValueError);
        const a = account();
        await accounts!.create(a);
        await assert.rejects(accounts!.update(a.sub, { username: "\u0000", updatedAt: 1 }), StoreValueError);
        await assert.rejects(accounts!.addCredential(credential(a.sub, { id: "x".repeat(2000) })), StoreValueError);
        await assert.rejects(accounts!.addCredential(credential(a.sub, { name: "\uD800" })), StoreValueError);
        await assert.rejects(accounts!.putToken({ key: "k\u0000", subject: a.sub, purpose: "password_reset", createdAt: 1, expiresAt: 2 }), StoreValueError);
        await assert.rejects(accounts!.addLink({ issuer: "i", externalSubject: "\uDFFF", subject: a.sub, createdAt: 1 }), StoreValueError);
        // Nothing was stored by the refused writes.
        assert.deepEqual(plain(await accounts!.findBySubject(a.sub)), plain(a));
        assert.equal((await accounts!.query({ count: 100 })).accounts.length, 1);
      }));

    it("20 the user directory: fixed accounts beside stored ones, argon2id with rehash, disabled accounts refused, events", { timeout: 30_000 }, () =>
      withStore(async (store) => {
        const events: TesseraEvent[] = [];
        const deactivated: string[] = [];
        const cheap = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
        const directory = new UserDirectory({
          store: store.accounts,
          fixed: [{ sub: "1", username: "alice", password: "alice-password", claims: { name: "Alice" } }],
          hasher: cheap,
          emit: (e) => events.push(e),
          onDeactivated: async (sub) => void deactivated.push(sub),
        });
        await assert.rejects(directory.create({ username: "ALICE", password: "long enough" }, "admin"), AccountConflictError, "a fixed username");
        await assert.rejects(directory.create({ username: "bob", password: "short" }, "admin"), AccountInputError);
        await assert.rejects(directory.create({ username: "bo b", password: "long enough" }, "admin"), AccountInputError);
        await assert.rejects(directory.create({ username: "bob", email: "not-an-email", password: "long enough" }, "admin"), AccountInputError);
        await assert.rejects(directory.create({ username: "bob", claims: { sub: "1" } }, "admin"), AccountInputError);
        const bob = await directory.create({ username: "bob", email: "bob@example.com", emailVerified: true, password: "bob-password", claims: { name: "Bob" } }, "admin");
        assert.match(bob.sub, /^[A-Za-z0-9_-]{22}$/);
        assert.equal(bob.emailVerified, true);
        assert.equal((await directory.verifyPassword("BOB", "bob-password"))?.sub, bob.sub);
        assert.equal(await directory.verifyPassword("bob", "wrong-password"), undefined);
        assert.equal(await directory.verifyPassword("nobody", "bob-password"), undefined);
        assert.equal((await directory.verifyPassword("alice", "alice-password"))?.fixed, true);
        assert.deepEqual((await directory.findBySubject(bob.sub))?.claims, { name: "Bob", preferred_username: "bob", email: "bob@example.com", email_verified: true });
        // A hash with other parameters is replaced at the next good sign-in.
        const stronger = createArgon2Hasher({ memoryCost: 2048, timeCost: 1 });
        const rehashing = new UserDirectory({ store: store.accounts, hasher: stronger });
        const before = (await store.accounts!.findBySubject(bob.sub))!.passwordHash!;
        assert.match(before, /m=1024,t=1/);
        assert.ok(await rehashing.verifyPassword("bob", "bob-password"));
        const after = (await store.accounts!.findBySubject(bob.sub))!.passwordHash!;
        assert.match(after, /^\$argon2id\$v=19\$m=2048,t=1,p=1\$/);
        assert.ok(await rehashing.verifyPassword("bob", "bob-password"), "the new hash verifies");
        assert.equal((await store.accounts!.findBySubject(bob.sub))!.passwordHash, after, "an up-to-date hash stays");
        // Disabled: the same answer as a wrong password, no claims, sessions ended.
        await directory.setDisabled(bob.sub, true, "admin");
        assert.deepEqual(deactivated, [bob.sub]);
        assert.equal(await directory.verifyPassword("bob", "bob-password"), undefined);
        assert.equal(await directory.findBySubject(bob.sub), undefined);
        assert.equal((await directory.get(bob.sub))?.disabled, true);
        await directory.setDisabled(bob.sub, false, "cli");
        assert.ok(await directory.verifyPassword("bob", "bob-password"));
        await directory.setPassword(bob.sub, "a new password", "self");
        assert.equal(await directory.verifyPassword("bob", "bob-password"), undefined);
        assert.ok(await directory.checkPassword(bob.sub, "a new password"));
        assert.equal((await directory.update(bob.sub, { email: "Bob2@example.com" }, "admin"))?.emailVerified, false, "a changed email is unverified");
        // Fixed accounts are read-only.
        await assert.rejects(directory.update("1", { claims: {} }, "admin"), FixedAccountError);
        await assert.rejects(directory.setDisabled("1", true, "admin"), FixedAccountError);
        await assert.rejects(directory.remove("1", "admin"), FixedAccountError);
        const listed = await directory.list({ count: 10 });
        assert.deepEqual(listed.users.map((u) => [u.username, u.fixed]), [["alice", true], ["bob", false]]);
        assert.deepEqual((await directory.list({ query: "ALI", count: 10 })).users.map((u) => u.username), ["alice"]);
        await store.accounts!.addCredential(credential(bob.sub));
        assert.equal(await directory.resetSecondFactors(bob.sub, "admin"), 1);
        assert.equal(await directory.remove(bob.sub, "admin"), true);
        assert.deepEqual(
          events.map((e) => e.type),
          ["account.created", "account.disabled", "account.enabled", "account.password_changed", "account.updated", "account.updated", "account.deleted"],
        );
      }));
  });
}
