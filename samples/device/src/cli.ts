/**
 * A command-line app that signs in with the device authorization grant (RFC 8628) and calls an API:
 * it prints the user code and where to enter it, polls the token endpoint (openid-client honours
 * `interval` and adds 5 s on each `slow_down`), then calls the API with the access token.
 */
import * as oidc from "openid-client";

export interface DeviceCliOptions {
  issuer: string;
  clientId: string;
  scope: string;
  /** The API URL to call with the access token. */
  apiUrl: string;
  /** Where the CLI writes what the user should read (default: stdout). */
  write?: (line: string) => void;
  /** Gives up waiting for the user. */
  signal?: AbortSignal;
}

export interface DeviceCliResult {
  sub: string | undefined;
  scope: string | undefined;
  refreshToken: boolean;
  api: { status: number; body: unknown };
}

export async function runDeviceCli(options: DeviceCliOptions): Promise<DeviceCliResult> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const issuer = new URL(options.issuer);
  // Plain http only for a server on this machine (the demo); anything else must be https.
  const execute = issuer.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(issuer.hostname) ? [oidc.allowInsecureRequests] : [];
  const config = await oidc.discovery(issuer, options.clientId, undefined, oidc.None(), { execute });
  const started = await oidc.initiateDeviceAuthorization(config, { scope: options.scope });
  write(`To sign in, open ${started.verification_uri} and enter the code ${started.user_code}`);
  if (started.verification_uri_complete) write(`or open ${started.verification_uri_complete}`);
  write(`Waiting for you to approve (polling every ${started.interval ?? 5} s, the code expires in ${Math.round(started.expires_in / 60)} min)...`);
  const tokens = await oidc.pollDeviceAuthorizationGrant(config, started, undefined, options.signal ? { signal: options.signal } : undefined);
  const claims = tokens.claims();
  write(`Signed in as ${String(claims?.name ?? claims?.sub)} (scope: ${tokens.scope ?? ""})`);
  const response = await fetch(options.apiUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const body = (await response.json().catch(() => null)) as unknown;
  write(`GET ${options.apiUrl} -> HTTP ${response.status} ${JSON.stringify(body)}`);
  return { sub: claims?.sub, scope: tokens.scope, refreshToken: tokens.refresh_token !== undefined, api: { status: response.status, body } };
}
