// Which training examples curation removes: by value threshold, by percentile, or the negatives;
// and the same number drawn at random for the control run.
import type { ValueRow } from '../io/run-dir.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export type SelectionRule =
  | { kind: 'below'; threshold: number }
  | { kind: 'percentile'; percentile: number }
  | { kind: 'negatives' };

/** The value a run ranks examples by: second order when it has it, else first order. */
export function rowValue(row: ValueRow): number {
  return row.secondOrder ?? row.firstOrder;
}

export function describeRule(rule: SelectionRule): string {
  switch (rule.kind) {
    case 'below':
      return `value < ${rule.threshold}`;
    case 'percentile':
      return `the lowest ${rule.percentile}% of values`;
    case 'negatives':
      return 'value < 0 (the negatives)';
  }
}

/**
 * Positions (in `values`) of the examples the rule removes, ascending. `--percentile p` takes the
 * round(n·p/100) lowest values (ties in file order). Selecting none or all is an error.
 */
export function selectForRemoval(values: ValueRow[], rule: SelectionRule): number[] {
  const n = values.length;
  const value = values.map(rowValue);
  let picked: number[];
  if (rule.kind === 'percentile') {
    const count = Math.round((n * rule.percentile) / 100);
    const order = value.map((_, i) => i).sort((a, b) => value[a] - value[b] || a - b);
    picked = order.slice(0, count);
  } else {
    const threshold = rule.kind === 'below' ? rule.threshold : 0;
    picked = value.flatMap((v, i) => (v < threshold ? [i] : []));
  }
  const what = describeRule(rule);
  if (picked.length === 0) {
    const lowest = Math.min(...value);
    fail(`${what} selects none of the ${n} training examples (the lowest value is ${lowest.toPrecision(4)})`);
  }
  if (picked.length >= n)
    fail(`${what} selects all ${n} training examples; nothing would be left to train on`);
  return picked.sort((a, b) => a - b);
}

/** `count` of `n` positions drawn uniformly without replacement from `seed`, ascending. */
export function randomSelection(n: number, count: number, seed: number): number[] {
  const perm = new Rng(seed).permutation(n);
  return Array.from(perm.subarray(0, count)).sort((a, b) => a - b);
}
