/** A job run every `intervalSeconds`, never twice at once; `stop` waits for a run in progress. */
export interface PeriodicJob {
  stop(): Promise<void>;
}

/** Starts a periodic job on an unref'd timer (it never keeps the process alive). */
export function startPeriodicJob(run: () => Promise<void>, intervalSeconds: number): PeriodicJob {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= run().finally(() => {
      running = undefined;
    });
  }, intervalSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
