import { allocFloat, dtypeOf } from '../kernels/alloc.js';
import type { DType, KernelOps } from '../kernels/types.js';
import type { Activation } from '../layers/types.js';
import type { Targets } from '../losses/types.js';
import { fail } from '../util/errors.js';

export type ExampleId = string | number;

/** A batch ready for the model: inputs [n, tokens, width] and targets. */
export interface Batch {
  input: Activation;
  targets: Targets;
}

/**
 * Training or validation examples. Values are keyed by `id(i)`, which must be stable across runs
 * and unique within the dataset; `group(i)` (a source, domain or class) gets per-group totals.
 */
export interface Dataset {
  readonly name: string;
  readonly size: number;
  readonly example: { tokens: number; width: number };
  id(index: number): ExampleId;
  group(index: number): string | undefined;
  /**
   * The examples at `indices` as one batch. `into`, a batch this dataset returned before whose
   * arrays the caller no longer needs, may be filled instead of allocating new arrays (the trainer
   * passes its previous step's batch), and `kernels` may copy the rows; a dataset is free to
   * ignore either.
   */
  batch(indices: ArrayLike<number>, dtype: DType, into?: Batch, kernels?: KernelOps): Batch;
}

export interface TensorDatasetOptions {
  /** Used in error messages ("training data", "validation data", a file name). */
  name?: string;
  /** Row-major features, n × (tokens·width), as one flat array or one array per example. */
  features: ArrayLike<number> | ArrayLike<number>[];
  width: number;
  tokens?: number;
  /**
   * Integer class labels (n of them) for cross-entropy, or real targets (n·targetWidth) for
   * logistic/MSE losses.
   */
  labels: ArrayLike<number>;
  labelKind: 'class' | 'real';
  /** Values per example in `labels` for real targets (default 1). */
  targetWidth?: number;
  ids?: ArrayLike<ExampleId>;
  groups?: ArrayLike<string>;
}

