import { ProtocolError } from "@tessera/protocol";

/** Parameters that may appear more than once (RFC 8707 §2: `resource`). */
export const REPEATABLE: ReadonlySet<string> = new Set(["resource"]);

/** Request parameters after the size and duplicate rules of RFC 6749 §3.1 / §3.2 were applied. */
export class Params implements Iterable<[string, string]> {
  private constructor(private readonly values: ReadonlyMap<string, readonly string[]>) {}

  /** From name/value pairs already checked (a stored request). */
  static fromEntries(entries: Iterable<[string, string]>): Params {
    const values = new Map<string, string[]>();
    for (const [name, value] of entries) values.set(name, [...(values.get(name) ?? []), value]);
    return new Params(values);
  }

  /**
   * Parses a query string or form body (`application/x-www-form-urlencoded`), refusing repeats (but of
   * `resource`), over-long values, too many parameters and percent-encodings that are not UTF-8.
   */
  static parse(raw: string, limits: ParamLimits, redirectable = true, repeatable: ReadonlySet<string> = REPEATABLE): Params {
    const values = new Map<string, string[]>();
    if (raw.startsWith("?")) raw = raw.slice(1);
    if (raw === "") return new Params(values);
    const pairs = raw.split("&");
    if (pairs.length > limits.maxParameters) throw new ProtocolError("invalid_request", "too many parameters", { redirectable });
    for (const pair of pairs) {
      if (pair === "") continue;
      const equals = pair.indexOf("=");
      const name = decodeComponent(equals < 0 ? pair : pair.slice(0, equals), redirectable);
      const value = equals < 0 ? "" : decodeComponent(pair.slice(equals + 1), redirectable);
      const existing = values.get(name);
      if (existing && !repeatable.has(name)) throw new ProtocolError("invalid_request", `parameter ${name.slice(0, 64)} is repeated`, { redirectable });
      if (value.length > limits.maxParameterLength) throw new ProtocolError("invalid_request", `parameter ${name.slice(0, 64)} is too long`, { redirectable });
      // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
      if (value !== "") values.set(name, [...(existing ?? []), value]);
    }
    return new Params(values);
  }

  /** The value of a single-valued parameter. */
  get(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }

  /** Every value of a repeatable parameter. */
  getAll(name: string): string[] {
    return [...(this.values.get(name) ?? [])];
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const [name, values] of this.values) for (const value of values) yield [name, value];
  }
}

export interface ParamLimits {
  maxFormBytes: number;
  maxParameterLength: number;
  maxParameters: number;
}

/** Strict form decoding: `+` is a space, and a percent-encoding must spell valid UTF-8. */
function decodeComponent(text: string, redirectable: boolean): string {
  const spaced = text.includes("+") ? text.replace(/\+/g, " ") : text;
  if (!spaced.includes("%")) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    throw new ProtocolError("invalid_request", "a parameter is not valid percent-encoded UTF-8", { redirectable });
  }
}

/** Reads an application/x-www-form-urlencoded body within the size limit. */
export async function readForm(request: Request, limits: ParamLimits, redirectable = true, repeatable: ReadonlySet<string> = REPEATABLE): Promise<Params> {
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new ProtocolError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const text = await readLimitedText(request, limits.maxFormBytes);
  return Params.parse(text, limits, redirectable, repeatable);
}

/** The body as text, refusing more than `maxBytes` without reading it all into memory. */
export async function readLimitedText(request: Request, maxBytes: number): Promise<string> {
  const lengthHeader = request.headers.get("content-length");
  const declared = Number(lengthHeader ?? "0");
  if (declared > maxBytes) throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
  // With a declared length the HTTP layer already bounds the body, so the runtime's fast path is safe;
  // without one (chunked) the body is streamed and cut off at the limit.
  if (lengthHeader !== null && /^\d+$/.test(lengthHeader)) {
    const bytes = new Uint8Array(await request.arrayBuffer().catch(unreadable));
    if (bytes.byteLength > maxBytes) throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
    return decodeUtf8(bytes);
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read().catch(unreadable);
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
    }
    chunks.push(value);
  }
  return decodeUtf8(Buffer.concat(chunks));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A body must be UTF-8; anything else is refused rather than silently repaired. */
function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError("invalid_request", "the request body is not valid UTF-8");
  }
}

/** The client went away or sent a broken body: its error, not the server's (no 5xx, no "store unavailable"). */
function unreadable(): never {
  throw new ProtocolError("invalid_request", "the request body could not be read");
}
