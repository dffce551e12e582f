import { ProtocolError } from "@tessera/protocol";

/** Parameters that may appear more than once (RFC 8707 §2: `resource`). */
const REPEATABLE = new Set(["resource"]);

/** Request parameters after the size and duplicate rules of RFC 6749 §3.1 / §3.2 were applied. */
export class Params implements Iterable<[string, string]> {
  private constructor(private readonly values: ReadonlyMap<string, readonly string[]>) {}

  /** From name/value pairs already checked (a stored request). */
  static fromEntries(entries: Iterable<[string, string]>): Params {
    const values = new Map<string, string[]>();
    for (const [name, value] of entries) values.set(name, [...(values.get(name) ?? []), value]);
    return new Params(values);
  }

  /** Builds from a query or form, refusing repeats (but of `resource`) and over-long values. */
  static parse(search: URLSearchParams, limits: ParamLimits, redirectable = true): Params {
    const values = new Map<string, string[]>();
    for (const [name, value] of search) {
      const existing = values.get(name);
      if (existing && !REPEATABLE.has(name)) throw new ProtocolError("invalid_request", `parameter ${name} is repeated`, { redirectable });
      if (value.length > limits.maxParameterLength) throw new ProtocolError("invalid_request", `parameter ${name} is too long`, { redirectable });
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
}

/** Reads an application/x-www-form-urlencoded body within the size limit. */
export async function readForm(request: Request, limits: ParamLimits): Promise<Params> {
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new ProtocolError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const text = await readLimitedText(request, limits.maxFormBytes);
  return Params.parse(new URLSearchParams(text), limits);
}

/** The body as text, refusing more than `maxBytes` without reading it all into memory. */
export async function readLimitedText(request: Request, maxBytes: number): Promise<string> {
  const lengthHeader = request.headers.get("content-length");
  const declared = Number(lengthHeader ?? "0");
  if (declared > maxBytes) throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
  // With a declared length the HTTP layer already bounds the body, so the runtime's fast path is safe;
  // without one (chunked) the body is streamed and cut off at the limit.
  if (lengthHeader !== null && /^\d+$/.test(lengthHeader)) {
    const text = await request.text();
    if (Buffer.byteLength(text, "utf8") > maxBytes) throw new ProtocolError("invalid_request", "the request body is too large", { status: 413 });
    return text;
  }
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
