import { ProtocolError } from "@tessera/protocol";
import type { ResolvedOptions } from "../options.ts";

type ResourceOptions = Pick<ResolvedOptions, "apiResources" | "identityResources">;

/** RFC 8707 §2: an absolute URI without a fragment. */
export function isResourceIndicator(value: string): boolean {
  try {
    return new URL(value).hash === "" && !value.includes("#");
  } catch {
    return false;
  }
}

/**
 * RFC 8707 §2: every `resource` value is an absolute URI without a fragment naming a configured API
 * resource; `invalid_target` otherwise. Returns the distinct names (so what is stored stays bounded by
 * the configured resources, however often a value is repeated).
 */
export function parseResourceIndicators(values: readonly string[], options: ResourceOptions): string[] {
  for (const value of values) {
    if (!isResourceIndicator(value)) throw new ProtocolError("invalid_target", `resource ${value.slice(0, 200)} is not an absolute URI without a fragment`);
    if (!options.apiResources.some((r) => r.name === value)) throw new ProtocolError("invalid_target", `resource ${value.slice(0, 200)} is unknown`);
  }
  return [...new Set(values)];
}

/** The API resources a grant of `scopes` covers when no resource was indicated (each owns one of the scopes). */
export function impliedResources(scopes: readonly string[], options: ResourceOptions): string[] {
  return options.apiResources.filter((r) => r.scopes.some((s) => scopes.includes(s))).map((r) => r.name);
}

/** What a request may be issued for once its resources are known. */
export interface ResourceTarget {
  /** The audience: the indicated resources. */
  audience: string[];
  /** The scopes of the request that belong to those resources, plus identity scopes (never API scopes of other resources). */
  scopes: string[];
}

/**
 * RFC 8707 §2 with scopes (as Duende's resource isolation): each resource must own at least one of the
 * `scopes` (`invalid_target`); with `strict` (the scopes were asked for explicitly), an API scope owned by
 * none of the resources is `invalid_scope`, otherwise it is dropped. Identity scopes (`openid`, ...) are
 * about the user, not an API, and always stay.
 */
export function targetResources(resources: readonly string[], scopes: readonly string[], options: ResourceOptions, strict: boolean): ResourceTarget {
  const covered = new Set<string>();
  for (const name of resources) {
    const resource = options.apiResources.find((r) => r.name === name);
    const owned = resource ? resource.scopes.filter((s) => scopes.includes(s)) : [];
    if (owned.length === 0) throw new ProtocolError("invalid_target", `resource ${name.slice(0, 200)} has none of the requested scopes`);
    for (const s of owned) covered.add(s);
  }
  const identity = new Set(options.identityResources);
  const outside = scopes.find((s) => !identity.has(s) && !covered.has(s));
  if (strict && outside !== undefined) throw new ProtocolError("invalid_scope", `scope ${outside} does not belong to the requested resources`);
  return { audience: [...resources], scopes: scopes.filter((s) => identity.has(s) || covered.has(s)) };
}

/**
 * RFC 8707 §2.2: at the token endpoint for an existing grant, `resource` may only name resources that
 * grant covers (`granted`); `invalid_target` otherwise. An empty request keeps the grant's resources.
 */
export function selectGrantedResources(values: readonly string[], granted: readonly string[], options: ResourceOptions): string[] {
  const requested = parseResourceIndicators(values, options);
  const outside = requested.find((r) => !granted.includes(r));
  if (outside !== undefined) throw new ProtocolError("invalid_target", `resource ${outside.slice(0, 200)} was not granted`);
  return requested;
}

/** A user grant (code or refresh family) as far as RFC 8707 is concerned. */
export interface ResourceGrant {
  /** Every scope granted. */
  scopes: readonly string[];
  /** The resources indicated at authorize; absent when none were. */
  resources?: readonly string[];
}

/**
 * RFC 8707 §2.2 at the token endpoint for a user grant: which audience and scopes this access token gets.
 * `values` (the request's `resource`) may name any resource the grant covers (those indicated at
 * authorize, or without any, those its scopes imply), and the token is then for those only. Without
 * `resource`, the token is for every indicated resource still owning one of `scopes` (Duende's behaviour;
 * several become an `aud` array), or, when none were indicated, the default audience from the scopes
 * (`audience` undefined). `strict`: the scopes were asked for explicitly (refresh with `scope`).
 */
export function grantTarget(values: readonly string[], grant: ResourceGrant, scopes: readonly string[], options: ResourceOptions, strict: boolean): { scopes: string[]; audience?: string[] } {
  const granted = grant.resources ?? impliedResources(grant.scopes, options);
  const requested = selectGrantedResources(values, granted, options);
  if (requested.length > 0) return targetResources(requested, scopes, options, strict);
  const kept = (grant.resources ?? []).filter((name) => options.apiResources.find((r) => r.name === name)?.scopes.some((s) => scopes.includes(s)));
  if (kept.length === 0) return { scopes: [...scopes] };
  return targetResources(kept, scopes, options, false);
}
