// The tessera command as one ES module: dist/tessera.mjs, bundled by esbuild from the compiled CLI
// (dist/cli.js, written by tsc) and everything it imports. Node then reads, resolves and compiles one file
// instead of some 670 (kysely's, zod's, jose's, hono's and Tessera's own modules), which makes
// `tessera start` reach `listening on` in about half the time and idle some 10 MB smaller (README,
// Benchmarks). The libraries stay tsc output, module per module; only the bin runs the bundle.
//
// Left outside the bundle, loaded from node_modules as before: native addons (better-sqlite3,
// @node-rs/argon2) and what a start loads only when configured or used (pg, undici, pino-pretty,
// prom-client, nodemailer). The SQLite checkpoint worker is a file of its own, copied next to the bundle.
import { copyFileSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const here = (path) => new URL(path, import.meta.url).pathname;

/**
 * tsc output loads zod and kysely through createRequire (their CommonJS builds are far fewer modules than
 * their ES module builds, which matters unbundled). In the bundle, static ES imports let esbuild drop
 * what is never used (zod's locales, for one). Each rewrite must apply, or the build fails.
 */
const REWRITES = [
  { file: /[\\/]host[\\/]dist[\\/]config\.js$/, from: /const \{ z \} = createRequire\(import\.meta\.url\)\("zod"\);/, to: () => 'import * as z from "zod";' },
  {
    file: /[\\/]server[\\/]dist[\\/]stores[\\/]sql[\\/]kysely\.js$/,
    from: /const kysely = createRequire\(import\.meta\.url\)\("kysely"\);\s*export const \{([^}]+)\} = kysely;/,
    to: (_, names) => `export {${names}} from "kysely";`,
  },
  // The common-password list is read from new URL(...) of the module: next to the bundle (copied below).
  {
    file: /[\\/]server[\\/]dist[\\/]accounts[\\/]common-passwords\.js$/,
    from: /new URL\("\.\.\/\.\.\/data\/common-passwords\.txt", import\.meta\.url\)/,
    to: () => 'new URL("./common-passwords.txt", import.meta.url)',
  },
];

const staticImports = {
  name: "static-imports",
  setup(b) {
    for (const rewrite of REWRITES) {
      b.onLoad({ filter: rewrite.file }, (args) => {
        const text = readFileSync(args.path, "utf8");
        if (!rewrite.from.test(text)) throw new Error(`bundle: ${args.path} no longer has ${rewrite.from}; update packages/host/bundle.mjs`);
        return { contents: text.replace(rewrite.from, rewrite.to), loader: "js", resolveDir: args.path.replace(/[\\/][^\\/]+$/, "") };
      });
    }
  },
};

await build({
  entryPoints: [here("./dist/cli.js")],
  outfile: here("./dist/tessera.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3", "@node-rs/argon2", "pg", "undici", "pino-pretty", "prom-client", "nodemailer"],
  // CommonJS code inside the bundle (pino, for one) calls require for Node's built-in modules.
  banner: { js: 'import { createRequire as __tesseraRequire } from "node:module";\nconst require = __tesseraRequire(import.meta.url);' },
  plugins: [staticImports],
  sourcemap: true,
  logLevel: "warning",
});
// sqlite.js starts its worker from new URL("./checkpoint-worker.mjs", import.meta.url): next to the bundle.
copyFileSync(here("../server/dist/stores/sql/checkpoint-worker.mjs"), here("./dist/checkpoint-worker.mjs"));
copyFileSync(here("../server/data/common-passwords.txt"), here("./dist/common-passwords.txt"));
