// Models and optimizers from a run config.

import type { Kernels } from '../kernels/types.js';
import type { ImageShape } from '../layers/conv2d.js';
import { type LossName, mlp } from '../models/builders.js';
import { cnn } from '../models/cnn.js';
import { gpt } from '../models/gpt.js';
import type { Sequential } from '../models/sequential.js';
import { Adam } from '../optim/adam.js';
import type { Schedule } from '../optim/schedule.js';
import { Sgd } from '../optim/sgd.js';
import type { Optimizer } from '../optim/types.js';
import type { TraceEntry, ValuerOptions } from '../shapley/valuer.js';
import { Trainer } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import type { ModelConfig, TrainConfig } from './config.js';
import { type RunInputs, runSeeds, type TrainingData } from './table-data.js';
import type { TextTrainingData } from './text-data.js';

export interface ModelContext {
  inputs: number;
  /** The images' shape when the data is an image folder (cnn). */
  image: ImageShape | null;
  outputs: number;
  loss: LossName;
  seed: number;
  /** A kernels kind from the config, or the Kernels object to compute with (a web page's). */
  kernels: TrainConfig['kernels'] | Kernels;
}

/**
 * Builders per model kind. EXTENSION POINT: a new kind (e.g. `gpt`) adds its builder here, next
 * to its schema in MODEL_SCHEMAS (src/run/config.ts).
 */
export const MODEL_BUILDERS: {
  [K in ModelConfig['kind']]: (config: Extract<ModelConfig, { kind: K }>, ctx: ModelContext) => Sequential;
} = {
  // A linear model: softmax regression, logistic regression or linear regression by task.
  logreg: (_config, ctx) =>
    mlp({
      inputs: ctx.inputs,
      hidden: [],
      outputs: ctx.outputs,
      loss: ctx.loss,
      seed: ctx.seed,
      kernels: ctx.kernels,
    }),
  mlp: (config, ctx) =>
    mlp({
      inputs: ctx.inputs,
      hidden: config.hidden,
      activation: config.activation,
      outputs: ctx.outputs,
      loss: ctx.loss,
      seed: ctx.seed,
      kernels: ctx.kernels,
    }),
  // A CNN on images: the shape from model.image or the image folder; it must match the features.
  cnn: (config, ctx) => {
    const image = config.image ? parseImageShape(config.image) : ctx.image;
    if (!image)
      fail(
        'model.image: a cnn on a table needs the image shape of its pixel columns, e.g. model.image: 28x28x1 (image folders give it themselves)',
      );
    const pixels = image.channels * image.height * image.width;
    if (pixels !== ctx.inputs)
      fail(
        `model.image: ${image.width}x${image.height}x${image.channels} is ${pixels} values per example, but the data has ${ctx.inputs} feature columns`,
      );
    const { architecture, image: _shape, kind: _kind, ...sizes } = config;
    return cnn({
      input: image,
      classes: ctx.outputs,
      kind: architecture,
      ...Object.fromEntries(Object.entries(sizes).filter(([, v]) => v !== undefined)),
      seed: ctx.seed,
      kernels: ctx.kernels,
    });
  },
  // A GPT language model on text: `outputs` is the vocabulary size (src/run/text-data.ts).
  gpt: (config, ctx) =>
    gpt({
      vocabSize: ctx.outputs,
      context: config.context,
      layers: config.layers,
      heads: config.heads,
      width: config.width,
      tieWeights: config.tieWeights,
      norm: config.norm,
      seed: ctx.seed,
      kernels: ctx.kernels,
    }),
};

/** "28x28x1" → width 28, height 28, 1 channel. */
export function parseImageShape(text: string): ImageShape {
  const [width, height, channels] = text.split('x').map(Number);
  return { channels, height, width };
}

/** The GPT of a text run, its vocabulary from the data. */
export function buildTextModel(config: TrainConfig, data: TextTrainingData): Sequential {
  if (config.model.kind !== 'gpt')
    fail(`internal: buildTextModel needs model kind gpt, got ${config.model.kind}`);
  return MODEL_BUILDERS.gpt(config.model, {
    inputs: 1,
    image: null,
    outputs: data.vocabulary.size,
    loss: 'softmax-cross-entropy',
    seed: runSeeds(config.seed).model,
    kernels: config.kernels,
  });
}

