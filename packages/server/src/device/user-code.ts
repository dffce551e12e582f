import { randomInt } from "node:crypto";
import { sha256Base64url } from "@tessera/protocol";

/**
 * RFC 8628 §6.1: consonants only, upper case: no vowels (no words spelt by accident), no digits, and none of
 * the letters easily mistaken for each other or for a digit.
 */
export const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

/** A new user code of `length` letters from {@link USER_CODE_ALPHABET}, each chosen uniformly. */
export function generateUserCode(length: number): string {
  let code = "";
  for (let i = 0; i < length; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/**
 * What a person typed, as stored: upper case, with dashes and whitespace dropped (RFC 8628 §6.1: case- and
 * punctuation-insensitive). Undefined when anything else is left, or it is not `length` letters long.
 */
export function normalizeUserCode(typed: string, length: number): string | undefined {
  if (typed.length > 4 * length) return undefined;
  const code = typed.replace(/[\s-]+/g, "").toUpperCase();
  if (code.length !== length) return undefined;
  for (const letter of code) if (!USER_CODE_ALPHABET.includes(letter)) return undefined;
  return code;
}

/** The code as shown to a person: groups of four joined by dashes (XXXX-XXXX). */
export function formatUserCode(code: string): string {
  return code.match(/.{1,4}/g)!.join("-");
}

/** The store key of a (normalized) user code: a hash, like every other secret in the store. */
export function userCodeKey(code: string): string {
  return sha256Base64url(`user_code:${code}`);
}
