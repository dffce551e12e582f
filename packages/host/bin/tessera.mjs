#!/usr/bin/env node
// The tessera command: the compiled CLI bundled into one module (dist/tessera.mjs, see bundle.mjs; npm run
// build, or npm install at the repository root, writes it).
import { main } from "../dist/tessera.mjs";

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
