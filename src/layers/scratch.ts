import { allocFloat, allocUninitialized, dtypeOf } from '../kernels/alloc.js';
import type { DType, FloatArray } from '../kernels/types.js';
import type { Activation, LayerTape } from './types.js';

// Two ways the engine reuses memory instead of allocating (and zero-filling) it every step — a
// step used to allocate megabytes (a CNN step 18–54 MB, a GPT step 120–240 MB) and spend a fifth
// of its time allocating and collecting them:
// - Scratch, a layer's own buffers for values that never outlive one call (never on a tape);
// - PassBuffers, where a pass takes what it keeps on its tapes or hands to the next layer
//   (outputs, input gradients, R-operator results), and the tapes and activation objects
//   themselves: fresh ones, or a PassArena's, reused by the next pass run in the same arena.

/** Buffers above this many elements are allocated per call rather than kept between calls. */
const KEEP_ELEMENTS = 1 << 23;

/**
 * A layer's scratch buffers, reused from call to call instead of allocated (and zero-filled) each
 * time. A buffer comes back with whatever the last call left in it, so it suits only outputs a
 * kernel overwrites (a gemm with beta = 0, a gather, a full copy) or that the caller fills first;
 * and it is valid until the next `take` of the same name, so it must never outlive the call that
 * took it (never on a tape: use the pass's PassBuffers for that).
 */
export class Scratch {
  private readonly buffers = new Map<string, FloatArray>();

  take(name: string, dtype: 'float64', length: number): Float64Array;
  take(name: string, dtype: DType, length: number): FloatArray;
  take(name: string, dtype: DType, length: number): FloatArray {
    if (length > KEEP_ELEMENTS) return allocFloat(dtype, length);
    let buffer = this.buffers.get(name);
    if (!buffer || buffer.length < length || dtypeOf(buffer) !== dtype) {
      buffer = allocFloat(dtype, length);
      this.buffers.set(name, buffer);
    }
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  /** `take`, zero-filled: for a buffer a kernel adds into. */
  zeros(name: string, dtype: 'float64', length: number): Float64Array;
  zeros(name: string, dtype: DType, length: number): FloatArray;
  zeros(name: string, dtype: DType, length: number): FloatArray {
    return this.take(name, dtype, length).fill(0);
  }
}

/**
 * Where a pass (forward, backward, R-operator, and what a ghost product keeps on a tape) takes the
 * arrays that outlive one layer call: tape contents, outputs, input gradients, losses. Layers ask
 * `ctx.buffers` (see `passBuffers`), never allocate these themselves, and ask for zeros only where
 * a kernel adds into the array or leaves part of it unwritten.
 */
export interface PassBuffers {
  /** `length` zeros: for an array a kernel adds into (scatterAdd, a gemm with beta = 1, `+=` loops) or writes in part. */
  zeros(dtype: 'float64', length: number): Float64Array;
  zeros(dtype: DType, length: number): FloatArray;
  /** `length` elements of unspecified contents: for an array a kernel writes in full (a gemm with beta = 0, a gather, a transpose). */
  uninitialized(dtype: 'float64', length: number): Float64Array;
  uninitialized(dtype: DType, length: number): FloatArray;
  /** `length` int32 elements of unspecified contents (argmax indices and the like). */
  indices(length: number): Int32Array;
  /**
   * An activation [n, tokens, width] over a new array of these buffers, zero-filled when `zeroed`
   * (the rules of `zeros` and `uninitialized`). An arena hands back the activation object of the
   * previous pass at the same position as well as its array.
   */
  activation(dtype: DType, n: number, tokens: number, width: number, zeroed: boolean): Activation;
  /**
   * A tape for a layer called on `input` (input and output set to it, every other field
   * undefined). An arena hands back the previous pass's tape at the same position, emptied.
   */
  tape(input: Activation): LayerTape;
  /** An array for `length` tapes (a layer list's), likewise reused by an arena. */
  tapeList(length: number): LayerTape[];
}

/** A tape with every field a tape may get from the start: fields added later would grow the object. */
function newTape(input: Activation): LayerTape {
  return {
    input,
    output: input,
    outputGrad: undefined,
    rInput: undefined,
    rOutput: undefined,
    children: undefined,
  };
}

/** New arrays every time: what a pass gets outside a PassArena (evaluation, tests, user code). */
export const freshBuffers: PassBuffers = {
  zeros: allocFloat as PassBuffers['zeros'],
  uninitialized: allocUninitialized as PassBuffers['uninitialized'],
  indices: (length) => new Int32Array(length),
  activation: (dtype, n, tokens, width, zeroed) => {
    const length = n * tokens * width;
    return { data: zeroed ? allocFloat(dtype, length) : allocUninitialized(dtype, length), n, tokens, width };
  },
  tape: newTape,
  tapeList: (length) => new Array<LayerTape>(length),
};

type Kind = DType | 'int32';
type AnyArray = FloatArray | Int32Array;

interface Slot {
  kind: Kind;
  /** The whole buffer (its capacity) and the view last handed out (the requested length). */
  buffer: AnyArray;
  view: AnyArray;
  /** The activation object last handed out over `view` (see `activation`), made on first use. */
  activation: Activation | null;
}

function allocate(kind: Kind, length: number): AnyArray {
  return kind === 'int32' ? new Int32Array(length) : allocUninitialized(kind, length);
}

/**
 * Buffers for one pass at a time, reused by the next pass run in the same arena: the k-th array a
 * pass asks for is the k-th array the previous pass got (grown when too small), and likewise its
 * activation objects, tapes and tape lists, so a training loop whose passes have the same shapes
 * allocates no arrays and almost no objects after its first step.
 *
 * Ownership: `Sequential.forward` with an arena calls `reset()`, after which every array and
 * object of the previous pass in it — its tapes, output, losses, gradients, R-operator results,
 * and what ghost products kept on its tapes — may be overwritten. So passes that must be alive at the same time
 * (a step's training pass and its validation pass, the two halves of a validation sample) each
 * need their own arena, and a pass that must outlive its step must not use one (momentum credit
 * replays the passes it needs later instead of keeping them). The model refuses to work on a pass
 * whose arena has moved on (`generation`).
 */
export class PassArena implements PassBuffers {
  private readonly slots: Slot[] = [];
  private next = 0;
  private readonly tapes: LayerTape[] = [];
  private nextTape = 0;
  private readonly tapeLists: LayerTape[][] = [];
  private nextTapeList = 0;
  /** Counts the passes started in this arena; a pass remembers the one it was started in. */
  generation = 0;

