/**
 * HTTP benchmarks: Tessera (memory and SQLite stores) against oidc-provider and a bare node:http floor,
 * each server in its own process on 127.0.0.1, driven by autocannon from this process, measured
 * alternately (A B A B) after a warm-up.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";

const SERVERS = join(import.meta.dirname, "servers");

interface Running {
  name: string;
  url: string;
  child: ChildProcess;
}

interface Measurement {
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
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

async function load(url: string, request: { method: string; path: string; headers?: Record<string, string>; body?: string }, seconds: number): Promise<Measurement> {
  const result = await autocannon({ url: url + request.path, method: request.method as "GET", headers: request.headers, body: request.body, connections: 16, duration: seconds });
  return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.non2xx + result.errors + result.timeouts };
}

type Request = { method: string; path: string; headers?: Record<string, string>; body?: string };
interface Contender {
  name: string;
  script: string;
  args: string[];
  request: Request;
}

const basic = { authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}`, "content-type": "application/x-www-form-urlencoded" };
const cc = (path: string, extra = ""): Request => ({ method: "POST", path, headers: basic, body: `grant_type=client_credentials&scope=api1.read${extra}` });

/** Measures every contender of a scenario: warm-up each, then rounds of A B C … , averaged. */
async function scenario(title: string, contenders: Contender[], seconds: number, rounds: number): Promise<string[]> {
  const running: Running[] = [];
  try {
    for (const c of contenders) running.push(await start(c.name, c.script, c.args));
    // Every contender must do the work, or its numbers mean nothing.
    for (let i = 0; i < contenders.length; i++) {
      const { method, path, headers, body } = contenders[i]!.request;
      const check = await fetch(running[i]!.url + path, { method, headers, body });
      if (check.status !== 200) throw new Error(`${contenders[i]!.name} answered ${check.status}: ${(await check.text()).slice(0, 200)}`);
    }
    for (let i = 0; i < contenders.length; i++) await load(running[i]!.url, contenders[i]!.request, 2);
    const results = contenders.map(() => [] as Measurement[]);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < contenders.length; i++) results[i]!.push(await load(running[i]!.url, contenders[i]!.request, seconds));
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

/** Start-up to "listening on" and idle RSS of the tessera command with the SQLite store. */
async function startup(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-start-"));
  const port = await freePort();
  writeFileSync(join(dir, "c.json"), JSON.stringify({ issuer: `http://127.0.0.1:${port}`, port, store: { kind: "sqlite", path: "./db/t.db" }, clients: [] }));
  const times: number[] = [];
  let rss = NaN;
  try {
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const child = spawn(process.execPath, [join(import.meta.dirname, "..", "packages", "host", "bin", "tessera.mjs"), "start", "--config", join(dir, "c.json")], { env: { ...process.env, LOG_LEVEL: "silent" }, stdio: ["ignore", "pipe", "pipe"] });
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
          out += d;
          if (out.includes("listening on")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      times.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      rss = memoryMb(child.pid!, "VmRSS");
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The first start also creates the signing key; later starts load it.
  return [
    "Start-up (tessera start, SQLite store, process spawn to `listening on`)",
    `  first start (creates the key): ${times[0]!.toFixed(0)} ms; later starts: ${times.slice(1).map((t) => t.toFixed(0)).join(" ms, ")} ms; idle RSS ${rss.toFixed(0)} MB`,
  ];
}

export async function benchHttp(seconds: number): Promise<string[]> {
  const out: string[] = [];
  for (const alg of ["ES256", "RS256"]) {
    out.push(
      ...(await scenario(
        `client_credentials, ${alg} JWT access tokens, 16 connections`,
        [
          { name: "Tessera (memory store)", script: "tessera.ts", args: ["memory", alg], request: cc("/connect/token") },
          { name: "Tessera (SQLite store)", script: "tessera.ts", args: ["sqlite", alg], request: cc("/connect/token") },
          { name: "oidc-provider", script: "oidc-provider.ts", args: [alg], request: cc("/token") },
          { name: "floor (node:http + crypto)", script: "floor.ts", args: [alg], request: cc("/token") },
        ],
        seconds,
        2,
      )),
      "",
    );
  }
  for (const [title, tesseraPath, peerPath] of [["discovery document", "/.well-known/openid-configuration", "/.well-known/openid-configuration"], ["JWKS", "/.well-known/openid-configuration/jwks", "/jwks"]] as const) {
    out.push(
      ...(await scenario(
        `${title}, 16 connections`,
        [
          { name: "Tessera (memory store)", script: "tessera.ts", args: ["memory", "ES256"], request: { method: "GET", path: tesseraPath } },
          { name: "oidc-provider", script: "oidc-provider.ts", args: ["ES256"], request: { method: "GET", path: peerPath } },
        ],
        seconds,
        2,
      )),
      "",
    );
  }
  out.push(...(await startup()));
  return out;
}
