import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpBindings } from "@hono/node-server";
import { loadConfigFile, MANAGEMENT_DEFAULTS, type ConfigOverrides } from "./config.ts";
import { createHostApp, type HostApp } from "./app.tsx";
import { serverTimeouts, startMtlsListener } from "./mtls.ts";
import { createHostLogger } from "./logging.ts";
import { startManagementListener } from "./management.ts";
import { lazyRequestListener } from "./node-listener.ts";

/** A running server. */
export interface RunningServer {
  app: HostApp;
  /** Where it accepts requests, e.g. http://localhost:5000. */
  url: string;
  /** The mTLS listener's port, when mtls.enabled. */
  mtlsPort?: number;
  /** The management listener's port, when `management` is configured. */
  managementPort?: number;
  port: number;
  /** Stops accepting, finishes in-flight requests, closes the store. */
  stop(): Promise<void>;
}

/** Starts the host from a config file; resolves once it accepts requests. */
export async function startServer(configFile: string, overrides: ConfigOverrides & { hostname?: string } = {}): Promise<RunningServer> {
  const logger = await createHostLogger();
  const { config, baseDir } = loadConfigFile(configFile, overrides);
  const app = await createHostApp(config, { baseDir, logger });
  if (app.dataKeySource === "ephemeral") logger.warn({}, "no data key configured and no data folder: sessions end when the process stops");
  const hostname = overrides.hostname ?? config.host;
  const requestTimeout = config.limits?.requestTimeout ?? 30;
  // The node-server adapter loads with the first request (lazyRequestListener): a start needs none of it.
  const server = createServer(serverTimeouts(requestTimeout), lazyRequestListener((request: Request, env: HttpBindings) => app.fetch(request, env), hostname));
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(config.port ?? 5000, hostname, () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  const mtlsListener = app.mtls ? await startMtlsListener(app.fetch, app.mtls, config.mtls?.port ?? 5443, hostname, requestTimeout) : undefined;
  if (mtlsListener) logger.info({ port: mtlsListener.port }, "mTLS listener started");
  let management: Awaited<ReturnType<typeof startManagementListener>> | undefined;
  if (config.management && app.metrics) {
    try {
      management = await startManagementListener(app.metrics, () => app.provider.ready(), config.management.port ?? MANAGEMENT_DEFAULTS.port, config.management.host ?? MANAGEMENT_DEFAULTS.host, requestTimeout);
    } catch (error) {
      // No half-started server: the listeners already open close again (port taken, address unknown).
      await Promise.all([new Promise((done) => server.close(done)), ...(mtlsListener ? [new Promise((done) => mtlsListener.server.close(done))] : [])]);
      await app.close();
      throw error;
    }
  }
  if (management) logger.info({ port: management.port, host: config.management?.host ?? MANAGEMENT_DEFAULTS.host }, "management listener started (/metrics, /healthz, /readyz)");
  const url = `http://${hostname && hostname !== "0.0.0.0" && hostname !== "::" ? hostname : "localhost"}:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    app,
    url,
    port,
    mtlsPort: mtlsListener?.port,
    managementPort: management?.port,
    stop() {
      stopping ??= (async () => {
        const close = (s: Server) =>
          new Promise<void>((done) => {
            s.close(() => done());
            // Idle keep-alive sockets would hold close() open; busy ones finish their request first.
            if ("closeIdleConnections" in s) s.closeIdleConnections();
          });
        await Promise.all([close(server), ...(mtlsListener ? [close(mtlsListener.server)] : []), ...(management ? [management.close()] : [])]);
        await app.close();
      })();
      return stopping;
    },
  };
}
