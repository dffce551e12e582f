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
  assert.equal((await metadata()).acr_values_supported, undefined, "an embedder's login page has no second factors unless it says so");
  assert.deepEqual((await metadata(["mfa", "phr"])).acr_values_supported, ["mfa", "phr"]);
  assert.deepEqual((await metadata(["mfa"])).acr_values_supported, ["mfa"]);
  assert.equal((await metadata([])).acr_values_supported, undefined);
});

test("20 embedder without second factors: acr_values=mfa does not send a signed-in user back to the login page; configured values do", async () => {
  const REDIRECT = "https://rp.test/cb";
  const authorize = async (authentication?: { acrValues?: ("mfa" | "phr")[]; requireSecondFactor?: boolean }) => {
    const provider = createProvider({
      issuer: "https://idp.test",
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      clients: [{ client_id: "app", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", scope: "openid" }],
      interaction: { loginUrl: "https://idp.test/my-login" },
      ...(authentication ? { authentication } : {}),
    });
    try {
      const { cookies } = await provider.signIn(new Request("https://idp.test/my-login"), { sub: "u1" });
      const cookie = cookies.map((c) => c.split(";")[0]).join("; ");
      const url = new URL("https://idp.test/connect/authorize");
      url.search = new URLSearchParams({ client_id: "app", redirect_uri: REDIRECT, response_type: "code", scope: "openid", acr_values: "mfa", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" }).toString();
      const response = await provider.fetch(new Request(url, { headers: { cookie } }));
      const discovery = (await (await provider.fetch(new Request("https://idp.test/.well-known/openid-configuration"))).json()) as Record<string, unknown>;
      return { location: new URL(response.headers.get("location") ?? "https://invalid.test/"), supported: discovery.acr_values_supported };
    } finally {
      await provider.close();
    }
  };
  const plain = await authorize();
  assert.equal(plain.location.origin, "https://rp.test", "default: straight back to the client");
  assert.ok(plain.location.searchParams.get("code"));
  assert.equal(plain.supported, undefined);
  const stepUp = await authorize({ acrValues: ["mfa"] });
  assert.equal(stepUp.location.href.startsWith("https://idp.test/my-login"), true, "a login page that offers mfa gets the step-up");
  const policy = await authorize({ requireSecondFactor: true });
  assert.equal(policy.location.href.startsWith("https://idp.test/my-login"), true, "requireSecondFactor: mfa is reachable, so it is asked for");
  assert.deepEqual(policy.supported, ["mfa"]);
});

test("21 library: with external providers, a custom user store is followed by the store's accounts through UserDirectory (claims, disabled accounts end their sessions)", async () => {
  const store = createMemoryStore();
  const provider = createProvider({
    issuer: "https://idp.test",
    store,
    dataKey: randomBytes(32),
    clients: [],
    users: { findBySubject: async (sub) => (sub === "own-1" ? { sub, claims: { name: "Own" } } : undefined) },
    externalProviders: [{ id: "corp", authorization_endpoint: "https://sso.test/a", token_endpoint: "https://sso.test/t", userinfo_endpoint: "https://sso.test/u", client_id: "c", client_secret: "s" }],
  });
  try {
    const now = Math.floor(Date.now() / 1000);
    await store.accounts!.create({ sub: "fed-1", username: "fed", emailVerified: false, claims: { name: "Federated" }, disabled: false, createdAt: now, updatedAt: now });
    const session = async (sub: string) => {
      const { cookies } = await provider.signIn(new Request("https://idp.test/login"), { sub });
      const cookie = cookies.map((c) => c.split(";")[0]).join("; ");
      return () => provider.getSession(new Request("https://idp.test/", { headers: { cookie } }));
    };
    const own = await session("own-1");
    const fed = await session("fed-1");
    const unknown = await session("nobody");
    assert.ok(await own());
    assert.equal((await fed())?.sub, "fed-1", "a stored account's session goes on");
    assert.ok(await unknown(), "a subject of neither store keeps its session, as without external providers");
    await store.accounts!.update("fed-1", { disabled: true, updatedAt: now });
    assert.equal(await fed(), undefined, "a disabled stored account's session ends (UserDirectory.isSessionValid)");
    assert.ok(await own());
  } finally {
    await provider.close();
  }
});
