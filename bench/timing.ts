/**
 * Round-robin timing: every configuration warms up, then the configurations take turns, a few
 * steps each per round, so slow drifts of the machine (thermal, other load, GC pressure) hit all
 * of them alike. Each step is timed on its own; the caller takes medians.
 */
import { performance } from 'node:perf_hooks';

export interface TimedConfig {
  id: string;
  label: string;
  /** Runs one step of this configuration (training step plus whatever the config adds). */
  step(): void;
  /** Steps timed per round (default: the schedule's stepsPerRound). */
  stepsPerRound?: number;
  /** Untimed steps before the first round (default: the schedule's warmup). */
  warmup?: number;
}

export interface Schedule {
  rounds: number;
  stepsPerRound: number;
  warmup: number;
}

export function runInterleaved(
  configs: TimedConfig[],
  schedule: Schedule,
  log: (line: string) => void = () => {},
): Map<string, number[]> {
  const samples = new Map<string, number[]>(configs.map((c) => [c.id, []]));
  for (const c of configs) {
    const t0 = performance.now();
    const warmup = c.warmup ?? schedule.warmup;
    for (let s = 0; s < warmup; s++) c.step();
    log(`  warm-up (${c.id}) ${c.label}: ${warmup} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  for (let round = 0; round < schedule.rounds; round++) {
    const t0 = performance.now();
    for (const c of configs) {
      const out = samples.get(c.id)!;
      const steps = c.stepsPerRound ?? schedule.stepsPerRound;
      for (let s = 0; s < steps; s++) {
        const start = performance.now();
        c.step();
        out.push(performance.now() - start);
      }
    }
    log(`  round ${round + 1}/${schedule.rounds}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return samples;
}
