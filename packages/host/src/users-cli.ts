import { parseArgs } from "node:util";
import { AccountConflictError, AccountInputError, FixedAccountError, StoreValueError, type AccountView } from "@tessera/server";
import { createHostApp } from "./app.tsx";
import { ConfigError, loadConfigFile } from "./config.ts";

/** What the users commands borrow from the CLI. */
interface CliHelpers {
  readStdin(): Promise<string>;
  printConfigError(error: unknown): number;
}

const USAGE = `usage: tessera users add --username U [--email E] [--name N] [--role R]  (password on stdin)
       tessera users list [--query Q]
       tessera users disable U | enable U | set-password U  (password on stdin)
each takes --config FILE (or TESSERA_CONFIG)`;

/**
 * `tessera users …` (issue 20): works on the configured store directly, through the same account rules as
 * the server (UserDirectory). A running server sees each change at its next request: nothing is cached.
 * Disabling also ends the account's server-side sessions (with back-channel logout to their clients) and
 * revokes its tokens from here; cookie-only sessions end at their next use, when the server finds the
 * account disabled.
 */
export async function usersCommand(argv: string[], cli: CliHelpers): Promise<number> {
  const [action, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { config: { type: "string" }, username: { type: "string" }, email: { type: "string" }, name: { type: "string" }, role: { type: "string", multiple: true }, query: { type: "string" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 1;
  }
  const { values, positionals } = parsed;
  const known = ["add", "list", "disable", "enable", "set-password"];
  if (!action || !known.includes(action)) {
    process.stderr.write(`${USAGE}\n`);
    return action === undefined || action === "help" || action === "--help" ? 0 : 1;
  }
  const wantsName = action === "disable" || action === "enable" || action === "set-password";
  if ((wantsName && positionals.length !== 1) || (!wantsName && positionals.length !== 0)) {
    process.stderr.write(`${USAGE}\n`);
    return 1;
  }
  if (action === "add" && !values.username) {
    process.stderr.write("tessera users add needs --username\n");
    return 1;
  }
  const password = action === "add" || action === "set-password" ? (await cli.readStdin()).replace(/\r?\n$/, "") : undefined;
  if ((action === "add" || action === "set-password") && !password) {
    process.stderr.write("no password on stdin\n");
    return 1;
  }
  const configFile = values.config ?? process.env.TESSERA_CONFIG ?? "tessera.config.json";
  let host;
  try {
    const { config, baseDir } = loadConfigFile(configFile, { issuer: process.env.TESSERA_ISSUER });
    // A memory store lives as long as this command: a change would be reported and then lost.
    if (config.store?.kind === "memory" || config.accounts?.store === false) {
      process.stderr.write("tessera users needs stored accounts: set store.kind to sqlite or postgres, and leave accounts.store on\n");
      return 1;
    }
    host = await createHostApp(config, { baseDir });
  } catch (error) {
    if (error instanceof ConfigError) return cli.printConfigError(error);
    process.stderr.write(`cannot open the store: ${(error as Error).message}\n`);
    return 1;
  }
  const { users } = host;
  try {
    if (action === "list") {
      let cursor: string | undefined;
      do {
        const page = await users.list({ query: values.query, cursor, count: 200 });
        for (const user of page.users) process.stdout.write(line(user));
        cursor = page.next ?? undefined;
      } while (cursor);
      return 0;
    }
    if (action === "add") {
      const claims: Record<string, unknown> = {};
      if (values.name !== undefined) claims.name = values.name;
      if (values.role?.length) claims.role = values.role;
      // An email given by an administrator counts as verified (contract §14).
      const user = await users.create({ username: values.username!, email: values.email, emailVerified: true, password, claims }, "cli");
      process.stdout.write(`added ${user.username} (sub ${user.sub})\n`);
      return 0;
    }
    const username = positionals[0]!;
    const user = await users.findByUsername(username);
    if (!user) {
      process.stderr.write(`no user ${username}\n`);
      return 1;
    }
    if (action === "set-password") {
      await users.setPassword(user.sub, password!, "cli");
      process.stdout.write(`password of ${user.username} changed\n`);
    } else {
      await users.setDisabled(user.sub, action === "disable", "cli");
      process.stdout.write(`${user.username} ${action === "disable" ? "disabled; its sessions have ended" : "enabled"}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof AccountInputError || error instanceof AccountConflictError || error instanceof FixedAccountError || error instanceof StoreValueError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await host.close();
  }
}

/** One account per line, tab-separated: sub, username, email, status, source, name. */
function line(user: AccountView): string {
  const name = typeof user.claims.name === "string" ? user.claims.name : "";
  // Controls (C0 and C1), format characters (bidi overrides, zero-width) and line separators would forge columns or lines.
  const clean = (value: string) => value.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, " ");
  return [user.sub, user.username, user.email ?? "", user.disabled ? "disabled" : "active", user.fixed ? "config" : "store", name].map(clean).join("\t") + "\n";
}
