/**
 * HTTP benchmarks: Tessera (memory and SQLite stores) against oidc-provider and a bare node:http floor,
 * each server in its own process on 127.0.0.1, driven by autocannon from this process, measured
 * alternately (A B A B) after a warm-up.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import ts from "typescript";
import { deviceWorkload } from "./device.ts";
import { CONNECTIONS, FORM, basicFor, parWorkload, referenceToken, refreshWorkload, ssoWorkload, userAccessToken, type Measurement, type Workload } from "./flows.ts";

const SERVERS = join(import.meta.dirname, "servers");

interface Running {
  name: string;
  url: string;
  child: ChildProcess;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function start(name: string, script: string, args: string[]): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join(SERVERS, script), ...args], { env: { ...process.env, PORT: String(port), LOG_LEVEL: "silent" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      output += d;
      const match = /listening on (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.stderr!.on("data", (d: Buffer) => (output += d));
    child.once("exit", (code) => reject(new Error(`${name} exited ${code}:\n${output}`)));
  });
  return { name, url, child };
}

async function stop(server: Running): Promise<void> {
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
  server.child.kill("SIGKILL");
}

/** A memory figure of a process from /proc (Linux), in MB: VmHWM is the peak resident set, VmRSS the current one. */
function memoryMb(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function load(url: string, request: Request, seconds: number): Promise<Measurement> {
  const result = await autocannon({ url: url + request.path, method: request.method as "GET", headers: request.headers, body: request.body, connections: CONNECTIONS, duration: seconds });
  return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.non2xx + result.errors + result.timeouts };
}

type Request = { method: string; path: string; headers?: Record<string, string>; body?: string };

/** A fixed request driven by autocannon; it must answer 200 or its numbers mean nothing. */
function fixed(request: Request | ((url: string) => Promise<Request>)): (url: string) => Promise<Workload> {
  return async (url) => {
    const resolved = typeof request === "function" ? await request(url) : request;
    return {
      check: async () => {
        const answer = await fetch(url + resolved.path, { method: resolved.method, headers: resolved.headers, body: resolved.body });
        if (answer.status !== 200) throw new Error(`answered ${answer.status}: ${(await answer.text()).slice(0, 200)}`);
      },
      run: (seconds) => load(url, resolved, seconds),
    };
  };
}

interface Contender {
  name: string;
  script: string;
  args: string[];
  workload: (url: string) => Promise<Workload>;
}

const basic = { authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}`, "content-type": "application/x-www-form-urlencoded" };
const cc = (path: string, extra = ""): Request => ({ method: "POST", path, headers: basic, body: `grant_type=client_credentials&scope=api1.read${extra}` });

/** Measures every contender of a scenario: warm-up each, then rounds of A B C … , averaged. */
async function scenario(title: string, contenders: Contender[], seconds: number, rounds: number): Promise<string[]> {
  const running: Running[] = [];
  try {
    for (const c of contenders) running.push(await start(c.name, c.script, c.args));
    // Every contender must do the work, or its numbers mean nothing.
    const workloads: Workload[] = [];
    for (let i = 0; i < contenders.length; i++) {
      try {
        const workload = await contenders[i]!.workload(running[i]!.url);
        await workload.check();
        workloads.push(workload);
      } catch (error) {
        throw new Error(`${title}: ${contenders[i]!.name}: ${(error as Error).message}`);
      }
    }
    for (const workload of workloads) await workload.run(2);
    const results = contenders.map(() => [] as Measurement[]);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < contenders.length; i++) results[i]!.push(await workloads[i]!.run(seconds));
    }
    const avg = (ms: Measurement[], key: keyof Measurement) => ms.reduce((sum, m) => sum + m[key], 0) / ms.length;
    const rows = contenders.map((c, i) => ({
      name: c.name,
      rps: avg(results[i]!, "reqPerSec"),
      p50: avg(results[i]!, "p50"),
      p99: avg(results[i]!, "p99"),
      errors: results[i]!.reduce((sum, m) => sum + m.errors, 0),
      rss: memoryMb(running[i]!.child.pid!, "VmHWM"),
    }));
    const tessera = rows[0]!;
    const lines = [title, `  ${"server".padEnd(26)} ${"req/s".padStart(8)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"peak RSS MB".padStart(12)} ${"errors".padStart(7)}  Tessera/this`];
    for (const row of rows) {
      lines.push(`  ${row.name.padEnd(26)} ${row.rps.toFixed(0).padStart(8)} ${row.p50.toFixed(1).padStart(7)} ${row.p99.toFixed(1).padStart(7)} ${row.rss.toFixed(0).padStart(12)} ${String(row.errors).padStart(7)}  ${(tessera.rps / row.rps).toFixed(2)}`);
    }
    return lines;
  } finally {
    await Promise.all(running.map(stop));
  }
}

/** Spawns a server and resolves with the milliseconds from spawn to its `listening on` line. */
async function timeToListen(args: string[], env: Record<string, string>): Promise<{ ms: number; child: ChildProcess }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, LOG_LEVEL: "silent", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (out.includes("listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}`)));
  });
  return { ms: performance.now() - started, child };
}

