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
/** IPv4 special-purpose blocks (IANA IPv4 Special-Purpose Address Registry) that are not globally reachable, and multicast. */
const special = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["169.254.0.0", 16], ["172.16.0.0", 12], ["192.0.0.0", 24],
  ["192.0.2.0", 24], ["192.88.99.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24],
  ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) {
  special.addSubnet(net, bits, "ipv4");
}

type AddressClass = "public" | "loopback" | "special";

function ipv4Class(address: string): AddressClass {
  if (loopback.check(address, "ipv4")) return "loopback";
  return special.check(address, "ipv4") ? "special" : "public";
}

/** The 16 bytes of an IPv6 address (any spelling: `::`, embedded dotted IPv4, a zone), or undefined. */
function ipv6Bytes(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, "").toLowerCase();
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const octets = dotted[2]!.split(".").map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    text = `${dotted[1]}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const bytes: number[] = [];
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes.push(value >> 8, value & 0xff);
  }
  return bytes;
}

const ipv4At = (bytes: number[], at: number, mask = 0) => bytes.slice(at, at + 4).map((b) => b ^ mask).join(".");
const startsWith = (bytes: number[], prefix: number[]) => prefix.every((b, i) => bytes[i] === b);

/**
 * IPv6: only global unicast 2000::/3 is public, minus the special-purpose blocks of the IANA registry
 * (2001::/23 IETF assignments, 2001:db8::/32 and 3fff::/20 documentation). Addresses that carry an IPv4
 * address are judged by it: IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 (RFC 6052), 6to4 2002::/16
 * (RFC 3056), Teredo 2001::/32 (RFC 4380: its server and its obfuscated client address). The local-use
 * NAT64 prefix 64:ff9b:1::/48 (RFC 8215), IPv4-compatible ::/96, ULA, link- and site-local, multicast and
 * discard are special.
 */
function ipv6Class(address: string): AddressClass {
  const bytes = ipv6Bytes(address);
  if (!bytes) return "special";
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 15) && bytes[15] === 1) return "loopback";
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return ipv4Class(ipv4At(bytes, 12));
  if (startsWith(bytes, [0x00, 0x64, 0xff, 0x9b]) && zeros(4, 12)) return ipv4Class(ipv4At(bytes, 12));
  if ((bytes[0]! & 0xe0) !== 0x20) return "special";
  if (startsWith(bytes, [0x20, 0x02])) return ipv4Class(ipv4At(bytes, 2));
  if (startsWith(bytes, [0x20, 0x01, 0x00, 0x00])) {
    const server = ipv4Class(ipv4At(bytes, 4));
    const client = ipv4Class(ipv4At(bytes, 12, 0xff));
    return server === "public" && client === "public" ? "public" : client === "loopback" || server === "loopback" ? "loopback" : "special";
  }
  if (startsWith(bytes, [0x20, 0x01]) && bytes[2]! < 0x02) return "special";
  if (startsWith(bytes, [0x20, 0x01, 0x0d, 0xb8])) return "special";
  if (bytes[0] === 0x3f && bytes[1] === 0xff && bytes[2]! < 0x10) return "special";
  return "public";
}

/** True when the policy lets the provider connect to this IP address. */
export function addressAllowed(address: string, policy: Pick<OutboundPolicy, "allowLoopback" | "allowPrivateNetworks">): boolean {
  const family = isIP(address.replace(/%.*$/, ""));
  // Not an IP address: nothing to connect to.
  const kind: AddressClass = family === 4 ? ipv4Class(address) : family === 6 ? ipv6Class(address) : "special";
  if (kind === "loopback") return policy.allowLoopback;
  if (kind === "special") return policy.allowPrivateNetworks;
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
