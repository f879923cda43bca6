// inrun: In-Run Data Shapley — exact per-example data values computed while a model trains.

export {
  type Batch,
  type Dataset,
  type ExampleId,
  TensorDataset,
  type TensorDatasetOptions,
} from './data/dataset.js';
export {
  type ReadTableOptions,
  readTable,
  type Table,
  type TableFormat,
  type TableRow,
  tableFormat,
  writeRowsLike,
} from './data/readers/index.js';
export {
  type DetectionSignal,
  type DetectionSummary,
  detectionScores,
  removalOrder,
} from './evaluate/detection.js';
export {
  EVALUATE_DIGITS,
  type EvaluateOptions,
  type Evaluation,
  evaluate,
  isTextEvaluation,
  REMOVAL_DEFAULT,
  type RemovalPoint,
  type SignalResult,
  type TextEvaluation,
  type TextRemovalPoint,
} from './evaluate/evaluate.js';
export {
  type ClassificationTable,
  FAULT_KINDS,
  type FaultKind,
  type FaultSpec,
  type InjectedFaults,
  type InjectedTextFaults,
  injectFaults,
  injectTextFaults,
  parseFaultSpec,
  type TableFaultKind,
  TEXT_FAULT_KINDS,
  type TextFaultKind,
} from './evaluate/faults.js';
export { type KnnShapleyOptions, knnShapley, type LabeledPoints } from './evaluate/knn-shapley.js';
export { writeEvaluationReport } from './evaluate/report.js';
export { TEXT_DEFAULT_FAULTS, TEXT_REMOVAL_DEFAULT, TEXT_SIGNALS } from './evaluate/text.js';
export {
  finalModelLoss,
  finalModelMargins,
  type TracInCheckpoint,
  type TracInResult,
  tracInCheckpoints,
} from './evaluate/tracin.js';
export { getKernels } from './kernels/index.js';
export type { DType, FloatArray, KernelKind, Kernels } from './kernels/types.js';
export { CausalSelfAttention } from './layers/attention.js';
export {
  Conv2d,
  type Conv2dOptions,
  type ImageShape,
  type Size2,
} from './layers/conv2d.js';
export { Dropout, type DropoutOptions } from './layers/dropout.js';
export { GELU, ReLU, Sigmoid, Tanh } from './layers/elementwise.js';
export { PositionalEmbedding, TokenEmbedding } from './layers/embedding.js';
export { BatchNorm2d, GroupNorm, type GroupNormOptions } from './layers/group-norm.js';
export { LayerNorm, RMSNorm } from './layers/layer-norm.js';
export { Linear } from './layers/linear.js';
export {
  AvgPool2d,
  type AvgPool2dOptions,
  Flatten,
  GlobalAvgPool2d,
  MaxPool2d,
  type Pool2dOptions,
} from './layers/pooling.js';
export { Residual } from './layers/residual.js';
export { PassArena, type PassBuffers } from './layers/scratch.js';
export type { Activation, Layer, LayerTape, ParamSlot, ParamSpec, PassContext } from './layers/types.js';
export { named } from './layers/types.js';
export { BinaryLogistic } from './losses/binary-logistic.js';
export { MeanSquaredError } from './losses/mse.js';
export { IGNORE_INDEX, SoftmaxCrossEntropy } from './losses/softmax-cross-entropy.js';
export type { Loss, Targets } from './losses/types.js';
export { auroc, averagePrecision, precisionAtK } from './metrics.js';
export {
  type ActivationName,
  type LogisticRegressionOptions,
  type LossName,
  logisticRegression,
  type MlpOptions,
  mlp,
} from './models/builders.js';
export { type CnnKind, type CnnOptions, cnn } from './models/cnn.js';
export { type GptConfig, gpt } from './models/gpt.js';
export {
  type ForwardMode,
  type GhostRoute,
  type ModelOptions,
  type Pass,
  Sequential,
} from './models/sequential.js';
export { Adam, type AdamOptions, type AdamVariant, adam, adamw } from './optim/adam.js';
export { learningRate, type Schedule } from './optim/schedule.js';
export { Sgd, type SgdOptions, sgd } from './optim/sgd.js';
export type { Optimizer, StepPlan, StepScale } from './optim/types.js';
export * from './run/index.js';
export { type GroupTotal, type LedgerEntry, ValueLedger } from './shapley/ledger.js';
export { MOMENTUM_CREDIT_TOLERANCE, MomentumCredit } from './shapley/momentum-credit.js';
export { InRunValuer, type StepValues, type TraceEntry, type ValuerOptions } from './shapley/valuer.js';
export { type DocumentValue, documentValues } from './text/aggregate.js';
export {
  BUNDLED_CORPUS_NAMES,
  type BundledCorpusInfo,
  type BundledCorpusName,
  listBundledCorpora,
  loadBundledCorpus,
} from './text/corpora.js';
export {
  BOILERPLATE,
  JUNK_KINDS,
  type JunkKind,
  type JunkOptions,
  junkText,
  junkVocabulary,
  NEAR_DUPLICATE_EDITS,
} from './text/junk.js';
export {
  BM25_DEFAULTS,
  type Bm25Options,
  bm25Ranking,
  type LexicalDocument,
  LexicalIndex,
  type LexicalScore,
  lexicalWords,
  NGRAM_DEFAULT_N,
  ngramOverlapRanking,
  type RankingOptions,
  type TfidfOptions,
  tfidfRanking,
} from './text/lexical.js';
export {
  type SequenceExample,
  type SkippedDocument,
  type SkipReason,
  type SplitOptions,
  type SplitResult,
  splitIntoSequences,
  type TextDocument,
  type TextSequence,
  TextSequenceDataset,
} from './text/sequences.js';
export {
  END_OF_TEXT,
  getTokenizer,
  TOKENIZER_NAMES,
  type Tokenizer,
  type TokenizerName,
} from './text/tokenizer.js';
export { type CompactVocabulary, compactVocabulary } from './text/vocabulary.js';
export {
  type StepPlanSummary,
  type StepReport,
  summarizePlan,
  Trainer,
  type TrainerOptions,
  train,
} from './train/trainer.js';
export { DivergenceError, InrunError } from './util/errors.js';
export { Rng } from './util/rng.js';
