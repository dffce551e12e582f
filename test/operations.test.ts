import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import {
  context,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
  type SpanContext,
  type SpanKind,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
} from "@opentelemetry/api";
import { createHostLogger, parseConfig, ConfigError, startServer, type RunningServer } from "@tessera/host";
import { createTestHost } from "@tessera/testing";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

// A minimal OpenTelemetry SDK stand-in, built on the API's own interfaces: a context manager on
// AsyncLocalStorage (as the Node SDK's) and a tracer that records every span it starts.
class RecordedSpan implements Span {
  readonly attributes: Attributes = {};
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  ended = false;
  readonly context: SpanContext;
  constructor(
    public name: string,
    readonly kind: SpanKind | undefined,
    readonly parentSpanId: string | undefined,
    traceId: string,
    attributes: Attributes = {},
  ) {
    this.context = { traceId, spanId: randomBytes(8).toString("hex"), traceFlags: 1 };
    Object.assign(this.attributes, attributes);
  }
  spanContext() {
    return this.context;
  }
  setAttribute(key: string, value: Attributes[string]) {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes) {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent() {
    return this;
  }
  addLink() {
    return this;
  }
  addLinks() {
    return this;
  }
  setStatus(status: SpanStatus) {
    this.status = status;
    return this;
  }
  updateName(name: string) {
    this.name = name;
    return this;
  }
  end() {
    this.ended = true;
  }
  isRecording() {
    return true;
  }
  recordException() {}
}

const recorded: RecordedSpan[] = [];

class RecordingTracer implements Tracer {
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const span = new RecordedSpan(name, options.kind, parent?.spanId, parent?.traceId ?? randomBytes(16).toString("hex"), options.attributes);
    recorded.push(span);
    return span;
  }
  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...args: unknown[]): ReturnType<F> {
    const fn = args.pop() as F;
    const options = (args[0] ?? {}) as SpanOptions;
    const parent = (args[1] as Context | undefined) ?? context.active();
    const span = this.startSpan(name, options, parent);
    return context.with(trace.setSpan(parent, span), () => fn(span) as ReturnType<F>);
  }
}

class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable() {
    return this;
  }
  disable() {
    this.storage.disable();
    return this;
  }
}

context.setGlobalContextManager(new AsyncLocalContextManager());
trace.setGlobalTracerProvider({ getTracer: () => new RecordingTracer() });

