import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generate } from "otplib";
import { startTestPostgres } from "../../../test/support/postgres.ts";
import { SecondFactorService } from "../src/accounts/second-factors.ts";
import { DataProtector } from "../src/keys/data-protection.ts";
import type { Store } from "../src/stores/interfaces.ts";
import { createMemoryStore } from "../src/stores/memory/index.ts";
import { createPostgresStore } from "../src/stores/sql/postgres.ts";
import { createSqliteStore } from "../src/stores/sql/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-mfa-"));
const postgres = await startTestPostgres();
after(async () => {
  await postgres?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** SecondFactorService over every store: single use under races, secrets encrypted at rest, bad input refused. */
function secondFactorSuite(name: string, open: () => Promise<Store>, skip: string | false = false) {
  describe(`20 second factors on the ${name} store`, { skip }, () => {
    let now = 1_800_000_000_000;
    const service = (store: Store) =>
      new SecondFactorService({ accounts: store.accounts!, grants: store.grants, protector: new DataProtector(randomBytes(32)), issuer: "https://idp.test", clock: () => now });

    test(`20 ${name}: a TOTP code and a recovery code each work once, also when two uses race; the secret is stored encrypted`, async () => {
      const store = await open();
      try {
        const mfa = service(store);
        const enrolment = await mfa.beginTotp("user-1", "alice");
        assert.equal(await mfa.confirmTotp("user-1", enrolment.ticket, "000000"), undefined);
        assert.equal(await mfa.confirmTotp("user-2", enrolment.ticket, await generate({ secret: enrolment.secret, epoch: now / 1000 })), undefined, "a ticket is bound to its user");
        const codes = await mfa.confirmTotp("user-1", enrolment.ticket, await generate({ secret: enrolment.secret, epoch: now / 1000 }));
        assert.equal(codes?.length, 10);
        const [stored] = await store.accounts!.listCredentials("user-1", "totp");
        assert.ok(stored && !stored.secret.includes(enrolment.secret), "the secret is encrypted at rest");
        // The confirming code's step is used; the next step's code works once, whichever racer wins.
        now += 30_000;
        const next = await generate({ secret: enrolment.secret, epoch: now / 1000 });
        const raced = await Promise.all([mfa.verifyCode("user-1", next), mfa.verifyCode("user-1", next), mfa.verifyCode("user-1", next)]);
        assert.deepEqual(raced.filter(Boolean), ["totp"]);
        // An older step (still in the ±1 window) is refused once a later one was used.
        const previous = await generate({ secret: enrolment.secret, epoch: now / 1000 - 30 });
        assert.equal(await mfa.verifyCode("user-1", previous), undefined);
        // Two steps on (outside the window): refused; the next step works.
        assert.equal(await mfa.verifyCode("user-1", await generate({ secret: enrolment.secret, epoch: now / 1000 + 90 })), undefined);
        const code = codes![0]!;
        const recovery = await Promise.all([mfa.verifyCode("user-1", code), mfa.verifyCode("user-1", code.replace("-", " ").toUpperCase())]);
        assert.deepEqual(recovery.filter(Boolean), ["recovery_code"]);
        assert.equal((await mfa.status("user-1")).recoveryCodes, 9);
        assert.equal(await mfa.verifyCode("user-2", codes![1]!), undefined, "another user's recovery code");
      } finally {
        await store.close();
      }
    });

    test(`20 ${name}: malformed codes, tickets and passkey responses are refused, never thrown`, async () => {
      const store = await open();
      try {
        const mfa = service(store);
        for (const code of ["", "12345", "1234567", "\u0000\u0000\u0000\u0000\u0000\u0000", "x".repeat(10_000), "\ud800abcdefghi"]) assert.equal(await mfa.verifyCode("user-1", code), undefined);
        assert.equal(await mfa.confirmTotp("user-1", "not-a-ticket", "123456"), undefined);
        assert.equal(await mfa.reopenTotp("user-1", "x".repeat(100_000), "alice"), undefined);
        const { ticket } = await mfa.passkeySignIn();
        for (const response of [undefined, null, {}, { id: "\u0000" }, { id: "x".repeat(5000), response: {} }, "text"]) {
          assert.equal((await mfa.verifyPasskeySignIn(ticket, response)).ok, false);
        }
        assert.equal((await mfa.verifyPasskeySignIn("forged", { id: "a" })).ok, false);
        const registration = await mfa.passkeyRegistration({ sub: "user-1", username: "alice" });
        assert.equal(registration.options.authenticatorSelection?.residentKey, "required");
        assert.equal(registration.options.authenticatorSelection?.userVerification, "required");
        assert.equal(registration.options.rp.id, "idp.test");
        assert.equal((await mfa.registerPasskey("user-2", registration.ticket, {}, "x")).ok, false, "a ticket is bound to its user");
        assert.equal((await mfa.registerPasskey("user-1", registration.ticket, { id: "a", response: { clientDataJSON: "!!", attestationObject: "" } }, "x")).ok, false);
        assert.equal(await mfa.removePasskey("user-1", "\u0000"), false);
      } finally {
        await store.close();
      }
    });
  });
}

let n = 0;
secondFactorSuite("memory", async () => createMemoryStore());
secondFactorSuite("sqlite", () => createSqliteStore(join(dir, `db-${n++}`, "tessera.db")));
secondFactorSuite("postgres", async () => createPostgresStore(await postgres!.createDatabase()), postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)");
