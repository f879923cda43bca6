import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
import { chainBackward, chainForward, chainRBackward, chainRForward } from './chain.js';
import {
  type Activation,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamSlot,
  type PassContext,
  passBuffers,
} from './types.js';

/** The identity shortcut's tapes: none (shared, never written). */
const NO_TAPES: LayerTape[] = [];

/** A residual block's tape: its children's tapes (main branch first), and each branch's. */
type ResidualTape = LayerTape & { mainTapes?: LayerTape[]; shortTapes?: LayerTape[] };

/**
 * y = f(x) + s(x): f a chain of layers (a transformer's sub-block, a ResNet block's main branch)
 * and s the shortcut, the identity by default or itself a chain (ResNet's "downsample": a strided
 * 1×1 convolution and a norm where the block changes shape). Both chains' layers are this layer's
 * children (f first), so the model lays out and values their parameters like any others.
 */
export class Residual implements Layer {
  readonly kind = 'residual';
  params: ParamSlot[] = [];
  readonly children: Layer[];

  constructor(
    readonly main: Layer[],
    readonly shortcut: Layer[] = [],
  ) {
    if (main.length === 0) fail('Residual: the main branch needs at least one layer');
    this.children = [...main, ...shortcut];
  }

  paramSpecs() {
    return [];
  }

  outputShape<S extends { tokens: number; width: number }>(input: S): S {
    let a = input;
    for (const layer of this.main) a = layer.outputShape(a) as S;
    let b = input;
    for (const layer of this.shortcut) b = layer.outputShape(b) as S;
    if (a.tokens !== b.tokens || a.width !== b.width)
      fail(
        this.shortcut.length === 0
          ? `Residual: the inner layers map width ${input.width} to ${a.width}; they must keep it`
          : `Residual: the main branch outputs [${a.tokens}, ${a.width}] but the shortcut [${b.tokens}, ${b.width}]; they must match`,
      );
    return a;
  }

  /** The tapes of the main branch and of the shortcut, as forward kept them. */
  private split(tape: LayerTape): Required<Pick<ResidualTape, 'mainTapes' | 'shortTapes'>> {
    const t = tape as ResidualTape;
    if (!t.mainTapes || !t.shortTapes) throw new Error('internal: forward has not run on this tape');
    return t as Required<ResidualTape>;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const buffers = passBuffers(ctx);
    const mainTapes = buffers.tapeList(this.main.length);
    const shortTapes = this.shortcut.length > 0 ? buffers.tapeList(this.shortcut.length) : NO_TAPES;
    const fx = chainForward(this.main, ctx, x, mainTapes);
    const sx = this.shortcut.length > 0 ? chainForward(this.shortcut, ctx, x, shortTapes) : x;
    const t = tape as ResidualTape;
    t.mainTapes = mainTapes;
    t.shortTapes = shortTapes;
    if (this.shortcut.length === 0) t.children = mainTapes;
    else {
      const children = buffers.tapeList(this.children.length);
      for (let l = 0; l < mainTapes.length; l++) children[l] = mainTapes[l];
      for (let l = 0; l < shortTapes.length; l++) children[mainTapes.length + l] = shortTapes[l];
      t.children = children;
    }
    tape.input = x;
    tape.output = add(ctx, fx, sx);
    return tape.output;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    const { mainTapes, shortTapes } = this.split(tape);
    const dm = chainBackward(this.main, ctx, dy, mainTapes, needInputGrad);
    const ds =
      this.shortcut.length > 0 ? chainBackward(this.shortcut, ctx, dy, shortTapes, needInputGrad) : dy;
    return needInputGrad ? add(ctx, dm!, ds!) : null;
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const { mainTapes, shortTapes } = this.split(tape);
    const rm = chainRForward(this.main, ctx, v, mainTapes, rx);
    const rs = this.shortcut.length > 0 ? chainRForward(this.shortcut, ctx, v, shortTapes, rx) : rx;
    tape.rInput = rx;
    tape.rOutput = rs ? add(ctx, rm, rs) : rm;
    return tape.rOutput;
  }

  rBackward(
    ctx: PassContext,
    v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    const { mainTapes, shortTapes } = this.split(tape);
    const rm = chainRBackward(this.main, ctx, v, mainTapes, rdy, hv, needInputGrad);
    const rs =
      this.shortcut.length > 0
        ? chainRBackward(this.shortcut, ctx, v, shortTapes, rdy, hv, needInputGrad)
        : rdy;
    return needInputGrad ? add(ctx, rm!, rs!) : null;
  }
}

function add(ctx: PassContext, a: Activation, b: Activation): Activation {
  const out = outputActivation(ctx, a.n, a.tokens, a.width);
  ctx.kernels.add(a.data, b.data, out.data);
  return out;
}
