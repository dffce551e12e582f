import { isIPv4, isIPv6 } from "node:net";
import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import type { GrantStore, PersistedGrant } from "../stores/interfaces.ts";

/** Where a pending request is counted: its kind's bucket, and its client address's (when known). */
export interface PendingTags {
  grantId: string;
  /** The narrow bucket (IPv4 address, IPv6 /64): the per-address cap. */
  subject?: string;
  /** The wide bucket (IPv4 address, IPv6 /48): what "few entries" over the total counts. */
  sessionId?: string;
}

/** Default of `par.maxPendingPerClient`: most unused pushes one authenticated confidential client keeps. */
export const DEFAULT_MAX_PENDING_PER_CLIENT = 10_000;

/** A bucket holding fewer pending entries than this is admitted over the total cap (up to twice the total). */
export const FEW_PENDING = 3;

/** Largest serialized pending request (its stored `data`), in bytes (UTF-8). */
export const MAX_PENDING_REQUEST_BYTES = 8192;

/**
 * Throws `invalid_request` ("request too large") when `data` (a pending request as it would be stored,
 * `reserve` bytes kept free for what is added later) exceeds {@link MAX_PENDING_REQUEST_BYTES}.
 */
export function assertPendingSize(data: unknown, reserve = 0, redirectable = true): void {
  if (Buffer.byteLength(JSON.stringify(data), "utf8") + reserve > MAX_PENDING_REQUEST_BYTES) {
    throw new ProtocolError("invalid_request", "request too large", { redirectable });
  }
}

/**
 * Bounds the requests anyone can leave in the store without signing in (pending authorization requests,
 * logout requests), as oidc-provider keeps them: stored with a short lifetime, and here also capped, per
 * kind. Per client address bucket (an IPv4 address, an IPv6 /64, an IPv4-mapped IPv6 address as its IPv4
 * address) the bucket's own oldest are dropped first, so a flood hurts only its sender. Over the total cap,
 * new requests are refused (`temporarily_unavailable`, 429) and nobody else's is dropped, except that a
 * request whose own bucket holds fewer than {@link FEW_PENDING} pending entries is still admitted (a user
 * with a tab or two open is never refused because others filled the store). That exemption counts a wider
 * bucket for IPv6, the /48 (one allocation anyone gets for free from a tunnel broker holds 65,536 /64s), so
 * filling the store past the total costs a new IPv4 address or /48 per few rows, up to a hard ceiling of
 * twice the total where everything is refused. Requests without a known address count only against the
 * total. Counting uses the indexed `grantId`, `subject` and `sessionId` columns with prefixed values that
 * never collide with token families, users or sessions. A stored pending request is at most
 * {@link MAX_PENDING_REQUEST_BYTES}, so the store holds at most 2 × total × 8 KiB per kind, plus, for
 * pushes of authenticated confidential clients ({@link PendingRequestCap.admitClient}, registered clients
 * only), their per-client cap × 8 KiB each.
 */
export class PendingRequestCap {
  constructor(
    private readonly grants: GrantStore,
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
    /** Unix seconds. */
    private readonly now: () => number,
    private readonly maxPerClient: number = DEFAULT_MAX_PENDING_PER_CLIENT,
  ) {}

  /** Within one millisecond of this provider: the last one seen and how many keys it gave. */
  private lastMs = -1;
  private sequence = 0;

  /**
   * A fixed-width, alphanumeric prefix ordering what is created within one second: its millisecond, then
   * a counter for the same millisecond in this process. A pending record's key starts with it, so
   * {@link GrantStore.findAll} (created second, then key, on every store; digits and lower-case letters
   * sort alike in every collation) returns a bucket oldest first to the millisecond, not in hash order.
   */
  orderPrefix(ms: number): string {
    const at = Math.floor(ms);
    this.sequence = at === this.lastMs ? this.sequence + 1 : 0;
    this.lastMs = at;
    return `${String(((at % 1000) + 1000) % 1000).padStart(3, "0")}${Math.min(this.sequence, 36 ** 4 - 1).toString(36).padStart(4, "0")}`;
  }

