import { SCOPE_TEXT } from "./consent.tsx";

/** The verification page (RFC 8628 §3.3, contract §11): one `user_code` field, one submit button. */
export function DeviceCodePage(props: { base: string; csrf: string; userCode?: string; error?: string }) {
  return (
    <>
      <h1>Connect a device</h1>
      <p class="muted">Enter the code shown on your device.</p>
      {props.error ? (
        <p class="error" role="alert" id="device-error">
          {props.error}
        </p>
      ) : null}
      <form method="post" action={`${props.base}/device`} novalidate>
        <input type="hidden" name="csrf" value={props.csrf} />
        <label for="user_code">Code</label>
        <input type="text" id="user_code" name="user_code" value={props.userCode ?? ""} autocomplete="off" autocapitalize="characters" spellcheck={false} placeholder="XXXX-XXXX" required autofocus />
        <button type="submit">Continue</button>
      </form>
    </>
  );
}

/**
 * The confirmation (RFC 8628 §5.4: the user code is shown to compare with the device, and nothing is
 * granted without this click, even when the link carried the code).
 */
export function DeviceConfirmPage(props: { base: string; csrf: string; userCode: string; clientName: string; scopes: { name: string; description?: string }[] }) {
  return (
    <>
      <h1>Allow this device?</h1>
      <p>
        <strong>{props.clientName}</strong> on a device showing the code <code id="device-user-code">{props.userCode}</code> is asking for:
      </p>
      <ul class="scopes">
        {props.scopes.map((s) => (
          <li>
            {SCOPE_TEXT[s.name] ?? s.description ?? s.name} <code class="muted">{s.name}</code>
          </li>
        ))}
      </ul>
      <p class="muted">Only allow it if you started this on your own device and the code matches.</p>
      <form method="post" action={`${props.base}/device/decision`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <input type="hidden" name="user_code" value={props.userCode} />
        <div class="row">
          <button type="submit" name="decision" value="deny" class="secondary">
            Deny
          </button>
          <button type="submit" name="decision" value="allow">
            Allow
          </button>
        </div>
      </form>
    </>
  );
}
