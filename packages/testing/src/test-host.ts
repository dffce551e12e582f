import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve, type HttpBindings } from "@hono/node-server";
import { createHostApp, parseConfig, startMtlsListener, type HostApp, type TesseraConfig } from "@tessera/host";
import { createServer } from "node:net";
import type { EventSink, Logger, Provider, UserDirectory } from "@tessera/server";

/** A config for {@link createTestHost}: everything optional; issuer defaults to https://idp.test. */
export type TestHostConfig = Partial<TesseraConfig>;

/** An identity server in memory for one test. */
export interface TestHost {
  /** The in-process request handler (pages and protocol). */
  fetch(request: Request): Promise<Response>;
  issuer: string;
  /** With `mtls.enabled`: the base URL of the mTLS listener (https://127.0.0.1:PORT). */
  mtlsUrl?: string;
  provider: Provider;
  /** The accounts (config users and the store's), to create users or inspect credentials in a test. */
  users: UserDirectory;
  /** Stops the listener (if any) and closes the provider. */
  close(): Promise<void>;
}

/** Options of {@link createTestHost}. */
export interface TestHostOptions {
  /** Milliseconds clock, to test expiry without sleeping. */
  clock?: () => number;
  /**
   * Also serve over HTTP on 127.0.0.1 with a free port; the issuer becomes `http://127.0.0.1:PORT`
   * (for clients that need a real URL, such as openid-client or a browser).
   */
  listen?: boolean;
  /**
   * With `listen`: the issuer's host name (default `127.0.0.1`; the listener is on 127.0.0.1 either way).
   * `localhost` for WebAuthn, whose rpID cannot be an IP address.
   */
  issuerHost?: "127.0.0.1" | "localhost";
  /** Receives the provider's structured logs. */
  logger?: Logger;
  /** Receives audit events. */
  events?: EventSink;
}

/** Creates a provider with the host's pages, an in-memory store and a random data key. */
export async function createTestHost(config: TestHostConfig = {}, options: TestHostOptions = {}): Promise<TestHost> {
  let app: HostApp | undefined;
  let server: ReturnType<typeof serve> | undefined;
  let issuer = config.issuer ?? "https://idp.test";
  if (options.listen) {
    server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve(
        {
          fetch: (request: Request, env: unknown) => (app ? app.fetch(request, env as HttpBindings) : Promise.resolve(new Response("starting", { status: 503 }))),
          port: 0,
          hostname: "127.0.0.1",
        },
        () => resolve(s),
      );
      s.once("error", reject);
    });
    issuer = `http://${options.issuerHost ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}`;
  }
  let mtlsConfig = config.mtls;
  if (mtlsConfig?.enabled) mtlsConfig = { ...mtlsConfig, port: await freePort() };
  // Tests run their receivers and JWKS servers on loopback: allowed here explicitly, never by default.
  const validated = parseConfig({ store: { kind: "memory" }, dataKey: randomBytes(32).toString("base64url"), outbound: { allowLoopback: true }, ...config, ...(mtlsConfig ? { mtls: mtlsConfig } : {}), issuer });
  app = await createHostApp(validated, { env: {}, clock: options.clock, logger: options.logger, events: options.events });
  const hostApp = app;
  const mtls = hostApp.mtls ? await startMtlsListener(hostApp.fetch, hostApp.mtls, mtlsConfig!.port!, "127.0.0.1") : undefined;
  return {
    fetch: hostApp.fetch,
    issuer: hostApp.issuer,
    mtlsUrl: mtls ? `https://127.0.0.1:${mtls.port}` : undefined,
    provider: hostApp.provider,
    users: hostApp.users,
    async close() {
      if (mtls) {
        await new Promise<void>((done) => {
          mtls.server.close(() => done());
          if ("closeAllConnections" in mtls.server) mtls.server.closeAllConnections();
        });
      }
      if (server) {
        const s = server;
        await new Promise<void>((done) => {
          s.close(() => done());
          if ("closeAllConnections" in s) s.closeAllConnections();
        });
      }
      await hostApp.close();
    },
  };
}

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}
