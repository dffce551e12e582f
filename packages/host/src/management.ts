import { serverTimeouts } from "./mtls.ts";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { HostMetrics } from "./metrics.ts";
import { lazyRequestListener } from "./node-listener.ts";

/** The management listener: `/metrics` (Prometheus text), `/healthz` and `/readyz`, nothing else. */
export interface ManagementListener {
  port: number;
  close(): Promise<void>;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" } });

/** The management listener's request handler. */
export function managementHandler(metrics: HostMetrics, ready: () => Promise<boolean>): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
    switch (new URL(request.url).pathname) {
      case "/metrics": {
        const { body, contentType } = await metrics.render();
        return new Response(body, { headers: { "content-type": contentType, "cache-control": "no-store" } });
      }
      case "/healthz":
        return json({ status: "ok" });
      case "/readyz":
        return (await ready()) ? json({ status: "ok" }) : json({ status: "unavailable" }, 503);
      default:
        return json({ error: "not_found" }, 404);
    }
  };
}

/** Starts the management listener on `host:port` (port 0 picks a free one); resolves once it listens. */
export async function startManagementListener(metrics: HostMetrics, ready: () => Promise<boolean>, port: number, hostname: string, requestTimeout = 30): Promise<ManagementListener> {
  const fetch = managementHandler(metrics, ready);
  const server = createServer(serverTimeouts(requestTimeout), lazyRequestListener(fetch, hostname));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        if ("closeIdleConnections" in server) server.closeIdleConnections();
      }),
  };
}
