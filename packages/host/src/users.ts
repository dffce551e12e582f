import { constantTimeEqual } from "@tessera/protocol";
import type { UserRecord, UserStore } from "@tessera/server";

/** A user entry of the config file. */
export interface ConfiguredUser {
  sub: string;
  username: string;
  password?: string;
  password_hash?: string;
  claims?: Record<string, unknown>;
}

/** Users from the config: lookup by subject for claims, and password checks for the login page. */
export class ConfigUserStore implements UserStore {
  private readonly bySub = new Map<string, ConfiguredUser>();
  private readonly byUsername = new Map<string, ConfiguredUser>();
  private dummyHash: Promise<string> | undefined;

  constructor(users: ConfiguredUser[]) {
    for (const user of users) {
      this.bySub.set(user.sub, user);
      this.byUsername.set(user.username.toLowerCase(), user);
    }
  }

  async findBySubject(sub: string): Promise<UserRecord | undefined> {
    const user = this.bySub.get(sub);
    return user ? { sub: user.sub, claims: user.claims ?? {} } : undefined;
  }

  /** A user whose `email` claim equals the address after NFKC and lower-casing (any look-alike counts). */
  async findByEmail(email: string): Promise<UserRecord | undefined> {
    const key = email.trim().normalize("NFKC").toLowerCase();
    const user = [...this.bySub.values()].find((u) => typeof u.claims?.email === "string" && u.claims.email.trim().normalize("NFKC").toLowerCase() === key);
    return user ? { sub: user.sub, claims: user.claims ?? {} } : undefined;
  }

  /**
   * The user when the password is right, else undefined. Unknown users cost the same argon2 work as known
   * ones, so timing does not tell whether a username exists.
   */
  async validateCredentials(username: string, password: string): Promise<ConfiguredUser | undefined> {
    const user = this.byUsername.get(username.toLowerCase());
    if (user?.password_hash) return (await safeVerify(user.password_hash, password)) ? user : undefined;
    if (user?.password !== undefined) return constantTimeEqual(user.password, password) ? user : undefined;
    this.dummyHash ??= argon2().then(({ hash }) => hash("tessera-dummy-password"));
    await safeVerify(await this.dummyHash, password);
    return undefined;
  }
}

async function safeVerify(hashed: string, password: string): Promise<boolean> {
  const { verify } = await argon2();
  try {
    return await verify(hashed, password);
  } catch {
    return false;
  }
}

/** An argon2id hash for `password_hash` (the `hash-password` command). */
export async function hashPassword(password: string): Promise<string> {
  const { hash } = await argon2();
  return hash(password);
}

/** The argon2 binding, loaded with the first password check or hash (a start does not need it). */
function argon2(): Promise<typeof import("@node-rs/argon2")> {
  return import("@node-rs/argon2");
}
