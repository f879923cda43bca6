/*
 * inrun_kernels: gemm for WebAssembly with 128-bit SIMD, the kernels inrun uses in browsers and
 * wherever the OpenBLAS addon is not built (src/kernels/wasm.ts wraps it).
 *
 * Build (scripts/build-wasm.mjs):
 *   clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -Wl,--no-entry ... -o inrun_kernels.wasm
 *
 * No libc and no allocator: the module exports its memory, the packing panels below are static,
 * and JavaScript copies the operands into the linear memory above inrun_heap_base() (growing it
 * as needed), calls one gemm export per gemm or gemmBatched, and copies C back. Arguments are
 * validated in JavaScript (src/kernels/validate.ts) before any call, so nothing here re-checks
 * them; every pointer and offset below stays inside the operands JavaScript copied in.
 *
 * The scheme is GotoBLAS/BLIS: op(B) is packed a KC x NC block at a time and op(A) an MC x KC
 * block at a time into contiguous panels (which is where the four transpose combinations are
 * resolved, so one micro-kernel serves them all), and an MR x NR register-blocked micro-kernel
 * accumulates each tile of C over the KC-deep block:
 *
 *   for jc in N by NC:              B block, KC x NC       (lives in L2/L3)
 *     for pc in K by KC:            pack op(B)[pc.., jc..]
 *       for ic in M by MC:          pack op(A)[ic.., pc..]  A block, MC x KC (lives in L2)
 *         for jr in NC by NR:       B micro-panel, KC x NR  (lives in L1)
 *           for ir in MC by MR:     micro-kernel: C[ir.., jr..] (MR x NR) += A panel . B panel
 *
 * (NC, KC and MC are upper bounds: each dimension is split into equal blocks, see balanced_step.)
 *
 * WebAssembly SIMD has 128-bit vectors and no fused multiply-add, and engines map its values onto
 * the 16 XMM registers of x86-64 (or 32 NEON registers on ARM). The float32 micro-kernel is 4 x 8:
 * 8 accumulators of f32x4, two B vectors and one broadcast A value, 11 registers, so nothing
 * spills on x86; the float64 one is 4 x 4 with f64x2, the same 11 registers. Measured in Node 20
 * on x86-64, 4 x 8 beat 3 x 8, 5 x 8, 6 x 8, 8 x 8 and 4 x 16 (which spill) by 20-50%, and
 * unrolling the k loop further than clang does made it slower.
 *
 * Semantics match the Kernels interface: C <- alpha op(A) op(B) + beta C, where beta = 0 ignores
 * the old contents of C (even NaN) and alpha = 0 or K = 0 never reads A or B. float32 products
 * accumulate in float32 (like OpenBLAS's sgemm), float64 ones in float64.
 */
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* ------------------------------------------------------------------------------ block sizes */

/* float32: 4 x 8 micro-tiles; an A block of 128 x 256 floats (128 KiB) and a B block of
 * 256 x 2048 floats (2 MiB), the usual L2 / L3 budget split. */
#define S_MR 4
#define S_NR 8
#define S_MC 128
#define S_KC 256
#define S_NC 2048

/* float64: 4 x 4 micro-tiles; the same byte budgets. */
#define D_MR 4
#define D_NR 4
#define D_MC 64
#define D_KC 256
#define D_NC 1024

/* Packing panels, shared by both element types (a call uses one type at a time, and gemm is
 * single-threaded, so they are never contended). 16-byte aligned for the vector loads. */
#define PACK_A_BYTES (S_MC * S_KC * 4)
#define PACK_B_BYTES (S_KC * S_NC * 4)
_Static_assert(PACK_A_BYTES >= D_MC * D_KC * 8, "float64 A block fits the A panel");
_Static_assert(PACK_B_BYTES >= D_KC * D_NC * 8, "float64 B block fits the B panel");
_Static_assert(S_MC % S_MR == 0 && S_NC % S_NR == 0, "float32 blocks hold whole micro-panels");
_Static_assert(D_MC % D_MR == 0 && D_NC % D_NR == 0, "float64 blocks hold whole micro-panels");

static union {
  float f32[PACK_A_BYTES / 4];
  double f64[PACK_A_BYTES / 8];
} pack_a __attribute__((aligned(16)));

static union {
  float f32[PACK_B_BYTES / 4];
  double f64[PACK_B_BYTES / 8];
} pack_b __attribute__((aligned(16)));

