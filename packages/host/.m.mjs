for (const spec of process.argv.slice(2)) await import(spec);
await new Promise((r) => setTimeout(r, 300)); globalThis.gc?.();
const m = process.memoryUsage(); const f = (x) => (x/1048576).toFixed(1);
const v8 = await import("node:v8");
const sp = Object.fromEntries(v8.getHeapSpaceStatistics().map(s => [s.space_name, s]));
console.log(process.argv.slice(2).join(",").padEnd(40), "rss", f(m.rss), "new", f(sp.new_space.space_size), "old", f(sp.old_space.space_size), "used", f(m.heapUsed));
