import { startWebClient } from "./server.ts";

const app = await startWebClient({
  issuer: process.env.TESSERA_ISSUER ?? "http://localhost:5000",
  clientId: process.env.CLIENT_ID ?? "web",
  clientSecret: process.env.CLIENT_SECRET ?? "web-secret",
  port: Number(process.env.PORT ?? 5002),
  baseUrl: process.env.BASE_URL ?? `http://localhost:${process.env.PORT ?? 5002}`,
});
process.stdout.write(`demo web app on ${app.url}\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void app.close());
