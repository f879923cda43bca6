/**
 * GPT benchmark: a small GPT-2-style model (4 layers, width 128, 4 heads, vocabulary 2048,
 * tied head, AdamW) on synthetic token sequences, batch 16, validation 16 sequences. Measures
 * plain training and In-Run Data Shapley (first and second order) at context 64, and plain vs
 * first order at context 256; reports tokens/s and the ghost route each layer takes.
 */
import type { Dataset } from '../src/data/dataset.js';
import type { Layer } from '../src/layers/types.js';
import { gpt } from '../src/models/gpt.js';
import type { Sequential } from '../src/models/sequential.js';
import { adamw } from '../src/optim/adam.js';
import { TextSequenceDataset } from '../src/text/sequences.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import type { BenchOptions } from './mlp.js';
import { type BenchResult, fmt, summarize } from './table.js';
import { runInterleaved, type Schedule, type TimedConfig } from './timing.js';

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

export function runGptBenchmark(options: BenchOptions): BenchResult {
  const { log } = options;
  const schedule = options.quick ? QUICK : FULL;
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
      optimizer: adamw({ lr: 1e-3, weightDecay: 0.1, clipNorm: 1 }),
      data: train,
      batchSize: BATCH,
      steps: ENOUGH_STEPS,
      seed: 3,
      // The linearisation gap is a diagnostic with its own cost; time the values alone.
      valuation: order === 0 ? undefined : { validation, order, gapSamples: 0 },
    });
    return () => {
      t.runStep();
    };
  };
  const all: TimedConfig[] = [
    { id: 'a', label: 'plain training, context 64', step: make(64, 0) },
    { id: 'b', label: 'first-order values, context 64', step: make(64, 1) },
    { id: 'c', label: 'second-order values, context 64', step: make(64, 2) },
    { id: 'd', label: 'plain training, context 256', step: make(256, 0) },
    { id: 'e', label: 'first-order values, context 256', step: make(256, 1) },
  ];
  const configs = options.configs ? all.filter((c) => options.configs!.includes(c.id)) : all;
  const probe = newModel(64);
  const routes64 = routes(probe, BATCH, VALIDATION);
  const routes256 = routes(newModel(256), BATCH, VALIDATION);
  log(`  parameters: ${probe.parameterCount.toLocaleString('en-US')}`);
  const samples = runInterleaved(configs, schedule, log);
  const rows = summarize(
    configs.map((c) => ({ id: c.id, label: c.label, samplesMs: samples.get(c.id)! })),
    'a',
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const base = byId.get('a');
  for (const row of rows) {
    const context = row.id === 'd' || row.id === 'e' ? 256 : 64;
    const plain = byId.get(context === 64 ? 'a' : 'd');
    row.ratio = plain ? row.medianMs / plain.medianMs : Number.NaN;
    row.note = `${fmt((BATCH * context * 1000) / row.medianMs, 0)} tokens/s; × plain at context ${context}`;
  }
  const notes = [
    `ratios are to plain training at the same context (a for 64, d for 256)`,
    `ghost routes, context 64: ${routes64.join('; ')}`,
    `ghost routes, context 256: ${routes256.join('; ')}`,
  ];
  return {
    name: 'gpt',
    title: `GPT ${LAYERS} layers, width ${WIDTH}, ${HEADS} heads, vocabulary ${VOCAB} (tied), AdamW, batch ${BATCH}, |V| = ${VALIDATION}`,
    baseline: base ? 'a' : rows[0].id,
    settings: {
      vocab: VOCAB,
      width: WIDTH,
      layers: LAYERS,
      heads: HEADS,
      batch: BATCH,
      validation: VALIDATION,
      schedule,
    },
    rows,
    extra: { routes64, routes256 },
    notes,
  };
}
