import { spawn } from "node:child_process";
import autocannon from "autocannon";
import { ssoWorkload, refreshWorkload } from "./flows.ts";
const [store = "sqlite", which = "sso"] = process.argv.slice(2);
const port = 45200 + Math.floor(Math.random() * 500);
const child = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir=/tmp/prof", "--import", "tsx", "bench/servers/tessera.ts", store, "ES256"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "inherit"] });
await new Promise((r) => child.stdout!.on("data", (d) => String(d).includes("listening") && r(undefined)));
const base = `http://127.0.0.1:${port}`;
if (which === "cc") {
  const r = await autocannon({ url: `${base}/connect/token`, method: "POST", headers: { authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}`, "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials&scope=api1.read", connections: 16, duration: 8 });
  console.log(r.requests.average, r.non2xx);
} else {
  const w = await (which === "sso" ? ssoWorkload : refreshWorkload)(base);
  await w.check();
  console.log(await w.run(8));
}
const exited = new Promise((r) => child.once("exit", r));
child.kill("SIGTERM");
await exited;
