import { ProtocolError, randomHandle, sha256Base64url } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { GrantSession } from "../grants/extension.ts";
import type { ThrottleReservation } from "../security/failure-throttle.ts";
import { addressBucket } from "../security/pending-requests.ts";
import type { DeviceCodeRecord } from "../stores/interfaces.ts";
import type { AuthenticationSession } from "../session/session.ts";
import { meetsAcr, requiredAcrFor } from "../session/authentication-context.ts";
import { formatUserCode, generateUserCode, normalizeUserCode, userCodeKey } from "./user-code.ts";

/** RFC 8628 §3.5: each `slow_down` adds this many seconds to the polling interval, for good. */
export const SLOW_DOWN_SECONDS = 5;

/** Wrong user codes per client address bucket (IPv4 address, IPv6 /64) within {@link USER_CODE_WINDOW} seconds (RFC 8628 §5.1). */
export const USER_CODE_FAILURES = 10;
/** Wrong user codes per IPv6 /48 (65,536 /64s anyone gets free from a tunnel broker) within the window. */
export const USER_CODE_WIDE_FAILURES = 30;
/**
 * Wrong user codes in total (every address, and lookups without one) within the window, kept in the store
 * so every process counts alike: past it every lookup is refused until the window moves on. With 8 letters
 * of 20 (2.56 × 10^10 codes) that bounds a guesser to under 10^5 guesses a day however many addresses it has.
 */
export const USER_CODE_TOTAL_FAILURES = 1000;
export const USER_CODE_WINDOW = 900;

/** The total budget's throttle subject; no address bucket's (those all start "device-user-code:"). */
const USER_CODE_TOTAL = "device-user-code-total";

/** The per-address failure budgets a lookup counts against: the /64 (or IPv4 address) and the /48. */
function userCodeBudgets(clientAddress: string | undefined): { subject: string; max: number }[] {
  if (!clientAddress) return [];
  const narrow = addressBucket(clientAddress);
  const wide = addressBucket(clientAddress, true);
  return [{ subject: `device-user-code:${narrow}`, max: USER_CODE_FAILURES }, ...(wide !== narrow ? [{ subject: `device-user-code:${wide}`, max: USER_CODE_WIDE_FAILURES }] : [])];
}

/** What a device authorization holds once a user approved it: the approving session's user data. */
export interface ApprovedDeviceData {
  grantId: string;
  sid: string;
  authTime: number;
  amr: string[];
  idp: string;
  sessionClaims: Record<string, unknown>;
  /** RFC 8707: the resources indicated at device authorization; absent when none were. */
  resources?: string[];
}

/** What a pending device authorization holds: the indicated resources, if any. */
interface PendingDeviceData {
  resources?: string[];
}

/** The store key of a device code: a hash, never the value itself. */
export function deviceCodeKey(deviceCode: string): string {
  return sha256Base64url(`device_code:${deviceCode}`);
}

/**
 * The grant-store row that stands for an approval until the code is redeemed, tagged with the approving
 * user (`subject`), session (`sessionId`), client and token family, so revoking any of them
 * (`revokeGrants`, `removeSessions`, a revoked family) removes it, and with it the approval.
 */
export function deviceApprovalKey(key: string): string {
  return sha256Base64url(`device_approval:${key}`);
}

/** The device-code key a pending-cap marker row stands for (after its creation-order prefix, if any). */
export function deviceKeyOfMarker(markerKey: string): string {
  return markerKey.slice(-DEVICE_KEY_LENGTH);
}
/** Length of {@link deviceCodeKey} (a base64url SHA-256). */
const DEVICE_KEY_LENGTH = 43;

/** A new device authorization (RFC 8628 §3.2): the device code and the user code (normalized). */
export async function createDeviceAuthorization(deps: ProviderDeps, client: Client, scopes: string[], resources?: string[]): Promise<{ deviceCode: string; userCode: string; record: DeviceCodeRecord }> {
  const { lifetime, interval, userCodeLength } = deps.options.deviceFlow;
  const now = nowSeconds(deps);
  // A clash with a live user code is rare (20^8 codes); another draw resolves it.
  for (let attempt = 0; attempt < 5; attempt++) {
    const deviceCode = randomHandle(32);
    const userCode = generateUserCode(userCodeLength);
    const record: DeviceCodeRecord = {
      key: deviceCodeKey(deviceCode),
      userCodeKey: userCodeKey(userCode),
      clientId: client.clientId,
      scope: scopes.join(" "),
      status: "pending",
      data: JSON.stringify(resources ? ({ resources } satisfies PendingDeviceData) : {}),
      createdAt: now,
      expiresAt: now + lifetime,
      interval,
    };
    if (await deps.store.deviceCodes.create(record)) return { deviceCode, userCode, record };
  }
  throw new ProtocolError("temporarily_unavailable", "no user code is free; try again", { status: 503 });
}

