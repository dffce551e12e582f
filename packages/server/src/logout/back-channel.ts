import { randomHandle } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import type { KeyManager } from "../keys/key-manager.ts";
import type { Logger } from "../options.ts";
import type { TesseraEvent } from "../events.ts";
import { signJwt } from "../tokens/signer.ts";

/** OIDC Back-Channel Logout 1.0 §2.4 event. */
export const BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";

/** Delivery settings. */
export interface BackChannelOptions {
  /** Seconds to wait for one POST (default 5). */
  timeout: number;
  /** Further attempts after a failed one (default 2), with doubling back-off from 500 ms. */
  retries: number;
}

/** Whom to tell about an ended session. */
export interface EndedSession {
  sub: string;
  sid: string;
  clients: Client[];
}

/**
 * Sends signed logout tokens to every client of an ended session that registered a back-channel URI, in
 * parallel, without making anybody wait: `notify` returns at once; `drain` waits for deliveries in flight.
 */
export class BackChannelLogoutService {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly issuer: string,
    private readonly keys: KeyManager,
    private readonly logger: Logger,
    private readonly clock: () => number,
    private readonly options: BackChannelOptions,
    private readonly emit: (event: TesseraEvent) => void = () => {},
    private readonly send: (url: string, init?: RequestInit) => Promise<Response> = fetch,
  ) {}

  /** Starts the deliveries and returns immediately. */
  notify(session: EndedSession): void {
    for (const client of session.clients) {
      if (!client.backchannelLogoutUri) continue;
      const delivery = this.deliver(client, session).finally(() => this.pending.delete(delivery));
      this.pending.add(delivery);
    }
  }

  /** Waits until every delivery in flight has finished (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** OIDC Back-Channel Logout §2.4: iss, aud, iat, exp, jti, events, sub and sid; never a nonce. */
  async logoutToken(client: Client, session: Pick<EndedSession, "sub" | "sid">): Promise<string> {
    const iat = Math.floor(this.clock() / 1000);
    const { jwt } = await signJwt(
      this.keys,
      { iss: this.issuer, aud: client.clientId, iat, exp: iat + 120, jti: randomHandle(16), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sub: session.sub, sid: session.sid },
      "logout+jwt",
      client.idTokenSignedResponseAlg,
    );
    return jwt;
  }

  private async deliver(client: Client, session: EndedSession): Promise<void> {
    const uri = client.backchannelLogoutUri!;
    let lastError = "";
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** (attempt - 1)));
      try {
        // A fresh token per attempt: each carries its own jti, so a receiver's replay check cannot refuse a retry.
        const body = new URLSearchParams({ logout_token: await this.logoutToken(client, session) });
        const response = await this.send(uri, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
        if (response.ok) {
          this.emit({ type: "logout.backchannel.sent", clientId: client.clientId, sid: session.sid });
          return;
        }
        lastError = `HTTP ${response.status}`;
        // A 4xx other than timeout/throttling will not improve by trying again.
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) break;
      } catch (error) {
        lastError = (error as Error).name === "TimeoutError" ? "timed out" : (error as Error).message;
        if ((error as Error).name === "OutboundRefused") break;
      }
    }
    this.logger.warn({ clientId: client.clientId, uri, sid: session.sid, error: lastError }, "back-channel logout failed");
    this.emit({ type: "logout.backchannel.failed", clientId: client.clientId, sid: session.sid, error: lastError });
  }
}
