import { SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import type { ClientStore } from "../clients.ts";
import type { Store } from "../stores/interfaces.ts";

/** Name of the tracer every Tessera span comes from. */
export const TRACER_NAME = "@tessera/server";

/** Attribute naming the OAuth client a request concerns. */
export const CLIENT_ID_ATTRIBUTE = "oauth.client.id";

/**
 * The tracer, looked up through the global API on each call site's first use: a no-op until the
 * application registers an OpenTelemetry SDK (the API's proxy tracer picks the SDK up even when it is
 * registered after the provider was created).
 */
export function tesseraTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Ends `span` as failed with `error`. */
export function failSpan(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/** Runs `fn` in an active span, ending it when the returned promise settles. */
export function inSpan<T>(tracer: Tracer, name: string, kind: SpanKind, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { kind, attributes }, (span) => {
    let result: Promise<T>;
    try {
      result = fn(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    }
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        failSpan(span, error);
        throw error;
      },
    );
  });
}

/** Methods of an object, own and inherited (store classes keep theirs on the prototype). */
function methodNames(target: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== "constructor" && typeof (target as Record<string, unknown>)[name] === "function") names.add(name);
    }
  }
  return [...names];
}

/**
 * Wraps every call of a store (its sub-stores' methods and its own `ping`/`close`) in a client span named
 * `tessera.store <store>.<method>`, e.g. `tessera.store grants.get`; a call that fails is reported to
 * `onError` (metrics) before the error goes on unchanged. The one place store calls are observed.
 */
export function tracedStore<S extends Store>(store: S, onError?: (operation: string, error: unknown) => void, tracer: Tracer = tesseraTracer()): S {
  const wrap = (target: object, method: string, operation: string) => {
    const fn = (target as Record<string, (...args: unknown[]) => unknown>)[method]!;
    const name = `tessera.store ${operation}`;
    const options = { kind: SpanKind.CLIENT, attributes: { "tessera.store.operation": operation } };
    return (...args: unknown[]) =>
      tracer.startActiveSpan(name, options, (span) => {
        let result: Promise<unknown>;
        try {
          result = Promise.resolve(fn.apply(target, args));
        } catch (error) {
          result = Promise.reject(error);
        }
        return result.then(
          (value) => {
            span.end();
            return value;
          },
          (error: unknown) => {
            onError?.(operation, error);
            failSpan(span, error);
            throw error;
          },
        );
      });
  };
  const wrapped: Record<string, unknown> = {};
  // Own fields and methods of classes alike (a store written as a class keeps ping and close).
  for (const key of new Set([...Object.keys(store), ...methodNames(store)])) {
    const value = (store as unknown as Record<string, unknown>)[key];
    if (typeof value === "function") wrapped[key] = wrap(store, key, key);
    else if (value && typeof value === "object") {
      const inner: Record<string, unknown> = {};
      for (const method of methodNames(value)) inner[method] = wrap(value, method, `${key}.${method}`);
      wrapped[key] = inner;
    } else wrapped[key] = value;
  }
  return wrapped as S;
}

/**
 * Every endpoint looks its client up here, so the lookup is where the request's span learns the client id
 * (when the application's SDK keeps an active span).
 */
export function clientTaggingStore(clients: ClientStore): ClientStore {
  return {
    async findClientById(clientId, lookup) {
      const client = await clients.findClientById(clientId, lookup);
      if (client) trace.getActiveSpan()?.setAttribute(CLIENT_ID_ATTRIBUTE, client.clientId);
      return client;
    },
  };
}
