import { SignJWT, type JWTPayload } from "jose";
import type { KeyManager } from "../keys/key-manager.ts";

/** Signs a JWT with the active key for `alg` (or the default); returns the token and the alg used. */
export async function signJwt(keys: KeyManager, payload: JWTPayload, typ: string, alg?: string): Promise<{ jwt: string; alg: string }> {
  const key = await keys.signingKey(alg);
  const jwt = await new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ }).sign(key.privateKey);
  return { jwt, alg: key.alg };
}
