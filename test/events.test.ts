import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Logger, TesseraEvent } from "@tessera/server";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

describe("audit events and logs", () => {
  it("emits the events of a sign-in, refresh and logout, and no secret reaches the logs", async () => {
    const events: TesseraEvent[] = [];
    const logLines: string[] = [];
    const capture = (level: string) => (obj: object, msg?: string) => logLines.push(JSON.stringify({ level, obj, msg }, (_k, v) => (v instanceof Error ? { message: v.message, stack: v.stack } : v)));
    const logger: Logger = { info: capture("info"), warn: capture("warn"), error: capture("error") };
    const config = baseConfig();
    config.clients = [{ client_id: "web", client_secret: "s3cr3t-client-value", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access" }];
    const flow = await Flow.create(config, undefined, { logger, events: (e) => events.push(e) });
    const host = flow.host;
    try {
      const request = await flow.authorizeUrl({ client_id: "web", scope: "openid profile offline_access" });
      const loginPage = await flow.go(request.url);
      await flow.login(loginPage, "bob", "hunter2-wrong-password");
      const back = await flow.login(loginPage, "bob", "bob-password");
      const code = Flow.response(back).get("code")!;
      const tokens = (await (await flow.redeem(code, request.verifier, { id: "web", secret: "s3cr3t-client-value" })).json()) as Record<string, string>;
      const refreshed = (await (await flow.token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, { id: "web", secret: "s3cr3t-client-value" })).json()) as Record<string, string>;
      // A replayed refresh token, then RP-initiated logout.
      await flow.token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, { id: "web", secret: "s3cr3t-client-value" });
      const endSession = new URL(`${host.issuer}/connect/endsession`);
      endSession.search = new URLSearchParams({ id_token_hint: tokens.id_token! }).toString();
      await flow.browser.get(endSession);

      const types = events.map((e) => e.type);
      for (const expected of ["key.created", "sign_in.failed", "session.started", "token.issued", "token.replay_detected", "session.ended"]) assert.ok(types.includes(expected as never), `${expected} in ${types.join(", ")}`);
      const issued = events.filter((e): e is Extract<TesseraEvent, { type: "token.issued" }> => e.type === "token.issued");
      assert.deepEqual(issued.map((e) => e.grantType), ["authorization_code", "refresh_token"]);
      assert.equal(issued[0]!.sub, "2");
      assert.equal(issued[0]!.refreshToken, true);

      const everything = [...logLines, ...events.map((e) => JSON.stringify(e))].join("\n");
      const cookie = flow.browser.cookies.all().map((c) => c.value).filter((v) => v.length > 20);
      const secrets = ["hunter2-wrong-password", "bob-password", "s3cr3t-client-value", code, tokens.access_token!, tokens.refresh_token!, tokens.id_token!, refreshed.access_token!, refreshed.refresh_token!, ...cookie];
      for (const secret of secrets) assert.equal(everything.includes(secret), false, `a secret (${secret.slice(0, 8)}…) appears in the logs`);
      assert.ok(logLines.length + events.length > 5, "something was logged");
    } finally {
      await host.close();
    }
  });
});
