/**
 * inrun and PyTorch side by side: every configuration runs on both sides at every thread count,
 * in interleaved rounds (inrun, PyTorch, inrun, PyTorch, …; which side goes first alternates per
 * round), so slow drifts of a shared machine hit both alike. Each step is timed on its own side
 * (inrun with performance.now() around the step, PyTorch with time.perf_counter() in its own
 * process, so the pipe between them is never timed); the tables show medians and quartiles.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NamedTensor } from '../../src/io/safetensors.js';
import { getKernels } from '../../src/kernels/index.js';
import { fmt, formatTable, median, quantile } from '../table.js';
import { runInterleaved, type Schedule, type TimedConfig } from '../timing.js';
import { reportChecks, type ValuesCheck } from './check.js';
import { startTorch, stopTorch, type TorchFound, type TorchPeer, type TorchSide } from './client.js';

export interface PairedConfig {
  id: string;
  label: string;
  /** inrun's step; absent for a PyTorch-only row. */
  step?: () => void;
  /** The PyTorch side: workload id and configuration name in inrun_torch.py; absent for inrun only. */
  torch?: { workload: string; config: string };
  /** Id of the plain-training row this row's "× plain" is relative to. */
  plain: string;
  stepsPerRound?: number;
  warmup?: number;
}

export interface SampleStats {
  samplesMs: number[];
  medianMs: number;
  p25Ms: number;
  p75Ms: number;
  minMs: number;
  maxMs: number;
}

export interface ComparisonCell {
  threads: number;
  inrun: SampleStats | null;
  torch: SampleStats | null;
  /** inrun median / PyTorch median. */
  ratio: number;
  /** Medians relative to the row's plain-training row, per side. */
  inrunTimesPlain: number;
  torchTimesPlain: number;
}

export interface ComparisonRow {
  id: string;
  label: string;
  plain: string;
  torchConfig: string | null;
  cells: ComparisonCell[];
}

/** Everything the PyTorch comparison of one benchmark adds to its result and JSON. */
export interface TorchComparison {
  python: string;
  torchVersion: string;
  threads: number[];
  settleMs: number;
  schedule: Schedule;
  rows: ComparisonRow[];
  checks: ValuesCheck[];
  /** Lines printed under the comparison tables. */
  notes: string[];
}

export function stats(samplesMs: number[]): SampleStats | null {
  if (samplesMs.length === 0) return null;
  return {
    samplesMs,
    medianMs: median(samplesMs),
    p25Ms: quantile(samplesMs, 0.25),
    p75Ms: quantile(samplesMs, 0.75),
    minMs: Math.min(...samplesMs),
    maxMs: Math.max(...samplesMs),
  };
}

/** Sets inrun's thread count (the native kernels' worker threads; the portable kernels have one). */
export function setInrunThreads(threads: number): void {
  getKernels().setThreads(threads);
}

/**
 * Warms every configuration up on both sides at every thread count, then runs the rounds. A pause
 * of `settleMs` follows every switch between the sides, so that one side's idle BLAS threads,
 * which spin for a while after their last call, have gone to sleep before the other side's steps.
 */