/* First byte past the module's static data and stack: JavaScript places operands from here on. */
extern unsigned char __heap_base;

EXPORT("inrun_heap_base") uintptr_t inrun_heap_base(void) { return (uintptr_t)&__heap_base; }

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* The step that splits n into the fewest blocks of at most `block`, all of about the same size and
 * (but the last) a multiple of `unit`: K = 784 becomes 4 passes of 196, not 3 of 256 and one of 16,
 * whose short micro-kernel runs would hardly pay for reading and writing C. */
static inline size_t balanced_step(size_t n, size_t block, size_t unit) {
  const size_t blocks = (n + block - 1) / block;
  const size_t step = (n + blocks - 1) / blocks;
  return (step + unit - 1) / unit * unit;
}

/* Engines start a module on a quick baseline compiler and recompile a function with the optimizing
 * one once it has run hot, at its next call (V8 has no on-stack replacement for WebAssembly). The
 * micro-kernels and packing routines are therefore kept as separate functions, called thousands of
 * times per product, so the optimized code takes over within the first product instead of after
 * it, as it would if clang inlined everything into one export. */
#define HOT __attribute__((noinline))

/* ------------------------------------------------------------------------------ packing */
/*
 * Both element types pack the same way, so the packing routines are written once as a macro over
 * the type T and the micro-tile sizes. Panels past the matrix edge are zero-filled: the
 * micro-kernel always runs over whole MR x NR tiles and only the valid part is written back.
 */

/* op(A)[i0 : i0+mc, p0 : p0+kc] -> dst as ceil(mc/MR) panels, each kc x MR with the MR row values
 * of one k adjacent. op(A)[i, p] is A[i*lda + p], or A[p*lda + i] when transposed. */
#define DEFINE_PACK_A(NAME, T, MR)                                                                   \
  HOT static void NAME(int trans, const T *A, size_t lda, size_t i0, size_t mc, size_t p0, size_t kc,     \
                   T *dst) {                                                                          \
    for (size_t ir = 0; ir < mc; ir += MR) {                                                          \
      const size_t mr = min_size(MR, mc - ir);                                                        \
      if (!trans) {                                                                                   \
        /* MR rows read side by side, each contiguous in k. */                                        \
        for (size_t r = 0; r < MR; r++) {                                                             \
          T *d = dst + r;                                                                             \
          if (r < mr) {                                                                               \
            const T *src = A + (i0 + ir + r) * lda + p0;                                              \
            for (size_t p = 0; p < kc; p++) d[p * MR] = src[p];                                       \
          } else {                                                                                    \
            for (size_t p = 0; p < kc; p++) d[p * MR] = 0;                                            \
          }                                                                                           \
        }                                                                                             \
      } else {                                                                                        \
        /* Each k is MR adjacent values of one stored row. */                                         \
        for (size_t p = 0; p < kc; p++) {                                                             \
          const T *src = A + (p0 + p) * lda + i0 + ir;                                                \
          T *d = dst + p * MR;                                                                        \
          for (size_t r = 0; r < MR; r++) d[r] = r < mr ? src[r] : 0;                                 \
        }                                                                                             \
      }                                                                                               \
      dst += kc * MR;                                                                                 \
    }                                                                                                 \
  }

/* op(B)[p0 : p0+kc, j0 : j0+nc] -> dst as ceil(nc/NR) panels, each kc x NR with the NR column
 * values of one k adjacent. op(B)[p, j] is B[p*ldb + j], or B[j*ldb + p] when transposed. */
#define DEFINE_PACK_B(NAME, T, NR)                                                                   \
  HOT static void NAME(int trans, const T *B, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc,     \
                   T *dst) {                                                                          \
    for (size_t jr = 0; jr < nc; jr += NR) {                                                          \
      const size_t nr = min_size(NR, nc - jr);                                                        \
      if (!trans) {                                                                                   \
        /* Each k is NR adjacent values of one stored row. */                                         \
        for (size_t p = 0; p < kc; p++) {                                                             \
          const T *src = B + (p0 + p) * ldb + j0 + jr;                                                \
          T *d = dst + p * NR;                                                                        \
          if (nr == NR) {                                                                             \
            for (size_t c = 0; c < NR; c++) d[c] = src[c];                                            \
          } else {                                                                                    \
            for (size_t c = 0; c < NR; c++) d[c] = c < nr ? src[c] : 0;                               \
          }                                                                                           \
        }                                                                                             \
      } else {                                                                                        \
        /* NR stored rows read side by side, each contiguous in k. */                                 \
        for (size_t c = 0; c < NR; c++) {                                                             \
          T *d = dst + c;                                                                             \
          if (c < nr) {                                                                               \
            const T *src = B + (j0 + jr + c) * ldb + p0;                                              \
            for (size_t p = 0; p < kc; p++) d[p * NR] = src[p];                                       \
          } else {                                                                                    \
            for (size_t p = 0; p < kc; p++) d[p * NR] = 0;                                            \
          }                                                                                           \
        }                                                                                             \
      }                                                                                               \
      dst += kc * NR;                                                                                 \
    }                                                                                                 \
  }

