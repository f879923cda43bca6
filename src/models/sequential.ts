import type { Dataset } from '../data/dataset.js';
import { allocFloat } from '../kernels/alloc.js';
// The engine's one Node-only import (kernels chosen by name); the browser build replaces it with
// src/browser/node-kernels.ts, so pages must pass a Kernels object (scripts/build-web.mjs).
import { getKernels } from '../kernels/index.js';
import type { DType, FloatArray, KernelKind, Kernels } from '../kernels/types.js';
import { chainBackward, chainForward, chainRBackward, chainRForward } from '../layers/chain.js';
import { freshBuffers, type PassArena, type PassBuffers } from '../layers/scratch.js';
import {
  type Activation,
  type Layer,
  type LayerTape,
  type ParamSlot,
  type PassContext,
  passBuffers,
  slotView,
} from '../layers/types.js';
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
  /** Each example's own loss (summed over its tokens), times its weight when the pass has weights. */
  losses: Float64Array;
  /**
   * Per-example loss weights, or null: example i's loss, gradient and Hessian are w_i times its
   * own. A validation set weighted this way has mean(losses) = Σ_i w_i ℓ_i / n.
   */
  weights: Float64Array | null;
  backwardDone: boolean;
  /**
   * The arena the pass's arrays come from (its tapes, losses, gradients, R-operator results), or
   * null for fresh arrays. An arena serves one pass at a time: the next `forward` in it reuses
   * them, after which the model refuses this pass (see PassArena).
   */
  arena: PassArena | null;
  /** The arena's generation when this pass started. */
  generation: number;
  /** How the pass ran (train-time randomness and its step), so that it can be run again exactly. */
  mode: { training: boolean; step: number | undefined };
}