// Servers started in this process log requests at info; keep the test output to warnings.
process.env.LOG_LEVEL ??= "warn";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes a config file to a temp dir (memory store, port 0, a management listener on port 0 unless given). */
function configFile(extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-ops-"));
  dirs.push(dir);
  const file = join(dir, "tessera.config.json");
  const config = {
    issuer: "http://localhost:5000/tenant",
    port: 0,
    host: "127.0.0.1",
    store: { kind: "memory" },
    dataKey: randomBytes(32).toString("base64url"),
    management: { port: 0 },
    apiScopes: [{ name: "api1.read" }],
    apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
    users: [{ sub: "1", username: "alice", password: "alice" }],
    clients: [{ client_id: "m2m", client_secret: "m2m-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
    ...extra,
  };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const clientCredentials = (server: RunningServer) =>
  fetch(`http://127.0.0.1:${server.port}/tenant/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("m2m:m2m-secret").toString("base64")}` },
    body: "grant_type=client_credentials&scope=api1.read",
  });

/** The value of one series in Prometheus text (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const metricsOf = async (server: RunningServer) => {
  const response = await fetch(`http://127.0.0.1:${server.managementPort}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return response.text();
};

describe("operations: probes, management listener, metrics", () => {
  it("22.1 /healthz and /readyz answer on the public port under the issuer's path and on the management port; /metrics only on the management port", async () => {
    const server = await startServer(configFile());
    try {
      assert.ok(server.managementPort && server.managementPort !== server.port);
      for (const url of [`http://127.0.0.1:${server.port}/tenant`, `http://127.0.0.1:${server.managementPort}`]) {
        for (const probe of ["healthz", "readyz"]) {
          const response = await fetch(`${url}/${probe}`);
          assert.equal(response.status, 200, `${url}/${probe}`);
          assert.equal(response.headers.get("cache-control"), "no-store");
          assert.deepEqual(await response.json(), { status: "ok" });
        }
      }
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/tenant/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${server.managementPort}/connect/token`)).status, 404, "the management port serves nothing else");
    } finally {
      await server.stop();
    }
    // Closed with the server.
    await assert.rejects(fetch(`http://127.0.0.1:${server.managementPort}/healthz`));
  });

  it("22.2 /metrics shows requests per route pattern, latency, tokens per grant type and sign-ins moving, and default process metrics", async () => {
    const server = await startServer(configFile());
    try {
      const before = await metricsOf(server);
      for (const name of ["tessera_http_requests_total", "tessera_http_request_duration_seconds", "tessera_tokens_issued_total", "tessera_sign_ins_total", "tessera_store_errors_total", "tessera_backchannel_logout_total", "process_cpu_user_seconds_total", "nodejs_eventloop_lag_seconds"]) {
        assert.match(before, new RegExp(`^# TYPE ${name} `, "m"), name);
      }
      assert.equal(sample(before, 'tessera_sign_ins_total{result="failure"}'), 0);
      assert.equal((await clientCredentials(server)).status, 200);
      assert.equal((await clientCredentials(server)).status, 200);
      const unknown = `/tenant/no-such-page-${randomUUID()}`;
      assert.equal((await fetch(`http://127.0.0.1:${server.port}${unknown}?token=secret`)).status, 404);
      // A failed sign-in through the login page (its form carries a CSRF token bound to a cookie).
      const page = await fetch(`http://127.0.0.1:${server.port}/tenant/login`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
      const cookie = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
      const login = await fetch(`http://127.0.0.1:${server.port}/tenant/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", cookie }, body: new URLSearchParams({ csrf, username: "alice", password: "wrong" }).toString() });
      assert.equal(login.status, 200);
      assert.match(await login.text(), /Invalid username or password/);

      const text = await metricsOf(server);
      const route = "/tenant/connect/token";
      assert.equal(sample(text, `tessera_http_requests_total{route="${route}",status="200"}`) - sample(before, `tessera_http_requests_total{route="${route}",status="200"}`), 2);
      assert.equal(sample(text, `tessera_http_request_duration_seconds_count{route="${route}"}`), 2);
      assert.ok(sample(text, `tessera_http_request_duration_seconds_sum{route="${route}"}`) > 0);
      assert.equal(sample(text, 'tessera_tokens_issued_total{grant_type="client_credentials"}'), 2);
      assert.equal(sample(text, 'tessera_sign_ins_total{result="failure"}'), 1);
      assert.equal(sample(text, 'tessera_http_requests_total{route="/tenant/login",status="200"}'), 2, "the host's pages are counted by their route too");
      assert.equal(sample(text, 'tessera_http_requests_total{route="other",status="404"}'), 1, "an unknown path counts as route other");
      assert.ok(!text.includes("no-such-page"), "raw paths never become labels");
      assert.ok(sample(text, "process_cpu_user_seconds_total") > 0);
    } finally {
      await server.stop();
    }
  });

  it("22.3 two hosts in one process keep separate metrics", async () => {
    const [a, b] = await Promise.all([startServer(configFile()), startServer(configFile())]);
    try {
      assert.equal((await clientCredentials(a)).status, 200);
      assert.equal(sample(await metricsOf(a), 'tessera_tokens_issued_total{grant_type="client_credentials"}'), 1);
      assert.equal(sample(await metricsOf(b), 'tessera_tokens_issued_total{grant_type="client_credentials"}'), 0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("22.4 management config is validated with JSON paths; no management key, no listener", async () => {
    const base = { issuer: "http://localhost:5000", port: 5000 };
    const problems = (json: unknown) => {
      try {
        parseConfig(json);
        return [];
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
    };
    assert.deepEqual(problems({ ...base, management: { port: "9464", extra: true } }).map((p) => p.path).sort(), ["management", "management.port"]);
    assert.deepEqual(problems({ ...base, management: { port: 5000 } }), [{ path: "management.port", message: "must differ from port (the public listener)" }]);
    assert.deepEqual(problems({ ...base, management: {} }), []);
    const server = await startServer(configFile({ management: undefined }));
    try {
      assert.equal(server.managementPort, undefined);
      assert.equal(server.app.metrics, undefined);
    } finally {
      await server.stop();
    }
  });
});

const postgres: TestPostgres | undefined = await startTestPostgres();

describe("readiness follows PostgreSQL", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  after(() => postgres?.close());

  it("22.5 /readyz turns 503 while PostgreSQL is stopped and 200 again after it is back; /healthz stays 200; store errors are counted", async () => {
    const server = await startServer(configFile({ store: { kind: "postgres", url: await postgres!.createDatabase() } }));
    const probe = async (base: string, path: string) => {
      const response = await fetch(`${base}/${path}`);
      return { status: response.status, body: (await response.json()) as unknown };
    };
    // Readiness answers are reused for a second (one store round trip a second however many probes
    // arrive), so a change shows within about that.
    const settled = async (base: string, status: number) => {
      let ready = await probe(base, "readyz");
      for (let i = 0; i < 40 && ready.status !== status; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ready = await probe(base, "readyz");
      }
      return ready;
    };
    const bases = [`http://127.0.0.1:${server.port}/tenant`, `http://127.0.0.1:${server.managementPort}`];
    try {
      for (const base of bases) assert.deepEqual(await probe(base, "readyz"), { status: 200, body: { status: "ok" } });
      const errorsBefore = sample(await metricsOf(server), 'tessera_store_errors_total{operation="ping"}');
      postgres!.stop();
      try {
        for (const base of bases) {
          assert.deepEqual(await settled(base, 503), { status: 503, body: { status: "unavailable" } });
          assert.deepEqual(await probe(base, "healthz"), { status: 200, body: { status: "ok" } });
        }
        assert.ok(sample(await metricsOf(server), 'tessera_store_errors_total{operation="ping"}') > errorsBefore);
        // A protocol request meanwhile is a 503 too, never a crash.
        assert.equal((await clientCredentials(server)).status, 503);
      } finally {
        postgres!.start();
      }
      // The pool reconnects by itself; a probe or two may still meet a connection that died.
      for (const base of bases) {
        assert.deepEqual(await settled(base, 200), { status: 200, body: { status: "ok" } });
      }
      assert.equal((await clientCredentials(server)).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe("tracing through @opentelemetry/api", () => {
  it("22.6 spans around each endpoint (route name, HTTP attributes, client id), each store call and each outbound request", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k" };
    const jwksServer = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks?secret=query`;
    const host = await createTestHost({
      apiScopes: [{ name: "api1.read" }],
      apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
      clients: [{ client_id: "pk", token_endpoint_auth_method: "private_key_jwt", jwks_uri: jwksUri, grant_types: ["client_credentials"], scope: "api1.read" }],
    });
    try {
      recorded.length = 0;
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: "ES256", kid: "k" }).setIssuer("pk").setSubject("pk").setAudience(host.issuer).setIssuedAt().setExpirationTime("1m").sign(pair.privateKey);
      const response = await host.fetch(
        new Request(`${host.issuer}/connect/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ grant_type: "client_credentials", scope: "api1.read", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion }).toString(),
        }),
      );
      assert.equal(response.status, 200, await response.clone().text());
      const endpoint = recorded.find((s) => s.name === "/connect/token");
      assert.ok(endpoint, `spans: ${recorded.map((s) => s.name).join(", ")}`);
      assert.equal(endpoint.kind, 1 /* SERVER */);
      assert.equal(endpoint.parentSpanId, undefined);
      assert.deepEqual(
        { method: endpoint.attributes["http.request.method"], route: endpoint.attributes["http.route"], status: endpoint.attributes["http.response.status_code"], client: endpoint.attributes["oauth.client.id"] },
        { method: "POST", route: "/connect/token", status: 200, client: "pk" },
      );
      const children = recorded.filter((s) => s.parentSpanId === endpoint.context.spanId);
      const store = children.filter((s) => s.name.startsWith("tessera.store "));
      assert.ok(store.length > 0, `store spans under the endpoint: ${children.map((s) => s.name).join(", ")}`);
      assert.ok(store.every((s) => /^tessera\.store (grants|keys|sessions)\.\w+$/.test(s.name) && s.kind === 2 /* CLIENT */ && s.ended));
      const outbound = children.find((s) => s.name === "GET");
      assert.ok(outbound, "the jwks_uri fetch has a span under the endpoint");
      assert.equal(outbound.attributes["url.full"], jwksUri.replace(/\?.*/, ""), "no query string in the span");
      assert.equal(outbound.attributes["http.response.status_code"], 200);
      assert.ok(recorded.every((s) => s.ended), "every span ended");

      // An unknown path is span "other"; a failing store call marks its span as an error.
      recorded.length = 0;
      assert.equal((await host.fetch(new Request(`${host.issuer}/nowhere`))).status, 404);
      assert.deepEqual(recorded.map((s) => [s.name, s.attributes["http.response.status_code"]]), [["other", 404]]);
    } finally {
      await host.close();
      jwksServer.close();
    }
  });

  it("22.7 a failing store call ends its span as an error and the error goes on unchanged", async () => {
    const { createMemoryStore, tracedStore } = await import("@tessera/server");
    const inner = createMemoryStore();
    const failures: string[] = [];
    const broken = { ...inner, grants: Object.assign(Object.create(inner.grants) as typeof inner.grants, { get: async () => Promise.reject(new Error("disk on fire")) }) };
    const store = tracedStore(broken, (operation) => failures.push(operation));
    recorded.length = 0;
    await assert.rejects(store.grants.get("k"), /disk on fire/);
    await store.grants.put({ key: "k", kind: "consent", clientId: "c", data: "{}", createdAt: 1, expiresAt: 2 });
    assert.deepEqual(failures, ["grants.get"]);
    assert.deepEqual(recorded.map((s) => [s.name, s.status.code]), [["tessera.store grants.get", SpanStatusCode.ERROR], ["tessera.store grants.put", SpanStatusCode.UNSET]]);
  });
});