  /**
   * Makes room for one more push of an authenticated confidential client (RFC 9126 §2, one backend
   * pushing for all its users from one address): counted in the client's own bucket only, capped at
   * `maxPerClient` with its own oldest dropped first; never counted in the anonymous address buckets or the
   * total, and never refused because anonymous pushes filled them.
   */
  async admitClient(kind: "par" | "device_code", clientId: string, onEvict?: (grant: PersistedGrant) => Promise<void>): Promise<PendingTags> {
    const tags: PendingTags = { grantId: `pending:client:${sha256Base64url(clientId)}` };
    // Counted without loading the rows (the cap is large); expired rows not yet cleaned up count too and go first.
    const held = await this.grants.count({ kind, grantId: tags.grantId }, Number.MIN_SAFE_INTEGER, this.maxPerClient);
    if (held >= this.maxPerClient) await this.evict(await this.grants.findAll({ kind, grantId: tags.grantId }, held - this.maxPerClient + 1), held - this.maxPerClient + 1, onEvict);
    return tags;
  }

  /**
   * Makes room for one more pending request of `kind`; returns the tags its record must carry. Throws a
   * `temporarily_unavailable` ProtocolError (status 429) when the total cap is reached and the request's
   * wide bucket (IPv4 address, IPv6 /48) already holds {@link FEW_PENDING} or more (or its address is unknown), or at twice the total.
   */
  async admit(kind: "interaction" | "logout" | "par" | "device_code" | "federation", address: string | undefined, onEvict?: (grant: PersistedGrant) => Promise<void>): Promise<PendingTags> {
    const bucket = address ? addressBucket(address) : undefined;
    const wide = address ? addressBucket(address, true) : undefined;
    const tags: PendingTags = {
      grantId: `pending:${kind}`,
      ...(bucket ? { subject: `pending:${sha256Base64url(bucket)}` } : {}),
      ...(wide ? { sessionId: `pending:${sha256Base64url(wide)}` } : {}),
    };
    const own = tags.subject ? await this.grants.findAll({ kind, grantId: tags.grantId, subject: tags.subject }, this.maxPerAddress) : undefined;
    const total = await this.grants.count({ kind, grantId: tags.grantId }, this.now(), 2 * this.maxTotal);
    // Over the total only a wide bucket (IPv4 address, IPv6 /48) holding few is admitted (it takes nobody's
    // place); a fuller one, or an unknown address, is refused without evicting anything.
    const few = async () =>
      tags.sessionId !== undefined && (await this.grants.count({ kind, grantId: tags.grantId, sessionId: tags.sessionId }, this.now(), FEW_PENDING)) < FEW_PENDING;
    if (total >= 2 * this.maxTotal || (total >= this.maxTotal && !(await few()))) {
      throw new ProtocolError("temporarily_unavailable", "too many pending requests; try again later", { status: 429 });
    }
    if (own) await this.evict(own, own.length - this.maxPerAddress + 1, onEvict);
    return tags;
  }

  /** Drops the oldest; `onEvict` removes what a marker row stands for (a device code lives in its own table). */
  private async evict(oldestFirst: PersistedGrant[], count: number, onEvict?: (grant: PersistedGrant) => Promise<void>): Promise<void> {
    for (const grant of oldestFirst.slice(0, Math.max(0, count))) {
      await this.grants.remove(grant.key);
      await onEvict?.(grant);
    }
  }
}

/**
 * The bucket a client address is counted in: an IPv4 address as is; an IPv6 address by its /64 (one
 * subscriber's usual allocation, so rotating addresses within it costs nothing extra), or by its /48 when
 * `wide` (the allocation a tunnel broker hands out for free); an IPv4-mapped IPv6 address as its IPv4
 * address. Brackets and a zone id are ignored; anything else is its own bucket.
 */
export function addressBucket(address: string, wide = false): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return a;
  const groups = ipv6Groups(a);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join(".");
  }
  return wide ? `${groups.slice(0, 3).map((g) => g.toString(16)).join(":")}::/48` : `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (a dotted IPv4 tail included). */
function ipv6Groups(address: string): number[] {
  let a = address;
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (tail) {
    const [b0, b1, b2, b3] = tail.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, tail.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head = "", rest] = a.split("::") as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  if (rest === undefined) return left;
  const right = parse(rest);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}
