import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CookieJar } from "../src/cookie-jar.ts";
import { TestBrowser } from "../src/test-browser.ts";

describe("CookieJar", () => {
  it("scopes cookies by host, domain and path, and expires them", () => {
    let now = 1_000_000;
    const jar = new CookieJar(() => now);
    jar.setCookie("a=1; Path=/app", new URL("https://x.test/app/login"));
    jar.setCookie("b=2; Domain=x.test", new URL("https://www.x.test/"));
    jar.setCookie("c=3; Max-Age=10", new URL("https://x.test/"));
    jar.setCookie("d=4; Domain=evil.test", new URL("https://x.test/"));
    jar.setCookie("e=5; Secure", new URL("http://x.test/"));
    assert.equal(jar.cookieHeader(new URL("https://x.test/app/page")), "a=1; b=2; c=3");
    assert.equal(jar.cookieHeader(new URL("https://x.test/application")), "b=2; c=3");
    assert.equal(jar.cookieHeader(new URL("https://sub.x.test/")), "b=2");
    assert.equal(jar.cookieHeader(new URL("https://other.test/")), undefined);
    now += 11_000;
    assert.equal(jar.cookieHeader(new URL("https://x.test/")), "b=2");
    jar.setCookie("a=gone; Path=/app; Max-Age=0", new URL("https://x.test/app/"));
    assert.equal(jar.cookieHeader(new URL("https://x.test/app/x")), "b=2");
  });

  it("sends Secure cookies only to secure origins (https and localhost)", () => {
    const jar = new CookieJar();
    jar.setCookie("s=1; Secure", new URL("https://x.test/"));
    assert.equal(jar.cookieHeader(new URL("http://x.test/")), undefined);
    assert.equal(jar.cookieHeader(new URL("https://x.test/")), "s=1");
  });
});

describe("TestBrowser", () => {
  it("follows redirects with 303 turning POST into GET, keeps cookies, and stops at a limit", async () => {
    const seen: string[] = [];
    const handler = async (request: Request) => {
      const url = new URL(request.url);
      seen.push(`${request.method} ${url.pathname} ${request.headers.get("cookie") ?? "-"}`);
      if (url.pathname === "/start") return new Response(null, { status: 303, headers: { location: "/next", "set-cookie": "k=v; Path=/" } });
      if (url.pathname === "/next") return new Response("<p id=x>done</p>", { headers: { "content-type": "text/html" } });
      return new Response(null, { status: 302, headers: { location: "/loop" } });
    };
    const browser = new TestBrowser({ handlers: handler, maxRedirects: 5 });
    const page = await browser.post("https://b.test/start", { a: "1" });
    assert.equal(page.url, "https://b.test/next");
    assert.equal(page.text("#x"), "done");
    assert.deepEqual(page.redirects, ["https://b.test/start", "https://b.test/next"]);
    assert.deepEqual(seen, ["POST /start -", "GET /next k=v"]);
    await assert.rejects(browser.get("https://b.test/loop"), /more than 5 redirects/);
  });

  it("submits forms with hidden fields, checked boxes, the pressed button and overrides", async () => {
    let received = "";
    const handler = async (request: Request) => {
      if (request.method === "POST") {
        received = await request.text();
        return new Response("ok");
      }
      return new Response(
        `<form method="post" action="/submit"><input type="hidden" name="h" value="1"><input name="t" value="x"><input type="checkbox" name="c1" value="y" checked><input type="checkbox" name="c2" value="n"><select name="s"><option value="a">A</option><option value="b" selected>B</option></select><button name="decision" value="allow">Allow</button><button name="decision" value="deny">Deny</button></form>`,
      );
    };
    const browser = new TestBrowser({ handlers: handler });
    const page = await browser.get("https://f.test/");
    await browser.submitForm(page, { fields: { t: "typed" }, button: "button[value=deny]" });
    assert.equal(received, "h=1&t=typed&c1=y&s=b&decision=deny");
  });
});
