import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startServer } from "@tessera/host";
import { Flow, RP, baseConfig } from "./support/fixtures.ts";

const FORM = "application/x-www-form-urlencoded";
const BASIC = `Basic ${Buffer.from("web:web-secret").toString("base64")}`;

/** A body too large to be read, sent without Content-Length (chunked), so only the streaming cap stops it. */
function chunkedBody(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const chunk = new TextEncoder().encode("a=" + "x".repeat(8190));
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}

describe("input limits on every endpoint that reads parameters", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create();
  });
  after(() => flow.close());

  const many = Array.from({ length: 70 }, (_, i) => `p${i}=v`).join("&");
  const long = "x".repeat(5000);
  // [name, body or query, expected status]
  const hostile: [string, string | Uint8Array, number][] = [
    ["too many parameters", many, 400],
    ["an over-long value", `state=${long}`, 400],
    ["a repeated parameter", "client_id=web&client_id=web", 400],
    ["a percent-encoding that is not UTF-8", "state=%C3%28", 400],
    ["a truncated percent-encoding", "state=%E0%A4%A", 400],
  ];

  type Endpoint = { name: string; json: boolean; request: (body: string | Uint8Array | ReadableStream<Uint8Array>, contentType?: string) => Promise<Response> };
  const post = (path: string, json: boolean, auth = true): Endpoint => ({
    name: `POST ${path}`,
    json,
    request: (body, contentType = FORM) =>
      flow.host.fetch(
        new Request(`${flow.host.issuer}${path}`, {
          method: "POST",
          headers: { "content-type": contentType, ...(auth ? { authorization: BASIC } : {}) },
          body,
          ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
        } as RequestInit),
      ),
  });
  const get = (path: string): Endpoint => ({
    name: `GET ${path}`,
    json: false,
    request: (query) => flow.host.fetch(new Request(`${flow.host.issuer}${path}?${typeof query === "string" ? query : ""}`)),
  });
  const endpoints = (): Endpoint[] => [
    post("/connect/token", true),
    post("/connect/introspect", true),
    post("/connect/revocation", true),
    post("/connect/authorize", false, false),
    post("/connect/endsession", false, false),
    get("/connect/authorize"),
    get("/connect/endsession"),
  ];

  it("refuses hostile parameters with invalid_request (JSON) or an error page, never a 5xx", async () => {
    for (const endpoint of endpoints()) {
      for (const [name, input, status] of hostile) {
        const response = await endpoint.request(input);
        assert.equal(response.status, status, `${endpoint.name}: ${name}`);
        if (endpoint.json) assert.equal(((await response.json()) as { error: string }).error, "invalid_request", `${endpoint.name}: ${name}`);
        else assert.match(response.headers.get("content-type") ?? "", /text\/html/, `${endpoint.name}: ${name}`);
      }
    }
  });

  it("refuses bodies that are too large (declared or streamed), of the wrong type, or not UTF-8", async () => {
    for (const endpoint of endpoints().filter((e) => e.name.startsWith("POST"))) {
      assert.equal((await endpoint.request(`a=${"x".repeat(70_000)}`)).status, 413, `${endpoint.name}: declared`);
      assert.equal((await endpoint.request(chunkedBody(200_000))).status, 413, `${endpoint.name}: chunked`);
      assert.equal((await endpoint.request("grant_type=client_credentials", "application/json")).status, 400, `${endpoint.name}: content type`);
      assert.equal((await endpoint.request("grant_type=client_credentials", "text/plain")).status, 400, `${endpoint.name}: content type`);
      assert.equal((await endpoint.request(new Uint8Array([0x61, 0x3d, 0xff, 0xfe]))).status, 400, `${endpoint.name}: raw bytes`);
    }
  });

  it("decodes forms strictly but correctly: + is a space, UTF-8 percent-encodings round-trip", async () => {
    const { url, verifier } = await flow.authorizeUrl({ scope: undefined, state: undefined });
    const query = `${url.search.slice(1)}&scope=openid+profile&state=caf%C3%A9+%F0%9F%94%91`;
    const page = await flow.login(await flow.go(`${url.origin}${url.pathname}?${query}`));
    const response = Flow.response(page);
    assert.equal(response.get("state"), "café 🔑");
    const tokens = (await (await flow.redeem(response.get("code")!, verifier)).json()) as { scope: string };
    assert.equal(tokens.scope, "openid profile");
  });

  it("caps page form bodies, and a body that is no form is refused by the CSRF check", async () => {
    const login = `${flow.host.issuer}/login`;
    const big = await flow.host.fetch(new Request(login, { method: "POST", headers: { "content-type": FORM }, body: `username=${"x".repeat(20_000)}` }));
    assert.equal(big.status, 413);
    for (const [type, body] of [
      [FORM, new Uint8Array([0x75, 0x3d, 0xff])],
      ["multipart/form-data; boundary=x", "--x\r\nbroken"],
      ["application/json", "{"],
    ] as const) {
      const response = await flow.host.fetch(new Request(login, { method: "POST", headers: { "content-type": type }, body }));
      assert.equal(response.status, 400, type);
    }
  });
});

