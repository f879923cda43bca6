/**
 * GPT benchmark: a small GPT-2-style model (4 layers, width 128, 4 heads, vocabulary 2048,
 * tied head, AdamW) on synthetic token sequences, batch 16, validation 16 sequences. Measures
 * plain training and In-Run Data Shapley (first and second order) at context 64, and plain vs
 * first order at context 256; reports tokens/s and the ghost route each layer takes. With
 * PyTorch installed (BenchOptions.torch) every configuration also runs in PyTorch (bench/torch/)
 * at 1 and 2 threads, with second order at context 256 added, and PyTorch alone runs the paper's
 * own values for an Adam-trained model (the SGD formula ⟨g_i, g_V⟩, the released code's route rule).
 */
import type { Dataset } from '../src/data/dataset.js';
import type { Layer } from '../src/layers/types.js';
import { gpt } from '../src/models/gpt.js';
import type { Sequential } from '../src/models/sequential.js';
import { adamw } from '../src/optim/adam.js';
import { Sgd } from '../src/optim/sgd.js';
import { TextSequenceDataset } from '../src/text/sequences.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { type AllocationSchedule, allocationNote, configAllocations, QUICK_ALLOCATION } from './memory.js';
import { type BenchOptions, VALUES_ONLY_NOTE, valuesOnly } from './mlp.js';
import { type BenchResult, fmt, summarize } from './table.js';
import { runInterleaved, type Schedule } from './timing.js';
import { compareValues, setupTensors, type ValuesCheck } from './torch/check.js';
import { type PairedConfig, torchComparison } from './torch/compare.js';

const VOCAB = 2048;
const WIDTH = 128;
const LAYERS = 4;
const HEADS = 4;
const BATCH = 16;
const VALIDATION = 16;
const SEQUENCES = 256;
const ENOUGH_STEPS = 1_000_000;

const FULL: Schedule = { rounds: 8, stepsPerRound: 4, warmup: 2 };
const QUICK: Schedule = { rounds: 1, stepsPerRound: 1, warmup: 1 };
/**
 * With PyTorch: both sides at two thread counts. Context-256 configurations take one step per
 * round; --quick runs plain training and first-order values at context 64 only, without warm-up
 * (a smoke check, not a measurement: the MLP's --quick covers second order).
 */
const TORCH_FULL: Schedule = { rounds: 4, stepsPerRound: 2, warmup: 1 };
const TORCH_QUICK: Schedule = { rounds: 1, stepsPerRound: 1, warmup: 0 };
/**
 * Allocation windows (bench/memory.ts): steps take up to seconds, so a few one-step windows, after
 * 24 steps of the configuration alone (what interleaving left unoptimised settles by then).
 */
const GPT_ALLOCATION: AllocationSchedule = { windows: 6, stepsPerWindow: 1, warmSteps: 24 };
const LR = 1e-3;
const ADAMW = { lr: LR, weightDecay: 0.1, clipNorm: 1 };
/** PyTorch's AdamW defaults, which inrun's adamw() shares. */
const BETAS: [number, number] = [0.9, 0.999];
const EPS = 1e-8;
/**
 * The values check's AdamW eps. At the real 1e-8 Adam's first step divides by |ĝ| per weight, so
 * where the batch gradient nearly cancels, float32 rounding (~1e-7) is blown up ~10⁴-fold and the
 * two sides differ by ~1e-2 for that reason alone; with eps = 1e-4 the check still runs every part
 * of the AdamW plan (bias corrections, clip factor, K, c) at float32 agreement.
 */
const CHECK_EPS = 1e-4;
/** The PyTorch configuration (bench/torch/inrun_torch.py) of each config. */
const TORCH_CONFIG: Record<string, { context: number; config: string }> = {
  a: { context: 64, config: 'plain' },
  b: { context: 64, config: 'first' },
  c: { context: 64, config: 'second' },
  d: { context: 256, config: 'plain' },
  e: { context: 256, config: 'first' },
  f: { context: 256, config: 'second' },
  g: { context: 64, config: 'first-paper' },
  h: { context: 256, config: 'first-paper' },
};

/** Random token sequences (a Zipf-like draw so some tokens repeat, as in text). */
function syntheticSequences(name: string, count: number, context: number, rng: Rng): Dataset {
  const sequences = Array.from({ length: count }, (_, k) => {
    const tokens = Int32Array.from({ length: context + 1 }, () => Math.floor(VOCAB * rng.uniform() ** 2));
    return {
      id: `${name}-${k}#0`,
      documentId: `${name}-${k}`,
      source: k % 2 === 0 ? 'even' : 'odd',
      offset: 0,
      inputs: tokens.slice(0, context),
      targets: tokens.slice(1),
    };
  });
  return new TextSequenceDataset(name, sequences, context);
}

