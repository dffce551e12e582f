/**
 * Device-code polling (RFC 8628 §3.4): how many `authorization_pending` answers a server gives per second
 * to devices polling codes nobody has approved yet. A pool of codes is polled round-robin by the 16
 * workers, so each code is polled about once every pool / rate seconds: above Tessera's 1 s interval (the
 * bench server's), so every answer should be `authorization_pending`; anything else counts as an error.
 */
import { closedLoop, FORM, send, type Workload } from "./flows.ts";

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** Codes in the pool; 100 per (forwarded) address stays within Tessera's per-address pending cap. */
const POOL = 16_000;
const PER_ADDRESS = 100;

export async function deviceWorkload(base: string): Promise<Workload> {
  const metadata = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as { device_authorization_endpoint: string; token_endpoint: string };
  const codes: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < POOL; i = next++) {
        const address = `10.${Math.floor(i / PER_ADDRESS / 256)}.${Math.floor(i / PER_ADDRESS) % 256}.1`;
        const answer = await send(metadata.device_authorization_endpoint, "POST", { "content-type": FORM, "x-forwarded-for": address }, "client_id=tv&scope=openid%20api1.read");
        if (answer.status !== 200) throw new Error(`device authorization answered ${answer.status} ${answer.body.slice(0, 200)}`);
        codes.push((JSON.parse(answer.body) as { device_code: string }).device_code);
      }
    }),
  );
  let turn = 0;
  const pollOnce = async () => {
    const code = codes[turn++ % codes.length]!;
    const answer = await send(metadata.token_endpoint, "POST", { "content-type": FORM }, `grant_type=${encodeURIComponent(DEVICE_GRANT)}&client_id=tv&device_code=${code}`);
    const error = answer.status === 400 ? (JSON.parse(answer.body) as { error?: string }).error : undefined;
    if (error !== "authorization_pending") throw new Error(`poll answered ${answer.status} ${answer.body.slice(0, 200)}`);
  };
  return {
    check: async () => {
      await pollOnce();
      // The first round starts on a fresh code: the check's poll must not make the next one too soon.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    },
    run: (seconds) => closedLoop(seconds, pollOnce),
  };
}
