/**
 * TracIn-CP (Pruthi et al. 2020, "Estimating training data influence by tracing gradient descent")
 * and the final-model signals (loss, margin) that bad-data detection compares In-Run Data Shapley
 * with. TracIn replays training approximately from saved checkpoints; inrun's values come from the
 * real steps, so the two are natural baselines for each other.
 */
import type { Dataset } from '../data/dataset.js';
import { allocFloat, dtypeOf } from '../kernels/alloc.js';
import type { FloatArray } from '../kernels/types.js';
import type { Pass, Sequential } from '../models/sequential.js';
import { fail } from '../util/errors.js';

/** Weights saved during training and the learning rate in force around them. */
export interface TracInCheckpoint {
  params: FloatArray;
  lr: number;
}

export interface TracInOptions {
  /** Examples per forward/backward pass (default 128); bounds memory, not the result. */
  batchSize?: number;
}

export interface TracInResult {
  /**
   * Σ_c lr_c ⟨∇ℓ_i(w_c), ḡ_V(w_c)⟩, ḡ_V the mean validation gradient: positive when gradient steps
   * on example i lower the validation loss (a proponent), negative when they raise it.
   */
  influence: Float64Array;
  /** Σ_c lr_c ‖∇ℓ_i(w_c)‖²: large for examples the model keeps struggling with (often mislabelled). */
  selfInfluence: Float64Array;
}

const DEFAULT_BATCH_SIZE = 128;

/**
 * TracIn-CP influence on the validation set and self-influence of every training example. The
 * model's own weights are used as scratch space (backward reads them) and restored afterwards.
 * Per-example gradients are materialised one at a time in a reused buffer: O(parameters) memory
 * beyond one batch's activations.
 */
export function tracInCheckpoints(
  model: Sequential,
  checkpoints: TracInCheckpoint[],
  train: Dataset,
  validation: Dataset,
  options: TracInOptions = {},
): TracInResult {
  if (checkpoints.length === 0) fail('tracInCheckpoints: no checkpoints given');
  checkpoints.forEach((checkpoint, c) => {
    checkParams(`tracInCheckpoints: checkpoint ${c}`, model, checkpoint.params);
    if (!Number.isFinite(checkpoint.lr))
      fail(`tracInCheckpoints: checkpoint ${c} has learning rate ${checkpoint.lr}; it must be finite`);
  });
  const batchSize = checkBatchSize('tracInCheckpoints', options.batchSize);
  model.checkDataset(train);
  model.checkDataset(validation);

  const influence = new Float64Array(train.size);
  const selfInfluence = new Float64Array(train.size);
  const validationGradient = allocFloat(model.dtype, model.parameterCount);
  const exampleGradient = allocFloat(model.dtype, model.parameterCount);
  const saved = model.params.slice();
  try {
    for (const { params, lr } of checkpoints) {
      model.params.set(params);
      validationGradient.fill(0);
      forEachBatch(model, validation, batchSize, (pass) => {
        model.backward(pass);
        model.addGrad(pass, 1 / validation.size, validationGradient);
      });
      forEachBatch(model, train, batchSize, (pass, first) => {
        model.backward(pass);
        for (let i = 0; i < pass.n; i++) {
          exampleGradient.fill(0);
          model.addGrad(pass, 1, exampleGradient, i, i + 1);
          let dot = 0;
          let squaredNorm = 0;
          for (let e = 0; e < exampleGradient.length; e++) {
            const g = exampleGradient[e];
            dot += g * validationGradient[e];
            squaredNorm += g * g;
          }
          influence[first + i] += lr * dot;
          selfInfluence[first + i] += lr * squaredNorm;
        }
      });
    }
  } finally {
    model.params.set(saved);
  }
  return { influence, selfInfluence };
}

