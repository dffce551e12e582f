export { createHostApp, type HostApp, type HostOptions } from "./app.tsx";
export { parseConfig, loadConfigFile, configSchema, ConfigError, type TesseraConfig, type ConfigProblem } from "./config.ts";
export { startServer, type RunningServer } from "./server.ts";
export { ConfigUserStore, hashPassword } from "./users.ts";
export { main } from "./cli.ts";
export { addressList, type ProxyTrust } from "./client-address.ts";
export { startMtlsListener, readMtlsMaterial, clientCertificateFrom, type MtlsMaterial } from "./mtls.ts";
