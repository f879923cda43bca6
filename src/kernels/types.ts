/**
 * The engine's one door to heavy arithmetic. Every matrix product in inrun goes through a
 * `Kernels` object, so a faster backend (native BLAS, WebAssembly SIMD today, GPU later) changes
 * nothing outside `src/kernels/`.
 *
 * Matrices are dense and row-major. A matrix argument is a typed array plus its leading
 * dimension (the distance between the starts of consecutive rows); pass `array.subarray(offset)`
 * to start inside a larger buffer — the native and portable kernels read it in place, the wasm
 * ones copy just the span the call reads (and C's span back).
 */
export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';
export type KernelKind = 'native' | 'portable' | 'wasm';
/** The element-wise activations with a fused kernel (see `KernelOps.activationForward`). */
export type ActivationKind = 'relu' | 'gelu' | 'tanh' | 'sigmoid';

/**
 * The element-wise and reduction loops that dominate a training step once the matrix products
 * are fast (profiles of the MLP, GPT and CNN steps: bias adds and sums, activations, the loss,
 * attention's causal softmax, residual sums, LayerNorm, im2col/col2im, max-pooling, the optimizer
 * updates; for valued steps, the R-operators of the second-order pass and the optimizer's plan
 * vectors). Each has a portable TypeScript
 * implementation (./ops.ts) and a native C twin (native/inrun_ops.c) that must agree with it.
 *
 * Conventions: float arrays of one call share one element type; arithmetic happens in float64
 * whatever the element type (as JavaScript does), so float32 results are the float64 result
 * rounded once per stored value and native and portable agree to the last bit or so. Arrays are
 * read from their start (pass `subarray` to start inside one); an array shorter than the sizes
 * need throws a RangeError naming it, and a longer one is fine. Output arrays may not overlap
 * inputs unless an op says so.
 */