describe("logs a person reads", () => {
  it("22.8 JSON when stdout is no terminal: one line per request with method, path, status and ms, never the query string or cookies", async () => {
    const BIN = join(import.meta.dirname, "..", "packages", "host", "bin", "tessera.mjs");
    const child = spawn(process.execPath, [BIN, "start", "--config", configFile({ management: undefined })], { env: { ...process.env, LOG_LEVEL: "info" } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const poll = setInterval(() => {
          const match = /^listening on (\S+)$/m.exec(out);
          if (match) {
            clearInterval(poll);
            resolve(match[1]!);
          }
        }, 20);
        exited.then(() => {
          clearInterval(poll);
          reject(new Error(`exited before listening:\n${out}`));
        });
      });
      const response = await fetch(`${url}/tenant/connect/authorize?client_id=m2m&code=supersecretcode`, { headers: { cookie: "tessera.session=cookie-value-secret" } });
      await response.text();
      let line: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !line; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        line = out
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.msg === "request" && l.path === "/tenant/connect/authorize");
      }
      assert.ok(line, out);
      assert.equal(line.method, "GET");
      assert.equal(line.status, response.status);
      assert.equal(typeof line.ms, "number");
      assert.ok(!out.includes("supersecretcode") && !out.includes("cookie-value-secret"), out);
      for (const l of out.split("\n").filter((l) => l.trim() && !l.startsWith("listening on"))) assert.doesNotThrow(() => JSON.parse(l), `not a JSON line: ${l}`);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });

  it("22.9 pretty, coloured single lines when the destination is a terminal", async () => {
    const destination = Object.assign(new PassThrough(), { isTTY: true });
    let out = "";
    destination.on("data", (d: Buffer) => (out += d));
    const logger = await createHostLogger({ destination, level: "info" });
    logger.info({ method: "POST", path: "/connect/token", status: 200, ms: 3 }, "request");
    logger.info({ port: 1 }, "started");
    for (let i = 0; i < 100 && out.split("\n").length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const lines = out.split("\n").filter(Boolean);
    assert.equal(lines.length, 2, out);
    assert.match(lines[0]!, /\x1b\[/, "coloured");
    const plain = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ""));
    assert.match(plain[0]!, /INFO.*POST \/connect\/token 200 3 ms/);
    assert.match(plain[1]!, /INFO.*started.*"port":1/);
    assert.throws(() => JSON.parse(plain[0]!));
  });
});

