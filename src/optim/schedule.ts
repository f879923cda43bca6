import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';

/** A learning-rate schedule; each multiplies the optimizer's base rate by a factor of the step. */
export type Schedule =
  | { kind: 'constant' }
  /** × gamma every `every` steps. */
  | { kind: 'step'; every: number; gamma: number }
  /** Linear warm-up from 0 over `warmupSteps`, then cosine decay to `minFactor` at the last step. */
  | { kind: 'cosine'; warmupSteps?: number; minFactor?: number };

export function checkSchedule(schedule: Schedule): Schedule {
  switch (schedule.kind) {
    case 'constant':
      checkKnownKeys('schedule', schedule, ['kind']);
      return schedule;
    case 'step':
      checkKnownKeys('schedule', schedule, ['kind', 'every', 'gamma']);
      checkNumber('schedule.every', schedule.every, { min: 1, integer: true });
      checkNumber('schedule.gamma', schedule.gamma, { min: 0 });
      return schedule;
    case 'cosine':
      checkKnownKeys('schedule', schedule, ['kind', 'warmupSteps', 'minFactor']);
      checkNumber('schedule.warmupSteps', schedule.warmupSteps ?? 0, { min: 0, integer: true });
      checkNumber('schedule.minFactor', schedule.minFactor ?? 0, { min: 0, max: 1 });
      return schedule;
    default:
      return fail(
        `schedule.kind must be "constant", "step" or "cosine", got ${JSON.stringify((schedule as { kind: unknown }).kind)}`,
      );
  }
}

/** η_t for 0-based `step` of a run of `totalSteps` steps. */
export function learningRate(baseLr: number, schedule: Schedule, step: number, totalSteps: number): number {
  switch (schedule.kind) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * schedule.gamma ** Math.floor(step / schedule.every);
    case 'cosine': {
      const warmup = schedule.warmupSteps ?? 0;
      const minFactor = schedule.minFactor ?? 0;
      if (step < warmup) return (baseLr * (step + 1)) / warmup;
      const span = Math.max(1, totalSteps - warmup - 1);
      const progress = Math.min(1, (step - warmup) / span);
      return baseLr * (minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}