/** A dataset held in memory as flat typed arrays; validated once, up front. */
export class TensorDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly example: { tokens: number; width: number };
  private readonly features: Float64Array | Float32Array;
  private readonly labels: Int32Array | Float64Array;
  private readonly targetWidth: number;
  private readonly ids: ExampleId[] | null;
  private readonly groups: string[] | null;

  constructor(options: TensorDatasetOptions) {
    const name = options.name ?? 'dataset';
    this.name = name;
    const tokens = options.tokens ?? 1;
    const width = options.width;
    if (!Number.isInteger(width) || width < 1)
      fail(`${name}: width must be a positive integer, got ${width}`);
    if (!Number.isInteger(tokens) || tokens < 1)
      fail(`${name}: tokens must be a positive integer, got ${tokens}`);
    this.example = { tokens, width };
    const perExample = tokens * width;
    this.features = flattenFeatures(name, options.features, perExample);
    this.size = this.features.length / perExample;
    if (this.size === 0) fail(`${name}: no examples`);
    for (let e = 0; e < this.features.length; e++) {
      if (!Number.isFinite(this.features[e]))
        fail(
          `${name}: example ${Math.floor(e / perExample)}, feature ${e % perExample} is ${this.features[e]}`,
        );
    }
    this.targetWidth = options.labelKind === 'class' ? 1 : (options.targetWidth ?? 1);
    if (options.labels.length !== this.size * this.targetWidth)
      fail(
        `${name}: ${this.size} examples but ${options.labels.length} labels (expected ${this.size * this.targetWidth})`,
      );
    if (options.labelKind === 'class') {
      const labels = new Int32Array(this.size);
      for (let i = 0; i < this.size; i++) {
        const y = options.labels[i];
        if (!Number.isInteger(y) || y < 0)
          fail(`${name}: example ${i} has label ${y}; class labels must be integers ≥ 0`);
        labels[i] = y;
      }
      this.labels = labels;
    } else {
      const labels = Float64Array.from(options.labels);
      for (let e = 0; e < labels.length; e++) {
        if (!Number.isFinite(labels[e]))
          fail(`${name}: example ${Math.floor(e / this.targetWidth)} has target ${labels[e]}`);
      }
      this.labels = labels;
    }
    this.ids = options.ids ? Array.from(options.ids) : null;
    if (this.ids) {
      if (this.ids.length !== this.size) fail(`${name}: ${this.size} examples but ${this.ids.length} ids`);
      const seen = new Map<ExampleId, number>();
      this.ids.forEach((id, i) => {
        const first = seen.get(id);
        if (first !== undefined)
          fail(`${name}: id ${JSON.stringify(id)} is used by examples ${first} and ${i}; ids must be unique`);
        seen.set(id, i);
      });
    }
    this.groups = options.groups ? Array.from(options.groups) : null;
    if (this.groups && this.groups.length !== this.size)
      fail(`${name}: ${this.size} examples but ${this.groups.length} groups`);
  }

  /** Largest class label + 1 (class labels only). */
  get classCount(): number {
    let max = -1;
    if (this.labels instanceof Int32Array) for (const y of this.labels) max = Math.max(max, y);
    return max + 1;
  }

  id(index: number): ExampleId {
    return this.ids ? this.ids[index] : index;
  }

  group(index: number): string | undefined {
    return this.groups?.[index];
  }

  label(index: number): number {
    return this.labels[index * this.targetWidth];
  }

  batch(indices: ArrayLike<number>, dtype: DType, into?: Batch, kernels?: KernelOps): Batch {
    const { tokens, width } = this.example;
    const per = tokens * width;
    const n = indices.length;
    const tw = this.targetWidth;
    const classes = this.labels instanceof Int32Array;
    // Every element of both arrays is written below, so `into`'s are reused when they fit.
    const fits =
      into !== undefined &&
      into.input.data.length === n * per &&
      dtypeOf(into.input.data) === dtype &&
      into.targets.length === n * tw &&
      (classes
        ? into.targets instanceof Int32Array
        : !(into.targets instanceof Int32Array) && dtypeOf(into.targets) === dtype);
    const data = fits ? into.input.data : allocFloat(dtype, n * per);
    const targets: Targets = fits ? into.targets : classes ? new Int32Array(n) : allocFloat(dtype, n * tw);
    // Rows copied by the kernels where the element types agree (no view object per example),
    // else through a view each.
    const gathered =
      kernels !== undefined && indices instanceof Int32Array && dtypeOf(this.features) === dtype;
    if (gathered) kernels.gatherRows(this.features, indices, per, data);
    for (let r = 0; r < n; r++) {
      const i = indices[r];
      if (!gathered) data.set(this.features.subarray(i * per, (i + 1) * per), r * per);
      for (let k = 0; k < tw; k++) targets[r * tw + k] = this.labels[i * tw + k];
    }
    return { input: { data, n, tokens, width }, targets };
  }

  /** A new dataset with the examples at `indices` (ids and groups kept). */
  subset(indices: ArrayLike<number>, name = this.name): TensorDataset {
    const per = this.example.tokens * this.example.width;
    const features = new Float64Array(indices.length * per);
    const labels: number[] = [];
    const ids: ExampleId[] = [];
    const groups: string[] = [];
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r];
      features.set(this.features.subarray(i * per, (i + 1) * per), r * per);
      for (let k = 0; k < this.targetWidth; k++) labels.push(this.labels[i * this.targetWidth + k]);
      ids.push(this.id(i));
      if (this.groups) groups.push(this.groups[i]);
    }
    return new TensorDataset({
      name,
      features,
      width: this.example.width,
      tokens: this.example.tokens,
      labels,
      labelKind: this.labels instanceof Int32Array ? 'class' : 'real',
      targetWidth: this.targetWidth,
      ids,
      groups: this.groups ? groups : undefined,
    });
  }
}

function flattenFeatures(
  name: string,
  features: ArrayLike<number> | ArrayLike<number>[],
  perExample: number,
): Float64Array | Float32Array {
  if (features instanceof Float32Array || features instanceof Float64Array) {
    if (features.length % perExample !== 0)
      fail(
        `${name}: ${features.length} feature values is not a whole number of examples of ${perExample} values`,
      );
    return features;
  }
  const rows = features as ArrayLike<ArrayLike<number> | number>;
  if (rows.length > 0 && typeof rows[0] === 'number') {
    const flat = Float64Array.from(rows as ArrayLike<number>);
    if (flat.length % perExample !== 0)
      fail(
        `${name}: ${flat.length} feature values is not a whole number of examples of ${perExample} values`,
      );
    return flat;
  }
  const flat = new Float64Array(rows.length * perExample);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as ArrayLike<number>;
    if (row.length !== perExample)
      fail(`${name}: example ${i} has ${row.length} features, expected ${perExample}`);
    for (let k = 0; k < perExample; k++) flat[i * perExample + k] = row[k];
  }
  return flat;
}