/** How `Sequential.forward` runs a pass. */
export interface ForwardMode {
  /** A training pass: train-time randomness (Dropout) on, keyed by `step`. */
  training?: boolean;
  step?: number;
  /** Per-example loss weights (see Pass.weights). */
  weights?: Float64Array;
  /**
   * Take the pass's arrays from this arena instead of allocating them: they are reused by the next
   * pass in the same arena, so this pass and everything it returned (losses included) must not be
   * used after that. Default: fresh arrays, which the caller owns.
   */
  arena?: PassArena;
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
  /** Every parameter tensor, in layout order (tied parameters appear once). */
  readonly slots: ParamSlot[] = [];
  /** Slots used by more than one layer (weight tying). */
  readonly sharedSlots = new Set<ParamSlot>();
  readonly inputShape: { tokens: number; width: number };
  readonly outputShape: { tokens: number; width: number };
  /** The layers that own parameters, in layout order, nested ones included. */
  readonly paramLayers: readonly Layer[];
  /** Per parameter layer, the child indices that lead from a pass's tapes to its tape (paramTape). */
  private readonly paramLayerPaths: readonly number[][];

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
    const paramLayers: Layer[] = [];
    const paths: number[][] = [];
    // Lay out every parameter of every (nested) layer in one flat vector; tied specs reuse a slot.
    // `path`: the child indices that lead to the layer, for paramTape.
    const layOut = (layer: Layer, prefix: string, path: number[]) => {
      if (layer.children) {
        layer.children.forEach((child, k) => {
          layOut(child, `${prefix}.${child.name ?? k}`, [...path, k]);
        });
        return;
      }
      layer.params = layer.paramSpecs().map((spec) => {
        if (spec.tiedTo) {
          const slot = spec.tiedTo.layer.params[spec.tiedTo.index];
          if (!slot || slot.shape.join() !== spec.shape.join())
            fail(
              `${prefix}.${spec.name}: cannot tie to a parameter of shape [${slot?.shape ?? ''}] laid out earlier`,
            );
          this.sharedSlots.add(slot);
          return slot;
        }
        const size = spec.shape.reduce((a, b) => a * b, 1);
        const slot = { name: `${prefix}.${spec.name}`, shape: spec.shape, offset, size };
        offset += size;
        this.slots.push(slot);
        return slot;
      });
      if (layer.params.length > 0) {
        paramLayers.push(layer);
        paths.push(path);
      }
    };
    layers.forEach((layer, index) => {
      shape = layer.outputShape(shape);
      layOut(layer, layer.name ?? `layers.${index}`, [index]);
    });
    this.outputShape = shape;
    this.paramLayers = paramLayers;
    this.paramLayerPaths = paths;
    this.params = allocFloat(this.dtype, offset);
    this.initialize(options.seed ?? 0);
  }

  get parameterCount(): number {
    return this.params.length;
  }

  /** Re-draws every parameter from its layer's initialisation rule with the given seed. */
  initialize(seed: number): void {
    const rng = new Rng(seed);
    for (const layer of this.paramLayers) {
      layer.paramSpecs().forEach((spec, k) => {
        if (spec.tiedTo) return;
        const { init } = spec;
        const view = slotView(this.params, layer.params[k]);
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

  /**
   * The [start, end) spans of the flat parameter vector that the listed parameter layers (indices
   * in `paramLayers` order) own, each slot once, adjacent spans merged.
   */
  parameterRanges(only: number[]): [number, number][] {
    const layers = this.paramLayers;
    const slots = [...new Set(only.flatMap((l) => layers[l].params))].sort((a, b) => a.offset - b.offset);
    const ranges: [number, number][] = [];
    for (const { offset, size } of slots) {
      const last = ranges[ranges.length - 1];
      if (last && last[1] === offset) last[1] = offset + size;
      else ranges.push([offset, offset + size]);
    }
    return ranges;
  }

  /**
   * Parameter layer k's tape among a pass's tapes. Callers loop over `paramLayers` with this rather
   * than take a callback: it runs for every layer of every pass, and closures and tape lists per
   * layer add up.
   */
  paramTape(tapes: LayerTape[], k: number): LayerTape {
    const path = this.paramLayerPaths[k];
    let tape = tapes[path[0]];
    for (let depth = 1; depth < path.length; depth++) tape = tape.children![path[depth]];
    return tape;
  }

  context(
    params: FloatArray = this.params,
    mode: { training?: boolean; step?: number; buffers?: PassBuffers } = {},
  ): PassContext {
    // Every context has the same fields in the same order, so the layers' property reads stay
    // monomorphic (a context with extra fields only in training passes cost a few % per GPT step).
    return {
      kernels: this.kernels,
      dtype: this.dtype,
      params,
      training: mode.training === true,
      step: mode.step,
      buffers: mode.buffers ?? freshBuffers,
    };
  }

  /** The context for working on a pass after its forward (backward, R-operator, ghost products). */
  passContext(pass: Pass): PassContext {
    requireCurrent(pass);
    const buffers = pass.arena ?? freshBuffers;
    let ctx = this.passContexts.get(buffers);
    if (ctx === undefined) {
      ctx = this.context(this.params, { buffers });
      this.passContexts.set(buffers, ctx);
    }
    return ctx;
  }

  /** passContext's contexts, one per arena: they differ only in their buffers. */
  private readonly passContexts = new WeakMap<PassBuffers, PassContext>();

  /** Checks a batch against the model's input shape and the loss's target rules. */
  checkBatch(input: Activation, targets: Targets, where: string, firstExample = 0): void {
    const { tokens, width } = this.inputShape;
    const first = this.layers[0];
    if (input.tokens !== tokens || input.width !== width)
      fail(
        `${where}: examples have shape [${input.tokens}, ${input.width}], the model expects [${tokens}, ${width}]` +
          (input.tokens > tokens && width === 1
            ? ` (sequences longer than the context of ${tokens} tokens)`
            : ''),
      );
    if (first.checkInput) first.checkInput(input, where);
    else if (input.data.length !== input.n * tokens * width)
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

  /**
   * Forward pass; keeps what backward, the ghost routes and the R-operator need. `mode.training`
   * turns on train-time randomness (Dropout), keyed by `mode.step`; off by default, so
   * validation, HVP and evaluation passes run without it (see PassContext.training). The pass's
   * arrays are new (the caller's to keep) unless `mode.arena` lends them (see ForwardMode.arena).
   */
  forward(
    input: Activation,
    targets: Targets,
    params: FloatArray = this.params,
    mode: ForwardMode = {},
  ): Pass {
    const weights = mode.weights ?? null;
    if (weights && weights.length !== input.n)
      fail(`model: ${weights.length} example weights for a batch of ${input.n} examples`);
    const arena = mode.arena ?? null;
    arena?.reset();
    const ctx = this.context(params, {
      training: mode.training,
      step: mode.step,
      buffers: arena ?? freshBuffers,
    });
    const tapes = passBuffers(ctx).tapeList(this.layers.length);
    const output = chainForward(this.layers, ctx, input, tapes);
    const lossTape = { output, targets } as LossTape;
    const losses = this.loss.forward(ctx, output, targets, lossTape);
    if (weights) for (let i = 0; i < input.n; i++) losses[i] *= weights[i];
    return {
      n: input.n,
      tapes,
      lossTape,
      losses,
      weights,
      backwardDone: false,
      arena,
      generation: arena ? arena.generation : 0,
      mode: { training: mode.training ?? false, step: mode.step },
    };
  }

  /** Backward pass: every layer's tape gets G, the gradient of each example's own (weighted) loss. */
  backward(pass: Pass): void {
    const ctx = this.passContext(pass);
    const grad = this.loss.backward(ctx, pass.lossTape);
    if (pass.weights) scaleExampleRows(grad, pass.weights);
    chainBackward(this.layers, ctx, grad, pass.tapes, false);
    pass.backwardDone = true;
  }

  /**
   * out += scale · Σ_{i∈[start,end)} ∇ℓ_i (whole batch by default), on every parameter layer or on
   * the ones listed (indices in `paramLayers` order); the others' entries are left as they are.
   */
  addGrad(pass: Pass, scale: number, out: FloatArray, start = 0, end = pass.n, only?: number[]): void {
    requireBackward(pass);
    const ctx = this.passContext(pass);
    const rows = { start, end };
    for (let k = 0; k < this.paramLayers.length; k++) {
      if (only && !only.includes(k)) continue;
      this.paramLayers[k].addGrad?.(ctx, this.paramTape(pass.tapes, k), rows, scale, out);
    }
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
    const ctx = this.passContext(pass);
    const rOutput = chainRForward(this.layers, ctx, v, pass.tapes, null);
    // The weights scale each example's loss, so they scale R{∂ℓ_i/∂output} like the gradient.
    const rGrad = this.loss.rBackward(ctx, pass.lossTape, rOutput);
    if (pass.weights) scaleExampleRows(rGrad, pass.weights);
    chainRBackward(this.layers, ctx, v, pass.tapes, rGrad, out, false);
  }

  /**
   * The ghost route of each parameter layer (in `paramLayers` order) for these batch sizes: the
   * cheaper one, except that layers sharing a tied parameter must take the vector route (the
   * pairwise route would miss the cross terms between the two uses). With `validationGradient`,
   * the vector route is also charged the layer's validation gradient, which only it needs (a
   * valuer that skips that gradient on pairwise layers: checkPairwiseLayers false).
   */
  ghostRoutes(
    nTrain: number,
    nValidation: number,
    options: { validationGradient?: boolean } = {},
  ): GhostRoute[] {
    const tokens = this.inputShape.tokens;
    return this.paramLayers.map((layer) => {
      if (!layer.ghostPairwise || layer.params.some((slot) => this.sharedSlots.has(slot))) return 'vector';
      const cost = layer.ghostCost?.(nTrain, nValidation, tokens);
      if (!cost) return 'vector';
      const gradient = options.validationGradient
        ? layer.ghostCost!(nValidation, nValidation, tokens).vector
        : 0;
      return cost.pairwise < cost.vector + gradient ? 'pairwise' : 'vector';
    });
  }

  /** out[i·nVal + j] += ⟨g_i, g_j⟩ (all parameters, or the parameter layers listed): the train × validation Gram matrix. */
  ghostPairwise(train: Pass, validation: Pass, out: Float64Array, only?: number[]): void {
    requireBackward(train);
    requireBackward(validation);
    if (this.sharedSlots.size > 0) fail('the pairwise ghost route does not support tied weights');
    requireCurrent(validation);
    const ctx = this.passContext(train);
    for (let k = 0; k < this.paramLayers.length; k++) {
      if (only && !only.includes(k)) continue;
      this.paramLayers[k].ghostPairwise?.(
        ctx,
        this.paramTape(train.tapes, k),
        this.paramTape(validation.tapes, k),
        out,
      );
    }
  }

  /**
   * out[i] += Σ_e w_e·(g_i)_e² (w = `weights`, or 1 where null) for every example of the pass: each
   * layer's ghost self product. A layer without one, and the layers sharing a tied tensor
   * (per-layer squares would miss the cross terms of its two uses), form g_i instead.
   */
  ghostSelfDot(pass: Pass, weights: FloatArray | null, out: Float64Array): void {
    this.perExample(pass, out, {
      ghost: (layer, ctx, tape) => {
        if (!layer.ghostSelfDot) return false;
        layer.ghostSelfDot(ctx, tape, weights, out);
        return true;
      },
      formed: (g, ranges) => this.rangeDot(g, g, weights, ranges),
    });
  }

  /**
   * out[i] += ⟨g_i, us[which[i]]⟩ for every example of the pass (skipped where which[i] < 0); like
   * ghostSelfDot for the layers.
   */
  ghostDotEach(pass: Pass, us: FloatArray[], which: Int32Array, out: Float64Array): void {
    this.perExample(pass, out, {
      ghost: (layer, ctx, tape) => {
        if (!layer.ghostDotEach) return false;
        layer.ghostDotEach(ctx, tape, us, which, out);
        return true;
      },
      formed: (g, ranges, i) => (which[i] < 0 ? 0 : this.rangeDot(us[which[i]], g, null, ranges)),
    });
  }

  /**
   * Runs a per-example product layer by layer: `ghost` where the layer has a ghost method (it
   * returns false otherwise), else `formed` on g_i built one example at a time in a scratch vector
   * (only the layer's own ranges are written, read and cleared). The layers that share a tied
   * tensor form their g_i together, since a product over the tensor needs both uses' sum; the
   * others keep their ghost methods.
   */
  private perExample(
    pass: Pass,
    out: Float64Array,
    product: {
      ghost: (layer: Layer, ctx: PassContext, tape: LayerTape) => boolean;
      formed: (g: FloatArray, ranges: [number, number][], i: number) => number;
    },
  ): void {
    requireBackward(pass);
    const ctx = this.passContext(pass);
    const scratch = this.exampleGradient ?? allocFloat(this.dtype, this.parameterCount);
    this.exampleGradient = scratch;
    const formEach = (layers: { layer: Layer; tape: LayerTape }[]) => {
      // Each slot once, though a tied one belongs to two layers.
      const slots = new Set(layers.flatMap(({ layer }) => layer.params));
      const ranges = [...slots].map((slot): [number, number] => [slot.offset, slot.offset + slot.size]);
      for (let i = 0; i < pass.n; i++) {
        for (const { layer, tape } of layers)
          layer.addGrad?.(ctx, tape, { start: i, end: i + 1 }, 1, scratch);
        out[i] += product.formed(scratch, ranges, i);
        for (const [start, end] of ranges) scratch.fill(0, start, end);
      }
    };
    const tied: { layer: Layer; tape: LayerTape }[] = [];
    this.paramLayers.forEach((layer, k) => {
      const tape = this.paramTape(pass.tapes, k);
      if (layer.params.some((slot) => this.sharedSlots.has(slot))) tied.push({ layer, tape });
      else if (!product.ghost(layer, ctx, tape)) formEach([{ layer, tape }]);
    });
    if (tied.length > 0) formEach(tied);
  }

  private exampleGradient: FloatArray | null = null;

  /** Σ over `ranges` of a_e·b_e·w_e (w = 1 where null), in float64 by the kernels. */
  private rangeDot(a: FloatArray, b: FloatArray, w: FloatArray | null, ranges: [number, number][]): number {
    const sum = this.rangeDotSum;
    sum[0] = 0;
    for (const [start, end] of ranges)
      this.kernels.rowDots(
        a.subarray(start, end),
        b.subarray(start, end),
        w ? w.subarray(start, end) : null,
        1,
        end - start,
        0,
        0,
        sum,
      );
    return sum[0];
  }

  private readonly rangeDotSum = new Float64Array(1);

  /** outs[k][i] += ⟨g_i, us[k]⟩ for every example of the pass: the vector ghost route over all layers. */
  ghostDot(pass: Pass, us: FloatArray[], outs: Float64Array[]): void {
    requireBackward(pass);
    const ctx = this.passContext(pass);
    for (let k = 0; k < this.paramLayers.length; k++)
      this.paramLayers[k].ghostDot?.(ctx, this.paramTape(pass.tapes, k), us, outs);
  }
}

function requireBackward(pass: Pass): void {
  if (!pass.backwardDone) throw new Error('internal: backward has not run on this pass');
  requireCurrent(pass);
}

/** Throws when a later pass in the same arena has taken over this pass's arrays. */
function requireCurrent(pass: Pass): void {
  if (pass.arena && pass.arena.generation !== pass.generation)
    throw new Error(
      'internal: this pass is stale: a later pass in its arena has reused its buffers (give passes that live at the same time their own arenas)',
    );
}

export function mean(values: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

/** Multiplies example i's rows of an activation by w_i, in place. */
function scaleExampleRows(a: Activation, weights: Float64Array): void {
  const size = a.tokens * a.width;
  for (let i = 0; i < a.n; i++) {
    const w = weights[i];
    if (w === 1) continue;
    const row = a.data.subarray(i * size, (i + 1) * size);
    for (let e = 0; e < size; e++) row[e] *= w;
  }
}
