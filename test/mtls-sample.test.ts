import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createClientCredentialsFetch } from "@tessera/client";
import { createTestHost, type TestHostConfig } from "@tessera/testing";
import { startMtlsApi } from "../samples/mtls/src/api.ts";

describe("the mutual-TLS sample", () => {
  it("makes its certificates, and its client calls the mTLS API with a certificate-bound token", async () => {
    const root = join(import.meta.dirname, "..", "samples", "mtls");
    const certs = mkdtempSync(join(tmpdir(), "tessera-mtls-sample-"));
    execFileSync("bash", [join(root, "make-certs.sh"), certs], { stdio: "ignore" });
    const read = (name: string) => readFileSync(join(certs, name), "utf8");
    const { port: _port, ...sample } = JSON.parse(readFileSync(join(root, "tessera.config.json"), "utf8")) as TestHostConfig & { port?: number };
    const host = await createTestHost({ ...sample, mtls: { enabled: true, cert: join(certs, "server.pem"), key: join(certs, "server.key"), clientCa: join(certs, "ca.pem") } }, { listen: true });
    const api = await startMtlsApi({ issuer: host.issuer, cert: read("server.pem"), key: read("server.key"), ca: read("ca.pem"), port: 0 });
    try {
      const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "mtls-client", scope: "api1.read", tls: { cert: read("client.pem"), key: read("client.key"), ca: read("ca.pem") } });
      const response = await apiFetch(`${api.url}/data`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as { sub: string; cnf: Record<string, string> };
      assert.equal(body.sub, "mtls-client");
      assert.ok(body.cnf["x5t#S256"]);
    } finally {
      await api.close();
      await host.close();
      rmSync(certs, { recursive: true, force: true });
    }
  });
});
