export { createHostApp, type HostApp, type HostOptions } from "./app.tsx";
export { parseConfig, loadConfigFile, configSchema, ConfigError, MANAGEMENT_DEFAULTS, type TesseraConfig, type ConfigProblem } from "./config.ts";
export { startServer, type RunningServer } from "./server.ts";
export { ConfigUserStore, hashPassword } from "./users.ts";
export { main } from "./cli.ts";
export { startMtlsListener, readMtlsMaterial, clientCertificateFrom, type MtlsMaterial } from "./mtls.ts";
export { createHostLogger, type HostLoggerOptions, type LogDestination } from "./logging.ts";
export { createMetrics, type HostMetrics } from "./metrics.ts";
export { startManagementListener, managementHandler, type ManagementListener } from "./management.ts";
