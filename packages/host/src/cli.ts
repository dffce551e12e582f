import { parseArgs } from "node:util";
import { ConfigError, loadConfigFile } from "./config.ts";
import { startServer } from "./server.ts";
import { usersCommand } from "./users-cli.ts";
import { hashPassword } from "./users.ts";

const USAGE = `usage:
  tessera start [--config FILE] [--port N]   run the identity server
  tessera check --config FILE                validate a config file
  tessera hash-password                      read a password on stdin, print an argon2id hash
  tessera users add --username U [--email E] [--name N] [--role R]   add an account (password on stdin)
  tessera users list [--query Q]             list accounts
  tessera users disable U | enable U         disable (ends its sessions) or enable an account
  tessera users set-password U               set an account's password (read on stdin)
  (users commands take --config FILE or TESSERA_CONFIG, like check)`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function printConfigError(error: unknown): number {
  if (error instanceof ConfigError) {
    for (const problem of error.problems) process.stderr.write(`config error at ${problem.path || "(root)"}: ${problem.message}\n`);
    return 1;
  }
  throw error;
}

/** Runs the CLI; resolves to the exit code (start resolves only when the server stops). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "users") return usersCommand(rest, { readStdin, printConfigError });
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: "string" }, port: { type: "string" }, host: { type: "string" } },
    allowPositionals: false,
    strict: true,
  });
  const env = process.env;
  const configFile = values.config ?? env.TESSERA_CONFIG ?? "tessera.config.json";
  switch (command) {
    case "check": {
      try {
        loadConfigFile(configFile);
      } catch (error) {
        return printConfigError(error);
      }
      process.stdout.write(`${configFile}: OK\n`);
      return 0;
    }
    case "hash-password": {
      const password = (await readStdin()).replace(/\r?\n$/, "");
      if (!password) {
        process.stderr.write("no password on stdin\n");
        return 1;
      }
      process.stdout.write((await hashPassword(password)) + "\n");
      return 0;
    }
    case "start": {
      const portText = values.port ?? env.PORT;
      const port = portText !== undefined ? Number(portText) : undefined;
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
        process.stderr.write(`invalid port ${portText}\n`);
        return 1;
      }
      let server;
      try {
        server = await startServer(configFile, { port, issuer: env.TESSERA_ISSUER, hostname: values.host });
      } catch (error) {
        if (error instanceof ConfigError) return printConfigError(error);
        process.stderr.write(`cannot start: ${(error as Error).message}\n`);
        return 1;
      }
      process.stdout.write(`listening on ${server.url}\n`);
      return new Promise<number>((done) => {
        const shutdown = () => {
          process.stdout.write("stopping\n");
          server.stop().then(
            () => done(0),
            () => done(1),
          );
        };
        process.once("SIGINT", shutdown);
        process.once("SIGTERM", shutdown);
      });
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return command === undefined || command === "help" || command === "--help" ? 0 : 1;
  }
}
