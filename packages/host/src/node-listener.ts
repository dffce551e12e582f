import type { IncomingMessage, ServerResponse } from "node:http";
import type { HttpBindings } from "@hono/node-server";

/** A host request handler as the Node listeners call it: `env` carries the Node request and response. */
export type NodeFetch = (request: Request, env: HttpBindings) => Promise<Response>;

/**
 * A `node:http` / `node:https` request listener that hands each request to `fetch` through
 * `@hono/node-server`, loading that adapter (and with it Node's fetch internals: its Request, Response and
 * Headers) with the first request rather than at start. The server accepts connections from the moment
 * it listens; requests that arrive before the adapter has loaded wait for it, their bodies unread.
 * `hostname` is the listener's, for requests without a Host header (as `serve` passes it).
 */
export function lazyRequestListener(fetch: NodeFetch, hostname?: string): (incoming: IncomingMessage, outgoing: ServerResponse) => void {
  type Listener = (incoming: IncomingMessage, outgoing: ServerResponse) => Promise<void>;
  let listener: Listener | undefined;
  let loading: Promise<Listener> | undefined;
  const load = () =>
    (loading ??= import("@hono/node-server").then(
      ({ getRequestListener }) => (listener = getRequestListener(fetch as Parameters<typeof getRequestListener>[0], hostname ? { hostname } : {})),
      (error: unknown) => {
        loading = undefined; // the next request tries again
        throw error;
      },
    ));
  return (incoming, outgoing) => {
    // Once loaded, each request goes straight to the adapter, as with its own serve().
    if (listener) {
      void listener(incoming, outgoing);
      return;
    }
    load().then(
      (handle) => handle(incoming, outgoing),
      () => {
        if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "application/json", "cache-control": "no-store" });
        outgoing.end(JSON.stringify({ error: "server_error" }));
      },
    );
  };
}
