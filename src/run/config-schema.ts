// The schema of a run config (`inrun train`'s config, and the web page's): zod, with every default.
// Kept free of Node imports so that a browser builds the same resolved config; reading config
// files, flags and paths is ./config.ts.
import { z } from 'zod';
import { readsAsNumber } from '../data/readers/to-dataset.js';

const posInt = z.int().min(1);
const nonNegative = z.number().min(0);
const path = z.string().min(1);

const Schedule = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant') }),
  z.strictObject({ kind: z.literal('step'), every: posInt, gamma: nonNegative }),
  z.strictObject({
    kind: z.literal('cosine'),
    warmupSteps: z.int().min(0).default(0),
    minFactor: z.number().min(0).max(1).default(0),
  }),
]);

/**
 * Model kinds. EXTENSION POINT: a new kind (e.g. `gpt` on text data) adds its strict schema to
 * MODEL_SCHEMAS here and its builder to MODEL_BUILDERS in src/run/build.ts (which also decides
 * how its data is loaded); FIELDS below documents its fields.
 */
const LogregModel = z.strictObject({ kind: z.literal('logreg') });
const MlpModel = z.strictObject({
  kind: z.literal('mlp'),
  hidden: z.array(posInt).default([64]),
  activation: z.enum(['relu', 'gelu', 'tanh', 'sigmoid']).default('relu'),
});
/** A GPT language model trained on text data (see src/run/text-data.ts). */
const GptModel = z.strictObject({
  kind: z.literal('gpt'),
  layers: posInt.default(2),
  heads: posInt.default(2),
  width: posInt.default(64),
  context: z.int().min(2).default(64),
  tieWeights: z.boolean().default(true),
  norm: z.enum(['layernorm', 'rmsnorm']).default('layernorm'),
  tokenizer: z.enum(['gpt2', 'bytes']).default('gpt2'),
  compactVocabulary: z.boolean().optional(),
});
/**
 * A convolutional network on images (src/models/cnn.ts): an image folder gives the image shape;
 * a table of pixel columns names it in `image` ("WxHxC", channels-first pixel columns).
 */
const CnnModel = z.strictObject({
  kind: z.literal('cnn'),
  architecture: z.enum(['lenet', 'resnet', 'resnet18']).default('lenet'),
  image: z
    .string()
    .regex(/^\d+x\d+x\d+$/, 'must be WIDTHxHEIGHTxCHANNELS, e.g. 28x28x1')
    .optional(),
  width: posInt.optional(),
  depth: posInt.optional(),
  stages: posInt.optional(),
  groups: posInt.optional(),
  kernel: posInt.optional(),
  hidden: z.array(posInt).optional(),
  dropout: z.number().min(0).lt(1).optional(),
});
export const MODEL_SCHEMAS = [LogregModel, MlpModel, GptModel, CnnModel] as const;
export const MODEL_KINDS = MODEL_SCHEMAS.map((s) => s.shape.kind.value);

const Optimizer = z.strictObject({
  kind: z.enum(['sgd', 'adam', 'adamw']).default('sgd'),
  lr: z.number().gt(0).default(0.05),
  momentum: z.number().min(0).max(1).optional(),
  weightDecay: nonNegative.optional(),
  decoupledWeightDecay: nonNegative.optional(),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).optional(),
  eps: nonNegative.optional(),
  clipNorm: z.number().gt(0).nullable().default(null),
  schedule: Schedule.prefault({ kind: 'constant' }),
});

