import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import pino from "pino";
import { inactiveSettings, loadConfigFile, type ConfigOverrides } from "./config.ts";
import { createHostApp, type HostApp } from "./app.tsx";

/** A running server. */
export interface RunningServer {
  app: HostApp;
  /** Where it accepts requests, e.g. http://localhost:5000. */
  url: string;
  port: number;
  /** Stops accepting, finishes in-flight requests, closes the store. */
  stop(): Promise<void>;
}

/** Starts the host from a config file; resolves once it accepts requests. */
export async function startServer(configFile: string, overrides: ConfigOverrides & { hostname?: string } = {}): Promise<RunningServer> {
  const logger = pino({ level: process.env.LOG_LEVEL ?? "info", base: { service: "tessera" } });
  const { config, baseDir } = loadConfigFile(configFile, overrides);
  for (const path of inactiveSettings(config)) logger.warn({ path }, "setting accepted but not in effect in this version");
  const app = await createHostApp(config, { baseDir, logger });
  if (app.dataKeySource === "ephemeral") logger.warn({}, "no data key configured and no data folder: sessions end when the process stops");
  const hostname = overrides.hostname ?? config.host;
  const server = await new Promise<ReturnType<typeof serve>>((resolveListen, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port ?? 5000, ...(hostname ? { hostname } : {}) }, () => resolveListen(s));
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${hostname && hostname !== "0.0.0.0" && hostname !== "::" ? hostname : "localhost"}:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    app,
    url,
    port,
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((done) => {
          server.close(() => done());
          // Idle keep-alive sockets would hold close() open; busy ones finish their request first.
          if ("closeIdleConnections" in server) server.closeIdleConnections();
        });
        await app.close();
      })();
      return stopping;
    },
  };
}
