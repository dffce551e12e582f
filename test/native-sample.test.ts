import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { describe as reason, signIn } from "../samples/native/src/native.ts";

const ROOT = join(import.meta.dirname, "..");

/** The demo config's users and its native client, served in memory on a free port. */
function demoNativeConfig(): TestHostConfig {
  const demo = JSON.parse(readFileSync(join(ROOT, "tessera.config.json"), "utf8")) as TestHostConfig;
  const native = demo.clients!.find((c) => c.client_id === "native");
  assert.ok(native, "the demo config has the native client");
  assert.equal(native.token_endpoint_auth_method, "none");
  assert.deepEqual(native.redirect_uris, ["http://127.0.0.1/callback"]);
  return { users: demo.users, clients: [native] };
}

/** Logs alice in at the printed authorization URL; the browser stops at the app's loopback redirect when `stopAt` says so. */
async function login(url: string, stopAt?: (u: URL) => boolean) {
  const browser = new TestBrowser();
  const page = await browser.get(url, { stopAt });
  assert.ok(page.query("input[name=password]"), `the login page: ${page.status} ${page.url}`);
  return browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
}

describe("17 native sample (samples/native)", () => {
  let host: TestHost;
  before(async () => {
    host = await createTestHost(demoNativeConfig(), { listen: true });
  });
  after(() => host.close());

  test("17 native sample: the CLI prints the URL (--no-browser), the browser signs in, the CLI prints the ID token claims and userinfo", async () => {
    const child = spawn(process.execPath, ["--conditions=@tessera/source", "--import", "tsx", join(ROOT, "samples", "native", "src", "main.ts"), "--issuer", host.issuer, "--no-browser"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          stdout += d;
          const match = /authorization URL: (\S+)/.exec(stdout);
          if (match) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`the sample exited ${code}: ${stdout}${stderr}`)));
      });
      // PAR is advertised, so the URL carries only client_id and the pushed request_uri (RFC 9126 §4).
      const authorize = new URL(url);
      assert.equal(authorize.searchParams.get("client_id"), "native");
      assert.match(authorize.searchParams.get("request_uri")!, /^urn:ietf:params:oauth:request_uri:/);
      assert.equal(authorize.searchParams.get("code_challenge"), null);
      assert.match(stdout, /Waiting for the browser at http:\/\/127\.0\.0\.1:\d+\/callback \(request pushed with PAR\)/);

      const page = await login(url);
      assert.equal(page.status, 200, page.body);
      assert.match(page.url, /^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/);
      assert.equal(page.text("#title"), "You are signed in");
      assert.match(page.text("#message"), /Signed in as Alice Smith/);

      assert.equal(await exited, 0, stderr);
      const [, claims, userinfo] = /ID token claims:\n([\s\S]*?)\nuserinfo:\n([\s\S]*)$/.exec(stdout)!;
      const idToken = JSON.parse(claims!) as Record<string, unknown>;
      assert.equal(idToken.sub, "1");
      assert.equal(idToken.iss, host.issuer);
      assert.equal(idToken.aud, "native");
      assert.deepEqual(JSON.parse(userinfo!), { sub: "1", name: "Alice Smith", email: "alice@example.com", email_verified: true });
      // The loopback listener is gone once the sign-in is over.
      const port = /127\.0\.0\.1:(\d+)\/callback/.exec(page.url)![1];
      await assert.rejects(fetch(`http://127.0.0.1:${port}/callback`));
    } finally {
      child.kill();
    }
  });

  test("17 native sample: a callback whose iss is not the issuer is refused (RFC 9207), shown as a failure page", async () => {
    let presented: ((v: { url: URL; redirectUri: string }) => void) | undefined;
    const shown = new Promise<{ url: URL; redirectUri: string }>((resolve) => (presented = resolve));
    const result = signIn({ issuer: host.issuer, clientId: "native", present: (url, { redirectUri }) => presented!({ url, redirectUri }) });
    result.catch(() => undefined);
    const { url, redirectUri } = await shown;
    const back = await login(url.href, (u) => u.href.startsWith(redirectUri));
    const callback = new URL(back.location!);
    assert.equal(callback.searchParams.get("iss"), host.issuer);
    callback.searchParams.set("iss", "https://evil.test");
    const page = await fetch(callback);
    assert.equal(page.status, 400);
    assert.match(await page.text(), /Sign-in failed.*&#34;iss&#34;/s);
    await assert.rejects(result, (error) => /unexpected "iss"/.test(reason(error)));
    await assert.rejects(fetch(redirectUri), "the listener is closed");
  });

  test("17 native sample: a callback with another state is refused before any code is redeemed", async () => {
    let presented: ((redirectUri: string) => void) | undefined;
    const shown = new Promise<string>((resolve) => (presented = resolve));
    const result = signIn({ issuer: host.issuer, clientId: "native", present: (_url, { redirectUri }) => presented!(redirectUri) });
    result.catch(() => undefined);
    const redirectUri = await shown;
    const other = await fetch(`${new URL(redirectUri).origin}/favicon.ico`);
    assert.equal(other.status, 404, "only the callback path is served");
    const page = await fetch(`${redirectUri}?code=forged&state=forged&iss=${encodeURIComponent(host.issuer)}`);
    assert.equal(page.status, 400);
    assert.match(await page.text(), /Sign-in failed.*&#34;state&#34;/s);
    await assert.rejects(result, (error) => /unexpected "state"/.test(reason(error)));
  });
});