DEFINE_PACK_A(pack_a_f32, float, S_MR)
DEFINE_PACK_B(pack_b_f32, float, S_NR)
DEFINE_PACK_A(pack_a_f64, double, D_MR)
DEFINE_PACK_B(pack_b_f64, double, D_NR)

/* ------------------------------------------------------------------------------ writing C */

/* C[0 : mr, 0 : nr] = alpha * tile + beta * C (beta = 0: C's old values are not read), for a tile
 * stored row-major with row length NR. Used at the matrix edges, where a whole tile does not fit. */
#define DEFINE_STORE_EDGE(NAME, T, NR)                                                               \
  static void NAME(const T *tile, T *C, size_t ldc, size_t mr, size_t nr, T alpha, T beta) {          \
    for (size_t i = 0; i < mr; i++) {                                                                 \
      T *c = C + i * ldc;                                                                             \
      const T *t = tile + i * NR;                                                                     \
      if (beta == 0) {                                                                                \
        for (size_t j = 0; j < nr; j++) c[j] = alpha * t[j];                                          \
      } else {                                                                                        \
        for (size_t j = 0; j < nr; j++) c[j] = beta * c[j] + alpha * t[j];                            \
      }                                                                                               \
    }                                                                                                 \
  }

DEFINE_STORE_EDGE(store_edge_f32, float, S_NR)
DEFINE_STORE_EDGE(store_edge_f64, double, D_NR)

/* One row vector of C: c = alpha * acc + beta * c, with beta = 0 (overwrite) and beta = 1 (add,
 * every KC pass after the first) spared the multiply. */
static inline void store_f32x4(float *c, v128_t acc, v128_t alpha, float beta) {
  v128_t v = wasm_f32x4_mul(alpha, acc);
  if (beta == 0) {
    wasm_v128_store(c, v);
  } else if (beta == 1) {
    wasm_v128_store(c, wasm_f32x4_add(wasm_v128_load(c), v));
  } else {
    wasm_v128_store(c, wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(beta), wasm_v128_load(c)), v));
  }
}

static inline void store_f64x2(double *c, v128_t acc, v128_t alpha, double beta) {
  v128_t v = wasm_f64x2_mul(alpha, acc);
  if (beta == 0) {
    wasm_v128_store(c, v);
  } else if (beta == 1) {
    wasm_v128_store(c, wasm_f64x2_add(wasm_v128_load(c), v));
  } else {
    wasm_v128_store(c, wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_splat(beta), wasm_v128_load(c)), v));
  }
}

/* ------------------------------------------------------------------------------ micro-kernels */

#define FMA_F32(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#define FMA_F64(acc, a, b) acc = wasm_f64x2_add(acc, wasm_f64x2_mul(a, b))

/*
 * C[0 : mr, 0 : nr] = alpha * (A panel . B panel) + beta * C over kc steps: the A panel holds 4
 * values per k, the B panel 8, so each k is two B vector loads, four broadcasts of A and eight
 * vector multiply-adds.
 */
