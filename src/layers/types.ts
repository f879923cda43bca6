import { allocFloat } from '../kernels/alloc.js';
import type { DType, FloatArray, Kernels } from '../kernels/types.js';
import { freshBuffers, type PassBuffers } from './scratch.js';

/**
 * A batch of activations: `n` examples, each made of `tokens` rows of `width` features, stored
 * row-major as [n, tokens, width]. Dense data has tokens = 1; a language model's hidden states
 * have tokens = sequence length.
 */
export interface Activation {
  data: FloatArray;
  n: number;
  tokens: number;
  width: number;
  /** Token ids [n, tokens] when this is a language model's input (then width = 1 and data is empty). */
  ids?: Int32Array;
}

/** Where one parameter tensor lives inside the model's flat parameter vector. */
export interface ParamSlot {
  /** Stable tensor name, e.g. "layers.0.weight"; used in weight files. */
  name: string;
  /** Row-major shape; a Linear weight is [out, in] as in PyTorch. */
  shape: number[];
  offset: number;
  size: number;
}

/** Parameter shapes a layer asks for before the model lays them out. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
  /**
   * Share another layer's parameter instead of owning one (weight tying): that layer's
   * `params[index]`, laid out earlier in the model. Gradients from both uses add up.
   */
  tiedTo?: { layer: Layer; index: number };
}

export type ParamInit =
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number };

/**
 * What one layer keeps from one pass over one batch: its input A, its output, the gradient G of
 * the per-example losses with respect to its output, and for Hessian-vector products the
 * directional derivatives R{A} and R{output}. Ghost products read A and G straight from here.
 */
export interface LayerTape {
  input: Activation;
  output: Activation;
  outputGrad?: Activation;
  rInput?: Activation | null;
  rOutput?: Activation;
  /** Tapes of a composite layer's children, in order. */
  children?: LayerTape[];
}

/** Everything a layer needs besides its tape: the kernels and the model's flat weights. */
export interface PassContext {
  kernels: Kernels;
  dtype: DType;
  params: FloatArray;
  /**
   * True only in a training forward pass (the trainer's pass over its batch): layers with
   * train-time randomness (Dropout) apply it. Absent or false — validation passes, the passes
   * behind Hessian-vector products, evaluation and prediction — they act as at evaluation time.
   * Such a layer keeps what it drew on its tape, so the pass's backward, ghost products and
   * R-operator (whose contexts do not carry this flag) reuse it. No other layer reads it.
   */
  training?: boolean;
  /** The training step of a training pass: keys its randomness (same seed and step, same masks). */
  step?: number;
  /**
   * Where the pass takes the arrays it keeps on its tapes or hands to the next layer (see
   * PassBuffers in ./scratch.ts): a PassArena reused from step to step in training, fresh arrays
   * otherwise (absent = fresh). Read it through `passBuffers(ctx)`.
   */
  buffers?: PassBuffers;
}

/** Half-open range of examples [start, end) within a batch. */
export interface ExampleRange {
  start: number;
  end: number;
}

/**
 * A layer writes out its forward and backward passes (no tape-based autograd), and their
 * forward-over-reverse counterparts (Pearlmutter's R-operator) for exact Hessian-vector products.
 *
 * Every batch-level quantity is a sum of independent per-example terms: a layer must not mix
 * examples (no BatchNorm), because the ghost products rely on example i's gradient being built
 * from example i's A and G alone.
 */