function newModel(context: number): Sequential {
  return gpt({
    vocabSize: VOCAB,
    context,
    layers: LAYERS,
    heads: HEADS,
    width: WIDTH,
    seed: 1,
    dtype: 'float32',
  });
}

function routes(model: Sequential, n: number, m: number): string[] {
  const names = model.slots.map((s) => s.name);
  return model.paramLayers.map((layer: Layer, k) => {
    const name = names.find((n) => layer.params[0] && n === layer.params[0].name) ?? layer.kind;
    return `${name.replace(/\.weight$/, '')}: ${model.ghostRoutes(n, m)[k]}`;
  });
}

export async function runGptBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const schedule = options.torch ? (options.quick ? TORCH_QUICK : TORCH_FULL) : options.quick ? QUICK : FULL;
  const rng = new Rng(7);
  const data = new Map<number, { train: Dataset; validation: Dataset }>();
  for (const context of [64, 256]) {
    data.set(context, {
      train: syntheticSequences('train', SEQUENCES, context, rng),
      validation: syntheticSequences('validation', VALIDATION, context, rng),
    });
  }
  const make = (context: number, order: 0 | 1 | 2) => {
    const { train, validation } = data.get(context)!;
    const t = new Trainer({
      model: newModel(context),
      optimizer: adamw(ADAMW),
      data: train,
      batchSize: BATCH,
      steps: ENOUGH_STEPS,
      seed: 3,
      // The linearisation gap is a diagnostic with its own cost; time the values alone.
      valuation: order === 0 ? undefined : valuesOnly({ validation, order, gapSamples: 0 }),
    });
    return () => {
      t.runStep();
    };
  };
  // Steps are built lazily: a configuration that is filtered out never allocates its model.
  const all: { id: string; label: string; make?: () => () => void }[] = [
    { id: 'a', label: 'plain training, context 64', make: () => make(64, 0) },
    { id: 'b', label: 'first-order values, context 64', make: () => make(64, 1) },
    { id: 'c', label: 'second-order values, context 64', make: () => make(64, 2) },
    { id: 'd', label: 'plain training, context 256', make: () => make(256, 0) },
    { id: 'e', label: 'first-order values, context 256', make: () => make(256, 1) },
  ];
  if (options.torch) {
    all.push(
      { id: 'f', label: 'second-order values, context 256', make: () => make(256, 2) },
      { id: 'g', label: "paper's values ⟨g_i, g_V⟩ (SGD proxy), ctx 64, PyTorch only" },
      { id: 'h', label: "paper's values ⟨g_i, g_V⟩ (SGD proxy), ctx 256, PyTorch only" },
    );
  }
  const defaultIds = options.torch && options.quick ? ['a', 'b', 'g'] : all.map((c) => c.id);
  const selected = all.filter((c) => (options.configs ?? defaultIds).includes(c.id));
  if (selected.length === 0) throw new Error(`bench gpt: no config matches ${options.configs?.join(',')}`);
  const contextOf = (id: string) => TORCH_CONFIG[id]?.context ?? 64;
  const probe = newModel(64);
  const routes64 = routes(probe, BATCH, VALIDATION);
  const routes256 = routes(newModel(256), BATCH, VALIDATION);
  log(`  parameters: ${probe.parameterCount.toLocaleString('en-US')}`);
  let samples: Map<string, number[]>;
  let torch: BenchResult['torch'];
  const steps = selected.map((c) => ({ id: c.id, step: c.make?.() }));
  const stepOf = (id: string) => steps.find((s) => s.id === id)!.step;
  if (options.torch) {
    const contexts = [...new Set(selected.map((c) => contextOf(c.id)))];
    const configs = selected.map(
      (c): PairedConfig => ({
        id: c.id,
        label: c.label,
        step: stepOf(c.id),
        plain: contextOf(c.id) === 64 ? 'a' : 'd',
        torch: { workload: `gpt${contextOf(c.id)}`, config: TORCH_CONFIG[c.id].config },
        ...(contextOf(c.id) === 256 ? { stepsPerRound: 1 } : {}),
      }),
    );
    torch = await torchComparison({
      torch: options.torch,
      workloads: contexts.map((context) => ({
        id: `gpt${context}`,
        spec: {
          kind: 'gpt',
          vocab: VOCAB,
          context,
          layers: LAYERS,
          heads: HEADS,
          width: WIDTH,
          batch: BATCH,
          validation: VALIDATION,
          adamw: { ...ADAMW, betas: BETAS, eps: EPS },
        },
        // inrun's initial weights (every config starts from them) and 4 batches of its data.
        tensors: () =>
          setupTensors(newModel(context), data.get(context)!.train, 4 * BATCH, data.get(context)!.validation),
      })),
      checks: async (peer) => {
        const checks: ValuesCheck[] = [];
        for (const context of contexts) {
          const check = (
            name: string,
            order: 1 | 2,
            optimizerKind: 'sgd' | 'adamw',
            eps = CHECK_EPS,
            informational = false,
          ) =>
            compareValues({
              name: `context ${context}, ${name}`,
              peer,
              workload: `gpt${context}`,
              model: newModel(context),
              train: data.get(context)!.train,
              validation: data.get(context)!.validation,
              batchSize: BATCH,
              order,
              optimizer: optimizerKind === 'sgd' ? new Sgd({ lr: LR }) : adamw({ ...ADAMW, eps }),
              optimizerKind,
              lr: LR,
              adamw: { eps },
              informational,
            });
          checks.push(await check("first order, SGD step (the paper's ⟨g_i, g_V⟩)", 1, 'sgd'));
          checks.push(await check(`first order, AdamW step (eps ${CHECK_EPS})`, 1, 'adamw'));
          if (!options.quick && context === 64) {
            checks.push(await check('second order, SGD step', 2, 'sgd'));
            checks.push(await check(`second order, AdamW step (eps ${CHECK_EPS})`, 2, 'adamw'));
            checks.push(
              await check(`first order, AdamW step (eps ${EPS}, ill-conditioned)`, 1, 'adamw', EPS, true),
            );
          }
        }
        return checks;
      },
      configs,
      schedule,
      log,
      notes: [
        "PyTorch: the same float32 model (tied head, GELU tanh, LayerNorm eps 1e-5), inrun's initial " +
          'weights and data, AdamW with clipping; values: one forward/backward of [train; validation] ' +
          'with hooks (first order) or of train plus a double-backward Hessian-vector product on ' +
          'validation (second order), book-keeping gradients, vector-route ghost products with ' +
          "inrun's Adam-preconditioned u",
        "(g), (h): the paper's values for an Adam run (u = η/|B|·g_V, no preconditioning) with " +
          "GhostSuite's route rule (pairwise when 2T² ≤ weights), AdamW update; inrun has no such mode",
        VALUES_ONLY_NOTE,
        ...(contexts.includes(256) ? ['context-256 rows take 1 step per round'] : []),
      ],
    });
    const last = torch.threads.length - 1;
    samples = new Map(torch.rows.map((r) => [r.id, r.cells[last].inrun?.samplesMs ?? []]));
  } else {
    const configs = selected.map((c) => ({ id: c.id, label: c.label, step: stepOf(c.id)! }));
    samples = runInterleaved(configs, schedule, log);
  }
  const allocations = await configAllocations(steps, options.quick ? QUICK_ALLOCATION : GPT_ALLOCATION);
  const inrunOnly = selected.filter((c) => c.make);
  const rows = summarize(
    inrunOnly.map((c) => ({ id: c.id, label: c.label, samplesMs: samples.get(c.id)! })),
    'a',
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const base = byId.get('a');
  for (const row of rows) {
    const context = contextOf(row.id);
    const plain = byId.get(context === 64 ? 'a' : 'd');
    row.ratio = plain ? row.medianMs / plain.medianMs : Number.NaN;
    row.note = `${fmt((BATCH * context * 1000) / row.medianMs, 0)} tokens/s; × plain at context ${context}`;
  }
  const notes = [
    `ratios are to plain training at the same context (a for 64, d for 256)`,
    `ghost routes, context 64: ${routes64.join('; ')}`,
    `ghost routes, context 256: ${routes256.join('; ')}`,
    allocationNote(allocations),
  ];
  return {
    name: 'gpt',
    title: `GPT ${LAYERS} layers, width ${WIDTH}, ${HEADS} heads, vocabulary ${VOCAB} (tied), AdamW, batch ${BATCH}, |V| = ${VALIDATION}`,
    baseline: base ? 'a' : (rows[0]?.id ?? 'a'),
    settings: {
      vocab: VOCAB,
      width: WIDTH,
      layers: LAYERS,
      heads: HEADS,
      batch: BATCH,
      validation: VALIDATION,
      schedule,
      ...(torch ? { inrunRowsThreads: torch.threads.at(-1) } : {}),
    },
    rows,
    extra: { routes64, routes256, allocation: allocations },
    notes,
    torch,
  };
}
