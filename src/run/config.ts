// The configuration of `inrun train`: a YAML or JSON file and/or command-line flags (flags win),
// validated with zod. Unknown keys and wrong types are errors naming the key path (and, for YAML
// and JSON files, the line). `FIELDS` documents every field; `inrun train --help` prints it.
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import YAML, { CST, isAlias, isCollection, isNode, isPair, Lexer, LineCounter } from 'yaml';
import type { z } from 'zod';
import { checkRegularFile } from '../data/readers/index.js';
import { describe, fail } from '../util/errors.js';
import { failFileError } from '../util/fs-errors.js';
import {
  fillDependentDefaults,
  MODEL_KINDS,
  MODEL_SCHEMAS,
  type TrainConfig,
  TrainConfigSchema,
} from './config-schema.js';

export {
  fillDependentDefaults,
  MODEL_KINDS,
  MODEL_SCHEMAS,
  type ModelConfig,
  type TrainConfig,
  TrainConfigSchema,
} from './config-schema.js';

// ---------------------------------------------------------------------------------------------
// Documentation: every field, its type and default (printed by `inrun train --help`).

export interface FieldDoc {
  path: string;
  type: string;
  default: string;
  help: string;
}

export const FIELDS: FieldDoc[] = [
  {
    path: 'data.train',
    type: 'path',
    default: '(required)',
    help: 'training data: .csv, .jsonl or .parquet; gpt: a .txt/.md file, a folder of them, or .jsonl with a text column',
  },
  {
    path: 'data.validation',
    type: 'path',
    default: '-',
    help: 'validation data, same columns as data.train',
  },
  {
    path: 'data.validationSplit',
    type: 'number in (0,1)',
    default: '-',
    help: 'or: hold out this fraction of data.train (seeded) as validation',
  },
  {
    path: 'data.test',
    type: 'path',
    default: '-',
    help: 'held-out test data, same columns as data.validation (gpt: text like data.validation); never used for values or training: curation is judged on it',
  },
  {
    path: 'data.testSplit',
    type: 'number in (0,1)',
    default: '-',
    help: 'or: hold out this fraction of data.train (seeded) as the test set; the shuffled rows go to validation first, then test, then training, so adding a test split keeps the validation rows',
  },
  {
    path: 'data.missing',
    type: 'error|drop',
    default: 'error',
    help: 'a row whose feature, label or id cell is missing (empty, null; CSV: also NA): error (naming file, line, column) | drop the row (counted per file in the summary and manifest)',
  },
  {
    path: 'data.standardize',
    type: 'boolean|channels',
    default: 'false',
    help: "scale each feature to mean 0, std 1 with the training split's mean and population std (after dropping and splitting; a constant feature gets std 1); channels: one mean and std per image channel (image folders); recorded in manifest.json",
  },
  {
    path: 'columns.id',
    type: 'string',
    default: '-',
    help: 'unique example ids (default: 0-based row number); never a feature, nor is any column named id',
  },
  { path: 'columns.label', type: 'string', default: 'label', help: 'the target column' },
  {
    path: 'columns.features',
    type: 'string[]',
    default: 'all numeric',
    help: 'feature columns; default every other column whose non-missing cells are all numbers (whatever the row; a column of numbers and text is an error, a column of text is not used)',
  },
  {
    path: 'columns.group',
    type: 'string',
    default: '-',
    help: 'group of each example, for per-group totals (gpt on JSONL: the source of each document)',
  },
  {
    path: 'columns.text',
    type: 'string',
    default: 'text',
    help: 'gpt on JSONL/CSV/Parquet: the column holding each document',
  },
  {
    path: 'task',
    type: 'classification|binary|regression',
    default: 'classification',
    help: 'labels: class indices 0..K-1 or class names | 0/1, true/false or two class names | real numbers',
  },
  {
    path: 'classes',
    type: 'integer ≥ 2',
    default: 'max label + 1',
    help: 'number of classes (classification); with class names: their number',
  },
  {
    path: 'classNames',
    type: 'string[]',
    default: 'sorted label names',
    help: 'labels are these names, class k the k-th (binary: 2 names, class 0 and 1); default: the distinct names of training and validation labels in code-point order. A label column of names and numbers is an error',
  },
  {
    path: 'model.kind',
    type: MODEL_KINDS.join('|'),
    default: 'logreg',
    help: 'linear model, multi-layer perceptron, GPT language model (on text), or CNN (on images)',
  },
  { path: 'model.hidden', type: 'integer[]', default: '[64]', help: 'mlp: hidden layer widths' },
  { path: 'model.activation', type: 'relu|gelu|tanh|sigmoid', default: 'relu', help: 'mlp: activation' },
  { path: 'model.layers', type: 'integer ≥ 1', default: '2', help: 'gpt: transformer blocks' },
  { path: 'model.heads', type: 'integer ≥ 1', default: '2', help: 'gpt: attention heads (divide width)' },
  {
    path: 'model.width',
    type: 'integer ≥ 1',
    default: '64 (cnn: per architecture)',
    help: 'gpt: embedding width; cnn: channels of the first layer',
  },
  {
    path: 'model.context',
    type: 'integer ≥ 2',
    default: '64',
    help: 'gpt: tokens per training sequence (documents are cut into sequences of this length)',
  },
  { path: 'model.tieWeights', type: 'boolean', default: 'true', help: 'gpt: output head shares wte' },
  { path: 'model.norm', type: 'layernorm|rmsnorm', default: 'layernorm', help: 'gpt: normalisation' },
  {
    path: 'model.tokenizer',
    type: 'gpt2|bytes',
    default: 'gpt2',
    help: 'gpt: GPT-2 BPE or one id per UTF-8 byte',
  },
  {
    path: 'model.compactVocabulary',
    type: 'boolean',
    default: 'true for gpt2',
    help: 'gpt: renumber the token ids that occur to 0..n-1 (recorded in vocabulary.json)',
  },
  {
    path: 'model.architecture',
    type: 'lenet|resnet|resnet18',
    default: 'lenet',
    help: 'cnn: LeNet-5, a small GroupNorm ResNet, or ResNet-18 (GroupNorm)',
  },
  {
    path: 'model.image',
    type: 'WxHxC',
    default: '(image folders)',
    help: 'cnn on a table of pixel columns: the image shape, channels-first',
  },
  { path: 'model.depth', type: 'integer ≥ 1', default: '1', help: 'cnn resnet: blocks per stage' },
  { path: 'model.stages', type: 'integer ≥ 1', default: '3', help: 'cnn resnet: stages' },
  {
    path: 'model.groups',
    type: 'integer ≥ 1',
    default: '8 (resnet18: 32)',
    help: 'cnn resnet: GroupNorm groups',
  },
  { path: 'model.kernel', type: 'integer ≥ 1', default: '5', help: 'cnn lenet: convolution kernel size' },
  {
    path: 'model.dropout',
    type: 'number in [0,1)',
    default: '0',
    help: 'cnn lenet: dropout after hidden layers',
  },
  { path: 'optimizer.kind', type: 'sgd|adam|adamw', default: 'sgd', help: 'optimizer (PyTorch semantics)' },
  { path: 'optimizer.lr', type: 'number > 0', default: '0.05', help: 'base learning rate' },
  { path: 'optimizer.momentum', type: 'number in [0,1]', default: '0', help: 'sgd: heavy-ball momentum' },
  {
    path: 'optimizer.weightDecay',
    type: 'number ≥ 0',
    default: '0 (adamw: 0.01)',
    help: 'L2 penalty (sgd, adam); decoupled decay (adamw)',
  },
  { path: 'optimizer.decoupledWeightDecay', type: 'number ≥ 0', default: '0', help: 'sgd: decoupled decay' },
  { path: 'optimizer.betas', type: '[number, number]', default: '[0.9, 0.999]', help: 'adam/adamw: β1, β2' },
  { path: 'optimizer.eps', type: 'number ≥ 0', default: '1e-8', help: 'adam/adamw: ε' },
  {
    path: 'optimizer.clipNorm',
    type: 'number > 0',
    default: 'none',
    help: 'clip the batch gradient to this L2 norm',
  },
  {
    path: 'optimizer.schedule.kind',
    type: 'constant|step|cosine',
    default: 'constant',
    help: 'learning-rate schedule',
  },
  {
    path: 'optimizer.schedule.every',
    type: 'integer ≥ 1',
    default: '(required)',
    help: 'step: decay every n steps',
  },
  { path: 'optimizer.schedule.gamma', type: 'number ≥ 0', default: '(required)', help: 'step: decay factor' },
  {
    path: 'optimizer.schedule.warmupSteps',
    type: 'integer ≥ 0',
    default: '0',
    help: 'cosine: linear warm-up',
  },
  {
    path: 'optimizer.schedule.minFactor',
    type: 'number in [0,1]',
    default: '0',
    help: 'cosine: final lr factor',
  },
  { path: 'batchSize', type: 'integer ≥ 1', default: '32', help: 'examples per step' },
  { path: 'steps', type: 'integer ≥ 1', default: '-', help: 'optimizer steps (or give epochs)' },
  { path: 'epochs', type: 'integer ≥ 1', default: '1', help: 'passes over the training data' },
  { path: 'order', type: '1|2', default: '2', help: 'first- or second-order In-Run Shapley values' },
  { path: 'seed', type: 'integer ≥ 0', default: '0', help: 'seeds initial weights, data order and split' },
  { path: 'stages', type: 'integer ≥ 1', default: '1', help: 'split the run into this many equal stages' },
  {
    path: 'perValidation',
    type: 'boolean',
    default: 'false',
    help: 'also keep each value split by validation example (gpt: by validation document, the queries)',
  },
  {
    path: 'perValidationOrder',
    type: '1|2',
    default: 'gpt: order; else 1',
    help: 'order of the per-validation values; 2 costs one validation pass and HVP per column per step',
  },
  {
    path: 'gapSamples',
    type: 'integer ≥ 0',
    default: '2',
    help: 'adam/adamw: sub-batches measuring the linearisation gap',
  },
  {
    path: 'checkPairwiseLayers',
    type: 'boolean',
    default: 'true',
    help: 'check Gram-route layers in the efficiency residual (false: faster SGD steps)',
  },
  {
    path: 'signals',
    type: 'boolean',
    default: 'true',
    help: 'also keep self-influence, loss, margin, forgetting, class value',
  },
  {
    path: 'classValues',
    type: 'boolean',
    default: 'false',
    help: 'with signals: each value against its own class too (costly)',
  },
  {
    path: 'validationBatch',
    type: 'integer ≥ 2',
    default: '-',
    help: 'value against a random sample of V per step (standard errors)',
  },
  {
    path: 'momentumCredit',
    type: 'boolean',
    default: 'false',
    help: 'credit what momentum carries to the examples (needs checkpointEvery 0)',
  },
  {
    path: 'valueFrom',
    type: 'integer ≥ 0',
    default: '0',
    help: 'first step whose values count (traced all the same)',
  },
  {
    path: 'excludeBrokenSteps',
    type: 'boolean',
    default: 'false',
    help: 'leave out of the values the steps whose Taylor expansion broke down (trace expansionBroken = 1)',
  },
  { path: 'out', type: 'path', default: 'runs/train', help: 'run directory (must not exist; see --force)' },
  {
    path: 'checkpointEvery',
    type: 'integer ≥ 0',
    default: '100',
    help: 'checkpoint every n steps (0: only on SIGINT/SIGTERM)',
  },
  {
    path: 'recordBatchIds',
    type: 'boolean',
    default: 'false',
    help: "record each step's batch ids in the trace",
  },
  {
    path: 'stepValues',
    type: 'boolean',
    default: 'false',
    help: "also write step-values.parquet: every step's value of each example in its batch, with the step's lr, K scale, clip factor, ‖c‖ and mean Adam diagonal",
  },
  {
    path: 'testEvery',
    type: 'integer ≥ 1',
    default: '⌈steps / 20⌉',
    help: 'with a test set: evaluate test loss (and accuracy) after every n-th step, and always after the last (default: about 20 evaluations)',
  },
  {
    path: 'kernels',
    type: 'auto|native|portable|wasm',
    default: 'auto',
    help: 'OpenBLAS addon, TypeScript or WebAssembly kernels; auto: env INRUN_KERNELS if set, else native when the addon loads, then wasm when built',
  },
  { path: 'initWeights', type: 'path', default: '-', help: 'start from these weights (.safetensors)' },
];

