import type { ProviderObserver, RequestObservation, TesseraEvent } from "@tessera/server";
import type { Counter, Histogram } from "prom-client";

/** Prometheus metrics of one host, in a registry of its own (two hosts in one process never clash). */
export interface HostMetrics extends Required<ProviderObserver> {
  /** Counts what an audit event says (tokens issued, sign-ins, back-channel deliveries). */
  event(event: TesseraEvent): void;
  /** The exposition text and its content type, for `GET /metrics`. */
  render(): Promise<{ body: string; contentType: string }>;
}

/**
 * Creates the metrics (prom-client is loaded only here, so a host without a management listener never
 * loads it). Series: `tessera_http_requests_total{route,status}`, `tessera_http_request_duration_seconds{route}`,
 * `tessera_tokens_issued_total{grant_type}`, `tessera_sign_ins_total{result}`, `tessera_store_errors_total{operation}`,
 * `tessera_backchannel_logout_total{result}` and prom-client's default process metrics.
 */
export async function createMetrics(): Promise<HostMetrics> {
  const client = await import("prom-client");
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new client.Counter({ name: "tessera_http_requests_total", help: "HTTP requests answered, by matched route and status", labelNames: ["route", "status"] as const, registers });
  const duration = new client.Histogram({ name: "tessera_http_request_duration_seconds", help: "Time to answer an HTTP request, by matched route", labelNames: ["route"] as const, registers });
  const tokens = new client.Counter({ name: "tessera_tokens_issued_total", help: "Token responses issued, by grant type", labelNames: ["grant_type"] as const, registers });
  const signIns = new client.Counter({ name: "tessera_sign_ins_total", help: "Interactive sign-ins, by result (success, failure, throttled)", labelNames: ["result"] as const, registers });
  const storeErrors = new client.Counter({ name: "tessera_store_errors_total", help: "Store calls that failed, by operation", labelNames: ["operation"] as const, registers });
  const backChannel = new client.Counter({ name: "tessera_backchannel_logout_total", help: "Back-channel logout deliveries, by result (success, failure)", labelNames: ["result"] as const, registers });
  // Known results start at zero, so a rate() sees the first increment.
  for (const result of ["success", "failure", "throttled"]) signIns.labels(result).inc(0);
  for (const result of ["success", "failure"]) backChannel.labels(result).inc(0);

  // The hot path: one lookup per request instead of prom-client hashing its label object each time.
  const requestChildren = new Map<string, { count: Counter.Internal; time: Histogram.Internal<"route"> }>();
  const request = ({ route, status, seconds }: RequestObservation) => {
    const key = `${status} ${route}`;
    let child = requestChildren.get(key);
    if (!child) {
      child = { count: requests.labels(route, String(status)), time: duration.labels(route) };
      requestChildren.set(key, child);
    }
    child.count.inc();
    child.time.observe(seconds);
  };
  return {
    request,
    storeError: (operation) => storeErrors.labels(operation).inc(),
    event(event) {
      switch (event.type) {
        case "token.issued":
          tokens.labels(event.grantType).inc();
          break;
        case "session.started":
          signIns.labels("success").inc();
          break;
        case "sign_in.failed":
          signIns.labels(event.reason === "throttled" ? "throttled" : "failure").inc();
          break;
        case "logout.backchannel.sent":
          backChannel.labels("success").inc();
          break;
        case "logout.backchannel.failed":
          backChannel.labels("failure").inc();
          break;
      }
    },
    async render() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
  };
}
