import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from "fastify";
import { invalidRequestBody, nodeWebRequest, parseBaseUrl, peerCertificate, refusalHeaders, type NodeAdapterOptions } from "./node-request.ts";
import { createTokenValidator, type TokenValidator, type TokenValidatorOptions, type ValidationSuccess } from "./validator.ts";
import { protectedResourceMetadata, type ProtectedResourceMetadataHandler, type ProtectedResourceMetadataOptions } from "./resource-metadata.ts";
export type { NodeAdapterOptions } from "./node-request.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the token validation hook: the validated access token. */
    auth: Omit<ValidationSuccess, "ok"> | null;
  }
}

/**
 * A Fastify preHandler hook: validates the access token and sets `request.auth`, or replies 401/403 with
 * the challenge. Add it to routes (`{ preHandler: tokenHook(v) }`) or to an encapsulated context.
 * `options.baseUrl` is the API's public URL (for DPoP `htu`).
 */
export function tokenHook(validator: TokenValidator | TokenValidatorOptions, options: NodeAdapterOptions = {}) {
  const v = "validate" in validator ? validator : createTokenValidator(validator);
  const base = parseBaseUrl(options.baseUrl);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const built = nodeWebRequest(base, request.method, request.url, request.headers, () => ({ protocol: request.protocol, host: request.host }));
    if (!built.ok) {
      await reply.code(400).header("cache-control", "no-store").send(invalidRequestBody(built.description));
      return;
    }
    const result = await v.validate(built.request, { clientCertificate: peerCertificate(request.raw.socket) });
    if (result.ok) {
      request.auth = { claims: result.claims, scopes: result.scopes, tokenType: result.tokenType };
      return;
    }
    // A header value Node refuses throws here, before anything is sent: Fastify then answers 500.
    const headers = refusalHeaders(result);
    await reply.code(result.status).headers(headers).send({ error: result.error, ...(result.errorDescription ? { error_description: result.errorDescription } : {}) });
  };
}

const plugin: FastifyPluginCallback<{ validator: TokenValidator | TokenValidatorOptions } & NodeAdapterOptions> = (fastify, options, done) => {
  fastify.decorateRequest("auth", null);
  fastify.addHook("preHandler", tokenHook(options.validator, { baseUrl: options.baseUrl }));
  done();
};

/**
 * A Fastify plugin: every route of the context it is registered in requires a valid token
 * (`request.auth`). Like fastify-plugin, it skips encapsulation so its hook reaches that context.
 */
export const tokenValidation = Object.assign(plugin, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "tessera-token-validation",
});

/**
 * A Fastify plugin serving RFC 9728 protected resource metadata at its well-known paths (GET, and HEAD as
 * Fastify adds it): `fastify.register(serveResourceMetadata, { metadata })`.
 */
export const serveResourceMetadata: FastifyPluginCallback<{ metadata: ProtectedResourceMetadataHandler | ProtectedResourceMetadataOptions }> = (fastify, options, done) => {
  const handler = typeof options.metadata === "function" ? options.metadata : protectedResourceMetadata(options.metadata);
  for (const path of handler.paths) {
    fastify.get(path, async (request, reply) => {
      const response = handler(new Request(`http://localhost${path}`, { method: request.method }));
      response.headers.forEach((value, name) => void reply.header(name, value));
      return reply.code(response.status).send(await response.text());
    });
  }
  done();
};
