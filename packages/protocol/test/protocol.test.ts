import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProtocolError, constantTimeEqual, isValidCodeChallenge, leftHalfHash, parseScope, verifyCodeVerifier } from "../src/index.ts";

describe("PKCE (RFC 7636)", () => {
  it("verifies the RFC 7636 appendix B example", () => {
    assert.equal(verifyCodeVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256"), true);
    assert.equal(verifyCodeVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256"), false);
  });
  it("checks the syntax of challenges and verifiers", () => {
    assert.equal(isValidCodeChallenge("a".repeat(42)), false);
    assert.equal(isValidCodeChallenge("a".repeat(43)), true);
    assert.equal(isValidCodeChallenge("a".repeat(129)), false);
    assert.equal(isValidCodeChallenge("a".repeat(42) + "+"), false);
    assert.equal(verifyCodeVerifier("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256"), false);
  });
});

describe("at_hash (OIDC Core §3.1.3.6)", () => {
  it("matches the OIDC Core example", () => {
    // OIDC Core A.3 example: access_token jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y, RS256.
    assert.equal(leftHalfHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256"), "77QmUPtjPfzWtF2AnpK9RQ");
  });
  it("uses SHA-512 for EdDSA", () => {
    assert.equal(leftHalfHash("x", "EdDSA").length, 43);
  });
});

describe("scope parsing (RFC 6749 §3.3)", () => {
  it("splits, de-duplicates and refuses bad characters", () => {
    assert.deepEqual(parseScope("openid  profile openid"), ["openid", "profile"]);
    assert.equal(parseScope('openid "x"'), undefined);
    assert.equal(parseScope("openid \\x"), undefined);
    assert.deepEqual(parseScope(""), []);
  });
});

describe("ProtocolError", () => {
  it("carries RFC shapes and statuses", () => {
    assert.deepEqual(new ProtocolError("invalid_grant", "nope").toJSON(), { error: "invalid_grant", error_description: "nope" });
    assert.equal(new ProtocolError("invalid_client").status, 401);
    assert.equal(new ProtocolError("invalid_request").status, 400);
    assert.equal(new ProtocolError("invalid_request", undefined, { redirectable: false }).redirectable, false);
  });
  it("compares in constant time", () => {
    assert.equal(constantTimeEqual("a", "a"), true);
    assert.equal(constantTimeEqual("a", "ab"), false);
  });
});
