import { ProtocolError } from "@tessera/protocol";

/** Request parameters after the size and duplicate rules of RFC 6749 §3.1 / §3.2 were applied. */
export type Params = ReadonlyMap<string, string>;

export interface ParamLimits {
  maxFormBytes: number;
  maxParameterLength: number;
}

/**
 * Turns URLSearchParams into a map, refusing repeated parameters (RFC 6749 §3.1: "MUST NOT be included
 * more than once") and over-long values. Empty values count as absent (RFC 6749 §3.1).
 */
export function toParams(search: URLSearchParams, limits: ParamLimits, redirectable = true): Params {
  const params = new Map<string, string>();
  const seen = new Set<string>();
  for (const [name, value] of search) {
    if (seen.has(name)) throw new ProtocolError("invalid_request", `parameter ${name} is repeated`, { redirectable });
    seen.add(name);
    if (value.length > limits.maxParameterLength) {
      throw new ProtocolError("invalid_request", `parameter ${name} is too long`, { redirectable });
    }
    if (value !== "") params.set(name, value);
  }
  return params;
}

/** Reads an application/x-www-form-urlencoded body within the size limit. */
export async function readForm(request: Request, limits: ParamLimits): Promise<Params> {
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new ProtocolError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const text = await readLimitedText(request, limits.maxFormBytes);
  return toParams(new URLSearchParams(text), limits);
}

/** The body as text, refusing more than `maxBytes` without reading it all into memory. */
export async function readLimitedText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
    }
    chunks.push(value);
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(chunks));
}