HOT static void kernel_f32(size_t kc, const float *restrict a, const float *restrict b, float *C, size_t ldc,
                       size_t mr, size_t nr, float alpha, float beta) {
  v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00;
  v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (size_t p = 0; p < kc; p++) {
    const v128_t b0 = wasm_v128_load(b);
    const v128_t b1 = wasm_v128_load(b + 4);
    v128_t ai = wasm_v128_load32_splat(a);
    FMA_F32(c00, ai, b0);
    FMA_F32(c01, ai, b1);
    ai = wasm_v128_load32_splat(a + 1);
    FMA_F32(c10, ai, b0);
    FMA_F32(c11, ai, b1);
    ai = wasm_v128_load32_splat(a + 2);
    FMA_F32(c20, ai, b0);
    FMA_F32(c21, ai, b1);
    ai = wasm_v128_load32_splat(a + 3);
    FMA_F32(c30, ai, b0);
    FMA_F32(c31, ai, b1);
    a += S_MR;
    b += S_NR;
  }
  const v128_t va = wasm_f32x4_splat(alpha);
  if (mr == S_MR && nr == S_NR) {
    store_f32x4(C, c00, va, beta);
    store_f32x4(C + 4, c01, va, beta);
    C += ldc;
    store_f32x4(C, c10, va, beta);
    store_f32x4(C + 4, c11, va, beta);
    C += ldc;
    store_f32x4(C, c20, va, beta);
    store_f32x4(C + 4, c21, va, beta);
    C += ldc;
    store_f32x4(C, c30, va, beta);
    store_f32x4(C + 4, c31, va, beta);
    return;
  }
  float tile[S_MR * S_NR] __attribute__((aligned(16)));
  wasm_v128_store(tile + 0, c00);
  wasm_v128_store(tile + 4, c01);
  wasm_v128_store(tile + 8, c10);
  wasm_v128_store(tile + 12, c11);
  wasm_v128_store(tile + 16, c20);
  wasm_v128_store(tile + 20, c21);
  wasm_v128_store(tile + 24, c30);
  wasm_v128_store(tile + 28, c31);
  store_edge_f32(tile, C, ldc, mr, nr, alpha, beta);
}

/* The float64 twin: A panel 4 values per k, B panel 4 (two f64x2 vectors). */
HOT static void kernel_f64(size_t kc, const double *restrict a, const double *restrict b, double *C, size_t ldc,
                       size_t mr, size_t nr, double alpha, double beta) {
  v128_t c00 = wasm_f64x2_splat(0), c01 = c00, c10 = c00, c11 = c00;
  v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (size_t p = 0; p < kc; p++) {
    const v128_t b0 = wasm_v128_load(b);
    const v128_t b1 = wasm_v128_load(b + 2);
    v128_t ai = wasm_v128_load64_splat(a);
    FMA_F64(c00, ai, b0);
    FMA_F64(c01, ai, b1);
    ai = wasm_v128_load64_splat(a + 1);
    FMA_F64(c10, ai, b0);
    FMA_F64(c11, ai, b1);
    ai = wasm_v128_load64_splat(a + 2);
    FMA_F64(c20, ai, b0);
    FMA_F64(c21, ai, b1);
    ai = wasm_v128_load64_splat(a + 3);
    FMA_F64(c30, ai, b0);
    FMA_F64(c31, ai, b1);
    a += D_MR;
    b += D_NR;
  }
  const v128_t va = wasm_f64x2_splat(alpha);
  if (mr == D_MR && nr == D_NR) {
    store_f64x2(C, c00, va, beta);
    store_f64x2(C + 2, c01, va, beta);
    C += ldc;
    store_f64x2(C, c10, va, beta);
    store_f64x2(C + 2, c11, va, beta);
    C += ldc;
    store_f64x2(C, c20, va, beta);
    store_f64x2(C + 2, c21, va, beta);
    C += ldc;
    store_f64x2(C, c30, va, beta);
    store_f64x2(C + 2, c31, va, beta);
    return;
  }
  double tile[D_MR * D_NR] __attribute__((aligned(16)));
  wasm_v128_store(tile + 0, c00);
  wasm_v128_store(tile + 2, c01);
  wasm_v128_store(tile + 4, c10);
  wasm_v128_store(tile + 6, c11);
  wasm_v128_store(tile + 8, c20);
  wasm_v128_store(tile + 10, c21);
  wasm_v128_store(tile + 12, c30);
  wasm_v128_store(tile + 14, c31);
  store_edge_f64(tile, C, ldc, mr, nr, alpha, beta);
}

/* ------------------------------------------------------------------------------ gemm */

/*
 * One gemm. beta is applied by the first KC pass (C = alpha * partial + beta * C) and later passes
 * add (beta 1), so C is read and written once per pass and never scaled separately. With K = 0 or
 * alpha = 0 there is nothing to accumulate: C = beta * C, and beta = 0 writes zeros.
 */
