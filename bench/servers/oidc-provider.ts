/** Benchmark peer: oidc-provider configured for the same work (client credentials, JWT access tokens, same alg). */
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [alg = "ES256"] = process.argv.slice(2);
const port = Number(process.env.PORT);
const { privateKey } = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), alg, use: "sig", kid: "bench" };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "api1.read", id_token_signed_response_alg: alg }],
  jwks: { keys: [jwk as never] },
  scopes: ["api1.read"],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:api1",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: "api1.read", audience: "urn:api1", accessTokenFormat: "jwt", jwt: { sign: { alg } } }),
    },
  },
});
const server = provider.listen(port, "127.0.0.1", () => process.stdout.write(`listening on http://127.0.0.1:${port}\n`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