export const TrainConfigSchema = z
  .strictObject({
    data: z.strictObject({
      train: path,
      validation: path.optional(),
      validationSplit: z.number().gt(0).lt(1).optional(),
      test: path.optional(),
      testSplit: z.number().gt(0).lt(1).optional(),
      missing: z.enum(['error', 'drop']).default('error'),
      standardize: z
        .union([z.boolean(), z.literal('channels')], { error: 'expected true, false or "channels"' })
        .default(false),
    }),
    columns: z
      .strictObject({
        id: z.string().min(1).optional(),
        label: z.string().min(1).default('label'),
        features: z.array(z.string().min(1)).min(1).optional(),
        group: z.string().min(1).optional(),
        text: z.string().min(1).optional(),
      })
      .prefault({}),
    task: z.enum(['classification', 'binary', 'regression']).default('classification'),
    classes: z.int().min(2).optional(),
    classNames: z.array(z.string().min(1)).min(2).optional(),
    model: z.discriminatedUnion('kind', MODEL_SCHEMAS).prefault({ kind: 'logreg' }),
    optimizer: Optimizer.prefault({}),
    batchSize: posInt.default(32),
    steps: posInt.optional(),
    epochs: posInt.optional(),
    order: z.literal([1, 2]).default(2),
    seed: z.int().min(0).max(0xffffffff).default(0),
    stages: posInt.default(1),
    perValidation: z.boolean().default(false),
    perValidationOrder: z.literal([1, 2]).optional(),
    gapSamples: z.int().min(0).default(2),
    checkPairwiseLayers: z.boolean().default(true),
    signals: z.boolean().default(true),
    classValues: z.boolean().default(false),
    validationBatch: z.int().min(2).optional(),
    momentumCredit: z.boolean().default(false),
    valueFrom: z.int().min(0).default(0),
    excludeBrokenSteps: z.boolean().default(false),
    out: path.default('runs/train'),
    checkpointEvery: z.int().min(0).default(100),
    recordBatchIds: z.boolean().default(false),
    stepValues: z.boolean().default(false),
    testEvery: posInt.optional(),
    kernels: z.enum(['auto', 'native', 'portable', 'wasm']).default('auto'),
    initWeights: path.optional(),
  })
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (c.data.validation !== undefined && c.data.validationSplit !== undefined)
      issue(['data', 'validationSplit'], 'give data.validation or data.validationSplit, not both');
    if (c.perValidationOrder !== undefined && !c.perValidation)
      issue(['perValidationOrder'], 'perValidationOrder needs perValidation: true');
    if (c.perValidationOrder === 2 && c.order !== 2)
      issue(['perValidationOrder'], 'second-order per-validation values need order: 2');
    if (c.validationBatch !== undefined && c.perValidation)
      issue(
        ['validationBatch'],
        'per-validation values need every validation example every step; drop validationBatch or perValidation',
      );
    if (c.excludeBrokenSteps && c.momentumCredit)
      issue(['excludeBrokenSteps'], 'excludeBrokenSteps cannot be combined with momentumCredit');
    if (c.momentumCredit && c.checkpointEvery > 0)
      issue(
        ['momentumCredit'],
        'momentum credit keeps the last steps’ batches and weights in memory, which checkpoints cannot hold: set checkpointEvery: 0 (the run then cannot be resumed)',
      );
    if (c.data.validation === undefined && c.data.validationSplit === undefined)
      issue(['data'], 'a validation set is needed: give data.validation (a file) or data.validationSplit');
    if (c.data.test !== undefined && c.data.testSplit !== undefined)
      issue(['data', 'testSplit'], 'give data.test or data.testSplit, not both');
    if (c.testEvery !== undefined && c.data.test === undefined && c.data.testSplit === undefined)
      issue(['testEvery'], 'testEvery applies only with a test set (data.test or data.testSplit)');
    if (c.steps !== undefined && c.epochs !== undefined) issue(['epochs'], 'give steps or epochs, not both');
    if (c.classes !== undefined && c.task !== 'classification')
      issue(['classes'], `classes applies to task classification only (task is ${c.task})`);
    if (c.classNames !== undefined) {
      const names = c.classNames;
      if (c.task === 'regression')
        issue(['classNames'], 'classNames applies to tasks classification and binary (task is regression)');
      if (c.task === 'binary' && names.length !== 2)
        issue(['classNames'], `a binary task has 2 class names (class 0, class 1), got ${names.length}`);
      if (c.classes !== undefined && c.classes !== names.length)
        issue(['classes'], `classes (${c.classes}) differs from the number of classNames (${names.length})`);
      names.forEach((name, k) => {
        // A label cell is matched to a name after trimming, and one that reads as a number is a class index.
        if (name.trim() !== name)
          issue(['classNames', k], `${JSON.stringify(name)} has leading or trailing blanks`);
        else if (readsAsNumber(name))
          issue(['classNames', k], `${JSON.stringify(name)} reads as a number; class names are text`);
        else if (c.task === 'binary' && /^(true|false)$/i.test(name))
          issue(['classNames', k], `${JSON.stringify(name)} is a binary label value, not a class name`);
        if (names.indexOf(name) !== k) issue(['classNames', k], `${JSON.stringify(name)} is listed twice`);
      });
    }
    if (c.model.kind === 'cnn' && c.task !== 'classification')
      issue(
        ['model', 'kind'],
        `model.kind cnn classifies images: it needs task classification (task is ${c.task})`,
      );
    if (c.model.kind === 'gpt') {
      if (c.model.width % c.model.heads !== 0)
        issue(
          ['model', 'width'],
          `model.width (${c.model.width}) must be divisible by model.heads (${c.model.heads})`,
        );
      if (c.columns.features !== undefined)
        issue(['columns', 'features'], 'columns.features applies to tabular models (logreg, mlp), not gpt');
      if (c.data.missing !== 'error')
        issue(['data', 'missing'], 'data.missing applies to tabular models (logreg, mlp), not gpt');
      if (c.data.standardize)
        issue(['data', 'standardize'], 'data.standardize applies to tabular models (logreg, mlp), not gpt');
      if (c.classNames !== undefined)
        issue(['classNames'], 'classNames applies to tabular models (logreg, mlp), not gpt');
    } else if (c.columns.text !== undefined)
      issue(
        ['columns', 'text'],
        `columns.text applies to model kind gpt only (model.kind is ${c.model.kind})`,
      );
    const o = c.optimizer;
    if (o.kind === 'sgd') {
      if (o.betas !== undefined) issue(['optimizer', 'betas'], 'betas apply to adam and adamw only');
      if (o.eps !== undefined) issue(['optimizer', 'eps'], 'eps applies to adam and adamw only');
    } else {
      if (o.momentum !== undefined)
        issue(['optimizer', 'momentum'], `momentum applies to sgd only (${o.kind} uses betas)`);
      if (o.decoupledWeightDecay !== undefined)
        issue(
          ['optimizer', 'decoupledWeightDecay'],
          `decoupledWeightDecay applies to sgd only (${o.kind === 'adamw' ? 'adamw decays decoupled with weightDecay' : 'use adamw for decoupled decay'})`,
        );
    }
  });

export type TrainConfig = z.output<typeof TrainConfigSchema>;
export type ModelConfig = TrainConfig['model'];

/**
 * Writes out the defaults that depend on other fields (the optimizer's own, a GPT's vocabulary
 * compaction), so config.json shows every value used.
 */
export function fillDependentDefaults(config: TrainConfig): TrainConfig {
  const o = config.optimizer;
  if (o.kind === 'sgd') {
    o.momentum ??= 0;
    o.weightDecay ??= 0;
    o.decoupledWeightDecay ??= 0;
  } else {
    o.weightDecay ??= o.kind === 'adamw' ? 0.01 : 0;
    o.betas ??= [0.9, 0.999];
    o.eps ??= 1e-8;
  }
  if (config.model.kind === 'gpt') config.model.compactVocabulary ??= config.model.tokenizer === 'gpt2';
  return config;
}