/** The tabular model of a run: inputs from the features, outputs from the task. */
export function buildModel(
  config: TrainConfig,
  data: Pick<TrainingData, 'features' | 'classes'> & { image?: ImageShape | null },
  /** Compute with these instead of the config's `kernels` choice (a browser has no other). */
  kernels?: Kernels,
): Sequential {
  const task = config.task;
  const ctx: ModelContext = {
    inputs: data.features.length,
    image: data.image ?? null,
    outputs: task === 'classification' ? data.classes! : 1,
    loss: task === 'classification' ? 'softmax-cross-entropy' : task === 'binary' ? 'binary-logistic' : 'mse',
    seed: runSeeds(config.seed).model,
    kernels: kernels ?? config.kernels,
  };
  const build = MODEL_BUILDERS[config.model.kind] as (c: ModelConfig, ctx: ModelContext) => Sequential;
  return build(config.model, ctx);
}

export function buildOptimizer(config: TrainConfig): Optimizer {
  const o = config.optimizer;
  const schedule = o.schedule as Schedule;
  const clipNorm = o.clipNorm ?? undefined;
  if (o.kind === 'sgd')
    return new Sgd({
      lr: o.lr,
      momentum: o.momentum,
      weightDecay: o.weightDecay,
      decoupledWeightDecay: o.decoupledWeightDecay,
      clipNorm,
      schedule,
    });
  return new Adam(
    { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay, clipNorm, schedule },
    o.kind,
  );
}

/** Steps of the run and the first steps of stages 2..k (equal stages). */
export function runLength(
  config: TrainConfig,
  trainSize: number,
): { totalSteps: number; stageStarts: number[] } {
  const totalSteps = config.steps ?? Math.ceil(trainSize / config.batchSize) * (config.epochs ?? 1);
  if (config.stages > totalSteps)
    fail(
      `stages: ${config.stages} stages do not fit in a run of ${totalSteps} step${totalSteps === 1 ? '' : 's'}`,
    );
  const stageStarts = Array.from({ length: config.stages - 1 }, (_, s) =>
    Math.round(((s + 1) * totalSteps) / config.stages),
  );
  return { totalSteps, stageStarts };
}

/**
 * The Trainer of a run: the config's optimizer, batch size, data-order seed and valuation
 * settings, over the run's data — for trainRun and the web page's runs alike, so both train and
 * value the same way. Trace rows go to `onTraceRow` as they complete (none are kept, so memory
 * and checkpoints stay constant in size); `text` adds a text run's valuation options.
 */
export function buildTrainer(
  config: TrainConfig,
  inputs: Pick<RunInputs, 'train' | 'validation'>,
  model: Sequential,
  length: { totalSteps: number; stageStarts: number[] },
  onTraceRow: (row: TraceEntry) => void,
  text: Pick<ValuerOptions, 'validationWeights' | 'validationColumns' | 'perValidationOrder'> = {},
): Trainer {
  return new Trainer({
    model,
    optimizer: buildOptimizer(config),
    data: inputs.train,
    batchSize: config.batchSize,
    steps: length.totalSteps,
    seed: runSeeds(config.seed).order,
    planSummaries: config.stepValues,
    valuation: {
      validation: inputs.validation,
      order: config.order,
      perValidation: config.perValidation,
      ...text,
      stageStarts: length.stageStarts,
      recordBatchIds: config.recordBatchIds,
      gapSamples: config.gapSamples,
      checkPairwiseLayers: config.checkPairwiseLayers,
      signals: config.signals,
      classValues: config.classValues,
      validationBatch: config.validationBatch,
      validationSeed: runSeeds(config.seed).validation,
      momentumCredit: config.momentumCredit,
      valueFrom: config.valueFrom,
      excludeBrokenSteps: config.excludeBrokenSteps,
      keepTrace: false,
      onTraceRow,
    },
  });
}
