import { randomHandle, sha256Base64url } from "@tessera/protocol";
import { assertPendingSize, type PendingRequestCap, type PendingTags } from "../security/pending-requests.ts";
import type { GrantStore } from "../stores/interfaces.ts";

/** The user's answer on the consent page. */
export interface ConsentDecision {
  allow: boolean;
  /** Keep the decision for later requests of this client. */
  remember: boolean;
  /** Session that answered; the answer counts only for that session. */
  sid: string;
}

/** An authorization request waiting for login or consent. */
export interface Interaction {
  id: string;
  clientId: string;
  /** The original authorization request parameters. */
  params: [string, string][];
  /** Milliseconds. */
  createdAt: number;
  consent?: ConsentDecision;
  /** Where the request is counted against the caps on pending requests. */
  pending?: PendingTags;
  /** The pushed request (RFC 9126) it stands on, used up when the authorization completes. */
  pushed?: { key: string; expiresAt: number };
}

/** Bytes of a stored interaction kept for its pending tags and the consent decision added later. */
const INTERACTION_RESERVE = 512;

/** Keeps pending authorization requests in the grant store while the user logs in and consents. */
export class InteractionService {
  constructor(
    private readonly grants: GrantStore,
    private readonly lifetime: number,
    private readonly clock: () => number,
    private readonly cap: PendingRequestCap,
  ) {}

  /**
   * Stores a new pending request (`params`: the validated request's known parameters); `address` (the
   * client's) counts it against the per-address cap. Throws `invalid_request` ("request too large") when it
   * would exceed 8 KiB stored (`MAX_PENDING_REQUEST_BYTES`), room for the cap's tags and the consent kept.
   */
  async create(clientId: string, params: Iterable<[string, string]>, address?: string, pushed?: Interaction["pushed"]): Promise<Interaction> {
    const request = { clientId, params: [...params], createdAt: this.clock() };
    assertPendingSize(request, INTERACTION_RESERVE);
    const pending = await this.cap.admit("interaction", address);
    const interaction: Interaction = { id: randomHandle(24), ...request, pending, ...(pushed ? { pushed } : {}) };
    await this.save(interaction);
    return interaction;
  }

  async get(id: string): Promise<Interaction | undefined> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(id)) return undefined;
    const grant = await this.grants.get(sha256Base64url(id));
    if (!grant || grant.kind !== "interaction" || grant.expiresAt < Math.floor(this.clock() / 1000)) return undefined;
    const data = JSON.parse(grant.data) as Omit<Interaction, "id">;
    return { ...data, id };
  }

  async save(interaction: Interaction): Promise<void> {
    const now = Math.floor(interaction.createdAt / 1000);
    const { id, ...data } = interaction;
    await this.grants.put({
      key: sha256Base64url(id),
      kind: "interaction",
      clientId: interaction.clientId,
      grantId: interaction.pending?.grantId,
      subject: interaction.pending?.subject,
      sessionId: interaction.pending?.sessionId,
      data: JSON.stringify(data),
      createdAt: now,
      expiresAt: now + this.lifetime,
    });
  }

  async remove(id: string): Promise<void> {
    await this.grants.remove(sha256Base64url(id));
  }
}