#define DEFINE_GEMM(NAME, T, MR, NR, MC, KC, NC, PACK_A, PACK_B, KERNEL, PANEL)                       \
  static void NAME(int transA, int transB, size_t M, size_t N, size_t K, T alpha, const T *A, size_t lda, \
                   const T *B, size_t ldb, T beta, T *C, size_t ldc) {                                \
    if (M == 0 || N == 0) return;                                                                     \
    if (K == 0 || alpha == 0) {                                                                       \
      for (size_t i = 0; i < M; i++) {                                                                \
        T *c = C + i * ldc;                                                                           \
        if (beta == 0) {                                                                              \
          for (size_t j = 0; j < N; j++) c[j] = 0;                                                    \
        } else if (beta != 1) {                                                                       \
          for (size_t j = 0; j < N; j++) c[j] *= beta;                                                \
        }                                                                                             \
      }                                                                                               \
      return;                                                                                         \
    }                                                                                                 \
    T *pa = pack_a.PANEL;                                                                             \
    T *pb = pack_b.PANEL;                                                                             \
    const size_t nc_step = balanced_step(N, NC, NR);                                                  \
    const size_t kc_step = balanced_step(K, KC, 1);                                                   \
    const size_t mc_step = balanced_step(M, MC, MR);                                                  \
    for (size_t jc = 0; jc < N; jc += nc_step) {                                                      \
      const size_t nc = min_size(nc_step, N - jc);                                                    \
      for (size_t pc = 0; pc < K; pc += kc_step) {                                                    \
        const size_t kc = min_size(kc_step, K - pc);                                                  \
        const T pass_beta = pc == 0 ? beta : 1;                                                       \
        PACK_B(transB, B, ldb, pc, kc, jc, nc, pb);                                                   \
        for (size_t ic = 0; ic < M; ic += mc_step) {                                                  \
          const size_t mc = min_size(mc_step, M - ic);                                                \
          PACK_A(transA, A, lda, ic, mc, pc, kc, pa);                                                 \
          for (size_t jr = 0; jr < nc; jr += NR) {                                                    \
            const size_t nr = min_size(NR, nc - jr);                                                  \
            for (size_t ir = 0; ir < mc; ir += MR) {                                                  \
              KERNEL(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,               \
                     min_size(MR, mc - ir), nr, alpha, pass_beta);                                    \
            }                                                                                         \
          }                                                                                           \
        }                                                                                             \
      }                                                                                               \
    }                                                                                                 \
  }

DEFINE_GEMM(gemm_f32, float, S_MR, S_NR, S_MC, S_KC, S_NC, pack_a_f32, pack_b_f32, kernel_f32, f32)
DEFINE_GEMM(gemm_f64, double, D_MR, D_NR, D_MC, D_KC, D_NC, pack_a_f64, pack_b_f64, kernel_f64, f64)

/* ------------------------------------------------------------------------------ exports */
/*
 * batch x inner gemms in one call (plain gemm is batch = inner = 1): problem (b, j) reads A at
 * b * strideA + j * innerStrideA elements, and likewise B and C. Dimensions, leading dimensions and
 * strides are element counts that fit in 32 bits, since every operand lies in this 32-bit memory.
 */
#define DEFINE_EXPORT(NAME, T, GEMM)                                                                  \
  EXPORT(#NAME)                                                                                       \
  void NAME(int transA, int transB, uint32_t M, uint32_t N, uint32_t K, double alpha, const T *A,      \
            uint32_t lda, uint32_t strideA, uint32_t innerStrideA, const T *B, uint32_t ldb,            \
            uint32_t strideB, uint32_t innerStrideB, double beta, T *C, uint32_t ldc, uint32_t strideC, \
            uint32_t innerStrideC, uint32_t batch, uint32_t inner) {                                  \
    for (size_t b = 0; b < batch; b++) {                                                              \
      for (size_t j = 0; j < inner; j++) {                                                            \
        GEMM(transA, transB, M, N, K, (T)alpha, A + b * strideA + j * innerStrideA, lda,               \
             B + b * strideB + j * innerStrideB, ldb, (T)beta, C + b * strideC + j * innerStrideC, ldc); \
      }                                                                                               \
    }                                                                                                 \
  }

DEFINE_EXPORT(inrun_gemm_f32, float, gemm_f32)
DEFINE_EXPORT(inrun_gemm_f64, double, gemm_f64)
