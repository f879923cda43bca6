import type { Dataset } from '../data/dataset.js';
import { allocFloat, getKernels } from '../kernels/index.js';
import type { DType, FloatArray, KernelKind, Kernels } from '../kernels/types.js';
import type { Activation, Layer, LayerTape, ParamSlot, PassContext } from '../layers/types.js';
import type { Loss, LossTape, Targets } from '../losses/types.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export interface ModelOptions {
  /** Shape of one example: `tokens` rows of `width` features (dense data: tokens = 1). */
  input: { tokens?: number; width: number };
  dtype?: DType;
  /** Seed for the initial weights. */
  seed?: number;
  /** Kernel backend; default: `INRUN_KERNELS` or automatic. */
  kernels?: KernelKind | 'auto' | Kernels;
}

/** One forward (and optionally backward) pass over a batch: the per-layer tapes and losses. */
export interface Pass {
  n: number;
  tapes: LayerTape[];
  lossTape: LossTape;
  /** Each example's own loss (summed over its tokens). */
  losses: Float64Array;
  backwardDone: boolean;
}

/** Which ghost route each parameterised layer takes for a given batch shape. */
export type GhostRoute = 'pairwise' | 'vector';

/**
 * A stack of layers and a per-example loss over one flat parameter vector. All parameter-shaped
 * quantities (gradients, optimizer state, u_t, Hessian-vector products) are flat vectors with the
 * same layout, so the optimizer and valuer never need to know the layers.
 */
export class Sequential {
  readonly dtype: DType;
  readonly kernels: Kernels;
  readonly params: FloatArray;
  readonly slots: ParamSlot[] = [];
  readonly inputShape: { tokens: number; width: number };
  readonly outputShape: { tokens: number; width: number };

  constructor(
    readonly layers: Layer[],
    readonly loss: Loss,
    options: ModelOptions,
  ) {
    if (layers.length === 0) fail('Sequential: a model needs at least one layer');
    this.dtype = options.dtype ?? 'float32';
    if (this.dtype !== 'float32' && this.dtype !== 'float64')
      fail(`model: dtype must be "float32" or "float64", got ${this.dtype}`);
    this.kernels =
      typeof options.kernels === 'object'
        ? options.kernels
        : getKernels({ kind: options.kernels ?? undefined });
    this.inputShape = { tokens: options.input.tokens ?? 1, width: options.input.width };
    let shape = this.inputShape;
    let offset = 0;
    layers.forEach((layer, index) => {
      shape = layer.outputShape(shape);
      layer.params = layer.paramSpecs().map((spec) => {
        const size = spec.shape.reduce((a, b) => a * b, 1);
        const slot = { name: `layers.${index}.${spec.name}`, shape: spec.shape, offset, size };
        offset += size;
        this.slots.push(slot);
        return slot;
      });
    });
    this.outputShape = shape;
    this.params = allocFloat(this.dtype, offset);
    this.initialize(options.seed ?? 0);
  }

  get parameterCount(): number {
    return this.params.length;
  }

  /** Re-draws every parameter from its layer's initialisation rule with the given seed. */
  initialize(seed: number): void {
    const rng = new Rng(seed);
    for (const layer of this.layers) {
      const specs = layer.paramSpecs();
      layer.params.forEach((slot, k) => {
        const init = specs[k].init;
        const view = this.params.subarray(slot.offset, slot.offset + slot.size);
        for (let e = 0; e < view.length; e++) {
          view[e] =
            init.kind === 'uniform'
              ? (2 * rng.uniform() - 1) * init.bound
              : init.kind === 'normal'
                ? rng.normal() * init.std
                : init.value;
        }
      });
    }
  }

  context(params: FloatArray = this.params): PassContext {
    return { kernels: this.kernels, dtype: this.dtype, params };
  }

  /** Checks a batch against the model's input shape and the loss's target rules. */
  checkBatch(input: Activation, targets: Targets, where: string, firstExample = 0): void {
    const { tokens, width } = this.inputShape;
    if (input.tokens !== tokens || input.width !== width)
      fail(
        `${where}: examples have shape [${input.tokens}, ${input.width}], the model expects [${tokens}, ${width}]`,
      );
    if (input.data.length !== input.n * tokens * width)
      fail(`${where}: input holds ${input.data.length} values, expected ${input.n}·${tokens}·${width}`);
    this.loss.checkTargets(
      targets,
      input.n,
      this.outputShape.tokens,
      this.outputShape.width,
      where,
      firstExample,
    );
  }

