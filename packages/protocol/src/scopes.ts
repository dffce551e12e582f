/** OIDC Core §5.4: the claims each standard scope requests. */
export const STANDARD_SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  openid: ["sub"],
  profile: [
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
  ],
  email: ["email", "email_verified"],
  address: ["address"],
  phone: ["phone_number", "phone_number_verified"],
  offline_access: [],
};

/** RFC 6749 §3.3: a scope token is one or more of %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Splits a `scope` parameter into distinct tokens; undefined when the syntax is wrong. */
export function parseScope(value: string): string[] | undefined {
  const tokens = value.split(" ").filter((t) => t.length > 0);
  if (!tokens.every((t) => SCOPE_TOKEN.test(t))) return undefined;
  return [...new Set(tokens)];
}
