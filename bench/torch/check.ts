/**
 * The bench's correctness check against PyTorch: inrun and PyTorch value the same training batch
 * at the same weights (inrun's initial weights, handed over in the setup file), and the bench
 * reports the largest difference relative to the largest value. PyTorch computes its values with
 * the very code its timed steps run (bench/torch/inrun_torch.py, Workload.value_step).
 */
import type { Batch, Dataset } from '../../src/data/dataset.js';
import type { NamedTensor } from '../../src/io/safetensors.js';
import { modelTensors } from '../../src/io/safetensors.js';
import { allocFloat } from '../../src/kernels/index.js';
import { mean, type Sequential } from '../../src/models/sequential.js';
import type { Optimizer } from '../../src/optim/types.js';
import { InRunValuer } from '../../src/shapley/valuer.js';
import type { TorchPeer, TorchRouteRule } from './client.js';

/** Relative differences above this fail the bench (float32 agreement is ~1e-6–1e-5). */
export const FAIL_ABOVE = 1e-3;
/**
 * The second-order correction is a difference of two nearly equal float32 values on each side,
 * so it carries their rounding relative to its own, smaller size.
 */
export const CORRECTION_FAIL_ABOVE = 1e-2;

export interface ValuesCheck {
  name: string;
  order: 1 | 2;
  optimizer: 'sgd' | 'adamw';
  validation: number;
  maxAbsDiff: number;
  maxAbsValue: number;
  /** maxAbsDiff / maxAbsValue. */
  relative: number;
  /**
   * Second order: the same for the second-order correction alone (second- minus first-order
   * value), which is small next to the values themselves at a small learning rate.
   */
  correction?: { maxAbsDiff: number; maxAbsValue: number; relative: number };
  /** The ghost route PyTorch took per layer that has two (Linear, Conv2d). */
  torchRoutes: Record<string, string>;
  /** Reported, never failing (a comparison known to be ill-conditioned in float32). */
  informational?: boolean;
}

/**
 * A batch as tensors "<prefix>.x" (features [n, width] in the batch's own float type, or token
 * ids [n, T] as float32) and "<prefix>.y" (float32; labels and token ids are exact in float32).
 */
export function batchTensors(prefix: string, batch: Batch): NamedTensor[] {
  const { input, targets } = batch;
  const x = input.ids
    ? { shape: [input.n, input.tokens], data: Float32Array.from(input.ids) }
    : {
        shape: input.tokens === 1 ? [input.n, input.width] : [input.n, input.tokens, input.width],
        data: input.data,
      };
  const yShape = targets.length === input.n ? [input.n] : [input.n, targets.length / input.n];
  return [
    { name: `${prefix}.x`, ...x },
    { name: `${prefix}.y`, shape: yShape, data: Float32Array.from(targets) },
  ];
}

/**
 * inrun's initial weights ("w.<slot>", in the model's float type) plus the first `trainExamples`
 * of train and all of validation.
 */
export function setupTensors(
  model: Sequential,
  train: Dataset,
  trainExamples: number,
  validation: Dataset,
): NamedTensor[] {
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  return [
    ...modelTensors(model).map((t) => ({ ...t, name: `w.${t.name}` })),
    ...batchTensors('train', train.batch(all(trainExamples), model.dtype)),
    ...batchTensors('val', validation.batch(all(validation.size), model.dtype)),
  ];
}

/**
 * inrun's values of the first `batchSize` training examples at the model's current weights, with
 * the plan of `optimizer` (fresh) for this batch, against PyTorch's.
 */
