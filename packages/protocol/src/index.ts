export * from "./errors.ts";
export * from "./encoding.ts";
export * from "./pkce.ts";
export * from "./hashes.ts";
export * from "./scopes.ts";
export * from "./session-state.ts";
export * from "./dpop.ts";
export * from "./certificates.ts";
export type * from "./discovery.ts";
