import { SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Store } from "../stores/interfaces.ts";
import { failSpan, tesseraTracer } from "./tracing.ts";

/** Route label of a request no route matched: metrics never carry raw paths (bounded cardinality). */
export const UNMATCHED_ROUTE = "other";

/** One finished request, as metrics see it. */
export interface RequestObservation {
  /** The matched route pattern (e.g. `/connect/token`), or {@link UNMATCHED_ROUTE}. */
  route: string;
  method: string;
  status: number;
  /** Wall time from routing to the response, in seconds. */
  seconds: number;
}

/** Hooks through which a provider reports what it does to metrics; called synchronously, keep them cheap. */
export interface ProviderObserver {
  /** After each request the provider answered. */
  request?(observation: RequestObservation): void;
  /** When a store call fails; `operation` is e.g. `grants.get`. */
  storeError?(operation: string, error: unknown): void;
}

/** Options of {@link requestTelemetry}. */
export interface RequestTelemetryOptions {
  observer?: ProviderObserver | undefined;
  /** Requests whose first matched route is this pattern (e.g. `/*`) pass unobserved: a host's catch-all forwarding to the provider, which observes them itself. */
  passThrough?: string;
  tracer?: Tracer;
}

/**
 * Hono middleware (register it last among the app-wide ones): a server span named after the route
 * pattern that serves the request, with `http.request.method`, `http.route` and
 * `http.response.status_code`, and a {@link RequestObservation} to the observer. The span is named after
 * the first route matched; should another route answer (the first passed the request on), it is renamed.
 */
export function requestTelemetry(options: RequestTelemetryOptions = {}): MiddlewareHandler {
  const tracer = options.tracer ?? tesseraTracer();
  const observe = options.observer?.request?.bind(options.observer);
  return async (c, next) => {
    const routes = matchedRoutes(c);
    const self = c.req.routeIndex;
    const expected = routes[self + 1]?.path ?? UNMATCHED_ROUTE;
    if (expected === options.passThrough) return next();
    const method = c.req.method;
    const started = performance.now();
    await tracer.startActiveSpan(expected, { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "http.route": expected } }, async (span) => {
      try {
        await next();
      } catch (error) {
        failSpan(span, error);
        throw error;
      }
      // After next(), routeIndex is the handler that answered (or still this middleware: nothing did).
      const answered = c.req.routeIndex > self ? c.req.routeIndex : -1;
      const route = answered >= 0 ? (routes[answered]?.path ?? UNMATCHED_ROUTE) : UNMATCHED_ROUTE;
      if (route !== expected) span.updateName(route).setAttribute("http.route", route);
      const status = c.res.status;
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      observe?.({ route, method, status, seconds: (performance.now() - started) / 1000 });
    });
  };
}

/** How long a readiness probe waits for the store, in milliseconds (probes commonly time out after 1 s). */
export const READINESS_TIMEOUT_MS = 1000;

/** True when the store answers its ping within {@link READINESS_TIMEOUT_MS}. */
/**
 * Readiness for probes: one store ping in flight at a time and its answer reused for a second, so a flood
 * of unauthenticated probes costs the store at most one round trip a second.
 */
export function cachedReadiness(store: Pick<Store, "ping">, clock: () => number = Date.now, reuseMs = 1000): () => Promise<boolean> {
  let last: { at: number; ready: Promise<boolean> } | undefined;
  return () => {
    const now = clock();
    if (!last || now - last.at >= reuseMs) last = { at: now, ready: storeReady(store) };
    return last.ready;
  };
}

export async function storeReady(store: Pick<Store, "ping">, timeoutMs = READINESS_TIMEOUT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([store.ping().then(() => true, () => false), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
