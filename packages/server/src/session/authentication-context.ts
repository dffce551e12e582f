/**
 * Authentication context (OIDC Core §2 `acr`, RFC 8176 `amr`): what a session's authentication methods are
 * worth, and whether that meets what an authorization request or policy asks. Step-up compares the two here
 * and nowhere else.
 *
 * The `acr` is derived from the session's `amr`, so every place that carries `amr` (codes, refresh tokens,
 * device codes) carries the `acr` with it:
 * - `phr` (OpenID EAP ACR Values 1.0 §2, phishing-resistant) for a passkey sign-in (`hwk` or `swk`);
 * - `mfa` when two factors were used (`mfa` in `amr`, e.g. `pwd` + `otp`);
 * - no `acr` for a single factor: "pwd" is no registered value, and OIDC Core makes `acr` optional.
 */

/** The `acr` values this provider issues and understands in `acr_values`, weakest first. */
export const ACR_VALUES = ["mfa", "phr"] as const;
export type AcrValue = (typeof ACR_VALUES)[number];

/** RFC 8176 methods that stand for a passkey (WebAuthn) sign-in. */
const PASSKEY_METHODS = new Set(["hwk", "swk"]);

/** The `acr` that a session authenticated with `amr` has, or undefined for a single factor. */
export function acrOf(amr: readonly string[]): AcrValue | undefined {
  if (amr.some((method) => PASSKEY_METHODS.has(method))) return "phr";
  if (amr.includes("mfa")) return "mfa";
  return undefined;
}

function rank(acr: AcrValue | undefined): number {
  return acr === undefined ? 0 : ACR_VALUES.indexOf(acr) + 1;
}

/** True when an authentication with `amr` is at least as strong as `required` (phr > mfa > none). */
export function meetsAcr(amr: readonly string[], required: AcrValue | undefined): boolean {
  return rank(acrOf(amr)) >= rank(required);
}

/**
 * The weakest `acr` that satisfies a request: `acr_values` (OIDC Core §3.1.2.1) lists acceptable values in
 * order of preference, so any one of the known ones will do; unknown values are voluntary and ignored.
 * A second-factor policy (the client's or the provider's) asks for at least `mfa`. Undefined: anything goes.
 * `supported`: the values the login pages can step up to; the others count as unknown.
 */
export function requiredAcr(acrValues: string | undefined, secondFactorRequired: boolean, supported: readonly AcrValue[] = ACR_VALUES): AcrValue | undefined {
  const known = (acrValues ?? "").split(" ").filter((value): value is AcrValue => (supported as readonly string[]).includes(value));
  const fromRequest = known.length ? known.reduce((weakest, value) => (rank(value) < rank(weakest) ? value : weakest)) : undefined;
  const fromPolicy: AcrValue | undefined = secondFactorRequired ? "mfa" : undefined;
  return rank(fromPolicy) > rank(fromRequest) ? fromPolicy : fromRequest;
}

/**
 * The `acr` an authorization request of `client` needs: its `acr_values` (else the client's registered
 * `default_acr_values`), and the client's or the provider's second-factor policy.
 */
export function requiredAcrFor(acrValues: string | undefined, client: { defaultAcrValues?: string[]; requireSecondFactor: boolean }, provider: { requireSecondFactor: boolean; acrValues: readonly AcrValue[] }): AcrValue | undefined {
  return requiredAcr(acrValues ?? client.defaultAcrValues?.join(" "), client.requireSecondFactor || provider.requireSecondFactor, provider.acrValues);
}

/**
 * The `amr` after a second factor joined a session: the session's methods, the new one, and `mfa`
 * (RFC 8176 §2) once the methods are of more than one factor.
 */
export function withSecondFactor(amr: readonly string[], method: string): string[] {
  const methods = [...new Set([...amr.filter((m) => m !== "mfa"), method])];
  return methods.length > 1 ? [...methods, "mfa"] : methods;
}
