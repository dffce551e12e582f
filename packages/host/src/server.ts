import type { AddressInfo } from "node:net";
import { serve, type HttpBindings } from "@hono/node-server";
import pino from "pino";
import { loadConfigFile, type ConfigOverrides } from "./config.ts";
import { createHostApp, type HostApp } from "./app.tsx";
import { serverTimeouts, startMtlsListener } from "./mtls.ts";

/** A running server. */
export interface RunningServer {
  app: HostApp;
  /** Where it accepts requests, e.g. http://localhost:5000. */
  url: string;
  /** The mTLS listener's port, when mtls.enabled. */
  mtlsPort?: number;
  port: number;
  /** Stops accepting, finishes in-flight requests, closes the store. */
  stop(): Promise<void>;
}

/** Starts the host from a config file; resolves once it accepts requests. */
export async function startServer(configFile: string, overrides: ConfigOverrides & { hostname?: string } = {}): Promise<RunningServer> {
  const logger = pino({ level: process.env.LOG_LEVEL ?? "info", base: { service: "tessera" } });
  const { config, baseDir } = loadConfigFile(configFile, overrides);
  const app = await createHostApp(config, { baseDir, logger });
  if (app.dataKeySource === "ephemeral") logger.warn({}, "no data key configured and no data folder: sessions end when the process stops");
  const hostname = overrides.hostname ?? config.host;
  const requestTimeout = config.limits?.requestTimeout ?? 30;
  const server = await new Promise<ReturnType<typeof serve>>((resolveListen, reject) => {
    const s = serve({ fetch: (request, env) => app.fetch(request, env as HttpBindings), port: config.port ?? 5000, ...(hostname ? { hostname } : {}), serverOptions: serverTimeouts(requestTimeout) }, () => resolveListen(s));
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  const mtlsListener = app.mtls ? await startMtlsListener(app.fetch, app.mtls, config.mtls?.port ?? 5443, hostname, requestTimeout) : undefined;
  if (mtlsListener) logger.info({ port: mtlsListener.port }, "mTLS listener started");
  const url = `http://${hostname && hostname !== "0.0.0.0" && hostname !== "::" ? hostname : "localhost"}:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    app,
    url,
    port,
    mtlsPort: mtlsListener?.port,
    stop() {
      stopping ??= (async () => {
        const close = (s: ReturnType<typeof serve>) =>
          new Promise<void>((done) => {
            s.close(() => done());
            // Idle keep-alive sockets would hold close() open; busy ones finish their request first.
            if ("closeIdleConnections" in s) s.closeIdleConnections();
          });
        await Promise.all([close(server), ...(mtlsListener ? [close(mtlsListener.server)] : [])]);
        await app.close();
      })();
      return stopping;
    },
  };
}