export interface KernelOps {
  /** data[(o·channels + c)·inner + p] += bias[c] (Linear: inner = 1; Conv2d: inner = positions). */
  addBias(data: FloatArray, bias: FloatArray, outer: number, channels: number, inner: number): void;
  /** out[c] += scale · Σ_{o,p} data[(o·channels + c)·inner + p], summed in float64 (a bias gradient). */
  sumBias(
    out: FloatArray,
    data: FloatArray,
    outer: number,
    channels: number,
    inner: number,
    scale: number,
  ): void;
  /**
   * out[r] += Σ_{e<length} a[r·strideA + e]·b[r·strideB + e]·weights[e] for r < rows (weights 1
   * when null), each row summed in float64 in order of e: per-example dot products and squared
   * norms of the ghost routes (strideB = 0 dots every row with one vector; a = b gives norms).
   */
  rowDots(
    a: FloatArray,
    b: FloatArray,
    weights: FloatArray | null,
    rows: number,
    length: number,
    strideA: number,
    strideB: number,
    out: Float64Array,
  ): void;
  /**
   * out[s·outStride + c] += Σ_{r<rowsPerSegment} a[k·width + c]·b[k·width + c], k = s·rowsPerSegment
   * + r, for s < segments and c < width (b read as 1 when null): per-segment column sums of
   * products, such as LayerNorm's γ and β gradients per example (segments = examples, a row per
   * token) or over a whole batch (one segment). Each out element accumulates in place in float64,
   * one row at a time in order of r. outStride defaults to width.
   */
  columnSums(
    out: Float64Array,
    a: FloatArray,
    b: FloatArray | null,
    segments: number,
    rowsPerSegment: number,
    width: number,
    outStride?: number,
  ): void;
  /** out[e] = a[e] + b[e] for e < out.length (a and b at least that long); out may be a or b itself. */
  add(a: FloatArray, b: FloatArray, out: FloatArray): void;
  /** y = f(x) over x.length elements. */
  activationForward(kind: ActivationKind, x: FloatArray, y: FloatArray): void;
  /** dx = f′(x) ⊙ dy, with y = f(x) from the forward pass. */
  activationBackward(
    kind: ActivationKind,
    x: FloatArray,
    y: FloatArray,
    dy: FloatArray,
    dx: FloatArray,
  ): void;
  /** ry = f′(x) ⊙ rx (the R-operator of the forward pass). */
  activationRForward(
    kind: ActivationKind,
    x: FloatArray,
    y: FloatArray,
    rx: FloatArray,
    ry: FloatArray,
  ): void;
  /** rdx = f′(x) ⊙ rdy + f″(x) ⊙ rx ⊙ dy (the rx term left out when rx is null). */
  activationRBackward(
    kind: ActivationKind,
    x: FloatArray,
    y: FloatArray,
    dy: FloatArray,
    rdy: FloatArray,
    rx: FloatArray | null,
    rdx: FloatArray,
  ): void;
  /**
   * Softmax over each of `rows` rows of `classes` logits z into p, and each row's weighted loss
   * rowLoss[r] = weights[r]·(log Σ exp z − z[targets[r]]) (0 where weights[r] = 0, whose target is
   * then not read).
   */
  softmaxCrossEntropyForward(
    z: FloatArray,
    targets: Int32Array,
    weights: Float64Array,
    rows: number,
    classes: number,
    p: FloatArray,
    rowLoss: Float64Array,
  ): void;
  /** dz = weights[r]·(p − onehot(targets[r])) per row; rows of weight 0 are left untouched. */
  softmaxCrossEntropyBackward(
    p: FloatArray,
    targets: Int32Array,
    weights: Float64Array,
    rows: number,
    classes: number,
    dz: FloatArray,
  ): void;
  /**
   * The R-operator of softmaxCrossEntropyBackward (rz = R{z}): rdz = weights[r]·p ⊙ (rz − p·rz) per
   * row, the dot in float64 in order of class; rows of weight 0 become 0.
   */
  softmaxCrossEntropyRBackward(
    p: FloatArray,
    rz: FloatArray,
    weights: Float64Array,
    rows: number,
    classes: number,
    rdz: FloatArray,
  ): void;
  /**
   * Causal softmax in place over each of `blocks` consecutive T×T blocks of scores s (attention's
   * [examples, heads, T, T]): row t becomes softmax(s[t, 0..t]) and its entries above the diagonal
   * exactly 0. Each exponential is stored, rounded to the element type, before the row is scaled by
   * 1/Σ (the sum taken over the unrounded values).
   */
  causalSoftmaxForward(s: FloatArray, blocks: number, T: number): void;
  /**
   * g ← p ⊙ (g − rowsum(g ⊙ p)) in place, row by row over the causal part of each T×T block of
   * p = causalSoftmaxForward's output (the softmax Jacobian, symmetric, applied to g: backward, and
   * the R-operator of the forward pass); entries above the diagonal become exactly 0.
   */
  causalSoftmaxBackward(p: FloatArray, g: FloatArray, blocks: number, T: number): void;
  /**
   * Backward and its R-operator together, in place per causal row (rp = R{p}, left out when null):
   * c = rowsum(dS ⊙ p), rc = rowsum(rdS ⊙ p + dS ⊙ rp), then dS ← p ⊙ (dS − c) and
   * rdS ← p ⊙ (rdS − rc) + rp ⊙ (dS − c) with the incoming dS; both exactly 0 above the diagonal.
   * The row sums run in float64 in order of s, adding rdS·p before dS·rp at each s.
   */
  causalSoftmaxRBackward(
    p: FloatArray,
    rp: FloatArray | null,
    dS: FloatArray,
    rdS: FloatArray,
    blocks: number,
    T: number,
  ): void;
  /**
   * LayerNorm (center) or RMSNorm per row: z = x − mean(x)·[center], r = 1/√(mean(z²) + eps),
   * x̂ = z·r, y = γ ⊙ x̂ + β (no β when null). Writes x̂, r (float64) and y.
   */
  layerNormForward(
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray | null,
    rows: number,
    width: number,
    eps: number,
    center: boolean,
    xhat: FloatArray,
    rstd: Float64Array,
    y: FloatArray,
  ): void;
  /** dx = r (h − mean(h)·[center] − x̂ mean(h ⊙ x̂)) per row, h = γ ⊙ dy. */
  layerNormBackward(
    dy: FloatArray,
    xhat: FloatArray,
    rstd: Float64Array,
    gamma: FloatArray,
    rows: number,
    width: number,
    center: boolean,
    dx: FloatArray,
  ): void;
  /**
   * The R-operator of layerNormForward per row, given its x̂ and r (rx = R{x}; null for a data
   * input): R{z} = rx − mean(rx)·[center], c = r·mean(x̂ ⊙ R{z}), R{x̂} = r·R{z} − c·x̂ (into rxhat,
   * c into shrink), then ry = vGamma ⊙ x̂ + vBeta + γ ⊙ R{x̂}, with R{x̂} as stored (vBeta read as 0
   * when null; without rx the γ term is left out and rxhat, shrink are not touched).
   */
  layerNormRForward(
    xhat: FloatArray,
    rstd: Float64Array,
    gamma: FloatArray,
    vGamma: FloatArray,
    vBeta: FloatArray | null,
    rx: FloatArray | null,
    rows: number,
    width: number,
    center: boolean,
    rxhat: FloatArray | null,
    shrink: Float64Array | null,
    ry: FloatArray,
  ): void;
  /**
   * The R-operator of layerNormBackward (rdy = R{dy}; rxhat and shrink from layerNormRForward, read
   * as 0 when null). Per row, with h = γ ⊙ dy, R{h} = vGamma ⊙ dy + γ ⊙ rdy, a = mean(h)·[center],
   * R{a} = mean(R{h})·[center], b = mean(h ⊙ x̂), R{b} = mean(R{h} ⊙ x̂ + h ⊙ R{x̂}) and c = shrink:
   * rdx = −c·r(h − a − x̂b) + r(R{h} − R{a} − x̂R{b}) − r·b·R{x̂} (skipped when rdx is null). Also the
   * Hessian-vector sums of γ and β: gammaSums[c] += Σ_rows (rdy ⊙ x̂ + dy ⊙ R{x̂}) and
   * betaSums[c] += Σ_rows rdy (when not null), in float64 one row at a time in order.
   */
  layerNormRBackward(
    dy: FloatArray,
    rdy: FloatArray,
    xhat: FloatArray,
    rxhat: FloatArray | null,
    rstd: Float64Array,
    shrink: Float64Array | null,
    gamma: FloatArray,
    vGamma: FloatArray,
    rows: number,
    width: number,
    center: boolean,
    gammaSums: Float64Array,
    betaSums: Float64Array | null,
    rdx: FloatArray | null,
  ): void;
  /**
   * dst[i·L + j] = src[i·srcStride + index[j]], or 0 where index[j] < 0, for i < count and
   * j < L = index.length: im2col with Conv2d's patch table (count = examples), or a plain gather
   * (count = 1).
   */
  gather(src: FloatArray, index: Int32Array, count: number, srcStride: number, dst: FloatArray): void;
  /**
   * dst[i·dstStride + index[j]] += src[i·L + j] where index[j] ≥ 0 (the adjoint of gather):
   * col2im, or max-pooling's backward with count = 1. Repeated indices add up.
   */
  scatterAdd(src: FloatArray, index: Int32Array, count: number, dstStride: number, dst: FloatArray): void;
  /**
   * dst[r·width + c] = src[rows[r]·width + c] for r < rows.length, c < width: whole rows of a
   * table picked by index (token embeddings, a dataset's batch). Every row must lie inside src.
   */
  gatherRows(src: FloatArray, rows: Int32Array, width: number, dst: FloatArray): void;
  /**
   * dst[rows[r]·width + c] += scale · src[r·width + c], r in order (a repeated row adds up in that
   * order), each sum in float64 and stored once: the adjoint of gatherRows (the embedding table's
   * gradient). Every row must lie inside dst.
   */
  scatterAddRows(src: FloatArray, rows: Int32Array, width: number, scale: number, dst: FloatArray): void;
  /** dst[b][c][r] = src[b][r][c] for `batch` row-major rows×cols matrices. */
  transpose(src: FloatArray, dst: FloatArray, batch: number, rows: number, cols: number): void;
  /**
   * Max over each window of each of `planes` planes of `planeSize` values: y[k·positions + p] =
   * max_q x[k·planeSize + offsets[p·taps + q]] over offsets ≥ 0, argmax = that flat index into x
   * (first of ties; a NaN wins and stops the search; −1 and −∞ for an empty window).
   */
  maxPoolForward(
    x: FloatArray,
    offsets: Int32Array,
    planes: number,
    planeSize: number,
    positions: number,
    taps: number,
    y: FloatArray,
    argmax: Int32Array,
  ): void;
  /**
   * SGD step in place. With momentum μ > 0: g = k·grad + λw, b = first ? g : μb + g,
   * w −= lr·(b + λ_d w). Without (buffer null): w −= lr·(k·grad + (λ + λ_d)w).
   */
  sgdUpdate(
    params: FloatArray,
    grad: FloatArray,
    buffer: FloatArray | null,
    lr: number,
    gradScale: number,
    weightDecay: number,
    decoupledWeightDecay: number,
    momentum: number,
    first: boolean,
  ): void;
  /**
   * Adam(W) step in place: g = k·grad + λ_c w, m = β1 m + (1 − β1) g, v = β2 v + (1 − β2) g²,
   * w = w·shrink − stepSize · m / (√v / bc2Sqrt + eps).
   */
  adamUpdate(
    params: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    gradScale: number,
    coupledWeightDecay: number,
    beta1: number,
    beta2: number,
    shrink: number,
    stepSize: number,
    bc2Sqrt: number,
    eps: number,
  ): void;
  /**
   * Adam's frozen preconditioner, out[e] = 1/(√v_t / bc2Sqrt + eps) for e < params.length, with v_t
   * formed from this step's gradient as adamUpdate forms it: g = k·grad + λ_c w,
   * v_t = β2 v + (1 − β2) g² (v read as 0 when null).
   */
  adamPreconditioner(
    params: FloatArray,
    grad: FloatArray,
    v: FloatArray | null,
    gradScale: number,
    coupledWeightDecay: number,
    beta2: number,
    bc2Sqrt: number,
    eps: number,
    out: FloatArray,
  ): void;
  /**
   * Adam's plan vectors from its preconditioner P, for e < P.length: c[e] = (P β1 m)/bc1 + λw
   * (decoupled) or P (β1 m + (1 − β1) λw)/bc1 (coupled), m read as 0 when null and c skipped when
   * null; then P[e] ← P[e]·kFactor in place (K's diagonal), after c has read it.
   */
  adamLinearise(
    P: FloatArray,
    params: FloatArray,
    m: FloatArray | null,
    c: FloatArray | null,
    beta1: number,
    weightDecay: number,
    decoupled: boolean,
    bc1: number,
    kFactor: number,
  ): void;
  /**
   * out[e] = (scale·diagonal[e])·x[e], or scale·x[e] when diagonal is null, for e < x.length
   * (applying a step's K); out may be x itself.
   */
  scaleVector(x: FloatArray, scale: number, diagonal: FloatArray | null, out: FloatArray): void;
}

