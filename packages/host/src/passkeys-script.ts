/**
 * The browser side of passkeys, served as a same-origin script file (`{issuer}/assets/passkeys.js`, loaded
 * with the page's CSP nonce; no inline handlers). It asks the server for WebAuthn options, calls
 * navigator.credentials.create/get, and posts the result back as JSON (the WebAuthn L3 JSON shapes).
 * Buttons: `button[name=add-passkey]` (account page) and `button[name=passkey]` (login page); each sits
 * in a `form[data-passkey]` whose data attributes name the endpoints and which holds the CSRF token.
 */
export const PASSKEYS_SCRIPT = `"use strict";
(() => {
  const b64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4)), (c) => c.charCodeAt(0));
  const creationOptions = (o) => ({ ...o, challenge: bytes(o.challenge), user: { ...o.user, id: bytes(o.user.id) }, excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: bytes(c.id) })) });
  const requestOptions = (o) => ({ ...o, challenge: bytes(o.challenge), allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: bytes(c.id) })) });
  const extensions = (credential) => { try { return credential.getClientExtensionResults(); } catch { return {}; } };
  const registrationJson = (c) => ({
    id: c.id, rawId: b64(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment || undefined, clientExtensionResults: extensions(c),
    response: { clientDataJSON: b64(c.response.clientDataJSON), attestationObject: b64(c.response.attestationObject), transports: c.response.getTransports ? c.response.getTransports() : [] },
  });
  const authenticationJson = (c) => ({
    id: c.id, rawId: b64(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment || undefined, clientExtensionResults: extensions(c),
    response: { clientDataJSON: b64(c.response.clientDataJSON), authenticatorData: b64(c.response.authenticatorData), signature: b64(c.response.signature), userHandle: c.response.userHandle ? b64(c.response.userHandle) : undefined },
  });
  const post = async (url, body) => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    // A session too old to change factors is sent to confirm first (the server says where).
    if (response.status === 403 && typeof data.location === "string" && data.location.startsWith("/")) { window.location.assign(data.location); throw new Error(data.error_description || ""); }
    if (!response.ok) throw new Error(data.error_description || "The passkey could not be used.");
    return data;
  };
  const show = (form, message) => {
    const out = form.querySelector("[data-passkey-status]");
    if (out) { out.textContent = message; out.hidden = !message; }
  };
  const run = async (form, button) => {
    const fields = Object.fromEntries(new FormData(form));
    button.disabled = true;
    show(form, "");
    try {
      const started = await post(form.dataset.optionsUrl, fields);
      let result;
      if (form.dataset.passkey === "create") {
        const credential = await navigator.credentials.create({ publicKey: creationOptions(started.options) });
        result = await post(form.dataset.finishUrl, { ...fields, ticket: started.ticket, response: registrationJson(credential) });
      } else {
        const credential = await navigator.credentials.get({ publicKey: requestOptions(started.options), mediation: "optional" });
        result = await post(form.dataset.finishUrl, { ...fields, ticket: started.ticket, response: authenticationJson(credential) });
      }
      window.location.assign(result.location);
    } catch (error) {
      show(form, error && error.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : (error && error.message) || "The passkey could not be used.");
      button.disabled = false;
    }
  };
  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const button = form.querySelector("button[name=add-passkey], button[name=passkey]");
    if (!button) continue;
    if (!window.PublicKeyCredential) { show(form, "This browser does not support passkeys."); button.disabled = true; continue; }
    // type=button: the login page keeps exactly one submit button (its password form's).
    button.addEventListener("click", () => run(form, button));
    form.addEventListener("submit", (event) => { event.preventDefault(); run(form, button); });
  }
})();
`;
