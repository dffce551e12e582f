#!/usr/bin/env node
// The tessera command: TypeScript sources run through tsx, no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
