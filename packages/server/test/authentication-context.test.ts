import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { acrOf, meetsAcr, requiredAcr, requiredAcrFor, withSecondFactor } from "../src/session/authentication-context.ts";
import { createProvider } from "../src/provider.ts";
import { createMemoryStore } from "../src/stores/memory/index.ts";

test("20 acr: derived from amr (phr for a passkey, mfa for two factors, none for one)", () => {
  assert.equal(acrOf(["pwd"]), undefined);
  assert.equal(acrOf(["pwd", "otp", "mfa"]), "mfa");
  assert.equal(acrOf(["swk"]), "phr");
  assert.equal(acrOf(["hwk", "mfa"]), "phr");
  assert.equal(meetsAcr(["swk"], "mfa"), true, "phr > mfa");
  assert.equal(meetsAcr(["pwd", "otp", "mfa"], "phr"), false);
  assert.equal(meetsAcr(["pwd"], undefined), true);
});

test("20 acr_values: the weakest known value listed is required; unknown or unsupported values are voluntary; the policy asks for mfa", () => {
  assert.equal(requiredAcr("phr mfa", false), "mfa");
  assert.equal(requiredAcr("phr", false), "phr");
  assert.equal(requiredAcr("urn:example:silver", false), undefined);
  assert.equal(requiredAcr(undefined, true), "mfa");
  assert.equal(requiredAcr("phr", true), "phr");
  assert.equal(requiredAcr("phr", false, ["mfa"]), undefined, "a value the login pages cannot reach is ignored");
  const provider = { requireSecondFactor: false, acrValues: ["mfa", "phr"] as ("mfa" | "phr")[] };
  assert.equal(requiredAcrFor(undefined, { defaultAcrValues: ["phr"], requireSecondFactor: false }, provider), "phr", "the client's default_acr_values");
  assert.equal(requiredAcrFor("mfa", { defaultAcrValues: ["phr"], requireSecondFactor: false }, provider), "mfa", "the request's acr_values win");
  assert.equal(requiredAcrFor(undefined, { requireSecondFactor: true }, provider), "mfa", "the client's require_second_factor");
  assert.equal(requiredAcrFor(undefined, { requireSecondFactor: false }, { ...provider, requireSecondFactor: true }), "mfa", "the provider's policy");
});

test("20 amr: a second factor adds its method and mfa once", () => {
  assert.deepEqual(withSecondFactor(["pwd"], "otp"), ["pwd", "otp", "mfa"]);
  assert.deepEqual(withSecondFactor(["pwd", "otp", "mfa"], "otp"), ["pwd", "otp", "mfa"]);
  assert.deepEqual(withSecondFactor([], "otp"), ["otp"]);
});

test("20 discovery: acr_values_supported lists the configured values, and is absent when there are none", async () => {
  const metadata = async (acrValues?: ("mfa" | "phr")[]) => {
    const provider = createProvider({ issuer: "https://idp.test", store: createMemoryStore(), dataKey: randomBytes(32), clients: [], ...(acrValues ? { authentication: { acrValues } } : {}) });
    try {
      return (await (await provider.fetch(new Request("https://idp.test/.well-known/openid-configuration"))).json()) as Record<string, unknown>;
    } finally {
      await provider.close();
    }
  };
  assert.deepEqual((await metadata()).acr_values_supported, ["mfa", "phr"]);
  assert.deepEqual((await metadata(["mfa"])).acr_values_supported, ["mfa"]);
  assert.equal((await metadata([])).acr_values_supported, undefined);
});
