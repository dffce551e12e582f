export { createTokenValidator, acrSatisfies, type TokenValidator, type TokenValidatorOptions, type ValidationResult, type ValidationSuccess, type ValidationFailure, type ValidateOptions, type AccessTokenClaims } from "./validator.ts";
export { createMemoryReplayCache, type ReplayCache, type ReplayCacheResult } from "./replay-cache.ts";
export { toResponse } from "./respond.ts";
export { protectedResourceMetadata, protectedResourceMetadataUrl, PROTECTED_RESOURCE_METADATA_PATH, type ProtectedResourceMetadataOptions, type ProtectedResourceMetadataHandler, type ProtectedResourceMetadataDocument } from "./resource-metadata.ts";
