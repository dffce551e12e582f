import { parse, type HTMLElement } from "node-html-parser";
import { CookieJar } from "./cookie-jar.ts";

/** A Web-standard request handler, such as a provider's or host's `fetch`. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** Options of {@link TestBrowser}. */
export interface TestBrowserOptions {
  /**
   * In-process handlers by origin (e.g. `{ "https://idp.test": host.fetch }`); a single handler serves every
   * origin. Origins without a handler go over the network with the global fetch.
   */
  handlers?: Record<string, FetchHandler> | FetchHandler;
  /** Most redirects followed for one navigation (default 20). */
  maxRedirects?: number;
  /** Milliseconds clock for cookie expiry (default Date.now). */
  clock?: () => number;
}

/** Per navigation: stop following redirects at URLs for which this returns true. */
export interface NavigateOptions {
  stopAt?: (url: URL) => boolean;
  headers?: Record<string, string>;
}

/** A form on a page, ready to submit. */
export interface SubmitOptions extends NavigateOptions {
  /** CSS selector of the form (default: the first form). */
  form?: string;
  /** Field values that override or add to the form's own. */
  fields?: Record<string, string>;
  /** CSS selector of the submit button that was pressed; its name/value is sent. */
  button?: string;
}

/** A response the browser ended on, with its HTML parsed. */
export class TestPage {
  private parsed: HTMLElement | undefined;

  constructor(
    /** The final URL. */
    readonly url: string,
    readonly status: number,
    readonly headers: Headers,
    readonly body: string,
    /** Every URL visited for this navigation, the first one included. */
    readonly redirects: string[],
  ) {}

  /** The Location header when the navigation stopped at a redirect. */
  get location(): string | undefined {
    const location = this.headers.get("location");
    return location ? new URL(location, this.url).toString() : undefined;
  }

  /** The parsed document. */
  get document(): HTMLElement {
    this.parsed ??= parse(this.body);
    return this.parsed;
  }

  /** The first element matching `selector`. */
  query(selector: string): HTMLElement | null {
    return this.document.querySelector(selector);
  }

  /** Every element matching `selector`. */
  queryAll(selector: string): HTMLElement[] {
    return this.document.querySelectorAll(selector);
  }

  /** The text content of the page or of an element. */
  text(selector?: string): string {
    const element = selector ? this.query(selector) : this.document;
    return (element?.textContent ?? "").replace(/\s+/g, " ").trim();
  }

  /** The body as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.body) as T;
  }
}

/**
 * A fetch-based browser for integration tests: keeps cookies per domain and path, follows redirects with a
 * limit, reads pages and submits their forms, against URLs or in-process handlers. It runs no script:
 * auto-submitting forms (form_post) are submitted with {@link TestBrowser.submitForm}.
 */
export class TestBrowser {
  readonly cookies: CookieJar;
  private readonly handlers: Record<string, FetchHandler> | FetchHandler | undefined;
  private readonly maxRedirects: number;

  constructor(options: TestBrowserOptions = {}) {
    this.handlers = options.handlers;
    this.maxRedirects = options.maxRedirects ?? 20;
    this.cookies = new CookieJar(options.clock);
  }

  /** Navigates to `url` with GET, following redirects. */
  get(url: string | URL, options: NavigateOptions = {}): Promise<TestPage> {
    return this.navigate("GET", new URL(url), undefined, options);
  }

  /** POSTs a form body to `url`, following redirects. */
  post(url: string | URL, fields: Record<string, string> | URLSearchParams, options: NavigateOptions = {}): Promise<TestPage> {
    return this.navigate("POST", new URL(url), new URLSearchParams(fields), options);
  }

  /** Submits a form of `page` as a browser would, with the given field overrides and pressed button. */
  submitForm(page: TestPage, options: SubmitOptions = {}): Promise<TestPage> {
    const form = options.form ? page.query(options.form) : page.query("form");
    if (!form || form.tagName !== "FORM") throw new Error(`no form ${options.form ?? ""} on ${page.url}`);
    const fields = new URLSearchParams();
    for (const element of form.querySelectorAll("input, textarea, select")) {
      const name = element.getAttribute("name");
      if (!name || element.hasAttribute("disabled")) continue;
      const type = (element.getAttribute("type") ?? "text").toLowerCase();
      if (element.tagName === "INPUT") {
        if (["submit", "button", "image", "reset", "file"].includes(type)) continue;
        if ((type === "checkbox" || type === "radio") && !element.hasAttribute("checked")) continue;
        fields.append(name, element.getAttribute("value") ?? (type === "checkbox" ? "on" : ""));
      } else if (element.tagName === "TEXTAREA") {
        fields.append(name, element.textContent);
      } else {
        const selected = element.querySelector("option[selected]") ?? element.querySelector("option");
        if (selected) fields.append(name, selected.getAttribute("value") ?? selected.textContent);
      }
    }
    if (options.button) {
      const button = form.querySelector(options.button);
      if (!button) throw new Error(`no button ${options.button} in the form on ${page.url}`);
      const name = button.getAttribute("name");
      if (name) fields.append(name, button.getAttribute("value") ?? "");
    }
    for (const [name, value] of Object.entries(options.fields ?? {})) fields.set(name, value);
    const action = new URL(form.getAttribute("action") || page.url, page.url);
    const method = (form.getAttribute("method") ?? "GET").toUpperCase();
    if (method === "POST") return this.navigate("POST", action, fields, options);
    action.search = fields.toString();
    return this.navigate("GET", action, undefined, options);
  }

  /** Sends one request with this browser's cookies, without following redirects. */
  async request(method: string, url: URL, body?: URLSearchParams, headers: Record<string, string> = {}): Promise<Response> {
    const requestHeaders = new Headers(headers);
    const cookie = this.cookies.cookieHeader(url);
    if (cookie) requestHeaders.set("cookie", cookie);
    if (body) requestHeaders.set("content-type", "application/x-www-form-urlencoded");
    const request = new Request(url, { method, headers: requestHeaders, body: body?.toString(), redirect: "manual" });
    const handler = typeof this.handlers === "function" ? this.handlers : this.handlers?.[url.origin];
    const response = handler ? await handler(request) : await fetch(request);
    for (const setCookie of response.headers.getSetCookie()) this.cookies.setCookie(setCookie, url);
    return response;
  }

  private async navigate(method: string, url: URL, body: URLSearchParams | undefined, options: NavigateOptions): Promise<TestPage> {
    const visited: string[] = [];
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    for (;;) {
      visited.push(current.toString());
      const response = await this.request(currentMethod, current, currentBody, options.headers);
      const location = response.headers.get("location");
      const isRedirect = [301, 302, 303, 307, 308].includes(response.status) && location;
      if (!isRedirect) return new TestPage(current.toString(), response.status, response.headers, await response.text(), visited);
      const next = new URL(location, current);
      if (options.stopAt?.(next)) return new TestPage(current.toString(), response.status, response.headers, await response.text(), visited);
      await response.body?.cancel();
      if (visited.length > this.maxRedirects) throw new Error(`more than ${this.maxRedirects} redirects: ${visited.join(" -> ")}`);
      if (response.status !== 307 && response.status !== 308) {
        currentMethod = "GET";
        currentBody = undefined;
      }
      current = next;
    }
  }
}
