/** argon2id parameters (RFC 9106; the defaults are OWASP's minimum: 19 MiB, 2 passes, 1 lane). */
export interface Argon2Parameters {
  /** KiB of memory (default 19456). */
  memoryCost?: number;
  /** Passes (default 2). */
  timeCost?: number;
  /** Lanes (default 1). */
  parallelism?: number;
}

/** Hashes and checks passwords; the memory, SQL and embedders' account stores share it. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a hash that cannot be read (never throws on bad input). */
  verify(hash: string, password: string): Promise<boolean>;
  /** True when the hash is not argon2id with the current parameters: rehash it after a successful check. */
  needsRehash(hash: string): Promise<boolean>;
  /** Does the work of one {@link verify} against nothing, so unknown users cost as much time as known ones. */
  dummyVerify(password: string): Promise<void>;
}

const DEFAULTS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
/** `Algorithm.Argon2id` of @node-rs/argon2 (a const enum, so not importable as a value). */
const ARGON2ID = 2;

/** The argon2 binding, loaded with the first password check or hash (a start does not need it). */
function argon2(): Promise<typeof import("@node-rs/argon2")> {
  return import("@node-rs/argon2");
}

/** argon2id through @node-rs/argon2 with the given parameters. */
export function createArgon2Hasher(parameters: Argon2Parameters = {}): PasswordHasher {
  const options = { ...DEFAULTS, ...parameters, algorithm: ARGON2ID };
  let dummy: Promise<string> | undefined;
  const verify = async (hashed: string, password: string) => {
    const { verify } = await argon2();
    try {
      return await verify(hashed, password);
    } catch {
      return false;
    }
  };
  return {
    async hash(password) {
      const { hash } = await argon2();
      return hash(password, options);
    },
    verify,
    async needsRehash(hashed) {
      const { parseOptions } = await argon2();
      try {
        const parsed = parseOptions(hashed);
        return (parsed.algorithm as number) !== ARGON2ID || parsed.memoryCost !== options.memoryCost || parsed.timeCost !== options.timeCost || parsed.parallelism !== options.parallelism;
      } catch {
        return true;
      }
    },
    async dummyVerify(password) {
      dummy ??= argon2().then(({ hash }) => hash("tessera-dummy-password", options));
      await verify(await dummy, password);
    },
  };
}
