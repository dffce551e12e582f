/**
 * The physical floor: a bare node:http server that checks Basic credentials and signs one JWT with
 * node:crypto, nothing else. Nothing real can be faster than this on the same machine.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const [alg = "ES256"] = process.argv.slice(2);
const { privateKey } = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
const key = createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" }));
const expected = createHash("sha256").update(`Basic ${Buffer.from("worker:worker-secret").toString("base64")}`).digest();
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const header = b64({ alg, typ: "at+jwt", kid: "floor" });

const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk: Buffer) => (body += chunk));
  req.on("end", () => {
    const given = createHash("sha256").update(req.headers.authorization ?? "").digest();
    if (!timingSafeEqual(given, expected) || !body.includes("grant_type=client_credentials")) {
      res.writeHead(401, { "content-type": "application/json" });
      return res.end('{"error":"invalid_client"}');
    }
    const now = Math.floor(Date.now() / 1000);
    const input = `${header}.${b64({ iss: "floor", sub: "worker", aud: "urn:api1", client_id: "worker", scope: "api1.read", iat: now, exp: now + 3600, jti: randomBytes(16).toString("base64url") })}`;
    const signature = sign(alg === "ES256" ? "sha256" : "sha256", Buffer.from(input), alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key).toString("base64url");
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ access_token: `${input}.${signature}`, token_type: "Bearer", expires_in: 3600, scope: "api1.read" }));
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
