export { createClientCredentialsFetch, mtlsFetch, type ClientCredentialsOptions, type ClientCredentialsFetch } from "./client-credentials.ts";
export { createUserTokenManager, type UserTokenManager, type UserTokenManagerOptions, type UserTokens, type UserTokenStore } from "./user-tokens.ts";
export { createMemoryTokenCache, type TokenCache, type CachedToken } from "./cache.ts";
export { TokenManagementError, type TokenManagementErrorCode } from "./errors.ts";
