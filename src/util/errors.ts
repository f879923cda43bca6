/**
 * An error caused by what the user asked for (bad shapes, bad options, bad data), as opposed to
 * a bug. The CLI prints its message alone, without a stack trace; the library throws it before
 * any training starts wherever the problem can be seen up front.
 */
export class InrunError extends Error {
  override readonly name = 'InrunError';
}

/** Training produced a non-finite loss; `step` is the 0-based step at which it was seen. */
export class DivergenceError extends InrunError {
  constructor(
    readonly step: number,
    what: string,
  ) {
    super(`training diverged at step ${step}: ${what} is not finite; stopping (lower the learning rate?)`);
  }
}

export function fail(message: string): never {
  throw new InrunError(message);
}

/** Throws unless `value` is a finite number (optionally within [min, max]); names the argument. */
export function checkNumber(
  name: string,
  value: unknown,
  {
    min = -Infinity,
    max = Infinity,
    integer = false,
  }: { min?: number; max?: number; integer?: boolean } = {},
): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    fail(`${name} must be a finite number, got ${describe(value)}`);
  if (integer && !Number.isInteger(value)) fail(`${name} must be an integer, got ${value}`);
  if (value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : min === -Infinity ? `≤ ${max}` : `in [${min}, ${max}]`;
    fail(`${name} must be ${range}, got ${value}`);
  }
  return value;
}

/** Rejects keys of an options object that the callee does not know (catches typos early). */
export function checkKnownKeys(name: string, options: object | undefined, known: readonly string[]): void {
  if (options === undefined) return;
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) fail(`${name}: unknown option "${key}" (known: ${known.join(', ')})`);
  }
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return Object.prototype.toString.call(value);
}