/** oidc-provider's bench server as plain JavaScript (TypeScript types stripped), so it starts with no loader either. */
function plainOidcProvider(): string {
  const dir = join(import.meta.dirname, "..", "node_modules", ".cache", "tessera-bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "oidc-provider.mjs");
  const source = readFileSync(join(SERVERS, "oidc-provider.ts"), "utf8");
  writeFileSync(file, ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
  return file;
}

const IDLE_SECONDS = 5;

/**
 * Start-up and idle memory, Tessera against oidc-provider in the same run, both compiled JavaScript with no
 * TypeScript loader: spawn to `listening on` (the tessera command with the SQLite store; oidc-provider's
 * bench server, which generates its key at start), then RSS after ${IDLE_SECONDS} s idle. Starts alternate.
 */
async function startup(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-start-"));
  const port = await freePort();
  writeFileSync(join(dir, "c.json"), JSON.stringify({ issuer: `http://127.0.0.1:${port}`, port, store: { kind: "sqlite", path: "./db/t.db" }, clients: [] }));
  const peerScript = plainOidcProvider();
  const contenders: { name: string; args: string[]; env: Record<string, string> }[] = [
    { name: "Tessera (tessera start, SQLite)", args: [join(import.meta.dirname, "..", "packages", "host", "bin", "tessera.mjs"), "start", "--config", join(dir, "c.json")], env: {} },
    { name: "oidc-provider", args: [peerScript, "ES256"], env: { PORT: String(port) } },
  ];
  const times = contenders.map(() => [] as number[]);
  const rss = contenders.map(() => [] as number[]);
  try {
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const { ms, child } = await timeToListen(contenders[i]!.args, contenders[i]!.env);
        times[i]!.push(ms);
        await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
        rss[i]!.push(memoryMb(child.pid!, "VmRSS"));
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const lines = [
    `Start-up (process spawn to \`listening on\`, no TypeScript loader) and idle RSS (after ${IDLE_SECONDS} s idle), 3 alternating starts each`,
    `  ${"server".padEnd(34)} ${"first ms".padStart(9)} ${"later ms".padStart(9)} ${"idle RSS MB".padStart(12)}`,
  ];
  // Tessera's first start also creates the SQLite database and the signing key; later starts load them.
  for (let i = 0; i < contenders.length; i++) {
    lines.push(`  ${contenders[i]!.name.padEnd(34)} ${times[i]![0]!.toFixed(0).padStart(9)} ${median(times[i]!.slice(1)).toFixed(0).padStart(9)} ${median(rss[i]!).toFixed(0).padStart(12)}`);
  }
  return lines;
}

const tessera = (store: "memory" | "sqlite", alg: string, workload: Contender["workload"]): Contender => ({ name: `Tessera (${store} store)`, script: "tessera.ts", args: [store, alg], workload });
const peer = (alg: string, workload: Contender["workload"]): Contender => ({ name: "oidc-provider", script: "oidc-provider.ts", args: [alg], workload });
const pathOf = (url: string) => new URL(url).pathname;

/** Scenarios by name; `BENCH_ONLY=sso,refresh` runs a subset. */
const SCENARIOS: Record<string, () => [string, Contender[]]> = {
  ...Object.fromEntries(
    ["ES256", "RS256"].map((alg) => [
      `cc-${alg.toLowerCase()}`,
      () => [
        `client_credentials, ${alg} JWT access tokens`,
        [
          tessera("memory", alg, fixed(cc("/connect/token"))),
          tessera("sqlite", alg, fixed(cc("/connect/token"))),
          peer(alg, fixed(cc("/token"))),
          { name: "floor (node:http + crypto)", script: "floor.ts", args: [alg], workload: fixed(cc("/token")) },
        ],
      ],
    ]),
  ),
  sso: () => [
    "SSO round trip: prompt=none authorize with the session cookie, then code redemption (ES256 ID + JWT access token)",
    [tessera("memory", "ES256", ssoWorkload), tessera("sqlite", "ES256", ssoWorkload), peer("ES256", ssoWorkload)],
  ],
  par: () => [
    "PAR + code round trip: push (client auth), authorize with request_uri on the SSO session, code redemption (ES256 ID + JWT access token)",
    [tessera("memory", "ES256", parWorkload), tessera("sqlite", "ES256", parWorkload), peer("ES256", parWorkload)],
  ],
  refresh: () => ["refresh token rotation (new refresh, ES256 ID and JWT access token each time)", [tessera("memory", "ES256", refreshWorkload), tessera("sqlite", "ES256", refreshWorkload), peer("ES256", refreshWorkload)]],
  introspection: () => {
    const introspect = fixed(async (url) => {
      const { token, introspection } = await referenceToken(url);
      return { method: "POST", path: pathOf(introspection), headers: { authorization: basicFor("ref"), "content-type": FORM }, body: `token=${token}` };
    });
    return ["introspection of a reference token (by its client)", [tessera("memory", "ES256", introspect), tessera("sqlite", "ES256", introspect), peer("ES256", introspect)]];
  },
  userinfo: () => {
    const userinfo = fixed(async (url) => {
      const { token, userinfo } = await userAccessToken(url);
      return { method: "GET", path: pathOf(userinfo), headers: { authorization: `Bearer ${token}` } };
    });
    return ["userinfo (Tessera: JWT access token; oidc-provider: its opaque token)", [tessera("memory", "ES256", userinfo), tessera("sqlite", "ES256", userinfo), peer("ES256", userinfo)]];
  },
  discovery: () => ["discovery document", [tessera("memory", "ES256", fixed({ method: "GET", path: "/.well-known/openid-configuration" })), peer("ES256", fixed({ method: "GET", path: "/.well-known/openid-configuration" }))]],
  device: () => [
    "device-code polling: authorization_pending answers per second (a pool of 16000 unapproved codes, each polled at most once a second)",
    [
      { name: "Tessera (memory store)", script: "tessera.ts", args: ["memory", "ES256", "device"], workload: deviceWorkload },
      { name: "oidc-provider", script: "oidc-provider.ts", args: ["ES256", "device"], workload: deviceWorkload },
    ],
  ],
  jwks: () => ["JWKS", [tessera("memory", "ES256", fixed({ method: "GET", path: "/.well-known/openid-configuration/jwks" })), peer("ES256", fixed({ method: "GET", path: "/jwks" }))]],
};

export async function benchHttp(seconds: number, only?: Set<string>): Promise<string[]> {
  const out: string[] = [];
  for (const [name, define] of Object.entries(SCENARIOS)) {
    if (only && !only.has(name)) continue;
    const [title, contenders] = define();
    out.push(...(await scenario(`${title}, ${CONNECTIONS} connections`, contenders, seconds, 2)), "");
  }
  if (!only || only.has("startup")) out.push(...(await startup()));
  return out;
}