/** The field table for --help. */
export function fieldsHelp(): string {
  const width = Math.max(...FIELDS.map((f) => f.path.length));
  const lines = FIELDS.map((f) => {
    const def = f.default === '-' ? '' : ` [default: ${f.default}]`;
    return `  ${f.path.padEnd(width)}  ${f.type}${def}\n  ${' '.repeat(width)}  ${f.help}`;
  });
  return `Config fields (YAML or JSON file given by --config; flags override it):\n${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Loading and merging

/** A raw (unvalidated) config with where its parts came from, for messages. */
export interface RawConfig {
  value: Record<string, unknown>;
  /** The config file (absolute), if any. */
  file?: string;
  /** Locates a key path in the file: "line 7", or undefined. */
  lineOf?: (path: (string | number)[]) => number | undefined;
  /** Key paths set by flags (dotted), so messages can name the flag instead of the file. */
  flagPaths: Map<string, string>;
}

/** A config is a page of settings; anything this big is a mistake and would take long to parse. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** How many values a YAML config may expand to through its aliases (*x stands for a copy of &x). */
export const MAX_CONFIG_VALUES = 100_000;
/** How deep a config may nest; real ones need about 4 levels (optimizer.schedule.kind). */
export const MAX_CONFIG_DEPTH = 64;
const CONFIG_TYPES = '.yaml, .yml or .json';
const TOO_DEEP = 'nested too deeply';

/** Reads a YAML (.yaml/.yml) or JSON (.json) config file; syntax errors name the line. */
export async function loadConfigFile(file: string): Promise<RawConfig> {
  const abs = resolve(file);
  const size = await checkRegularFile(abs, 'the config file', CONFIG_TYPES, file);
  const ext = extname(abs).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext))
    fail(
      `${file}: ${ext === '' ? 'no file extension to tell the config type' : `unknown config file type ${JSON.stringify(ext)}`} (use ${CONFIG_TYPES})`,
    );
  if (size > MAX_CONFIG_BYTES)
    fail(
      `${file}: the config file is ${(size / 2 ** 20).toFixed(1)} MiB; config files over ${MAX_CONFIG_BYTES / 2 ** 20} MiB are refused`,
    );
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (error) {
    return failFileError(error, file, 'read the config file');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail(`${file}: the config file is not valid UTF-8`);
  }
  if (text.trim() === '') fail(`${file}: the config file is empty`);
  const deepLine = tooDeepLine(text);
  if (deepLine !== undefined)
    fail(
      `${file}: line ${deepLine}: invalid ${ext === '.json' ? 'JSON' : 'YAML'} (${TOO_DEEP}: more than ${MAX_CONFIG_DEPTH} levels)`,
    );
  // JSON is YAML; parsing both with the yaml package gives line numbers for both. JSON files are
  // checked with JSON.parse first so they are held to JSON's own syntax.
  if (ext === '.json') {
    try {
      JSON.parse(text);
    } catch (error) {
      fail(`${file}: not valid JSON (${isStackOverflow(error) ? TOO_DEEP : (error as Error).message})`);
    }
  }
  const invalid = (line: number | undefined, why: string): never =>
    fail(`${file}${line ? `: line ${line}` : ''}: invalid ${ext === '.json' ? 'JSON' : 'YAML'} (${why})`);
  const lineCounter = new LineCounter();
  let doc: YAML.Document.Parsed;
  try {
    doc = YAML.parseDocument(text, { lineCounter, uniqueKeys: true });
  } catch (error) {
    if (isStackOverflow(error)) return invalid(undefined, TOO_DEEP);
    throw error;
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0].line;
    // The parser recurses once per nesting level and reports running out of stack as an error.
    const message = /call stack/i.test(e.message)
      ? TOO_DEEP
      : e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    invalid(line, message);
  }
  let value: unknown;
  try {
    const firstAlias = checkAliases(doc, (offset) => lineCounter.linePos(offset).line, invalid);
    try {
      // The yaml package's own, rougher guard against alias expansion stays on behind this one.
      value = doc.toJS({ maxAliasCount: MAX_CONFIG_VALUES });
    } catch (error) {
      if (error instanceof ReferenceError && /alias/i.test(error.message))
        invalid(firstAlias, `aliases are used too often (${error.message})`);
      throw error;
    }
  } catch (error) {
    if (isStackOverflow(error)) return invalid(undefined, TOO_DEEP);
    throw error;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(
      `${file}: the config must be a mapping of keys to values, got ${Array.isArray(value) ? 'a list' : describe(value)}`,
    );
  const lineOf = (keyPath: (string | number)[]): number | undefined => {
    for (let n = keyPath.length; n > 0; n--) {
      const node = doc.getIn(keyPath.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { value: value as Record<string, unknown>, file: abs, lineOf, flagPaths: new Map() };
}

/**
 * The first line of a YAML or JSON text that nests deeper than MAX_CONFIG_DEPTH, found before
 * parsing: the yaml parser recurses once per level, and running out of stack there can abort the
 * whole process (V8 reports a fatal error, not a RangeError, when it happens while compiling a
 * regular expression). The yaml package's lexer is iterative and knows quotes, comments and block
 * scalars; depth is the open flow brackets plus the block levels (indentation and "- "/"? " items).
 */
function tooDeepLine(text: string): number | undefined {
  const indents: number[] = [];
  let blockDepth = 0;
  let flow = 0;
  let offset = 0;
  let lineStart = 0;
  let lineOpen = false;
  let scalarNext = false;
  const lineAt = (at: number) => text.slice(0, at).split('\n').length;
  for (const token of new Lexer().lex(text)) {
    // Markers of the lexer, not source text; SCALAR announces a scalar's source.
    if (token === CST.SCALAR) scalarNext = true;
    if (token === CST.SCALAR || token === CST.DOCUMENT || token === CST.FLOW_END) continue;
    const start = offset;
    offset += token.length;
    const type = scalarNext ? 'scalar' : CST.tokenType(token);
    scalarNext = false;
    const lastNewline = token.lastIndexOf('\n');
    if (type === 'newline' || type === 'space' || type === 'comment') {
      if (lastNewline >= 0) {
        lineStart = start + lastNewline + 1;
        lineOpen = false;
      }
      continue;
    }
    if (flow === 0 && !lineOpen) {
      lineOpen = true;
      const indent = start - lineStart;
      while (indents.length > 0 && indents[indents.length - 1] >= indent) indents.pop();
      indents.push(indent);
      blockDepth = indents.length;
    }
    if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind')) blockDepth++;
    if (type === 'flow-seq-start' || type === 'flow-map-start') flow++;
    else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flow > 0) flow--;
    if (blockDepth + flow > MAX_CONFIG_DEPTH) return lineAt(start);
    if (lastNewline >= 0) lineStart = start + lastNewline + 1;
  }
  return undefined;
}

function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}

/**
 * A YAML alias (*x) stands for a copy of its anchored value (&x), so aliases inside anchored
 * values multiply: nine short lines can stand for a billion values ("billion laughs"). Counts the
 * values of the expanded config in document order without expanding it, and fails at the alias
 * that passes MAX_CONFIG_VALUES or that sits inside the value it stands for. Returns the line of
 * the first alias, if any.
 */
function checkAliases(
  doc: YAML.Document.Parsed,
  lineAt: (offset: number) => number,
  invalid: (line: number, why: string) => never,
): number | undefined {
  // As in the yaml package, an alias refers to the last anchor of its name before it.
  const anchors = new Map<string, YAML.Node>();
  const sizes = new Map<YAML.Node, number>();
  const open = new Set<YAML.Node>();
  let total = 0;
  let firstLine: number | undefined;
  const walk = (node: unknown): number => {
    if (isAlias(node)) {
      const line = lineAt(node.range?.[0] ?? 0);
      firstLine ??= line;
      const target = anchors.get(node.source);
      if (target === undefined)
        invalid(line, `the alias *${node.source} has no anchor &${node.source} before it`);
      if (open.has(target)) invalid(line, `the alias *${node.source} is inside the value it stands for`);
      const size = sizes.get(target) ?? 1;
      total += size;
      if (total > MAX_CONFIG_VALUES)
        invalid(
          line,
          `the alias *${node.source} expands the config to more than ${MAX_CONFIG_VALUES} values`,
        );
      return size;
    }
    if (isPair(node)) return walk(node.key) + walk(node.value);
    total += 1;
    const anchored = isNode(node) && node.anchor ? node : undefined;
    if (anchored) {
      anchors.set(anchored.anchor!, anchored);
      open.add(anchored);
    }
    let size = 1;
    if (isCollection(node)) for (const item of node.items) size += walk(item);
    if (anchored) {
      open.delete(anchored);
      sizes.set(anchored, size);
    }
    return size;
  };
  walk(doc.contents);
  return firstLine;
}

/** Sets a dotted key path in a plain object, creating objects on the way. */
export function setPath(target: Record<string, unknown>, keyPath: string, value: unknown): void {
  const keys = keyPath.split('.');
  // These would reach Object.prototype instead of a config key.
  const bad = keys.find((key) => ['__proto__', 'constructor', 'prototype'].includes(key));
  if (bad !== undefined) fail(`cannot set ${keyPath}: "${bad}" is not a config key`);
  let node = target;
  keys.slice(0, -1).forEach((key, k) => {
    const next = node[key];
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object' || Array.isArray(next))
      fail(`cannot set ${keyPath}: ${keys.slice(0, k + 1).join('.')} is not a mapping`);
    node = node[key] as Record<string, unknown>;
  });
  node[keys[keys.length - 1]] = value;
}

/** Fields that exclude each other (the schema refuses both); a flag for one replaces the other from the file. */
const EXCLUSIVE: Record<string, string> = {
  steps: 'epochs',
  epochs: 'steps',
  'data.validation': 'data.validationSplit',
  'data.validationSplit': 'data.validation',
  'data.test': 'data.testSplit',
  'data.testSplit': 'data.test',
};

export interface Override {
  /** Dotted key path. */
  path: string;
  value: unknown;
  /** The flag that set it, for messages: "--steps", "--set data.validation". */
  flag: string;
}

/**
 * Two flags must not decide the same thing: one setting a field that excludes the other's
 * (--steps with --epochs), or both setting one field or one setting a mapping holding the
 * other's field (--validation with --set data=…) — applied in order, one would silently undo
 * the other. The same flag repeated (--set lr=… twice) keeps its last value.
 */
function checkFlagConflicts(overrides: Override[]): void {
  const covers = (outer: string, inner: string) => outer === inner || inner.startsWith(`${outer}.`);
  overrides.forEach((a, i) => {
    for (const b of overrides.slice(i + 1)) {
      if (a.flag === b.flag) continue;
      if (EXCLUSIVE[a.path] === b.path)
        fail(`${a.flag} and ${b.flag} exclude each other (${a.path} or ${b.path}); give one of them`);
      if (covers(a.path, b.path) || covers(b.path, a.path)) {
        const field = a.path.length >= b.path.length ? a.path : b.path;
        fail(`${a.flag} and ${b.flag} both set ${field}; give one of them`);
      }
    }
  });
}

/**
 * Applies flag overrides (dotted key path → value, with the flag's name for messages). Changing
 * model.kind or optimizer.kind by flag drops the settings of the previous kind. Flags that
 * contradict each other are an error naming both.
 */
export function applyOverrides(raw: RawConfig, overrides: Override[]): void {
  checkFlagConflicts(overrides);
  for (const { path: keyPath, value, flag } of overrides) {
    if (keyPath === 'model.kind') {
      const model = raw.value.model as Record<string, unknown> | undefined;
      if (model && typeof model === 'object' && model.kind !== value) raw.value.model = {};
    }
    if (keyPath === 'optimizer.kind') {
      const opt = raw.value.optimizer as Record<string, unknown> | undefined;
      if (opt && typeof opt === 'object' && opt.kind !== value) {
        for (const key of ['momentum', 'decoupledWeightDecay', 'betas', 'eps']) delete opt[key];
      }
    }
    // A flag replaces its alternative from the file (steps ↔ epochs, validation ↔ validationSplit, test ↔ testSplit).
    const alternative = EXCLUSIVE[keyPath];
    if (alternative) {
      const [head, tail] = alternative.split('.');
      const holder = (tail ? raw.value[head] : raw.value) as Record<string, unknown> | undefined;
      if (holder && typeof holder === 'object') delete holder[tail ?? head];
    }
    setPath(raw.value, keyPath, value);
    raw.flagPaths.set(keyPath, flag);
  }
}

/** Parses the value of `--set key.path=value`: YAML scalars and flow collections (`[64, 32]`). */
export function parseSetFlag(text: string): { path: string; value: unknown } {
  const eq = text.indexOf('=');
  if (eq <= 0) fail(`--set expects key.path=value, got ${JSON.stringify(text)}`);
  const keyPath = text.slice(0, eq).trim();
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(keyPath))
    fail(`--set: ${JSON.stringify(keyPath)} is not a key path like optimizer.lr`);
  const valueText = text.slice(eq + 1);
  if (tooDeepLine(valueText) !== undefined)
    fail(`--set ${keyPath}: the value is ${TOO_DEEP} (more than ${MAX_CONFIG_DEPTH} levels)`);
  let value: unknown;
  try {
    value = valueText.trim() === '' ? '' : YAML.parse(valueText);
  } catch {
    fail(`--set ${keyPath}: cannot parse the value ${JSON.stringify(valueText)}`);
  }
  return { path: keyPath, value };
}

// ---------------------------------------------------------------------------------------------
// Validation

const PATH_FIELDS = ['data.train', 'data.validation', 'data.test', 'out', 'initWeights'];

/**
 * Validates a raw config and fills in defaults. Relative paths are resolved against the config
 * file's folder (paths from flags against the working directory). Errors name the key path, the
 * source (file and line, or flag) and the expected type; unknown keys are errors.
 */
export function parseTrainConfig(raw: RawConfig, cwd = process.cwd()): TrainConfig {
  const result = TrainConfigSchema.safeParse(raw.value);
  if (!result.success) {
    const issues = result.error.issues;
    const more =
      issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    fail(`${formatIssue(issues[0], raw)}${more}`);
  }
  const config = fillDependentDefaults(result.data);
  const baseDir = raw.file ? dirname(raw.file) : cwd;
  for (const field of PATH_FIELDS) {
    const [head, tail] = field.split('.');
    const holder = (tail ? (config as Record<string, unknown>)[head] : config) as Record<string, unknown>;
    const key = tail ?? head;
    const value = holder[key];
    if (typeof value !== 'string') continue;
    holder[key] = resolve(raw.flagPaths.has(field) ? cwd : baseDir, value);
  }
  return config;
}

type Issue = z.core.$ZodIssue;

function formatIssue(issue: Issue, raw: RawConfig): string {
  const keyPath = issue.path.map(String);
  const fullPath = issue.code === 'unrecognized_keys' ? [...keyPath, issue.keys[0]] : keyPath;
  const dotted = fullPath.join('.');
  const flag = [...raw.flagPaths.entries()].find(([p]) => dotted === p || dotted.startsWith(`${p}.`))?.[1];
  let source: string;
  if (flag) source = flag;
  else if (raw.file) {
    const line = raw.lineOf?.(fullPath as (string | number)[]);
    source = line ? `${raw.file}: line ${line}` : raw.file;
  } else source = 'config';
  const actual = valueAt(raw.value, issue.path as (string | number)[]);
  const name = dotted === '' ? 'config' : dotted;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(keyPath.join('.'), raw.value);
      return `${source}: unknown key "${dotted}"${known ? ` (known here: ${known})` : ''}`;
    }
    case 'invalid_type': {
      if (actual === undefined) return `${source}: ${name} is required (${expectedText(issue.expected)})`;
      return `${source}: ${name}: expected ${expectedText(issue.expected)}, got ${describeValue(actual)}`;
    }
    case 'invalid_value':
      return `${source}: ${name}: expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(actual)}`;
    case 'invalid_union': {
      const options = 'options' in issue ? (issue.options as unknown[]) : undefined;
      if (options)
        return `${source}: ${name}: expected ${options.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(actual)}`;
      return `${source}: ${name}: ${issue.message}, got ${describeValue(actual)}`;
    }
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      if (issue.origin === 'array')
        return `${source}: ${name}: needs ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} ${bound === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return `${source}: ${name}: must not be empty`;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<';
      return `${source}: ${name}: must be ${op} ${bound}, got ${describeValue(actual)}`;
    }
    default:
      return `${source}: ${name}: ${issue.message}`;
  }
}

function expectedText(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'array':
    case 'tuple':
      return 'a list';
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function valueAt(value: unknown, keyPath: (string | number)[]): unknown {
  let node = value;
  for (const key of keyPath) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function knownKeys(parent: string, value: Record<string, unknown>): string {
  if (parent === 'model') {
    // The keys of the model kind given (each kind has its own).
    const kind = (value.model as { kind?: unknown } | undefined)?.kind;
    const schema = MODEL_SCHEMAS.find((s) => s.shape.kind.value === kind);
    if (schema) return `${Object.keys(schema.shape).join(', ')} for model kind ${String(kind)}`;
  }
  const prefix = parent === '' ? '' : `${parent}.`;
  const keys = new Set<string>();
  for (const f of FIELDS) {
    if (!f.path.startsWith(prefix)) continue;
    keys.add(f.path.slice(prefix.length).split('.')[0]);
  }
  if (parent === 'model') keys.add('kind');
  return [...keys].join(', ');
}