  /** Checks every example of a dataset against the model, in chunks, before training starts. */
  checkDataset(data: Dataset): void {
    if (data.size === 0) fail(`${data.name}: no examples`);
    const chunk = 1024;
    for (let start = 0; start < data.size; start += chunk) {
      const indices = Array.from({ length: Math.min(chunk, data.size - start) }, (_, k) => start + k);
      const { input, targets } = data.batch(indices, this.dtype);
      this.checkBatch(input, targets, data.name, start);
    }
  }

  /** Forward pass; keeps what backward, the ghost routes and the R-operator need. */
  forward(input: Activation, targets: Targets, params: FloatArray = this.params): Pass {
    const ctx = this.context(params);
    const tapes: LayerTape[] = [];
    let x = input;
    for (const layer of this.layers) {
      const tape = { input: x, output: x } as LayerTape;
      x = layer.forward(ctx, x, tape);
      tapes.push(tape);
    }
    const lossTape = { output: x, targets } as LossTape;
    const losses = this.loss.forward(ctx, x, targets, lossTape);
    return { n: input.n, tapes, lossTape, losses, backwardDone: false };
  }

  /** Backward pass: every layer's tape gets G, the gradient of each example's own loss. */
  backward(pass: Pass): void {
    const ctx = this.context();
    let dy: Activation | null = this.loss.backward(ctx, pass.lossTape);
    for (let l = this.layers.length - 1; l >= 0; l--) {
      dy = this.layers[l].backward(ctx, dy!, pass.tapes[l], l > 0);
    }
    pass.backwardDone = true;
  }

  /** out += scale · Σ_{i∈[start,end)} ∇ℓ_i (whole batch by default). */
  addGrad(pass: Pass, scale: number, out: FloatArray, start = 0, end = pass.n): void {
    requireBackward(pass);
    const ctx = this.context();
    this.layers.forEach((layer, l) => {
      layer.addGrad?.(ctx, pass.tapes[l], { start, end }, scale, out);
    });
  }

  /** Mean loss and mean gradient of a batch (plain training and tests use this). */
  lossAndGradient(input: Activation, targets: Targets): { loss: number; grad: FloatArray } {
    const pass = this.forward(input, targets);
    this.backward(pass);
    const grad = allocFloat(this.dtype, this.params.length);
    this.addGrad(pass, 1 / input.n, grad);
    return { loss: mean(pass.losses), grad };
  }

  /**
   * Exact Hessian-vector product of the *summed* per-example losses of a pass, along v, by
   * Pearlmutter's R-operator: one forward-over-reverse sweep reusing the pass's tapes.
   * out += H v. Divide by n for the Hessian of the mean loss.
   */
  hessianVectorProduct(pass: Pass, v: FloatArray, out: FloatArray): void {
    requireBackward(pass);
    const ctx = this.context();
    let rx: Activation | null = null;
    this.layers.forEach((layer, l) => {
      rx = layer.rForward(ctx, v, pass.tapes[l], rx);
    });
    let rdy: Activation | null = this.loss.rBackward(ctx, pass.lossTape, rx!);
    for (let l = this.layers.length - 1; l >= 0; l--) {
      rdy = this.layers[l].rBackward(ctx, v, pass.tapes[l], rdy!, out, l > 0);
    }
  }

  /** The route each parameterised layer takes for these batch sizes (cheaper multiply–adds). */
  ghostRoutes(nTrain: number, nValidation: number): GhostRoute[] {
    const tokens = this.inputShape.tokens;
    return this.layers.map((layer) => {
      const cost = layer.ghostCost?.(nTrain, nValidation, tokens);
      return cost && cost.pairwise < cost.vector ? 'pairwise' : 'vector';
    });
  }

  /** out[i·nVal + j] += ⟨g_i, g_j⟩ over the given layers (all by default): the train × validation Gram matrix. */
  ghostPairwise(train: Pass, validation: Pass, out: Float64Array, layers?: number[]): void {
    requireBackward(train);
    requireBackward(validation);
    const ctx = this.context();
    (layers ?? this.layers.map((_, l) => l)).forEach((l) => {
      this.layers[l].ghostPairwise?.(ctx, train.tapes[l], validation.tapes[l], out);
    });
  }
}

function requireBackward(pass: Pass): void {
  if (!pass.backwardDone) throw new Error('internal: backward has not run on this pass');
}

export function mean(values: Float64Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