  /** Starts a new pass: arrays handed out before may be handed out again. */
  reset(): void {
    this.next = 0;
    this.nextTape = 0;
    this.nextTapeList = 0;
    this.generation++;
  }

  /** Bytes held (for measurements and tests). */
  get bytes(): number {
    let total = 0;
    for (const slot of this.slots) total += slot.buffer.byteLength;
    return total;
  }

  private take(kind: Kind, length: number): AnyArray {
    return this.takeSlot(kind, length).view;
  }

  private takeSlot(kind: Kind, length: number): Slot {
    const k = this.next++;
    let slot = this.slots[k];
    if (!slot || slot.kind !== kind || slot.buffer.length < length) {
      // Grown to the largest length asked for at this position, so passes of varying shapes settle.
      const capacity = slot && slot.kind === kind ? Math.max(length, slot.buffer.length) : length;
      const buffer = allocate(kind, capacity);
      slot = {
        kind,
        buffer,
        view: buffer.length === length ? buffer : buffer.subarray(0, length),
        activation: null,
      };
      this.slots[k] = slot;
    } else if (slot.view.length !== length) {
      slot.view = slot.buffer.length === length ? slot.buffer : slot.buffer.subarray(0, length);
    }
    return slot;
  }

  zeros(dtype: 'float64', length: number): Float64Array;
  zeros(dtype: DType, length: number): FloatArray;
  zeros(dtype: DType, length: number): FloatArray {
    return (this.take(dtype, length) as FloatArray).fill(0);
  }

  uninitialized(dtype: 'float64', length: number): Float64Array;
  uninitialized(dtype: DType, length: number): FloatArray;
  uninitialized(dtype: DType, length: number): FloatArray {
    return this.take(dtype, length) as FloatArray;
  }

  indices(length: number): Int32Array {
    return this.take('int32', length) as Int32Array;
  }

  activation(dtype: DType, n: number, tokens: number, width: number, zeroed: boolean): Activation {
    const slot = this.takeSlot(dtype, n * tokens * width);
    const data = slot.view as FloatArray;
    if (zeroed) data.fill(0);
    // Reused like the array under it: the previous pass's activation at this position is dead.
    let activation = slot.activation;
    if (activation === null) {
      activation = { data, n, tokens, width };
      slot.activation = activation;
    } else {
      activation.data = data;
      activation.n = n;
      activation.tokens = tokens;
      activation.width = width;
    }
    return activation;
  }

  tape(input: Activation): LayerTape {
    const k = this.nextTape++;
    const tape = this.tapes[k];
    if (tape === undefined) {
      this.tapes[k] = newTape(input);
      return this.tapes[k];
    }
    // Emptied, layer-specific fields included: nothing the previous pass kept may reach this one.
    for (const key in tape) (tape as unknown as Record<string, unknown>)[key] = undefined;
    tape.input = input;
    tape.output = input;
    return tape;
  }

  tapeList(length: number): LayerTape[] {
    const k = this.nextTapeList++;
    let list = this.tapeLists[k];
    if (list === undefined || list.length !== length) {
      list = new Array<LayerTape>(length);
      this.tapeLists[k] = list;
    }
    return list;
  }
}
