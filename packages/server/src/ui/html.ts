/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.5rem;max-width:28rem;width:100%}
h1{font-size:1.3rem;margin:0 0 1rem}code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px}`;

/** The provider's own minimal pages (errors, form_post); the host renders the richer ones. */
export function simplePage(title: string, body: string, headExtra = ""): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style>${headExtra}</head><body><main>${body}</main></body></html>`;
}

/** OAuth 2.0 Form Post Response Mode: an auto-submitting form (script allowed by nonce only). */
export function formPostPage(action: string, fields: Record<string, string>, nonce: string): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join("");
  return simplePage(
    "Submit this form",
    `<form method="post" action="${escapeHtml(action)}">${inputs}<noscript><p>Script is disabled: press the button to continue.</p><button type="submit">Continue</button></noscript></form><script nonce="${nonce}">document.forms[0].submit()</script>`,
  );
}

/** An error the user sees because it could not be sent back to the client safely. */
export function errorPage(code: string, description: string | undefined): string {
  return simplePage(
    "Sign-in error",
    `<h1>Sorry, there was an error</h1><p><code id="error">${escapeHtml(code)}</code></p>${description ? `<p id="error_description">${escapeHtml(description)}</p>` : ""}<p>Return to the application you came from and try again.</p>`,
  );
}
