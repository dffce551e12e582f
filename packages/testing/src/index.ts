export { TestBrowser, TestPage, type TestBrowserOptions, type NavigateOptions, type SubmitOptions, type FetchHandler } from "./test-browser.ts";
export { CookieJar, type StoredCookie } from "./cookie-jar.ts";
export { createTestHost, type TestHost, type TestHostConfig, type TestHostOptions } from "./test-host.ts";
