/**
 * The native app sample (`npm run sample:native`): a command-line app that signs in with the system browser
 * as the public client `native` of the demo server (`npm start`), then prints the ID token's claims and
 * what userinfo answered.
 *
 *   node dist/main.js [--issuer URL] [--client-id ID] [--scope "openid profile"] [--no-browser]
 *
 * `--no-browser` (or NATIVE_NO_BROWSER=1) only prints the URL to open; the tests use it.
 */
import { parseArgs } from "node:util";
import { openInBrowser } from "./browser.ts";
import { describe, signIn } from "./native.ts";

const { values } = parseArgs({
  options: {
    issuer: { type: "string", default: process.env.TESSERA_ISSUER ?? "http://localhost:5000" },
    "client-id": { type: "string", default: "native" },
    scope: { type: "string", default: "openid profile email" },
    "no-browser": { type: "boolean", default: process.env.NATIVE_NO_BROWSER === "1" },
  },
});
const say = (line: string) => process.stdout.write(`${line}\n`);

try {
  const result = await signIn({
    issuer: values.issuer,
    clientId: values["client-id"],
    scope: values.scope,
    present: async (url, { redirectUri, pushed }) => {
      say(`Waiting for the browser at ${redirectUri}${pushed ? " (request pushed with PAR)" : ""}.`);
      if (!values["no-browser"]) {
        try {
          await openInBrowser(url.href);
          say("Opened your browser. If nothing happened, open this URL:");
        } catch {
          say("Could not open a browser. Open this URL:");
        }
      } else {
        say("Open this URL in a browser:");
      }
      say(`authorization URL: ${url.href}`);
    },
  });
  say("\nSigned in. ID token claims:");
  say(JSON.stringify(result.claims, null, 2));
  say("userinfo:");
  say(JSON.stringify(result.userinfo, null, 2));
} catch (error) {
  const unreachable = /fetch failed/.test(describe(error)) ? ` Is the identity server at ${values.issuer} running (npm start)?` : "";
  process.stderr.write(`Sign-in failed: ${describe(error)}${unreachable}\n`);
  process.exitCode = 1;
}
