import pino, { type Logger } from "pino";

/** Where the host logs; `isTTY` decides between pretty and JSON. */
export type LogDestination = NodeJS.WritableStream & { isTTY?: boolean };

/** Options of {@link createHostLogger}. */
export interface HostLoggerOptions {
  /** Default `LOG_LEVEL` or info. */
  level?: string;
  /** Default standard output. */
  destination?: LogDestination;
}

/** The fields of the one line the host logs per request (app.tsx). */
const REQUEST_FIELDS = ["method", "path", "status", "ms"] as const;

/**
 * The host's logger: JSON lines (one object per line, for log shippers) unless the destination is a
 * terminal, where lines are pretty and coloured (pino-pretty, loaded only then). A request line reads
 * `POST /connect/token 200 3 ms` in a terminal and `{"method":"POST","path":"/connect/token","status":200,"ms":3,...}` otherwise.
 */
export async function createHostLogger(options: HostLoggerOptions = {}): Promise<Logger> {
  const destination = options.destination ?? process.stdout;
  const settings = { level: options.level ?? process.env.LOG_LEVEL ?? "info", base: { service: "tessera" } };
  if (!destination.isTTY) return options.destination ? pino(settings, options.destination) : pino(settings);
  const { default: pretty } = await import("pino-pretty");
  const stream = pretty({
    destination,
    colorize: true,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: ["pid", "hostname", "service", ...REQUEST_FIELDS].join(","),
    messageFormat: (log, messageKey) =>
      printable(log[messageKey] === "request" && typeof log.path === "string" ? `${String(log.method)} ${log.path} ${String(log.status)} ${String(log.ms)} ms` : String(log[messageKey] ?? "")),
  });
  return pino(settings, stream);
}

/** Control and bidi characters shown as escapes, so no logged value can fake a line or drive the terminal. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