export interface Layer {
  readonly kind: string;
  /** Optional name used in parameter names (e.g. "wte", "h.0.attn"); default: its position. */
  name?: string;
  /** Parameter slots, filled in by the model when it lays out the flat parameter vector. */
  params: ParamSlot[];
  /**
   * Sub-layers of a composite (e.g. a residual block). The model lays out their parameters and
   * the engine runs their ghost routes; the composite itself owns no parameters.
   */
  readonly children?: Layer[];
  /** Checks a model input when this is the first layer (token ids, say); default: float features. */
  checkInput?(x: Activation, where: string): void;
  paramSpecs(): ParamSpec[];
  /** Output shape per example for a given input shape; throws a clear error on a mismatch. */
  outputShape(input: { tokens: number; width: number }): { tokens: number; width: number };

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation;
  /** Stores dy as the tape's G; returns dL/dx, or null when the caller does not need it. */
  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null;
  /** R{output} along parameter direction v, given R{input} (null when the input is data). */
  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation;
  /**
   * R{dL/dx} for the R{dL/dy} given; adds R{dL/dθ} — this layer's block of the Hessian-vector
   * product H·v of the summed per-example losses — into `hv` (a flat, parameter-shaped vector).
   */
  rBackward(
    ctx: PassContext,
    v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null;

  /** Adds scale · Σ_{i∈examples} g_i (this layer's parameter gradient) into the flat vector `out`. */
  addGrad?(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void;
  /**
   * Pairwise ghost route: out[i·nVal + j] += ⟨g_i, g_j⟩ restricted to this layer's parameters,
   * for every training example i and validation example j, without forming either gradient.
   */
  ghostPairwise?(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void;
  /**
   * Vector ghost route: outs[k][i] += ⟨g_i, us[k]⟩ restricted to this layer's parameters, for
   * each parameter-shaped vector us[k] and each example i of the tape.
   */
  ghostDot?(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void;
  /**
   * Ghost self product: out[i] += Σ_e w_e·(g_i)_e² over this layer's parameters, with w the
   * parameter-shaped `weights` (a diagonal metric such as Adam's K) or 1 where null. Optional:
   * the model forms g_i one example at a time for a layer without it.
   */
  ghostSelfDot?(ctx: PassContext, tape: LayerTape, weights: FloatArray | null, out: Float64Array): void;
  /**
   * out[i] += ⟨g_i, us[which[i]]⟩: every example against its own vector (its class's, say);
   * examples with which[i] < 0 are skipped. Optional, as ghostSelfDot.
   */
  ghostDotEach?(
    ctx: PassContext,
    tape: LayerTape,
    us: FloatArray[],
    which: Int32Array,
    out: Float64Array,
  ): void;
  /**
   * Multiply–adds each route needs here; the engine takes the cheaper one. `vector` for nTrain
   * examples also stands for forming the layer's gradient of nTrain examples (what the vector
   * route's u needs from the validation batch).
   */
  ghostCost?(nTrain: number, nValidation: number, tokens: number): { pairwise: number; vector: number };
}

/** A new zero-filled activation (outside passes: tests, user code). Layers use the two below. */
export function activation(dtype: DType, n: number, tokens: number, width: number): Activation {
  return { data: allocFloat(dtype, n * tokens * width), n, tokens, width };
}

/** The pass's buffers (fresh arrays when the context has none). */
export function passBuffers(ctx: PassContext): PassBuffers {
  return ctx.buffers ?? freshBuffers;
}

/** A zero-filled activation from the pass's buffers: for outputs a kernel adds into or writes in part. */
export function zeroActivation(ctx: PassContext, n: number, tokens: number, width: number): Activation {
  return passBuffers(ctx).activation(ctx.dtype, n, tokens, width, true);
}

/** An activation of unspecified contents from the pass's buffers: for outputs a kernel writes in full. */
export function outputActivation(ctx: PassContext, n: number, tokens: number, width: number): Activation {
  return passBuffers(ctx).activation(ctx.dtype, n, tokens, width, false);
}

/** `data` from element `offset` on: the array itself at offset 0, else a kept view (see `span`). */
export function tail<A extends FloatArray>(data: A, offset: number): A {
  return offset === 0 ? data : span(data, offset, data.length);
}

/**
 * Elements [start, end) of `data` as a view, kept per array (the last few spans asked for), so
 * that code asking again at its next call, as layers and the valuer do every step, gets the same
 * view instead of a new object.
 */
export function span<A extends FloatArray>(data: A, start: number, end: number): A {
  let views = spanViews.get(data);
  if (views === undefined) {
    views = [];
    spanViews.set(data, views);
  }
  const byteOffset = data.byteOffset + start * data.BYTES_PER_ELEMENT;
  const length = end - start;
  for (let k = 0; k < views.length; k++) {
    const view = views[k];
    if (view.byteOffset === byteOffset && view.length === length) return view as A;
  }
  const view = data.subarray(start, end) as A;
  // Bounded: a per-example loop asks for a new span at every example.
  if (views.length === MAX_SPANS_PER_ARRAY) views.shift();
  views.push(view);
  return view;
}

const spanViews = new WeakMap<FloatArray, FloatArray[]>();
const MAX_SPANS_PER_ARRAY = 8;

/**
 * Views already made, per flat vector. Layers take their slots' views on every call, and the flat
 * vectors (weights, gradients, directions) live across steps, so each view is made once; the map
 * is keyed weakly by the vector, so its views go with it.
 */
const slotViews = new WeakMap<FloatArray, Map<ParamSlot, FloatArray>>();

/** This slot's part of a flat parameter-shaped vector, as a zero-copy view. */
export function slotView(flat: FloatArray, slot: ParamSlot): FloatArray {
  let views = slotViews.get(flat);
  if (views === undefined) {
    views = new Map();
    slotViews.set(flat, views);
  }
  let view = views.get(slot);
  if (view === undefined) {
    view = flat.subarray(slot.offset, slot.offset + slot.size);
    views.set(slot, view);
  }
  return view;
}

/** Sets a layer's name (used in parameter names such as "h.0.mlp.c_fc.weight") and returns it. */
export function named<L extends Layer>(name: string, layer: L): L {
  layer.name = name;
  return layer;
}
