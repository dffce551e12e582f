export { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationResult, type ValidationSuccess, type ValidationFailure, type ValidateOptions, type AccessTokenClaims } from "./validator.ts";
export { createMemoryReplayCache, type ReplayCache, type ReplayCacheResult } from "./replay-cache.ts";
export { toResponse } from "./respond.ts";
