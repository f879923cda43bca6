import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
import { requireGrad } from './linear.js';
import { Scratch } from './scratch.js';
import {
  type Activation,
  type ExampleRange,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamSlot,
  type ParamSpec,
  type PassContext,
  slotView,
  tail,
} from './types.js';

/** Pairwise scratch above this many elements is done in chunks of training examples. */
const PAIRWISE_CHUNK_ELEMENTS = 1 << 22;

/**
 * Token embedding: ids [n, T] → W[id] rows, [n, T, d]; W is [vocab, d] (GPT-2's wte).
 *
 * Example i's gradient scatters its output gradients into the rows of its tokens:
 * g_i[v] = Σ_{t: x_i,t = v} G_i,t. Hence ⟨g_i, U⟩ = Σ_t ⟨G_i,t, U[x_i,t]⟩ (a gather) and
 * ⟨g_i, g_j⟩ = Σ_{t,s} [x_i,t = x_j,s] ⟨G_i,t, G_j,s⟩.
 */
export class TokenEmbedding implements Layer {
  readonly kind = 'token-embedding';
  params: ParamSlot[] = [];
  private readonly scratch = new Scratch();

  constructor(
    readonly vocabSize: number,
    readonly width: number,
    private readonly std = 0.02,
  ) {
    if (!Number.isInteger(vocabSize) || vocabSize < 1)
      fail(`TokenEmbedding: vocabSize must be a positive integer, got ${vocabSize}`);
    if (!Number.isInteger(width) || width < 1)
      fail(`TokenEmbedding: width must be a positive integer, got ${width}`);
  }

  paramSpecs(): ParamSpec[] {
    return [{ name: 'weight', shape: [this.vocabSize, this.width], init: { kind: 'normal', std: this.std } }];
  }

  outputShape(input: { tokens: number; width: number }) {
    if (input.width !== 1)
      fail(`TokenEmbedding takes token ids (width 1), got inputs of width ${input.width}`);
    return { tokens: input.tokens, width: this.width };
  }

  checkInput(x: Activation, where: string): void {
    const ids = x.ids;
    if (!ids) fail(`${where}: the model takes token ids, but the batch holds features`);
    if (ids.length !== x.n * x.tokens)
      fail(`${where}: ${ids.length} token ids for ${x.n} sequences of ${x.tokens} tokens`);
    for (let e = 0; e < ids.length; e++) {
      const id = ids[e];
      if (!(id >= 0 && id < this.vocabSize))
        fail(
          `${where}: sequence ${Math.floor(e / x.tokens)}, token ${e % x.tokens} has id ${id}, outside the vocabulary 0..${this.vocabSize - 1}`,
        );
    }
  }

  private table(flat: FloatArray): FloatArray {
    return slotView(flat, this.params[0]);
  }

  /** out[i, t] = table[ids[i, t]] */
  private gather(
    ctx: PassContext,
    ids: Int32Array,
    n: number,
    tokens: number,
    table: FloatArray,
  ): Activation {
    const out = outputActivation(ctx, n, tokens, this.width);
    ctx.kernels.gatherRows(table, ids, this.width, out.data);
    return out;
  }

  /** table[ids[r]] += scale · rows[r] for r in [first, end) */
  private scatter(
    ctx: PassContext,
    ids: Int32Array,
    rows: FloatArray,
    first: number,
    end: number,
    scale: number,
    table: FloatArray,
  ): void {
    const d = this.width;
    const picked = first === 0 && end === ids.length ? ids : ids.subarray(first, end);
    ctx.kernels.scatterAddRows(tail(rows, first * d), picked, d, scale, table);
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const y = this.gather(ctx, x.ids!, x.n, x.tokens, this.table(ctx.params));
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(_ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    if (needInputGrad) throw new Error('internal: TokenEmbedding must be the first layer');
    tape.outputGrad = dy;
    return null;
  }

  addGrad(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    const { input, outputGrad } = requireGrad(tape);
    const T = input.tokens;
    this.scatter(
      ctx,
      input.ids!,
      outputGrad.data,
      examples.start * T,
      examples.end * T,
      scale,
      this.table(out),
    );
  }

  ghostCost(nTrain: number, nValidation: number, tokens: number) {
    return {
      pairwise: nTrain * nValidation * tokens * tokens * this.width,
      vector: nTrain * tokens * this.width,
    };
  }

  ghostDot(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    const { input, outputGrad } = requireGrad(tape);
    const span = input.tokens * this.width;
    // ⟨g_i, u⟩ = Σ_t ⟨G_i,t, U[id_i,t]⟩: U's rows gathered per token, then one dot per example.
    const rows = this.scratch.take('gatheredRows', ctx.dtype, input.n * span);
    for (let k = 0; k < us.length; k++) {
      ctx.kernels.gatherRows(this.table(us[k]), input.ids!, this.width, rows);
      ctx.kernels.rowDots(outputGrad.data, rows, null, input.n, span, span, span, outs[k]);
    }
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    const { input: xa, outputGrad: ga } = requireGrad(train);
    const { input: xv, outputGrad: gv } = requireGrad(validation);
    const T = xa.tokens;
    const d = this.width;
    const nVal = xv.n;
    const valRows = nVal * T;
    const chunk = Math.max(1, Math.min(xa.n, Math.floor(PAIRWISE_CHUNK_ELEMENTS / (T * valRows))));
    const gram = this.scratch.take('gram', ctx.dtype, chunk * T * valRows);
    const idsA = xa.ids!;
    const idsV = xv.ids!;
    for (let start = 0; start < xa.n; start += chunk) {
      const count = Math.min(chunk, xa.n - start);
      ctx.kernels.gemm(
        false,
        true,
        count * T,
        valRows,
        d,
        1,
        tail(ga.data, start * T * d),
        d,
        gv.data,
        d,
        0,
        gram,
        valRows,
      );
      for (let i = 0; i < count; i++) {
        for (let t = 0; t < T; t++) {
          const id = idsA[(start + i) * T + t];
          const row = (i * T + t) * valRows;
          for (let j = 0; j < nVal; j++) {
            let sum = 0;
            for (let s = 0; s < T; s++) if (idsV[j * T + s] === id) sum += gram[row + j * T + s];
            out[(start + i) * nVal + j] += sum;
          }
        }
      }
    }
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, _rx: Activation | null): Activation {
    // The input is data, so R{y} = V[ids]: the direction's rows for these tokens.
    const x = tape.input;
    const ry = this.gather(ctx, x.ids!, x.n, x.tokens, this.table(v));
    tape.rInput = null;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    if (needInputGrad) throw new Error('internal: TokenEmbedding must be the first layer');
    // dW = scatter(dy) is linear in dy alone, so R{dW} = scatter(R{dy}).
    this.scatter(ctx, tape.input.ids!, rdy.data, 0, rdy.n * rdy.tokens, 1, this.table(hv));
    return null;
  }
}

/**
 * Learned positional embedding added to the token embeddings: y[i, t] = x[i, t] + P[t], with
 * P [context, d] (GPT-2's wpe). Example i's gradient is P-rows G_i,t for t < T.
 */
export class PositionalEmbedding implements Layer {
  readonly kind = 'positional-embedding';
  params: ParamSlot[] = [];
  private readonly scratch = new Scratch();

