// Checkpoints a SQLite WAL database from a worker thread, so copying the WAL into the database file
// (and its fsyncs) never runs on the request thread. Plain JavaScript: workers load no TypeScript hooks.
import { parentPort, workerData } from "node:worker_threads";
import BetterSqlite3 from "better-sqlite3";

const db = new BetterSqlite3(workerData.path);
db.pragma("busy_timeout = 5000");
const checkpoint = (mode) => {
  try {
    db.pragma(`wal_checkpoint(${mode})`);
  } catch {
    // Busy or locked: the next round tries again.
  }
};
const timer = setInterval(() => checkpoint("PASSIVE"), workerData.interval);
parentPort.on("message", (message) => {
  if (message !== "close") return;
  clearInterval(timer);
  checkpoint("TRUNCATE");
  db.close();
  parentPort.close();
});
parentPort.postMessage("ready");
