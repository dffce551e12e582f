/** The logout prompt (contract §4): shown when the end-session request could not prove it came from the user's client. */
export function LogoutPromptPage(props: { base: string; csrf: string; logoutId?: string; clientName?: string }) {
  return (
    <>
      <h1>Sign out?</h1>
      <p>{props.clientName ? <><strong>{props.clientName}</strong> asks you to sign out of Tessera.</> : "Do you want to sign out of Tessera and the applications you used?"}</p>
      <form method="post" action={`${props.base}/logout`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.logoutId ? <input type="hidden" name="logoutId" value={props.logoutId} /> : null}
        <button type="submit" name="decision" value="logout">
          Sign out
        </button>
      </form>
    </>
  );
}

/**
 * The signed-out page (contract §4): one hidden iframe per front-channel client, then on to the validated
 * post_logout_redirect_uri once the iframes have loaded (or after a few seconds).
 */
export function SignedOutPage(props: { nonce: string; frontChannelUrls: string[]; postLogoutRedirectUri?: string; clientName?: string; redirectRejected: boolean }) {
  const script = `(() => {
  const link = document.getElementById("continue");
  if (!link) return;
  const frames = [...document.querySelectorAll("iframe.front-channel")];
  let pending = frames.length, done = false;
  const go = () => { if (!done) { done = true; location.replace(link.href); } };
  if (pending === 0) return go();
  for (const frame of frames) frame.addEventListener("load", () => { if (--pending === 0) go(); });
  setTimeout(go, 4000);
})();`;
  return (
    <>
      <h1 id="signed-out">You are signed out</h1>
      {props.frontChannelUrls.map((url) => (
        <iframe class="front-channel" src={url} title="Signing you out of an application" width="0" height="0" />
      ))}
      {props.postLogoutRedirectUri ? (
        <p>
          <a id="continue" href={props.postLogoutRedirectUri}>
            Return to {props.clientName ?? "the application"}
          </a>
        </p>
      ) : (
        <p class="muted">You can close this window.</p>
      )}
      {props.redirectRejected ? <p class="muted">The application's return address is not registered, so you stay here.</p> : null}
      {props.postLogoutRedirectUri ? <script nonce={props.nonce} dangerouslySetInnerHTML={{ __html: script }} /> : null}
    </>
  );
}
