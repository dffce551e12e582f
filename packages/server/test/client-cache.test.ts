import assert from "node:assert/strict";
import { it } from "node:test";
import { normalizeClient, type Client } from "../src/clients.ts";
import { CachedClientStore, layeredClientStore } from "../src/registry/client-cache.ts";
import { createStaticClientStore } from "../src/clients.ts";

const client = (id: string): Client => normalizeClient({ client_id: id, redirect_uris: ["https://rp.test/cb"] });

it("19 the client cache reuses a lookup for ttl seconds, an unknown id for negativeTtl, and forgets on invalidate", async () => {
  let now = 0;
  const loads: string[] = [];
  const known = new Map<string, Client>([["a", client("a")]]);
  const cache = new CachedClientStore(async (id) => (loads.push(id), known.get(id)), { ttl: 5, negativeTtl: 1, maxEntries: 10 }, () => now);
  assert.equal((await cache.findClientById("a"))?.clientId, "a");
  assert.equal(await cache.findClientById("b"), undefined);
  now = 900;
  await cache.findClientById("a");
  await cache.findClientById("b");
  assert.deepEqual(loads, ["a", "b"], "both cached");
  known.set("b", client("b"));
  now = 1001;
  assert.equal((await cache.findClientById("b"))?.clientId, "b", "the unknown id is asked again after negativeTtl");
  known.delete("a");
  now = 4999;
  assert.ok(await cache.findClientById("a"), "still cached within ttl");
  now = 5001;
  assert.equal(await cache.findClientById("a"), undefined, "gone after ttl");
  known.set("a", client("a"));
  cache.invalidate("a");
  assert.ok(await cache.findClientById("a"), "invalidate forgets at once");
});

it("19 the client cache is bounded (least recently used first) and loads one id once at a time", async () => {
  let loads = 0;
  const cache = new CachedClientStore(async (id) => (loads++, client(id)), { ttl: 60, negativeTtl: 60, maxEntries: 2 }, () => 0);
  await Promise.all([cache.findClientById("x"), cache.findClientById("x"), cache.findClientById("x")]);
  assert.equal(loads, 1, "concurrent lookups share one load");
  await cache.findClientById("y");
  await cache.findClientById("x");
  await cache.findClientById("z");
  assert.equal(loads, 3);
  await cache.findClientById("x");
  assert.equal(loads, 3, "x was used recently, so y went");
  await cache.findClientById("y");
  assert.equal(loads, 4);
});

it("19 a load that started before an invalidation does not cache its stale answer", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let version = "old";
  const cache = new CachedClientStore(async (id) => {
    const seen = version;
    await gate;
    return { ...client(id), clientName: seen };
  }, { ttl: 60, negativeTtl: 60, maxEntries: 10 }, () => 0);
  const first = cache.findClientById("c");
  version = "new";
  cache.invalidate("c");
  release();
  assert.equal((await first)?.clientName, "old");
  assert.equal((await cache.findClientById("c"))?.clientName, "new");
});

it("19 configured clients win over stored ones with the same id", async () => {
  const configured = createStaticClientStore([{ client_id: "web", client_name: "Configured", redirect_uris: ["https://rp.test/cb"] }]);
  const stored = new CachedClientStore(async (id) => ({ ...client(id), clientName: "Stored" }), { ttl: 5, negativeTtl: 1, maxEntries: 10 });
  const layered = layeredClientStore(configured, stored);
  assert.equal((await layered.findClientById("web"))?.clientName, "Configured");
  assert.equal((await layered.findClientById("other"))?.clientName, "Stored");
});
