import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { addressAllowed, createOutboundFetch } from "../src/http/outbound.ts";

describe("outbound requests to client-registered URLs", () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/redirect") {
        res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" });
        return res.end();
      }
      if (req.url === "/big") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end("x".repeat(200_000));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"keys":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const policy = { allowLoopback: false, allowPrivateNetworks: false, timeout: 2, maxResponseBytes: 65536 };

  it("classifies addresses", () => {
    for (const address of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) assert.equal(addressAllowed(address, policy), false, address);
    for (const address of ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "fc00::1", "fe80::1", "::"]) assert.equal(addressAllowed(address, policy), false, address);
    for (const address of ["93.184.216.34", "2606:4700::1111"]) assert.equal(addressAllowed(address, policy), true, address);
    assert.equal(addressAllowed("127.0.0.1", { ...policy, allowLoopback: true }), true);
    assert.equal(addressAllowed("169.254.169.254", { ...policy, allowPrivateNetworks: true }), true);
  });

  it("refuses loopback, private literals, names resolving to them, and other schemes, unless allowed", async () => {
    const guarded = createOutboundFetch(policy);
    await assert.rejects(guarded(`${base}/jwks`), /may not be reached/);
    await assert.rejects(guarded(`http://localhost:${new URL(base).port}/jwks`), /outbound requests may not reach|fetch failed/);
    await assert.rejects(guarded("http://169.254.169.254/latest/meta-data"), /may not be reached/);
    await assert.rejects(guarded("file:///etc/passwd"), /not fetched/);
    const local = createOutboundFetch({ ...policy, allowLoopback: true });
    assert.equal((await local(`${base}/jwks`)).status, 200);
  });

  it("follows no redirect and reads no more than the cap", async () => {
    const local = createOutboundFetch({ ...policy, allowLoopback: true });
    await assert.rejects(local(`${base}/redirect`), /redirects are not followed/);
    await assert.rejects(local(`${base}/big`), /too large/);
  });
});
