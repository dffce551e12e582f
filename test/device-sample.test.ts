import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHostConfig } from "@tessera/testing";
import { startDeviceApi } from "../samples/device/src/api.ts";
import { runDeviceCli } from "../samples/device/src/cli.ts";

describe("18 device: the device flow sample", () => {
  it("18 device: the CLI prints the code, a person approves it, and the CLI calls the API with its token", async () => {
    const { port: _port, ...sample } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "samples", "device", "tessera.config.json"), "utf8")) as TestHostConfig & { port?: number };
    // A 1 s interval keeps the test short; the sample itself polls every 5 s.
    const host = await createTestHost({ ...sample, deviceFlow: { ...sample.deviceFlow, interval: 1 } }, { listen: true });
    const api = await startDeviceApi(host.issuer, 0);
    try {
      const lines: string[] = [];
      let shown: (url: string) => void;
      const complete = new Promise<string>((resolve) => (shown = resolve));
      const cli = runDeviceCli({
        issuer: host.issuer,
        clientId: "device-cli",
        scope: "openid profile offline_access api1.read",
        apiUrl: `${api.url}/data`,
        write: (line) => {
          lines.push(line);
          const url = /^or open (\S+)$/.exec(line)?.[1];
          if (url) shown(url);
        },
        signal: AbortSignal.timeout(60_000),
      });
      const url = await complete;
      assert.match(lines[0]!, new RegExp(`^To sign in, open ${host.issuer}/device and enter the code [A-Z]{4}-[A-Z]{4}$`));
      // The person: the link from the terminal, sign in, allow.
      const browser = new TestBrowser();
      let page = await browser.get(url);
      page = await browser.submitForm(page);
      page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" } });
      page = await browser.submitForm(page, { button: "button[name=decision][value=allow]" });
      assert.match(page.text(), /device may continue/);
      const result = await cli;
      assert.equal(result.sub, "1");
      assert.equal(result.refreshToken, true);
      assert.deepEqual(result.api, { status: 200, body: { message: "Hello from the API", sub: "1", client_id: "device-cli" } });
      assert.match(lines.at(-1)!, /HTTP 200/);
    } finally {
      await api.close();
      await host.close();
    }
  });
});