describe("security headers on every page and protocol response", () => {
  let flow: Flow;
  before(async () => {
    const config = baseConfig();
    config.clients![0] = { ...config.clients![0]!, grant_types: ["authorization_code", "client_credentials"] };
    flow = await Flow.create(config);
  });
  after(() => flow.close());

  it("pages: no caching, no framing, a nonce CSP, no referrer, no sniffing", async () => {
    const { url } = await flow.authorizeUrl();
    const pages = [`${flow.host.issuer}/`, `${flow.host.issuer}/login`, `${flow.host.issuer}/logout`, `${flow.host.issuer}/signedout`, `${flow.host.issuer}/connect/authorize?client_id=nope`];
    const responses = [...(await Promise.all(pages.map((p) => flow.host.fetch(new Request(p))))), (await flow.go(url)) as unknown as Response];
    for (const [i, response] of responses.entries()) {
      const headers = response.headers;
      const name = pages[i] ?? "login page of an authorize request";
      if (headers.get("location")) continue;
      assert.match(headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/, name);
      assert.match(headers.get("content-security-policy") ?? "", /default-src 'none'/, name);
      assert.doesNotMatch(headers.get("content-security-policy") ?? "", /script-src[^;]*'unsafe-inline'/, name);
      assert.equal(headers.get("x-frame-options"), "DENY", name);
      assert.equal(headers.get("cache-control"), "no-store", name);
      assert.equal(headers.get("referrer-policy"), "no-referrer", name);
      assert.equal(headers.get("x-content-type-options"), "nosniff", name);
    }
  });

  it("protocol responses: no-store for tokens, userinfo, introspection and errors; cacheable discovery", async () => {
    const token = await flow.token({ grant_type: "client_credentials", scope: "api1.read" }, { id: "web", secret: "web-secret" });
    const { access_token } = (await token.clone().json()) as { access_token: string };
    const userinfo = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${access_token}` } }));
    const introspection = await flow.host.fetch(
      new Request(`${flow.host.issuer}/connect/introspect`, { method: "POST", headers: { "content-type": FORM, authorization: `Basic ${Buffer.from("urn:api1:api1-secret").toString("base64")}` }, body: `token=${access_token}` }),
    );
    const error = await flow.token({ grant_type: "nope" }, { id: "web", secret: "web-secret" });
    for (const [name, response] of Object.entries({ token, userinfo, introspection, error })) {
      assert.equal(response.headers.get("cache-control"), "no-store", name);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff", name);
      assert.equal(response.headers.get("referrer-policy"), "no-referrer", name);
    }
    const discovery = await flow.host.fetch(new Request(`${flow.host.issuer}/.well-known/openid-configuration`));
    assert.match(discovery.headers.get("cache-control") ?? "", /^public, max-age=\d+$/);
  });

  it("the check-session iframe may be framed by registered client origins only", async () => {
    const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/checksession`));
    const csp = response.headers.get("content-security-policy") ?? "";
    const ancestors = /frame-ancestors ([^;]+)/.exec(csp)?.[1]?.split(" ") ?? [];
    assert.deepEqual(ancestors, [RP]);
    assert.equal(response.headers.get("x-frame-options"), null);
  });
});

describe("CSRF protection on every form", () => {
  it("refuses each form posted without a token, with a forged one, or with another browser's", async () => {
    const config = baseConfig();
    const flow = await Flow.create({ ...config, serverSideSessions: { enabled: true } });
    const other = await Flow.create(config);
    try {
      const { url } = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" });
      const consent = await flow.login(await flow.go(url));
      assert.ok(consent.query("button[name=decision]"), "the consent form is pending");
      const stolen = (await other.browser.get(`${other.host.issuer}/login`)).query("input[name=csrf]")?.attributes.value ?? "";
      assert.ok(stolen);
      const forms: Record<string, Record<string, string>> = {
        "/login": { username: "alice", password: "alice" },
        "/consent": { decision: "allow", returnUrl: "/connect/authorize/callback?interaction=x" },
        "/grants": { clientId: "web" },
        "/serversidesessions": { sessionId: "x" },
        "/logout": { decision: "yes", logoutId: "x" },
      };
      for (const [path, fields] of Object.entries(forms)) {
        for (const [label, csrf] of [["none", undefined], ["forged", "forged"], ["another browser's", stolen]] as const) {
          const page = await flow.browser.post(`${flow.host.issuer}${path}`, { ...fields, ...(csrf ? { csrf } : {}) });
          assert.equal(page.status, 400, `${path} with ${label} token`);
          assert.match(page.body, /Please try again/, `${path} with ${label} token`);
        }
      }
      // Nothing happened: still signed in, the consent still remembered nothing.
      assert.ok((await flow.browser.get(`${flow.host.issuer}/`)).body.includes("Alice"));
    } finally {
      await flow.close();
      await other.close();
    }
  });
});

describe("slow clients", () => {
  it("closes a request whose body stalls, with 408, after limits.requestTimeout", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-timeout-"));
    const file = join(dir, "tessera.config.json");
    writeFileSync(file, JSON.stringify({ issuer: "http://127.0.0.1:0", store: { kind: "memory" }, port: 0, host: "127.0.0.1", limits: { requestTimeout: 1 }, dataKey: Buffer.alloc(32, 1).toString("base64url") }));
    const server = await startServer(file);
    try {
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(server.port, "127.0.0.1", () => {
          socket.write(`POST /connect/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${FORM}\r\nContent-Length: 100\r\n\r\ngrant_type=`);
        });
        let data = "";
        socket.on("data", (chunk) => (data += chunk.toString()));
        socket.on("close", () => resolve(data));
        socket.on("error", reject);
        setTimeout(() => reject(new Error("the server held the stalled request open")), 15_000).unref();
      });
      assert.match(answer, /^HTTP\/1\.1 408/);
      assert.ok(Date.now() - started < 10_000);
    } finally {
      await server.stop();
    }
  });
});
