/**
 * Multi-step workloads autocannon cannot express (each request depends on the last answer): a signed-in
 * user's SSO round trip and refresh token rotation. A small closed-loop driver keeps 16 workers busy over
 * keep-alive connections and records each iteration's latency.
 */
import { createHash, randomBytes } from "node:crypto";
import { Agent, request as httpRequest } from "node:http";
import { TestBrowser } from "@tessera/testing";

export const REDIRECT = "http://127.0.0.1/callback";
export const CONNECTIONS = 16;

/** One measurement of a scenario. */
export interface Measurement {
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
}

/** What the bench drives on one server: checked once, then measured repeatedly. */
export interface Workload {
  check(): Promise<void>;
  run(seconds: number): Promise<Measurement>;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });

function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: body ? { ...headers, "content-length": String(Buffer.byteLength(body)) } : headers, agent }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (data += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Runs `iteration` on CONNECTIONS workers for `seconds`; a thrown error counts as an error. */
async function closedLoop(seconds: number, iteration: (worker: number) => Promise<void>): Promise<Measurement> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, worker) => {
      while (performance.now() < end) {
        const started = performance.now();
        try {
          await iteration(worker);
          latencies.push(performance.now() - started);
        } catch {
          errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { reqPerSec: latencies.length / seconds, p50: at(0.5), p99: at(0.99), errors };
}

interface Endpoints {
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint: string;
  pushed_authorization_request_endpoint?: string;
}

/** Signs alice in through the server's own login page (Tessera's, or oidc-provider's dev interactions). */
async function signIn(base: string, clientId: string): Promise<{ cookie: string; metadata: Endpoints }> {
  const metadata = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Endpoints;
  const browser = new TestBrowser();
  const stopAt = { stopAt: (u: URL) => u.href.startsWith(REDIRECT) };
  let page = await browser.get(authorizeUrl(metadata, clientId, "openid", pkce().challenge, false), stopAt);
  for (let step = 0; step < 3 && !page.location; step++) {
    const password = page.query("input[name=password]");
    const fields: Record<string, string> = password ? { username: "alice", login: "alice", password: "alice" } : {};
    page = await browser.submitForm(page, { fields, ...stopAt });
  }
  if (!page.location?.includes("code=")) throw new Error(`sign-in at ${base} failed: ${page.status} ${page.url}`);
  const cookie = browser.cookies.cookieHeader(new URL(metadata.authorization_endpoint));
  if (!cookie) throw new Error(`no session cookie from ${base}`);
  return { cookie, metadata };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

function authorizeUrl(metadata: Endpoints, clientId: string, scope: string, challenge: string, silent = true): string {
  const params = new URLSearchParams({ client_id: clientId, response_type: "code", redirect_uri: REDIRECT, scope, state: "bench", code_challenge: challenge, code_challenge_method: "S256" });
  if (silent) params.set("prompt", "none");
  return `${metadata.authorization_endpoint}?${params}`;
}

const basicFor = (clientId: string) => `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString("base64")}`;
const FORM = "application/x-www-form-urlencoded";

/** `prompt=none` authorize with the session cookie, then the code redeemed at the token endpoint. */
async function roundTrip(metadata: Endpoints, cookie: string, clientId: string, scope: string, { verifier, challenge }: { verifier: string; challenge: string }): Promise<Record<string, string>> {
  const authorize = await send(authorizeUrl(metadata, clientId, scope, challenge), "GET", { cookie });
  const location = String(authorize.headers.location ?? "");
  const code = location.startsWith(REDIRECT) ? new URL(location).searchParams.get("code") : null;
  if (!code) throw new Error(`authorize answered ${authorize.status} ${location}`);
  const token = await send(metadata.token_endpoint, "POST", { authorization: basicFor(clientId), "content-type": FORM }, new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString());
  if (token.status !== 200) throw new Error(`token endpoint answered ${token.status} ${token.body.slice(0, 200)}`);
  return JSON.parse(token.body) as Record<string, string>;
}

/** SSO round trips of client `sso` (no refresh token) for a signed-in user. */
export async function ssoWorkload(base: string): Promise<Workload> {
  const { cookie, metadata } = await signIn(base, "sso");
  const keys = pkce();
  const once = () => roundTrip(metadata, cookie, "sso", "openid profile api1.read", keys);
  return {
    check: async () => {
      const tokens = await once();
      if (!tokens.id_token || !tokens.access_token || tokens.refresh_token) throw new Error(`unexpected token response from ${base}: ${Object.keys(tokens)}`);
    },
    run: (seconds) => closedLoop(seconds, async () => void (await once())),
  };
}

/**
 * PAR round trips of client `sso` for a signed-in user (RFC 9126): push the request with client
 * authentication, authorize with only `client_id` and the `request_uri` (the SSO session answers with a
 * code), then redeem the code.
 */
export async function parWorkload(base: string): Promise<Workload> {
  const { cookie, metadata } = await signIn(base, "sso");
  const par = metadata.pushed_authorization_request_endpoint;
  if (!par) throw new Error(`${base} advertises no pushed_authorization_request_endpoint`);
  const keys = pkce();
  const once = async () => {
    const pushed = new URLSearchParams({ client_id: "sso", response_type: "code", redirect_uri: REDIRECT, scope: "openid profile api1.read", state: "bench", code_challenge: keys.challenge, code_challenge_method: "S256", prompt: "none" });
    const push = await send(par, "POST", { authorization: basicFor("sso"), "content-type": FORM }, pushed.toString());
    const requestUri = push.status === 201 ? (JSON.parse(push.body) as { request_uri?: string }).request_uri : undefined;
    if (!requestUri) throw new Error(`PAR endpoint answered ${push.status} ${push.body.slice(0, 200)}`);
    const authorize = await send(`${metadata.authorization_endpoint}?${new URLSearchParams({ client_id: "sso", request_uri: requestUri })}`, "GET", { cookie });
    const location = String(authorize.headers.location ?? "");
    const code = location.startsWith(REDIRECT) ? new URL(location).searchParams.get("code") : null;
    if (!code) throw new Error(`authorize with request_uri answered ${authorize.status} ${location}`);
    const token = await send(metadata.token_endpoint, "POST", { authorization: basicFor("sso"), "content-type": FORM }, new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: keys.verifier }).toString());
    if (token.status !== 200) throw new Error(`token endpoint answered ${token.status} ${token.body.slice(0, 200)}`);
    return JSON.parse(token.body) as Record<string, string>;
  };
  return {
    check: async () => {
      const tokens = await once();
      if (!tokens.id_token || !tokens.access_token) throw new Error(`unexpected token response from ${base}: ${Object.keys(tokens)}`);
    },
    run: (seconds) => closedLoop(seconds, async () => void (await once())),
  };
}

/** Refresh token rotation of client `web`: each worker rotates its own token family. */
export async function refreshWorkload(base: string): Promise<Workload> {
  const { cookie, metadata } = await signIn(base, "web");
  const keys = pkce();
  const tokens: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const issued = await roundTrip(metadata, cookie, "web", "openid profile offline_access api1.read", keys);
    if (!issued.refresh_token) throw new Error(`no refresh token from ${base}`);
    tokens.push(issued.refresh_token);
  }
  const rotate = async (worker: number) => {
    const answer = await send(metadata.token_endpoint, "POST", { authorization: basicFor("web"), "content-type": FORM }, new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens[worker]! }).toString());
    if (answer.status !== 200) throw new Error(`refresh answered ${answer.status} ${answer.body.slice(0, 200)}`);
    const next = JSON.parse(answer.body) as Record<string, string>;
    if (!next.refresh_token || !next.access_token || !next.id_token) throw new Error("refresh did not rotate");
    tokens[worker] = next.refresh_token;
  };
  return { check: () => rotate(0), run: (seconds) => closedLoop(seconds, rotate) };
}

/** A user access token of client `ui`, for userinfo (Tessera: JWT; oidc-provider: opaque, its default). */
export async function userAccessToken(base: string): Promise<{ token: string; userinfo: string }> {
  const { cookie, metadata } = await signIn(base, "ui");
  const tokens = await roundTrip(metadata, cookie, "ui", "openid profile", pkce());
  return { token: tokens.access_token!, userinfo: metadata.userinfo_endpoint };
}

/** A reference (opaque) access token of client `ref` by client credentials, for introspection. */
export async function referenceToken(base: string): Promise<{ token: string; introspection: string }> {
  const metadata = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as { token_endpoint: string; introspection_endpoint: string };
  const answer = await send(metadata.token_endpoint, "POST", { authorization: basicFor("ref"), "content-type": FORM }, "grant_type=client_credentials&scope=api1.read");
  const token = (JSON.parse(answer.body) as { access_token?: string }).access_token;
  if (!token || token.split(".").length === 3) throw new Error(`expected a reference token from ${base}: ${answer.body.slice(0, 200)}`);
  return { token, introspection: metadata.introspection_endpoint };
}

export { basicFor, closedLoop, FORM, send };
