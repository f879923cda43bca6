/**
 * Shared helpers for the benchmarks: statistics, machine description, a plain-text table and
 * JSON output. Nothing here knows about a particular model.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import type { Kernels } from '../src/kernels/types.js';
import type { TorchComparison } from './torch/compare.js';

/** One measured configuration of a benchmark. */
export interface BenchRow {
  /** Short key, e.g. "a" or "plain". */
  id: string;
  label: string;
  /** Per-step wall times in milliseconds, in the order they were taken. */
  samplesMs: number[];
  medianMs: number;
  p25Ms: number;
  p75Ms: number;
  /** medianMs / the baseline row's medianMs. */
  ratio: number;
  /** Free-form remark printed in the last column. */
  note?: string;
}

export interface BenchResult {
  /** File-name-safe name, e.g. "mlp"; results go to bench/results/<name>.json by default. */
  name: string;
  title: string;
  /** Id of the row every ratio is relative to. */
  baseline: string;
  settings: Record<string, unknown>;
  rows: BenchRow[];
  /** Anything else worth keeping (ghost routes, checks, derived ratios). */
  extra: Record<string, unknown>;
  /** Lines printed under the table. */
  notes: string[];
  /** Further tables printed after the main one (e.g. GFLOP/s per kernel set), kept in the JSON. */
  tables?: { title: string; headers: string[]; cells: string[][] }[];
  /**
   * The same workloads in PyTorch, side by side (when PyTorch is installed); `rows` then hold
   * inrun's timings at the last of its thread counts.
   */
  torch?: TorchComparison;
}

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  availableParallelism: number;
  totalMemoryGiB: number;
  platform: string;
  release: string;
  arch: string;
  node: string;
  kernels: string;
  threads: number | null;
  threadsEnv: string | null;
  kernelsEnv: string | null;
  blasConfig: string | null;
  /** 1/5/15-minute load averages when the run started (other processes skew the timings). */
  loadAverage: number[];
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (values: number[]): number => quantile(values, 0.5);

/** Turns raw samples into rows with medians, quartiles and ratios to the baseline row. */
export function summarize(
  samples: { id: string; label: string; samplesMs: number[]; note?: string }[],
  baseline: string,
): BenchRow[] {
  const rows = samples.map((s) => ({
    ...s,
    medianMs: median(s.samplesMs),
    p25Ms: quantile(s.samplesMs, 0.25),
    p75Ms: quantile(s.samplesMs, 0.75),
    ratio: Number.NaN,
  }));
  const base = rows.find((r) => r.id === baseline);
  for (const r of rows) r.ratio = base ? r.medianMs / base.medianMs : Number.NaN;
  return rows;
}

export function machineInfo(kernels: Kernels): MachineInfo {
  const cpus = os.cpus();
  const native = kernels as Kernels & { getThreads?: () => number; getConfig?: () => string };
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    node: process.version,
    kernels: kernels.kind,
    threads:
      typeof native.getThreads === 'function' ? native.getThreads() : kernels.kind === 'native' ? null : 1,
    threadsEnv: process.env.INRUN_THREADS ?? null,
    kernelsEnv: process.env.INRUN_KERNELS ?? null,
    blasConfig: typeof native.getConfig === 'function' ? native.getConfig() : null,
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

export function describeMachine(m: MachineInfo): string {
  const threads = m.threads === null ? '?' : String(m.threads);
  return (
    `${m.cpuModel} × ${m.cpuCount} (${m.platform} ${m.arch}), node ${m.node}; ` +
    `kernels: ${m.kernels}, threads: ${threads}${m.blasConfig ? ` (${m.blasConfig})` : ''}; ` +
    `load average ${m.loadAverage.map((v) => v.toFixed(2)).join(' ')}`
  );
}

/** A plain-text table; columns whose every cell looks numeric are right-aligned. */
export function formatTable(headers: string[], cells: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...cells.map((row) => (row[c] ?? '').length)));
  const numeric = headers.map((_, c) => cells.every((row) => /^[\d.,×x%+\-–\s]*$/.test(row[c] ?? '')));
  const line = (row: string[]) =>
    row
      .map((cell, c) => (numeric[c] ? (cell ?? '').padStart(widths[c]) : (cell ?? '').padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** The standard table of a benchmark result: config, median, quartiles, ratio, note. */
export function resultTable(result: BenchResult): string {
  const headers = ['config', 'ms/step (median)', 'p25–p75', `× ${result.baseline}`, 'note'];
  const cells = result.rows.map((r) => [
    `(${r.id}) ${r.label}`,
    fmt(r.medianMs),
    `${fmt(r.p25Ms)}–${fmt(r.p75Ms)}`,
    `${fmt(r.ratio, 2)}×`,
    r.note ?? '',
  ]);
  return formatTable(headers, cells);
}

export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, roundNumbers, 2)}\n`);
}

/** Keeps the JSON readable: floats to 6 significant digits. */
function roundNumbers(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || Number.isInteger(value) || !Number.isFinite(value)) return value;
  return Number(value.toPrecision(6));
}