describe("operations review", () => {
  it("22.11 pretty logs show control characters and terminal escapes in a logged path as text, never as a new line or an escape", async () => {
    const destination = Object.assign(new PassThrough(), { isTTY: true });
    let out = "";
    destination.on("data", (d: Buffer) => (out += d));
    const logger = await createHostLogger({ destination, level: "info" });
    logger.info({ method: "GET", path: "/a\r\nFAKE 200 line\x1b[2J", status: 404, ms: 1 }, "request");
    for (let i = 0; i < 100 && !out.includes("\n"); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(out.split("\n").filter(Boolean).length, 1, out);
    const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
    assert.doesNotMatch(plain, /\x1b|\r/);
    assert.match(plain, /GET \/a\\u000d\\u000aFAKE 200 line\\u001b\[2J 404 1 ms/);
  });

  it("22.12 the request log records the path as sent (percent-encoded), not decoded", async () => {
    const lines: unknown[] = [];
    const destination = new PassThrough();
    destination.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter(Boolean).map((l) => JSON.parse(l))));
    const logger = await createHostLogger({ destination, level: "info" });
    const host = await createTestHost({}, { logger });
    try {
      await (await host.fetch(new Request(`${host.issuer}/a%0d%0aFAKE%1b%5b2J?code=secret`))).body?.cancel();
      for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const entry = lines.find((l) => (l as { msg?: string }).msg === "request") as { path: string } | undefined;
      assert.equal(entry?.path, "/a%0d%0aFAKE%1b%5b2J");
    } finally {
      await host.close();
    }
  });

  it("22.13 a store written as a class keeps ping and close behind the tracing wrapper", async () => {
    const { createMemoryStore, createProvider } = await import("@tessera/server");
    const memory = createMemoryStore();
    let pings = 0;
    let closed = false;
    class ClassStore {
      grants = memory.grants;
      keys = memory.keys;
      sessions = memory.sessions;
      clients = memory.clients;
      async ping(): Promise<void> {
        pings++;
      }
      async close(): Promise<void> {
        closed = true;
        await memory.close();
      }
    }
    const provider = createProvider({ issuer: "https://idp.test", store: new ClassStore(), dataKey: randomBytes(32), clients: [] });
    assert.equal(await provider.ready(), true);
    assert.equal((await provider.fetch(new Request("https://idp.test/readyz"))).status, 200);
    assert.ok(pings >= 1);
    await provider.close();
    assert.ok(closed);
  });

  it("22.14 readiness probes share one store ping in flight and reuse its answer for a second", async () => {
    const { cachedReadiness } = await import("@tessera/server");
    let pings = 0;
    let now = 0;
    const ready = cachedReadiness({ ping: async () => void pings++ }, () => now);
    assert.deepEqual(await Promise.all(Array.from({ length: 50 }, () => ready())), Array(50).fill(true));
    assert.equal(pings, 1);
    now = 999;
    await ready();
    assert.equal(pings, 1);
    now = 1000;
    await ready();
    assert.equal(pings, 2);
  });
});