export interface Kernels extends KernelOps {
  readonly kind: KernelKind;

  /**
   * C ← alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ.
   * op(A) is M×K, op(B) is K×N, C is M×N. A, B and C must share one element type.
   * With beta = 0, C is overwritten and its old contents (even NaN) are ignored.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    lda: number,
    B: FloatArray,
    ldb: number,
    beta: number,
    C: FloatArray,
    ldc: number,
  ): void;

  /**
   * `batch` independent gemms; problem b reads A at b·strideA, B at b·strideB and writes C at
   * b·strideC (strides in elements).
   *
   * With `inner` (default 1), each of those is `inner` problems: problem (b, j), j < inner, reads
   * A at b·strideA + j·innerStrideA, and likewise B and C (inner strides default to 0). This
   * reaches two-level layouts such as the (example, head) blocks of attention, where heads sit
   * side by side within each example's rows, in one call. The batch × inner problems run in no
   * promised order, so their C blocks must not overlap.
   */
  gemmBatched(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    lda: number,
    strideA: number,
    B: FloatArray,
    ldb: number,
    strideB: number,
    beta: number,
    C: FloatArray,
    ldc: number,
    strideC: number,
    batch: number,
    inner?: number,
    innerStrideA?: number,
    innerStrideB?: number,
    innerStrideC?: number,
  ): void;

  /** Threads the backend may use (the native addon's workers; ignored by portable and wasm). */
  setThreads(threads: number): void;
}
