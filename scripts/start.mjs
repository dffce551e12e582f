// npm start: the identity server from tessera.config.json, plus the demo web app on port 5002 when the
// demo config is in use, and instructions for signing in. Runs the compiled packages (dist/, written by
// npm install or npm run build): no TypeScript loader in this process.
import { main } from "@tessera/host";
const args = process.argv.slice(2);
const server = main(["start", ...args]);

let demo;
if (!process.env.TESSERA_CONFIG && !args.includes("--config") && process.env.TESSERA_DEMO !== "0") {
  try {
    const { startWebClient } = await import("@tessera/sample-web-client/server");
    demo = await startWebClient({ issuer: process.env.TESSERA_ISSUER ?? "http://localhost:5000", clientId: "web", clientSecret: "web-secret", port: 5002, baseUrl: "http://localhost:5002" });
    process.stdout.write(
      `\nTessera runs at http://localhost:5000 (discovery: http://localhost:5000/.well-known/openid-configuration)\n` +
        `Demo web app: open ${demo.url} and choose "Sign in with Tessera".\n` +
        `Demo users: alice / alice (admin), bob / bob. Or create an account at http://localhost:5000/account/register\n` +
        `(no mail server configured: verification and reset links are printed to this log).\n` +
        `Native app sample (system browser + loopback redirect): npm run sample:native in another terminal.\n\n`,
    );
  } catch (error) {
    process.stderr.write(`demo web app not started (${error.message}); the identity server runs on\n`);
  }
}

process.exitCode = await server;
await demo?.close();
