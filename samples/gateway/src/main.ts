/**
 * The gateway sample, in one command (`npm run sample:gateway`): the identity server (port 5000), the
 * downstream orders API (5021), the API gateway that exchanges the user's token for an orders token
 * (RFC 8693, 5020), and a web app whose signed-in user calls the orders API through the gateway (5022).
 */
import { join } from "node:path";
import { startServer } from "@tessera/host";
import { startOrdersApi } from "./downstream.ts";
import { startGateway } from "./gateway.ts";
import { startWeb } from "./web.ts";

const identity = await startServer(join(import.meta.dirname, "..", "tessera.config.json"));
const orders = await startOrdersApi(identity.app.issuer, 5021);
const gateway = await startGateway({ issuer: identity.app.issuer, ordersUrl: orders.url, port: 5020 });
const web = await startWeb({ issuer: identity.app.issuer, gatewayUrl: gateway.url, port: 5022, baseUrl: "http://localhost:5022" });

process.stdout.write(`
Identity server: ${identity.url}
Orders API:      ${orders.url}/orders   (only tokens the gateway got by token exchange)
Gateway:         ${gateway.url}/api/orders
Web app:         ${web.url}   (sign in as alice / alice)
`);
const stop = async () => {
  await Promise.all([web.close(), gateway.close(), orders.close()]);
  await identity.stop();
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
