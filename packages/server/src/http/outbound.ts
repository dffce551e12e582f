import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { BlockList, isIP } from "node:net";
import { SpanKind } from "@opentelemetry/api";
import type { Agent } from "undici";
import { inSpan, tesseraTracer } from "../observability/tracing.ts";

/** Where the provider may send requests of its own (client jwks_uri, back-channel logout). */
export interface OutboundPolicy {
  /** Allow 127.0.0.0/8 and ::1 (local development and tests; default false). */
  allowLoopback: boolean;
  /** Allow private, link-local and other special-use ranges (default false). */
  allowPrivateNetworks: boolean;
  /** Seconds per request (default 5). */
  timeout: number;
  /** Largest response body read, in bytes (default 65536). */
  maxResponseBytes: number;
  /** PEM of CAs trusted for https besides Node's own (which include `NODE_EXTRA_CA_CERTS`). */
  ca?: string;
}

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");
const special = new BlockList();
for (const [net, bits] of [["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["169.254.0.0", 16], ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4]] as const) {
  special.addSubnet(net, bits, "ipv4");
}
for (const [net, bits] of [["::", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["64:ff9b::", 96]] as const) special.addSubnet(net, bits, "ipv6");

/** True when the policy lets the provider connect to this IP address. */
export function addressAllowed(address: string, policy: Pick<OutboundPolicy, "allowLoopback" | "allowPrivateNetworks">): boolean {
  let family = isIP(address) === 6 ? "ipv6" : "ipv4";
  let ip = address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) {
    ip = mapped[1]!;
    family = "ipv4";
  }
  if (loopback.check(ip, family as "ipv4" | "ipv6")) return policy.allowLoopback;
  if (special.check(ip, family as "ipv4" | "ipv6")) return policy.allowPrivateNetworks;
  return true;
}

/** An error of an outbound request that was refused by policy. */
export class OutboundRefused extends Error {
  override readonly name = "OutboundRefused";
}

/**
 * A fetch for URLs that clients register: http(s) only, addresses checked where the connection is made
 * (so DNS rebinding cannot slip past), no redirects, a timeout, and at most `maxResponseBytes` of body.
 */
export function createOutboundFetch(policy: OutboundPolicy): (url: string, init?: RequestInit) => Promise<Response> {
  // undici (about 20 MB resident) loads on the first outbound request, not at start.
  let loaded: Promise<{ agent: Agent; undiciFetch: typeof import("undici").fetch }> | undefined;
  const load = () => (loaded ??= import("undici").then(({ Agent, fetch: undiciFetch }) => ({ agent: createAgent(Agent, policy), undiciFetch })));
  const tracer = tesseraTracer();
  const send = async (url: string, init: RequestInit): Promise<Response> => {
    const target = new URL(url);
    if (target.protocol !== "https:" && target.protocol !== "http:") throw new OutboundRefused(`${target.protocol} URLs are not fetched`);
    const host = target.hostname.replace(/^\[|\]$/g, "");
    // IP literals skip the lookup, so they are checked here.
    if (isIP(host) && !addressAllowed(host, policy)) throw new OutboundRefused(`${host} may not be reached by outbound requests`);
    const { agent, undiciFetch } = await load();
    const response = await undiciFetch(target, { ...(init as object), redirect: "manual", dispatcher: agent, signal: AbortSignal.timeout(policy.timeout * 1000) } as never);
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new OutboundRefused(`redirects are not followed (HTTP ${response.status})`);
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > policy.maxResponseBytes) {
      await response.body?.cancel();
      throw new OutboundRefused("the response is too large");
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > policy.maxResponseBytes) throw new OutboundRefused("the response is too large");
        chunks.push(chunk);
      }
    }
    return new Response(size ? Buffer.concat(chunks) : null, { status: response.status, headers: response.headers as unknown as HeadersInit });
  };
  return (url, init = {}) => {
    const method = (init.method ?? "GET").toUpperCase();
    let target: URL | undefined;
    try {
      target = new URL(url);
    } catch {
      // send() refuses it; the span shows no URL
    }
    // The URL without query or fragment: a span never carries what a query might hold.
    const attributes = target ? { "http.request.method": method, "url.full": target.origin + target.pathname, "server.address": target.hostname } : { "http.request.method": method };
    return inSpan(tracer, method, SpanKind.CLIENT, attributes, async (span) => {
      const response = await send(url, init);
      span.setAttribute("http.response.status_code", response.status);
      return response;
    });
  };
}

function createAgent(AgentClass: typeof Agent, policy: OutboundPolicy): Agent {
  return new AgentClass({
    connect: {
      ...(policy.ca ? { ca: trustedCas(policy.ca) } : {}),
      lookup(hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) {
        dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
          if (err) return callback(err, []);
          const allowed = (addresses as LookupAddress[]).filter((a) => addressAllowed(a.address, policy));
          if (allowed.length === 0) return callback(Object.assign(new OutboundRefused(`${hostname} resolves to an address outbound requests may not reach`), { code: "EREFUSED" }), []);
          if ((options as { all?: boolean }).all) return callback(null, allowed);
          callback(null, allowed[0]!.address, allowed[0]!.family);
        });
      },
    },
  });
}

/**
 * Node's roots, `NODE_EXTRA_CA_CERTS` and the extra PEM: a `ca` option replaces the default store, which is
 * where Node keeps the extra certificates, so they are read again here.
 */
function trustedCas(extra: string): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  let fromEnv: string[] = [];
  try {
    if (file) fromEnv = [readFileSync(file, "utf8")];
  } catch {
    // Node itself only warns about an unreadable file
  }
  return [...rootCertificates, ...fromEnv, extra];
}
