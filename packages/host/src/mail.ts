import type { Logger } from "@tessera/server";

/** A message to one recipient: a plain-text body and an HTML body (built from escaped parts). */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * Sends mail. `send` never throws: a failure is logged (never shown to the user, so a failed send cannot
 * tell whether an address has an account) and reported as false.
 */
export interface Mailer {
  send(message: MailMessage): Promise<boolean>;
  close(): void;
}

/** `smtp` in the config file. */
export interface SmtpConfig {
  /** `smtp://` or `smtps://` URL, with credentials if the server needs them. */
  url: string;
  /** The From address. */
  from: string;
  /** Seconds for connecting, greeting and each SMTP command (default 10). */
  timeout?: number;
}

/** SMTP through nodemailer (loaded only when `smtp` is configured). */
export async function createSmtpMailer(config: SmtpConfig, logger: Logger | undefined): Promise<Mailer> {
  const nodemailer = await import("nodemailer");
  const ms = (config.timeout ?? 10) * 1000;
  const transport = nodemailer.createTransport({ url: config.url, connectionTimeout: ms, greetingTimeout: ms, socketTimeout: ms * 3, dnsTimeout: ms });
  return {
    async send(message) {
      try {
        // One recipient as an address object: nodemailer never parses it as a list or a display name.
        await transport.sendMail({ from: config.from, to: { name: "", address: message.to }, subject: message.subject, text: message.text, html: message.html });
        return true;
      } catch (error) {
        // Never the recipient (SMTP error texts quote it): only the codes, so the log tells no address.
        const { code, responseCode } = error as { code?: unknown; responseCode?: unknown };
        logger?.error({ err: { code: typeof code === "string" ? code : undefined, responseCode: typeof responseCode === "number" ? responseCode : undefined } }, "sending mail failed");
        return false;
      }
    },
    close: () => transport.close(),
  };
}

/**
 * Development transport (no `smtp` configured): prints each message's text, links included, to the log
 * (or stderr without a logger) instead of sending it.
 */
export function createConsoleMailer(logger: Logger | undefined): Mailer {
  return {
    async send(message) {
      if (logger) logger.info({ mail: { to: message.to, subject: message.subject, text: message.text } }, "mail (console transport: not sent)");
      else process.stderr.write(`--- mail to ${message.to}: ${message.subject}\n${message.text}\n---\n`);
      return true;
    },
    close() {},
  };
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text safe inside HTML element content and quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * A message with one action link: the text body puts the link on a line of its own (the first http URL of
 * the text is the link, contract §14), the HTML body escapes every part.
 */
export function linkMessage(to: string, subject: string, paragraphs: string[], link?: { url: string; label: string }, footer?: string): MailMessage {
  const text = [...paragraphs, ...(link ? [link.url] : []), ...(footer ? [footer] : [])].join("\n\n") + "\n";
  const html =
    `<!doctype html><html><body style="font-family:sans-serif">` +
    paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join("") +
    (link ? `<p><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a></p><p style="color:#555">${escapeHtml(link.url)}</p>` : "") +
    (footer ? `<p style="color:#555">${escapeHtml(footer)}</p>` : "") +
    `</body></html>`;
  return { to, subject, text, html };
}
