/**
 * Runs `task` with an AbortSignal that the first SIGINT or SIGTERM aborts (the run stops after its
 * current step, with a checkpoint); a second one gives the signal its default meaning.
 */
export async function withStopSignal<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      removeHandlers();
      process.kill(process.pid, signal);
      return;
    }
    stop.abort(signal);
  };
  const removeHandlers = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await task(stop.signal);
  } finally {
    removeHandlers();
  }
}