/** The outcome of looking a typed user code up. */
export type UserCodeLookup = { status: "found"; record: DeviceCodeRecord; userCode: string } | { status: "invalid" } | { status: "throttled" };

/**
 * Looks up a pending, live device authorization by the code a person typed (any case, dashes and spaces
 * ignored). Codes that find none count against the client address (RFC 8628 §5.1, brute force): past
 * {@link USER_CODE_FAILURES} per /64 (or IPv4 address), {@link USER_CODE_WIDE_FAILURES} per IPv6 /48 or
 * {@link USER_CODE_TOTAL_FAILURES} in total within the window, every lookup counted there is refused,
 * found or not. Without an address only the total counts: embedders should pass `clientAddress`.
 */
export async function lookUpUserCode(deps: ProviderDeps, typed: string, clientAddress: string | undefined): Promise<UserCodeLookup> {
  // The total is counted, not reserved slot by slot: parallel lookups may pass it by a few, never by many.
  if ((await deps.throttle.failedAttempts(USER_CODE_TOTAL, USER_CODE_TOTAL_FAILURES)) >= USER_CODE_TOTAL_FAILURES) return { status: "throttled" };
  const reservations: ThrottleReservation[] = [];
  for (const budget of userCodeBudgets(clientAddress)) {
    const reservation = await deps.throttle.reserve(budget.subject, { window: USER_CODE_WINDOW, max: budget.max });
    if (!reservation) {
      for (const held of reservations) await deps.throttle.release(held);
      return { status: "throttled" };
    }
    reservations.push(reservation);
  }
  const code = normalizeUserCode(typed, deps.options.deviceFlow.userCodeLength);
  const record = code ? await deps.store.deviceCodes.findByUserCode(userCodeKey(code)) : undefined;
  if (!code || !record) {
    for (const held of reservations) await deps.throttle.fail(held);
    await deps.throttle.recordFailure(USER_CODE_TOTAL, USER_CODE_WINDOW);
    return { status: "invalid" };
  }
  for (const held of reservations) await deps.throttle.release(held);
  // A code that existed but is over is no guess; it is still no request anyone may act on.
  if (record.status !== "pending" || record.expiresAt <= nowSeconds(deps)) return { status: "invalid" };
  return { status: "found", record, userCode: formatUserCode(code) };
}

/**
 * Records the signed-in user's decision (RFC 8628 §3.3): `gone` when the request is no longer pending,
 * `step_up` when an approval comes from a session weaker than the client's `default_acr_values` or the
 * second-factor policy ask (the same rule as at the authorization endpoint; a denial needs no strength).
 */
export async function decideDeviceAuthorization(deps: ProviderDeps, record: DeviceCodeRecord, client: Client, session: AuthenticationSession, allow: boolean): Promise<"decided" | "gone" | "step_up"> {
  if (allow && !meetsAcr(session.amr, requiredAcrFor(undefined, client, deps.options))) return "step_up";
  const pending = JSON.parse(record.data) as PendingDeviceData;
  const data: ApprovedDeviceData | Record<string, never> = allow
    ? { grantId: randomHandle(16), sid: session.sid, authTime: session.authTime, amr: session.amr, idp: session.idp, sessionClaims: session.claims, ...(pending.resources ? { resources: pending.resources } : {}) }
    : {};
  const decided = await deps.store.deviceCodes.decide(
    record.userCodeKey,
    allow ? { status: "approved", subject: session.sub, sessionId: session.sid, data: JSON.stringify(data) } : { status: "denied", data: "{}" },
    nowSeconds(deps),
  );
  if (decided && allow && "grantId" in data) {
    await deps.store.grants.put({
      key: deviceApprovalKey(record.key),
      kind: "device_code",
      clientId: record.clientId,
      subject: session.sub,
      sessionId: session.sid,
      grantId: data.grantId,
      data: "{}",
      createdAt: nowSeconds(deps),
      expiresAt: record.expiresAt,
    });
  }
  return decided ? "decided" : "gone";
}