/** Each example's own loss at the given weights (the model's weights are left alone). */
export function finalModelLoss(
  model: Sequential,
  params: FloatArray,
  dataset: Dataset,
  options: TracInOptions = {},
): Float64Array {
  const weights = checkParams('finalModelLoss', model, params);
  const batchSize = checkBatchSize('finalModelLoss', options.batchSize);
  model.checkDataset(dataset);
  const losses = new Float64Array(dataset.size);
  forEachBatch(
    model,
    dataset,
    batchSize,
    (pass, first) => {
      losses.set(pass.losses, first);
    },
    weights,
  );
  return losses;
}

/**
 * Each example's classification margin at the given weights: the logit of its label minus the
 * largest other logit (softmax cross-entropy), or (2y − 1)·z for a binary-logistic logit z with
 * target y ∈ {0, 1} — the same thing with the other class's logit fixed at 0. Negative means
 * misclassified; a confidently misclassified example is a typical mislabelling.
 */
export function finalModelMargins(
  model: Sequential,
  params: FloatArray,
  dataset: Dataset,
  options: TracInOptions = {},
): Float64Array {
  const weights = checkParams('finalModelMargins', model, params);
  const batchSize = checkBatchSize('finalModelMargins', options.batchSize);
  const { kind } = model.loss;
  if (kind !== 'softmax-cross-entropy' && kind !== 'binary-logistic')
    fail(
      `finalModelMargins: margins need a classification loss (softmax-cross-entropy or binary-logistic); this model's loss is ${kind}`,
    );
  if (model.outputShape.tokens !== 1)
    fail(
      `finalModelMargins: margins need one prediction per example; this model predicts ${model.outputShape.tokens} tokens per example`,
    );
  if (kind === 'softmax-cross-entropy' && model.outputShape.width < 2)
    fail('finalModelMargins: a softmax over one class has no other logit to compare with');
  model.checkDataset(dataset);

  const margins = new Float64Array(dataset.size);
  forEachBatch(
    model,
    dataset,
    batchSize,
    (pass, first) => {
      const { data: logits, width: classes } = pass.lossTape.output;
      const targets = pass.lossTape.targets;
      for (let i = 0; i < pass.n; i++) {
        const y = targets[i];
        if (kind === 'binary-logistic') {
          if (y !== 0 && y !== 1)
            fail(
              `finalModelMargins: ${dataset.name}: example ${first + i} has target ${y}; margins need hard 0/1 targets`,
            );
          margins[first + i] = y === 1 ? logits[i] : -logits[i];
          continue;
        }
        let largestOther = -Infinity;
        for (let c = 0; c < classes; c++)
          if (c !== y && logits[i * classes + c] > largestOther) largestOther = logits[i * classes + c];
        margins[first + i] = logits[i * classes + y] - largestOther;
      }
    },
    weights,
  );
  return margins;
}

/** Runs the forward pass over a (checked) dataset in batches of `batchSize`. */
function forEachBatch(
  model: Sequential,
  dataset: Dataset,
  batchSize: number,
  visit: (pass: Pass, first: number) => void,
  params: FloatArray = model.params,
): void {
  for (let first = 0; first < dataset.size; first += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, dataset.size - first) }, (_, k) => first + k);
    const { input, targets } = dataset.batch(indices, model.dtype);
    visit(model.forward(input, targets, params), first);
  }
}

/** Checks the length of a weight vector; returns it in the model's element type (the kernels need one type). */
function checkParams(where: string, model: Sequential, params: FloatArray): FloatArray {
  if (params.length !== model.parameterCount)
    fail(`${where}: ${params.length} parameters, the model has ${model.parameterCount}`);
  if (dtypeOf(params) === model.dtype) return params;
  const converted = allocFloat(model.dtype, params.length);
  converted.set(params);
  return converted;
}

function checkBatchSize(where: string, batchSize: number | undefined): number {
  const size = batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(size) || size < 1)
    fail(`${where}: batchSize must be a positive integer, got ${size}`);
  return size;
}