export async function compareValues(options: {
  name: string;
  peer: TorchPeer;
  workload: string;
  model: Sequential;
  train: Dataset;
  validation: Dataset;
  batchSize: number;
  order: 1 | 2;
  optimizer: Optimizer;
  optimizerKind: 'sgd' | 'adamw';
  lr: number;
  /** AdamW options that differ from the PyTorch setup's (they must match `optimizer`'s). */
  adamw?: Record<string, number>;
  /** PyTorch's route rule (default: the setup's); inrun always takes its own ('auto'). */
  torchRule?: TorchRouteRule;
  informational?: boolean;
}): Promise<ValuesCheck> {
  const { model, train, validation, batchSize, order } = options;
  const indices = Array.from({ length: batchSize }, (_, i) => i);
  const { input, targets } = train.batch(indices, model.dtype);
  const pass = model.forward(input, targets);
  model.backward(pass);
  const gradSum = allocFloat(model.dtype, model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  const plan = options.optimizer.plan(0, 1, model.params, gradSum, pass.n);
  const valuer = new InRunValuer(model, { validation, order, route: 'auto', gapSamples: 0 });
  const step = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: mean(pass.losses),
    ids: indices,
    groups: indices.map(() => undefined),
  });
  const ours = order === 2 ? step.secondOrder! : step.firstOrder;
  const ask = (o: 1 | 2) =>
    options.peer.values(options.workload, {
      order: o,
      optimizer: options.optimizerKind,
      lr: options.lr,
      validation: validation.size,
      adamw: options.adamw,
      rule: options.torchRule,
    });
  const theirs = await ask(order);
  if (theirs.values.length !== ours.length)
    throw new Error(
      `check ${options.name}: PyTorch returned ${theirs.values.length} values, inrun ${ours.length}`,
    );
  const result: ValuesCheck = {
    name: options.name,
    order,
    optimizer: options.optimizerKind,
    validation: validation.size,
    ...difference(ours, theirs.values),
    torchRoutes: theirs.routes,
    ...(options.informational ? { informational: true } : {}),
  };
  if (order === 2) {
    const first = (await ask(1)).values;
    const ourCorrection = ours.map((v, i) => v - step.firstOrder[i]);
    const theirCorrection = theirs.values.map((v, i) => v - first[i]);
    result.correction = difference(ourCorrection, theirCorrection);
  }
  return result;
}

function difference(
  ours: ArrayLike<number>,
  theirs: ArrayLike<number>,
): { maxAbsDiff: number; maxAbsValue: number; relative: number } {
  let maxAbsDiff = 0;
  let maxAbsValue = 0;
  for (let i = 0; i < ours.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ours[i] - theirs[i]));
    maxAbsValue = Math.max(maxAbsValue, Math.abs(ours[i]));
  }
  // NaN (not 0) when inrun's values are all zero: nothing would have been compared.
  return { maxAbsDiff, maxAbsValue, relative: maxAbsDiff / maxAbsValue };
}

/** One line per check; throws (after printing) when one is above FAIL_ABOVE or not finite. */
export function reportChecks(checks: ValuesCheck[], log: (line: string) => void): void {
  for (const c of checks)
    log(
      `  check vs PyTorch, ${c.name}: max |Δ| = ${c.maxAbsDiff.toExponential(2)} ` +
        `(max |φ| = ${c.maxAbsValue.toExponential(2)}, relative ${c.relative.toExponential(2)})` +
        (c.informational ? ' [informational]' : '') +
        (c.correction
          ? `; second-order correction alone: relative ${c.correction.relative.toExponential(2)} ` +
            `(max |φ₂ − φ₁| = ${c.correction.maxAbsValue.toExponential(2)})`
          : ''),
    );
  const bad = checks.filter(
    (c) =>
      !c.informational &&
      (!(c.relative <= FAIL_ABOVE) || (c.correction && !(c.correction.relative <= CORRECTION_FAIL_ABOVE))),
  );
  if (bad.length > 0)
    throw new Error(
      `inrun and PyTorch disagree on the values (${bad.map((c) => `${c.name}: relative ${c.relative.toExponential(2)}`).join('; ')}; ` +
        `limit ${FAIL_ABOVE}): the timings would compare different computations`,
    );
}
