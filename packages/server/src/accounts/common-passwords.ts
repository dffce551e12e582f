import { readFileSync } from "node:fs";

let list: Set<string> | undefined;

/** The bundled blocklist (`packages/server/data/common-passwords.txt`), read once on first use. */
function commonPasswords(): Set<string> {
  list ??= new Set(
    readFileSync(new URL("../../data/common-passwords.txt", import.meta.url), "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#")),
  );
  return list;
}

/** True when the (lower-cased) password is on the list of common passwords (NIST SP 800-63B §5.1.1.2). */
export function isCommonPassword(lowerCased: string): boolean {
  return commonPasswords().has(lowerCased);
}