  constructor(
    readonly context: number,
    readonly width: number,
    private readonly std = 0.01,
  ) {
    if (!Number.isInteger(context) || context < 1)
      fail(`PositionalEmbedding: context must be a positive integer, got ${context}`);
  }

  paramSpecs(): ParamSpec[] {
    return [{ name: 'weight', shape: [this.context, this.width], init: { kind: 'normal', std: this.std } }];
  }

  outputShape(input: { tokens: number; width: number }) {
    if (input.width !== this.width)
      fail(`PositionalEmbedding(width ${this.width}) got inputs of width ${input.width}`);
    if (input.tokens > this.context)
      fail(`sequences of ${input.tokens} tokens are longer than the model's context of ${this.context}`);
    return input;
  }

  private table(flat: FloatArray): FloatArray {
    return slotView(flat, this.params[0]);
  }

  /** out[i, t] = base[i, t] + table[t] (base may be absent: then just the table rows). */
  private addPositions(
    ctx: PassContext,
    shape: Activation,
    base: Activation | null,
    table: FloatArray,
  ): Activation {
    const { n, tokens: T, width: d } = shape;
    const out = outputActivation(ctx, n, T, d);
    const total = n * T * d;
    if (base) out.data.set(base.data.length === total ? base.data : base.data.subarray(0, total));
    else out.data.fill(0, 0, total);
    // The table [T, d] is added to every sequence as a bias of width T·d.
    ctx.kernels.addBias(out.data, table, n, T * d, 1);
    return out;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    tape.input = x;
    tape.output = this.addPositions(ctx, x, x, this.table(ctx.params));
    return tape.output;
  }

  backward(_ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    return needInputGrad ? dy : null;
  }

  /** table[t] += scale · Σ_{i∈range} rows[i, t]: the rows' sum as a bias gradient of width T·d. */
  private accumulate(
    ctx: PassContext,
    rows: Activation,
    start: number,
    end: number,
    scale: number,
    table: FloatArray,
  ): void {
    const span = rows.tokens * rows.width;
    ctx.kernels.sumBias(table, tail(rows.data, start * span), end - start, span, 1, scale);
  }

  addGrad(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    this.accumulate(ctx, requireGrad(tape).outputGrad, examples.start, examples.end, scale, this.table(out));
  }

  ghostCost(nTrain: number, nValidation: number, tokens: number) {
    return { pairwise: nTrain * nValidation * tokens * this.width, vector: nTrain * tokens * this.width };
  }

  ghostDot(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    const g = requireGrad(tape).outputGrad;
    const span = g.tokens * g.width;
    // ⟨g_i, u⟩ with the table [T, d] read as one vector of length T·d.
    for (let k = 0; k < us.length; k++)
      ctx.kernels.rowDots(g.data, this.table(us[k]), null, g.n, span, span, 0, outs[k]);
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    const ga = requireGrad(train).outputGrad;
    const gv = requireGrad(validation).outputGrad;
    const span = ga.tokens * ga.width;
    const gram = this.scratch.take('gram', ctx.dtype, ga.n * gv.n);
    // ⟨g_i, g_j⟩ = Σ_t ⟨G_i,t, G_j,t⟩: one product of the flattened [n, T·d] gradients.
    ctx.kernels.gemm(false, true, ga.n, gv.n, span, 1, ga.data, span, gv.data, span, 0, gram, gv.n);
    for (let e = 0; e < gram.length; e++) out[e] += gram[e];
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    tape.rInput = rx;
    tape.rOutput = this.addPositions(ctx, tape.input, rx, this.table(v));
    return tape.rOutput;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    _tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    this.accumulate(ctx, rdy, 0, rdy.n, 1, this.table(hv));
    return needInputGrad ? rdy : null;
  }
}
