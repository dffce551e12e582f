#!/usr/bin/env node
// The tessera command: the compiled CLI (npm run build, or npm install at the repository root, writes dist/).
import { main } from "../dist/cli.js";

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
