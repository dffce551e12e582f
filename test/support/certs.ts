import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Throwaway PKI for mTLS tests, made with openssl: two CAs, a server certificate, client certificates. */
export interface TestPki {
  dir: string;
  ca: string;
  otherCa: string;
  server: { cert: string; key: string };
  client(name: "a" | "b" | "a-other-ca" | "a-expired" | "self"): { cert: string; key: string; certPath: string; keyPath: string };
  paths: { ca: string; serverCert: string; serverKey: string };
  cleanup(): void;
}

const openssl = (dir: string, args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "tessera-pki-"));
  const newKey = (name: string) => openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);
  const makeCa = (name: string) => {
    newKey(name);
    openssl(dir, ["req", "-x509", "-new", "-key", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  };
  const issue = (name: string, ca: string, subject: string, san: string, validity: { days?: number; start?: string; end?: string } = { days: 2 }) => {
    newKey(name);
    openssl(dir, ["req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth,serverAuth\n`);
    if (validity.start) {
      // openssl 3.0 sets past dates only through `openssl ca`.
      writeFileSync(join(dir, "index.txt"), "");
      writeFileSync(join(dir, "serial"), "1000\n");
      writeFileSync(join(dir, "ca.cnf"), `[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\ndefault_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=copy\n[p]\ncommonName=supplied\n`);
      openssl(dir, ["ca", "-batch", "-config", "ca.cnf", "-cert", `${ca}.pem`, "-keyfile", `${ca}.key`, "-in", `${name}.csr`, "-out", `${name}.pem`, "-startdate", validity.start, "-enddate", validity.end!, "-extfile", `${name}.ext`, "-notext"]);
    } else {
      openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", String(validity.days), "-extfile", `${name}.ext`]);
    }
  };
  makeCa("ca");
  makeCa("other-ca");
  issue("server", "ca", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost");
  issue("client-a", "ca", "/CN=client-a/O=Tessera Tests", "DNS:client-a.test");
  issue("client-b", "ca", "/CN=client-b/O=Tessera Tests", "DNS:client-b.test");
  issue("client-a-other-ca", "other-ca", "/CN=client-a/O=Tessera Tests", "DNS:client-a.test");
  issue("client-a-expired", "ca", "/CN=client-a/O=Tessera Tests", "DNS:client-a.test", { start: "20200101000000Z", end: "20200102000000Z" });
  newKey("client-self");
  openssl(dir, ["req", "-x509", "-new", "-key", "client-self.key", "-out", "client-self.pem", "-days", "2", "-subj", "/CN=self-signed-client"]);
  const read = (file: string) => readFileSync(join(dir, file), "utf8");
  return {
    dir,
    ca: read("ca.pem"),
    otherCa: read("other-ca.pem"),
    server: { cert: read("server.pem"), key: read("server.key") },
    client: (name) => ({ cert: read(`client-${name}.pem`), key: read(`client-${name}.key`), certPath: join(dir, `client-${name}.pem`), keyPath: join(dir, `client-${name}.key`) }),
    paths: { ca: join(dir, "ca.pem"), serverCert: join(dir, "server.pem"), serverKey: join(dir, "server.key") },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
