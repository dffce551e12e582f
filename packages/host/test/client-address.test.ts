import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientAddress, type ProxyTrust } from "../src/client-address.ts";

const env = (remoteAddress: string) => ({ incoming: { socket: { remoteAddress } } }) as never;
const trust = (hops: number, header: ProxyTrust["header"] = "x-forwarded-for"): ProxyTrust => ({ hops, header });
const request = (headers: Record<string, string>) => new Request("https://id.test/login", { headers });

describe("clientAddress", () => {
  it("ignores forwarded headers when no proxy is trusted", () => {
    assert.equal(clientAddress(request({ "x-forwarded-for": "6.6.6.6" }), env("10.0.0.1"), trust(0)), "10.0.0.1");
    assert.equal(clientAddress(request({ forwarded: "for=6.6.6.6" }), env("10.0.0.1"), trust(0)), "10.0.0.1");
  });

  it("counts trusted hops from the right of X-Forwarded-For, so a client cannot spoof its address", () => {
    // The client forged "6.6.6.6"; the one trusted proxy appended the real address 203.0.113.9.
    assert.equal(clientAddress(request({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" }), env("10.0.0.1"), trust(1)), "203.0.113.9");
    assert.equal(clientAddress(request({ "x-forwarded-for": "203.0.113.9, 10.0.0.2" }), env("10.0.0.1"), trust(2)), "203.0.113.9");
    assert.equal(clientAddress(request({}), env("10.0.0.1"), trust(1)), "10.0.0.1");
  });

  it("reads RFC 7239 Forwarded, with quoted IPv6 and ports", () => {
    assert.equal(clientAddress(request({ forwarded: 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https' }), env("10.0.0.1"), trust(1, "forwarded")), "2001:db8::1");
  });
});
