import type { Child } from "hono/jsx";

const STYLE = `
:root{color-scheme:light dark;--bg:#f3f4f7;--card:#fff;--text:#1b2130;--muted:#5b6475;--accent:#3651d4;--accent-text:#fff;--border:#d6dae3;--danger:#b42318}
@media (prefers-color-scheme:dark){:root{--bg:#12151c;--card:#1c212c;--text:#e8ebf2;--muted:#a3abbb;--accent:#7d91ff;--accent-text:#0b0e14;--border:#343b4a;--danger:#ff8a80}}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{background:var(--card);border:1px solid var(--border);border-radius:14px;padding:2rem 2.25rem;width:min(26rem,calc(100vw - 2rem));box-shadow:0 6px 24px rgba(0,0,0,.06)}
h1{font-size:1.35rem;margin:0 0 .25rem}.brand{font-weight:700;letter-spacing:.02em;color:var(--accent);margin-bottom:1.25rem;display:block}
p{margin:.5rem 0}.muted{color:var(--muted);font-size:.95rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=text],input[type=password],input[type=number],textarea,select{width:100%;padding:.65rem .75rem;border:1px solid var(--border);border-radius:8px;background:transparent;color:inherit;font:inherit}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.check{display:flex;gap:.5rem;align-items:center;font-weight:400;margin-top:.75rem}
button{margin-top:1.25rem;width:100%;padding:.7rem;border:0;border-radius:8px;background:var(--accent);color:var(--accent-text);font:inherit;font-weight:600;cursor:pointer}
button.secondary{background:transparent;color:var(--text);border:1px solid var(--border)}
.row{display:flex;gap:.75rem}.row button{flex:1}
.error{color:var(--danger);border:1px solid var(--danger);border-radius:8px;padding:.5rem .75rem;margin-top:1rem}
ul.scopes{padding-left:1.1rem}code{font-size:.9em}
iframe.front-channel{display:none}
main:has(#client-form){width:min(44rem,calc(100vw - 2rem))}fieldset{border:1px solid var(--border);border-radius:8px;margin-top:1rem}main:has(table){width:min(72rem,calc(100vw - 2rem))}table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:1rem}th,td{text-align:left;padding:.4rem;border-bottom:1px solid var(--border);vertical-align:middle}td button{margin:0;padding:.3rem .6rem;width:auto}#filter{display:grid;grid-template-columns:repeat(3,1fr);gap:0 .75rem}#filter label{grid-row:1}#filter input{grid-row:2}#filter button{grid-column:1/4}
`;

/** The page frame: accessible, no external assets, style allowed by nonce only. */
export function Layout(props: { title: string; nonce: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{props.title} · Tessera</title>
        <style nonce={props.nonce} dangerouslySetInnerHTML={{ __html: STYLE }} />
      </head>
      <body>
        <main>
          <span class="brand" aria-hidden="true">Tessera</span>
          {props.children}
        </main>
      </body>
    </html>
  );
}
