/**
 * What a warm training step allocates, and what garbage collection costs it: a step that reuses its
 * buffers should leave no more than a few KiB behind and spend no measurable time in the collector.
 *
 * Allocation is read as the growth of the JavaScript heap and of ArrayBuffer memory across a
 * window of steps in which no collection ran (a collection in between makes the difference
 * meaningless, so such windows are dropped), less the growth of an empty window (the reading
 * itself allocates). GC time is the sum of the 'gc' performance entries over all windows.
 */
import { type PerformanceEntry, PerformanceObserver, performance } from 'node:perf_hooks';
import v8 from 'node:v8';

/** A --quick run's windows: a smoke test of the measurement, not a measurement. */
export const QUICK_ALLOCATION: AllocationSchedule = { windows: 2, stepsPerWindow: 1 };

export interface StepAllocation {
  /** Median over clean windows of the bytes one step leaves on the JavaScript heap. */
  heapBytesPerStep: number | null;
  /** The same for ArrayBuffer backing stores (typed arrays allocated off the heap). */
  arrayBufferBytesPerStep: number | null;
  /** Garbage-collection time per step over all windows, in ms. */
  gcMsPerStep: number;
  /** Windows without a collection (the allocation figures come from these) and in all. */
  cleanWindows: number;
  windows: number;
}

interface Reading {
  heap: number;
  arrayBuffers: number;
  at: number;
}

function read(): Reading {
  return {
    heap: v8.getHeapStatistics().used_heap_size,
    arrayBuffers: process.memoryUsage().arrayBuffers,
    at: performance.now(),
  };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** What measureAllocation runs: `warmSteps` steps back to back, then the windows. */
export interface AllocationSchedule {
  windows?: number;
  stepsPerWindow?: number;
  /**
   * Steps of this configuration alone before the windows. After rounds that interleave several
   * models, code shared by them runs partly unoptimised (and boxes its arithmetic) until it has
   * seen one model for a while, as it does in a real run.
   */
  warmSteps?: number;
}

/** Runs `windows` windows of `stepsPerWindow` steps each, after `warmSteps` steps. */
export async function measureAllocation(
  step: () => void,
  { windows = 12, stepsPerWindow = 3, warmSteps = 0 }: AllocationSchedule = {},
): Promise<StepAllocation> {
  for (let s = 0; s < warmSteps; s++) step();
  const gcEntries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => {
    gcEntries.push(...list.getEntries());
  });
  observer.observe({ entryTypes: ['gc'] });
  const spans: { before: Reading; after: Reading; empty: boolean }[] = [];
  try {
    for (let w = 0; w < windows; w++) {
      // An empty window first: what reading the counters allocates by itself.
      const emptyBefore = read();
      const emptyAfter = read();
      spans.push({ before: emptyBefore, after: emptyAfter, empty: true });
      const before = read();
      for (let s = 0; s < stepsPerWindow; s++) step();
      spans.push({ before, after: read(), empty: false });
    }
    // Entries reach the observer from the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    observer.disconnect();
  }
  const collected = (from: number, to: number) =>
    gcEntries.some((e) => e.startTime + e.duration >= from && e.startTime <= to);
  const clean = spans.filter((s) => !collected(s.before.at, s.after.at));
  const growth = (s: (typeof spans)[number], key: 'heap' | 'arrayBuffers') => s.after[key] - s.before[key];
  const baseline = (key: 'heap' | 'arrayBuffers') =>
    median(clean.filter((s) => s.empty).map((s) => growth(s, key))) ?? 0;
  const perStep = (key: 'heap' | 'arrayBuffers') => {
    const base = baseline(key);
    return median(
      clean.filter((s) => !s.empty).map((s) => Math.max(0, growth(s, key) - base) / stepsPerWindow),
    );
  };
  const stepSpans = spans.filter((s) => !s.empty);
  const gcMs = gcEntries.reduce((total, e) => total + e.duration, 0);
  return {
    heapBytesPerStep: perStep('heap'),
    arrayBufferBytesPerStep: perStep('arrayBuffers'),
    gcMsPerStep: gcMs / (windows * stepsPerWindow),
    cleanWindows: clean.filter((s) => !s.empty).length,
    windows: stepSpans.length,
  };
}

/** "(a) 31.3 KiB + 1.0 KiB, 0.01 ms; …" (heap + ArrayBuffers, GC per step) for a note under a table. */
export function allocationNote(results: { id: string; allocation: StepAllocation }[]): string {
  const kib = (bytes: number | null) => (bytes === null ? 'n/a' : `${(bytes / 1024).toFixed(1)} KiB`);
  return (
    'allocated per warm step (JS heap + ArrayBuffers), and GC time per step: ' +
    results
      .map(
        ({ id, allocation: a }) =>
          `(${id}) ${kib(a.heapBytesPerStep)} + ${kib(a.arrayBufferBytesPerStep)}, ${a.gcMsPerStep.toFixed(2)} ms`,
      )
      .join('; ')
  );
}

/**
 * measureAllocation for each configuration that has an inrun step (warm by now: call it after the
 * timed rounds), in order; `skip` names configurations that allocate by design (the naive one).
 */
export async function configAllocations(
  configs: { id: string; step?: () => void }[],
  options: AllocationSchedule & { skip?: string[] } = {},
): Promise<{ id: string; allocation: StepAllocation }[]> {
  const results: { id: string; allocation: StepAllocation }[] = [];
  for (const config of configs) {
    if (!config.step || options.skip?.includes(config.id)) continue;
    results.push({ id: config.id, allocation: await measureAllocation(config.step, options) });
  }
  return results;
}