export async function runPaired(options: {
  configs: PairedConfig[];
  schedule: Schedule;
  threads: number[];
  side: TorchSide;
  settleMs: number;
  log: (line: string) => void;
}): Promise<ComparisonRow[]> {
  const { configs, schedule, threads, side, settleMs, log } = options;
  const key = (t: number, id: string) => `${t}:${id}`;
  const inrun = new Map<string, number[]>();
  const torch = new Map<string, number[]>();
  const peer = (t: number) => {
    const p = side.peers.get(t);
    if (!p) throw new Error(`no PyTorch process for ${t} threads`);
    return p;
  };
  const runInrun = async (t: number, c: PairedConfig, steps: number, out: number[] | null) => {
    if (!c.step) return;
    setInrunThreads(t);
    for (let s = 0; s < steps; s++) {
      const start = performance.now();
      c.step();
      const ms = performance.now() - start;
      out?.push(ms);
    }
    await sleep(settleMs);
  };
  const runTorch = async (t: number, c: PairedConfig, steps: number, out: number[] | null) => {
    if (!c.torch || steps === 0) return;
    const ms = await peer(t).time(c.torch.workload, c.torch.config, steps);
    out?.push(...ms);
    await sleep(settleMs);
  };

  for (const t of threads) {
    for (const c of configs) {
      const warmup = c.warmup ?? schedule.warmup;
      const t0 = performance.now();
      await runInrun(t, c, warmup, null);
      const t1 = performance.now();
      await runTorch(t, c, warmup, null);
      const t2 = performance.now();
      log(
        `  warm-up (${c.id}) ${c.label}, ${threadsPhrase(t)}: ${warmup} steps, ` +
          `inrun ${c.step ? `${((t1 - t0) / 1000).toFixed(1)} s` : '–'}, ` +
          `PyTorch ${c.torch ? `${((t2 - t1) / 1000).toFixed(1)} s` : '–'}`,
      );
    }
  }
  for (let round = 0; round < schedule.rounds; round++) {
    const t0 = performance.now();
    for (const t of threads) {
      for (const c of configs) {
        const steps = c.stepsPerRound ?? schedule.stepsPerRound;
        const k = key(t, c.id);
        if (!inrun.has(k)) inrun.set(k, []);
        if (!torch.has(k)) torch.set(k, []);
        if (round % 2 === 0) {
          await runInrun(t, c, steps, inrun.get(k)!);
          await runTorch(t, c, steps, torch.get(k)!);
        } else {
          await runTorch(t, c, steps, torch.get(k)!);
          await runInrun(t, c, steps, inrun.get(k)!);
        }
      }
    }
    log(
      `  round ${round + 1}/${schedule.rounds}: ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
        `(1-minute load average ${os.loadavg()[0].toFixed(2)})`,
    );
  }

  const rows: ComparisonRow[] = configs.map((c) => ({
    id: c.id,
    label: c.label,
    plain: c.plain,
    torchConfig: c.torch?.config ?? null,
    cells: threads.map((t) => {
      const i = stats(inrun.get(key(t, c.id)) ?? []);
      const p = stats(torch.get(key(t, c.id)) ?? []);
      return {
        threads: t,
        inrun: i,
        torch: p,
        ratio: i && p ? i.medianMs / p.medianMs : Number.NaN,
        inrunTimesPlain: Number.NaN,
        torchTimesPlain: Number.NaN,
      };
    }),
  }));
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const row of rows) {
    const plain = byId.get(row.plain);
    row.cells.forEach((cell, k) => {
      const base = plain?.cells[k];
      cell.inrunTimesPlain =
        cell.inrun && base?.inrun ? cell.inrun.medianMs / base.inrun.medianMs : Number.NaN;
      cell.torchTimesPlain =
        cell.torch && base?.torch ? cell.torch.medianMs / base.torch.medianMs : Number.NaN;
    });
  }
  return rows;
}

const spread = (s: SampleStats | null) => (s ? `${fmt(s.p25Ms)}–${fmt(s.p75Ms)}` : '–');
const med = (s: SampleStats | null) => (s ? fmt(s.medianMs) : '–');
const times = (x: number) => (Number.isFinite(x) ? `${fmt(x, 2)}×` : '–');

/**
 * One table per thread count: both sides' medians, quartiles and ratios to plain training, and
 * inrun/PyTorch (above 1: inrun is slower). Then a summary of the medians at every thread count.
 */
export function comparisonTables(comparison: TorchComparison): string {
  const out: string[] = [];
  comparison.threads.forEach((t, k) => {
    const headers = [
      threadsPhrase(t),
      'inrun ms',
      'p25–p75',
      '× plain',
      'PyTorch ms',
      'p25–p75',
      '× plain',
      'inrun/PyTorch',
    ];
    const cells = comparison.rows.map((r) => {
      const c = r.cells[k];
      return [
        `(${r.id}) ${r.label}`,
        med(c.inrun),
        spread(c.inrun),
        times(c.inrunTimesPlain),
        med(c.torch),
        spread(c.torch),
        times(c.torchTimesPlain),
        times(c.ratio),
      ];
    });
    out.push(formatTable(headers, cells));
  });
  const headers = ['medians (ms/step)'];
  for (const t of comparison.threads) headers.push(`inrun ${t}T`, `PyTorch ${t}T`, `ratio ${t}T`);
  const cells = comparison.rows.map((r) => [
    `(${r.id}) ${r.label}`,
    ...r.cells.flatMap((c) => [med(c.inrun), med(c.torch), times(c.ratio)]),
  ]);
  out.push(formatTable(headers, cells));
  return out.join('\n\n');
}

/** A valued row's median ÷ the validation floor's, on each side at each thread count. */
export interface FloorRatio {
  threads: number;
  inrun: number | null;
  torch: number | null;
}

/** `valued` ÷ `floor` (config ids) on each side at every thread count of the comparison. */
export function floorRatios(comparison: TorchComparison, valued: string, floor: string): FloorRatio[] {
  return comparison.threads.map((threads, k) => {
    const cell = (id: string) => comparison.rows.find((r) => r.id === id)?.cells[k];
    const ratio = (side: 'inrun' | 'torch') => {
      const first = cell(valued)?.[side];
      const base = cell(floor)?.[side];
      return first && base ? first.medianMs / base.medianMs : null;
    };
    return { threads, inrun: ratio('inrun'), torch: ratio('torch') };
  });
}

/**
 * valued ÷ floor with inrun alone, at each thread count: the two configurations interleaved with
 * no PyTorch turn between them, whose idle threads and cache traffic the side-by-side rounds also
 * measure. The ratio the valued step's own cost is judged by; thread count left at the last.
 */
export function aloneFloorRatios(
  configs: TimedConfig[],
  valued: string,
  floor: string,
  threads: number[],
  schedule: Schedule,
): { threads: number; inrun: number }[] {
  const pair = [valued, floor].map((id) => configs.find((c) => c.id === id));
  if (!pair[0] || !pair[1]) return [];
  return threads.map((t) => {
    setInrunThreads(t);
    const samples = runInterleaved(pair as TimedConfig[], schedule);
    return { threads: t, inrun: median(samples.get(valued)!) / median(samples.get(floor)!) };
  });
}

/** "1 thread", "2 threads". */
export function threadsPhrase(threads: number): string {
  return `${threads} thread${threads > 1 ? 's' : ''}`;
}

/** The note line of a floor ratio. */
export function floorRatioNote(label: string, r: FloorRatio): string {
  const side = (x: number | null) => (x === null ? '–' : `${x.toFixed(2)}×`);
  return `${label}, ${threadsPhrase(r.threads)}: inrun ${side(r.inrun)}, PyTorch ${side(r.torch)}`;
}

/** The note line of an aloneFloorRatios entry. */
export function aloneFloorRatioNote(label: string, r: { threads: number; inrun: number }): string {
  return `${label}, no PyTorch turns between, ${threadsPhrase(r.threads)}: ${r.inrun.toFixed(2)}×`;
}

/** How the bench runs PyTorch (run.ts decides; absent: inrun alone). */
export interface TorchOptions {
  found: TorchFound;
  threads: number[];
  settleMs: number;
}

/**
 * The whole PyTorch comparison of one benchmark: starts one PyTorch process per thread count,
 * hands each the workloads (inrun's initial weights and the data), runs the values checks
 * (throwing when inrun and PyTorch disagree), then the interleaved rounds; always stops the
 * processes and removes the temporary files.
 */
export async function torchComparison(options: {
  torch: TorchOptions;
  workloads: { id: string; spec: Record<string, unknown>; tensors: () => NamedTensor[] }[];
  checks: (peer: TorchPeer) => Promise<ValuesCheck[]>;
  configs: PairedConfig[];
  schedule: Schedule;
  log: (line: string) => void;
  notes?: string[];
}): Promise<TorchComparison> {
  const { torch, log } = options;
  log(
    `  PyTorch ${torch.found.version} (${torch.found.python}), threads ${torch.threads.join(' and ')}; ` +
      `inrun threads set with setThreads`,
  );
  const side = await startTorch(torch.found, torch.threads);
  try {
    for (const w of options.workloads) {
      const tensors = w.tensors();
      for (const peer of side.peers.values()) await peer.setup(w.id, w.spec, tensors);
    }
    const checks = await options.checks(side.peers.get(torch.threads[0])!);
    reportChecks(checks, log);
    const rows = await runPaired({
      configs: options.configs,
      schedule: options.schedule,
      threads: torch.threads,
      side,
      settleMs: torch.settleMs,
      log,
    });
    return {
      python: torch.found.python,
      torchVersion: torch.found.version,
      threads: torch.threads,
      settleMs: torch.settleMs,
      schedule: options.schedule,
      rows,
      checks,
      notes: options.notes ?? [],
    };
  } finally {
    await stopTorch(side);
  }
}
