/** npm run bench: every benchmark, each reported as a ratio against its peer measured in the same run. */
import { cpus } from "node:os";
import { benchApiValidation } from "./api-validate.ts";
import { benchHttp } from "./http.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** `BENCH_ONLY=cc-es256,cc-rs256,sso,par,refresh,introspection,userinfo,discovery,jwks,device,startup,api` runs a subset. */
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",")) : undefined;
process.stdout.write(`Tessera benchmarks · Node ${process.version} · ${cpus().length} cores (${cpus()[0]?.model ?? "unknown CPU"}) · ${seconds} s per measurement\n\n`);
for (const line of await benchHttp(seconds, only)) process.stdout.write(`${line}\n`);
process.stdout.write("\n");
if (!only || only.has("api")) for (const line of await benchApiValidation(seconds)) process.stdout.write(`${line}\n`);