/** What the device code grant needs: the store, the sessions (for coordinated lifetimes), options and clock. */
export type DeviceFlowDeps = Pick<ProviderDeps, "store" | "sessions" | "options" | "clock">;

/** An approved device code, redeemed (taken once) by its client. */
export interface RedeemedDeviceCode {
  scopes: string[];
  /** RFC 8707: the resources indicated at device authorization; absent when none were. */
  resources?: string[];
  /** The approving session the tokens continue. */
  session: GrantSession;
}

/**
 * RFC 8628 §3.4-§3.5, the whole polling state machine: `invalid_grant` for a code that is unknown, another
 * client's or used; `expired_token` past its lifetime; `access_denied` once the user denied; while pending,
 * `slow_down` (and 5 s more interval, for good) when polled sooner than the interval after the last poll
 * (compared and set atomically, so polls through several processes count alike), else
 * `authorization_pending`. An approved code is taken once, atomically across processes: of racing polls
 * exactly one redeems it, the others get `invalid_grant`.
 */
export async function redeemDeviceCode(deps: DeviceFlowDeps, client: { clientId: string; coordinateLifetimeWithUserSession: boolean }, deviceCode: string | undefined, check?: (grant: { scopes: string[]; resources?: string[] }) => void): Promise<RedeemedDeviceCode> {
  if (!deviceCode) throw new ProtocolError("invalid_request", "device_code is missing");
  const key = deviceCodeKey(deviceCode);
  const record = await deps.store.deviceCodes.get(key);
  // Another client's code is simply unknown to this one.
  if (!record || record.clientId !== client.clientId) throw new ProtocolError("invalid_grant", "the device code is invalid");
  if (record.consumedAt !== undefined) throw new ProtocolError("invalid_grant", "the device code was already used");
  const now = nowSeconds(deps);
  if (record.expiresAt <= now) throw new ProtocolError("expired_token", "the device code has expired; start again");
  if (record.status === "denied") throw new ProtocolError("access_denied", "the user denied the request");
  if (record.status === "pending") {
    const tooSoon = record.lastPolledAt !== undefined && now - record.lastPolledAt < record.interval;
    const interval = tooSoon ? record.interval + SLOW_DOWN_SECONDS : record.interval;
    // Losing the compare-and-set means another poll landed at the same moment: that is polling too fast too.
    const recorded = await deps.store.deviceCodes.recordPoll(key, record.lastPolledAt, now, interval);
    if (tooSoon || !recorded) throw new ProtocolError("slow_down", `poll at most every ${interval} seconds`);
    throw new ProtocolError("authorization_pending", "the user has not yet approved the request");
  }
  const data = JSON.parse(record.data) as ApprovedDeviceData;
  // RFC 6749 §5.2: a revoked grant is invalid_grant. The approval ends with its session (server-side
  // sessions: logout, expiry, removal) for every client, and with revokeGrants / removeSessions, which
  // remove its approval row.
  if (deps.options.serverSideSessions.enabled && !(await deps.sessions.isAlive(data.sid))) throw new ProtocolError("invalid_grant", "the user session has ended");
  const approval = await deps.store.grants.get(deviceApprovalKey(key));
  if (!approval || approval.kind !== "device_code" || approval.subject !== record.subject || approval.expiresAt <= now) throw new ProtocolError("invalid_grant", "the approval was revoked");
  const scopes = record.scope.split(" ").filter(Boolean);
  // Checked before the code is used, so a client that asked for the wrong resource may poll again.
  check?.({ scopes, ...(data.resources ? { resources: data.resources } : {}) });
  const taken = await deps.store.deviceCodes.consume(key, now);
  // The device code never leaves the device and this server, so a second use is a racing retry, not a leak.
  if (!taken?.firstUse) throw new ProtocolError("invalid_grant", "the device code was already used");
  return {
    scopes,
    ...(data.resources ? { resources: data.resources } : {}),
    session: { sub: record.subject!, sid: data.sid, authTime: data.authTime, amr: data.amr, idp: data.idp, claims: data.sessionClaims, grantId: data.grantId },
  };
}
