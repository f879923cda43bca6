/*
 * inrun_blas: a small N-API addon that hands inrun's matrix products to OpenBLAS.
 *
 * Exports
 *   gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
 *   gemmBatched(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB,
 *               beta, C, ldc, strideC, batch[, inner, innerStrideA, innerStrideB, innerStrideC])
 *   setThreads(n), getThreads()   (the threads of the pool in native/inrun_pool.c; OpenBLAS runs on one)
 *   the element-wise and reduction ops of native/inrun_ops.c (added by inrun_ops_register)
 *
 * Matrices are row-major typed arrays (all Float32Array or all Float64Array) read and written in
 * place: the data pointer comes straight from napi_get_typedarray_info, which already accounts for
 * the view's byteOffset, so subarray views work without copying. Every argument is checked before
 * OpenBLAS is called (same rules and messages as src/kernels/validate.ts), so a bad shape throws a
 * TypeError or RangeError naming the argument instead of touching memory outside the arrays.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inrun_pool.h"

#define MAX_DIM 2147483647.0
#define MAX_SAFE_INTEGER 9007199254740991.0
#define MSG_LEN 512

/* ---------------------------------------------------------------- errors and formatting */

static void throw_fmt(napi_env env, bool range, const char *fmt, ...) {
  char msg[MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (range) {
    napi_throw_range_error(env, NULL, msg);
  } else {
    napi_throw_type_error(env, NULL, msg);
  }
}

/* Formats a double the way JavaScript's String(x) does for the cases that matter here. */
static void fmt_number(double v, char *buf, size_t size) {
  if (isnan(v)) {
    snprintf(buf, size, "NaN");
  } else if (isinf(v)) {
    snprintf(buf, size, v > 0 ? "Infinity" : "-Infinity");
  } else if (v == floor(v) && fabs(v) < 1e21) {
    snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
  } else {
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, size, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
  }
}

static const char *value_type_name(napi_env env, napi_value value) {
  napi_valuetype t;
  if (napi_typeof(env, value, &t) != napi_ok) return "unknown";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "object";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

static const char *typedarray_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

/* ---------------------------------------------------------------- argument readers */
/* Each returns false after throwing a JS exception. */

static bool get_bool(napi_env env, const char *fn, const char *name, napi_value v, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
    throw_fmt(env, false, "%s: %s must be a boolean, got %s", fn, name, value_type_name(env, v));
    return false;
  }
  return napi_get_value_bool(env, v, out) == napi_ok;
}

static bool get_number(napi_env env, const char *fn, const char *name, napi_value v, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_fmt(env, false, "%s: %s must be a number, got %s", fn, name, value_type_name(env, v));
    return false;
  }
  return napi_get_value_double(env, v, out) == napi_ok;
}

static bool get_int(napi_env env, const char *fn, const char *name, napi_value v, double min, double max,
                    int64_t *out) {
  double d;
  if (!get_number(env, fn, name, v, &d)) return false;
  if (!(d == floor(d) && d >= min && d <= max)) {
    char got[64];
    fmt_number(d, got, sizeof got);
    throw_fmt(env, true, "%s: %s must be an integer in [%.0f, %.0f], got %s", fn, name, min, max, got);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

typedef struct {
  napi_typedarray_type type;
  void *data; /* already offset by the view's byteOffset */
  size_t length;
} float_array;

static bool get_array(napi_env env, const char *fn, const char *name, napi_value v, float_array *out) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    throw_fmt(env, false, "%s: %s must be a Float32Array or Float64Array, got %s", fn, name,
              value_type_name(env, v));
    return false;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) {
    throw_fmt(env, false, "%s: cannot read %s", fn, name);
    return false;
  }
  if (type != napi_float32_array && type != napi_float64_array) {
    throw_fmt(env, false, "%s: %s must be a Float32Array or Float64Array, got %s", fn, name,
              typedarray_name(type));
    return false;
  }
  out->type = type;
  out->length = length;
  out->data = data;
  return true;
}

/* ---------------------------------------------------------------- gemm */

/* Elements a row-major rows x width matrix with leading dimension ld occupies over a batch x inner
 * grid. Computed in double: exact below 2^53, and anything larger exceeds every array length anyway. */
static double elements_needed(int64_t rows, int64_t width, int64_t ld, int64_t stride, int64_t batch,
                              int64_t inner_stride, int64_t inner) {
  if (rows == 0 || width == 0 || batch == 0 || inner == 0) return 0;
  return (double)(batch - 1) * (double)stride + (double)(inner - 1) * (double)inner_stride +
         (double)(rows - 1) * (double)ld + (double)width;
}

/* An optional trailing integer: `fallback` when undefined, otherwise checked like get_int. */
static bool get_int_opt(napi_env env, const char *fn, const char *name, napi_value v, int64_t fallback,
                        double max, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_undefined) {
    *out = fallback;
    return true;
  }
  return get_int(env, fn, name, v, 0, max, out);
}

typedef struct {
  const char *name;
  const char *ld_name;
  float_array arr;
  int64_t rows, width, ld, stride, inner_stride;
  bool trans;
  char dims[160];
} matrix_arg;

/* ---------------------------------------------------------------- gemm */

/* Products up to this many multiply-adds are not worth splitting. */
#define SMALL_GEMM_WORK 131072.0

/* One gemmBatched call, checked: problem p is (b, j) = (p / inner, p % inner). */
typedef struct {
  bool f32;
  enum CBLAS_TRANSPOSE ta, tb;
  int64_t M, N, K;
  double alpha, beta;
  void *A, *B, *C;
  int64_t lda, ldb, ldc, strideA, strideB, strideC, inner, inner_strideA, inner_strideB, inner_strideC;
} gemm_job;

static void gemm_problems(void *arg, int64_t begin, int64_t end) {
  const gemm_job *g = arg;
  const int64_t M = g->M, N = g->N, K = g->K, ldc = g->ldc;
  const size_t size = g->f32 ? sizeof(float) : sizeof(double);
  for (int64_t p = begin; p < end; p++) {
    const int64_t b = p / g->inner, j = p % g->inner;
    const char *a = (const char *)g->A + (b * g->strideA + j * g->inner_strideA) * (int64_t)size;
    const char *bm = (const char *)g->B + (b * g->strideB + j * g->inner_strideB) * (int64_t)size;
    char *c = (char *)g->C + (b * g->strideC + j * g->inner_strideC) * (int64_t)size;
    /* beta = 0 overwrites C: clear it first so old NaN/Inf can never leak through. */
    if (g->beta == 0)
      for (int64_t i = 0; i < M; i++) memset(c + i * ldc * (int64_t)size, 0, (size_t)N * size);
    if (K == 0 || g->alpha == 0) {
      /* No product to add: C ← beta·C alone (OpenBLAS is not called with K = 0). */
      if (g->beta != 0 && g->beta != 1)
        for (int64_t i = 0; i < M; i++)
          for (int64_t jj = 0; jj < N; jj++) {
            if (g->f32) ((float *)c)[i * ldc + jj] *= (float)g->beta;
            else ((double *)c)[i * ldc + jj] *= g->beta;
          }
      continue;
    }
    if (g->f32)
      cblas_sgemm(CblasRowMajor, g->ta, g->tb, (blasint)M, (blasint)N, (blasint)K, (float)g->alpha,
                  (const float *)a, (blasint)g->lda, (const float *)bm, (blasint)g->ldb, (float)g->beta, (float *)c,
                  (blasint)ldc);
    else
      cblas_dgemm(CblasRowMajor, g->ta, g->tb, (blasint)M, (blasint)N, (blasint)K, g->alpha, (const double *)a,
                  (blasint)g->lda, (const double *)bm, (blasint)g->ldb, g->beta, (double *)c, (blasint)ldc);
  }
}

/* A large product is split into blocks of at least BLOCK_EDGE rows (or columns) of C. */
#define BLOCK_EDGE 64

/* Rows [b, e) of op(A) and C. */
static void gemm_rows(const gemm_job *job, int64_t b, int64_t e) {
  gemm_job g = *job;
  const int64_t size = g.f32 ? (int64_t)sizeof(float) : (int64_t)sizeof(double);
  g.A = (char *)g.A + (g.ta == CblasTrans ? b : b * g.lda) * size;
  g.C = (char *)g.C + b * g.ldc * size;
  g.M = e - b;
  gemm_problems(&g, 0, 1);
}

/* Columns [b, e) of op(B) and C. */
static void gemm_columns(const gemm_job *job, int64_t b, int64_t e) {
  gemm_job g = *job;
  const int64_t size = g.f32 ? (int64_t)sizeof(float) : (int64_t)sizeof(double);
  g.B = (char *)g.B + (g.tb == CblasTrans ? b * g.ldb : b) * size;
  g.C = (char *)g.C + b * size;
  g.N = e - b;
  gemm_problems(&g, 0, 1);
}

/* One product cut into `blocks` blocks of rows or columns of C, each one OpenBLAS call. */
typedef struct {
  const gemm_job *job;
  bool by_rows;
  int64_t edge, blocks;
} gemm_split;

static void gemm_blocks(void *arg, int64_t b, int64_t e) {
  const gemm_split *s = arg;
  for (int64_t i = b; i < e; i++) {
    const int64_t lo = s->edge * i / s->blocks, hi = s->edge * (i + 1) / s->blocks;
    if (s->by_rows) gemm_rows(s->job, lo, hi);
    else gemm_columns(s->job, lo, hi);
  }
}

static napi_value do_gemm(napi_env env, napi_callback_info info, bool batched) {
  const char *fn = batched ? "gemmBatched" : "gemm";
  size_t argc = 21;
  napi_value argv[21];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < 21; i++) argv[i] = undef;

  /* Argument positions. */
  const int iA = 6, ilda = 7;
  const int iB = batched ? 9 : 8, ildb = batched ? 10 : 9;
  const int ibeta = batched ? 12 : 10, iC = batched ? 13 : 11, ildc = batched ? 14 : 12;

  bool transA, transB;
  int64_t M, N, K, lda, ldb, ldc, strideA = 0, strideB = 0, strideC = 0, batch = 1;
  int64_t inner = 1, inner_strideA = 0, inner_strideB = 0, inner_strideC = 0;
  double alpha, beta;
  float_array A, B, C;

  if (!get_bool(env, fn, "transA", argv[0], &transA)) return NULL;
  if (!get_bool(env, fn, "transB", argv[1], &transB)) return NULL;
  if (!get_int(env, fn, "M", argv[2], 0, MAX_DIM, &M)) return NULL;
  if (!get_int(env, fn, "N", argv[3], 0, MAX_DIM, &N)) return NULL;
  if (!get_int(env, fn, "K", argv[4], 0, MAX_DIM, &K)) return NULL;
  if (!get_number(env, fn, "alpha", argv[5], &alpha)) return NULL;
  if (!get_number(env, fn, "beta", argv[ibeta], &beta)) return NULL;
  if (!get_array(env, fn, "A", argv[iA], &A)) return NULL;
  if (!get_array(env, fn, "B", argv[iB], &B)) return NULL;
  if (!get_array(env, fn, "C", argv[iC], &C)) return NULL;
  if (B.type != A.type) {
    throw_fmt(env, false, "%s: B is a %s but A is a %s (A, B and C must share one element type)", fn,
              typedarray_name(B.type), typedarray_name(A.type));
    return NULL;
  }
  if (C.type != A.type) {
    throw_fmt(env, false, "%s: C is a %s but A is a %s (A, B and C must share one element type)", fn,
              typedarray_name(C.type), typedarray_name(A.type));
    return NULL;
  }
  if (!get_int(env, fn, "lda", argv[ilda], 1, MAX_DIM, &lda)) return NULL;
  if (!get_int(env, fn, "ldb", argv[ildb], 1, MAX_DIM, &ldb)) return NULL;
  if (!get_int(env, fn, "ldc", argv[ildc], 1, MAX_DIM, &ldc)) return NULL;
  if (batched) {
    if (!get_int(env, fn, "strideA", argv[8], 0, MAX_SAFE_INTEGER, &strideA)) return NULL;
    if (!get_int(env, fn, "strideB", argv[11], 0, MAX_SAFE_INTEGER, &strideB)) return NULL;
    if (!get_int(env, fn, "strideC", argv[15], 0, MAX_SAFE_INTEGER, &strideC)) return NULL;
    if (!get_int(env, fn, "batch", argv[16], 0, MAX_DIM, &batch)) return NULL;
    if (!get_int_opt(env, fn, "inner", argv[17], 1, MAX_DIM, &inner)) return NULL;
    if (!get_int_opt(env, fn, "innerStrideA", argv[18], 0, MAX_SAFE_INTEGER, &inner_strideA)) return NULL;
    if (!get_int_opt(env, fn, "innerStrideB", argv[19], 0, MAX_SAFE_INTEGER, &inner_strideB)) return NULL;
    if (!get_int_opt(env, fn, "innerStrideC", argv[20], 0, MAX_SAFE_INTEGER, &inner_strideC)) return NULL;
  }

  /* Stored shapes: A is MxK (KxM transposed), B is KxN (NxK transposed), C is MxN. */
  matrix_arg mats[3] = {
    {"A", "lda", A, transA ? K : M, transA ? M : K, lda, strideA, inner_strideA, transA, ""},
    {"B", "ldb", B, transB ? N : K, transB ? K : N, ldb, strideB, inner_strideB, transB, ""},
    {"C", "ldc", C, M, N, ldc, strideC, inner_strideC, false, ""},
  };
  snprintf(mats[0].dims, sizeof mats[0].dims, "%sM=%lld, K=%lld", transA ? "transA, " : "", (long long)M,
           (long long)K);
  snprintf(mats[1].dims, sizeof mats[1].dims, "%sK=%lld, N=%lld", transB ? "transB, " : "", (long long)K,
           (long long)N);
  snprintf(mats[2].dims, sizeof mats[2].dims, "M=%lld, N=%lld", (long long)M, (long long)N);

  for (int i = 0; i < 3; i++) {
    const matrix_arg *m = &mats[i];
    if (m->ld < m->width) {
      throw_fmt(env, true, "%s: %s=%lld is less than %lld, the row width of %s (stored %lldx%lld%s)", fn,
                m->ld_name, (long long)m->ld, (long long)m->width, m->name, (long long)m->rows,
                (long long)m->width, m->trans ? ", transposed" : "");
      return NULL;
    }
  }
  for (int i = 0; i < 3; i++) {
    const matrix_arg *m = &mats[i];
    double need = elements_needed(m->rows, m->width, m->ld, m->stride, batch, m->inner_stride, inner);
    if ((double)m->arr.length < need) {
      char need_s[64], extra[192] = "";
      fmt_number(need, need_s, sizeof need_s);
      if (batched) {
        int used = snprintf(extra, sizeof extra, ", stride%s=%lld, batch=%lld", m->name, (long long)m->stride,
                            (long long)batch);
        if (inner != 1 && used > 0 && (size_t)used < sizeof extra) {
          snprintf(extra + used, sizeof extra - (size_t)used, ", innerStride%s=%lld, inner=%lld", m->name,
                   (long long)m->inner_stride, (long long)inner);
        }
      }
      throw_fmt(env, true, "%s: %s has %zu elements but %s, %s=%lld%s needs %s", fn, m->name, m->arr.length,
                m->dims, m->ld_name, (long long)m->ld, extra, need_s);
      return NULL;
    }
  }

  if (M == 0 || N == 0 || batch == 0 || inner == 0) return undef;

  gemm_job job = {
      .f32 = A.type == napi_float32_array,
      .ta = transA ? CblasTrans : CblasNoTrans,
      .tb = transB ? CblasTrans : CblasNoTrans,
      .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
      .A = A.data, .B = B.data, .C = C.data,
      .lda = lda, .ldb = ldb, .ldc = ldc,
      .strideA = strideA, .strideB = strideB, .strideC = strideC,
      .inner = inner, .inner_strideA = inner_strideA, .inner_strideB = inner_strideB,
      .inner_strideC = inner_strideC,
  };
  /* OpenBLAS runs on one thread (see the module's init); the pool splits the work: many small
   * products (attention's, one per example and head) by problem — the same bits at any thread
   * count — and a large one into one block of rows or of columns of C (whichever it has more
   * of) per thread. OpenBLAS's result for an element depends on the block it falls in, so
   * large products at different thread counts agree to float rounding, as with OpenBLAS's own
   * threads. */
  const int64_t problems = batch * inner;
  if (problems > 1 || (double)M * (double)N * (double)K <= SMALL_GEMM_WORK) {
    inrun_parallel_for(problems, 1, gemm_problems, &job);
  } else {
    const bool by_rows = M >= N;
    const int64_t edge = by_rows ? M : N;
    int64_t blocks = edge / BLOCK_EDGE;
    if (blocks > inrun_pool_threads()) blocks = inrun_pool_threads();
    if (blocks < 1) blocks = 1;
    gemm_split split = {&job, by_rows, edge, blocks};
    inrun_parallel_for(blocks, 1, gemm_blocks, &split);
  }
  return undef;
}

static napi_value js_gemm(napi_env env, napi_callback_info info) { return do_gemm(env, info, false); }

static napi_value js_gemm_batched(napi_env env, napi_callback_info info) { return do_gemm(env, info, true); }

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) napi_get_undefined(env, &argv[0]);
  int64_t n;
  if (!get_int(env, "setThreads", "threads", argv[0], 1, 1024, &n)) return NULL;
  inrun_pool_set_threads((int)n);
  return NULL;
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, inrun_pool_threads(), &result);
  return result;
}

static napi_value js_get_config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  const char *config = openblas_get_config();
  napi_create_string_utf8(env, config ? config : "", NAPI_AUTO_LENGTH, &result);
  return result;
}

/* native/inrun_ops.c */
bool inrun_ops_register(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"gemm", NULL, js_gemm, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gemmBatched", NULL, js_gemm_batched, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setThreads", NULL, js_set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getThreads", NULL, js_get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getConfig", NULL, js_get_config, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (!inrun_ops_register(env, exports)) return NULL;
  /* The pool takes the threads OpenBLAS would have used (its default, or OPENBLAS_NUM_THREADS)
   * until setThreads says otherwise, and OpenBLAS itself runs on the calling thread: its own
   * threads would split products again and, idle, spin between calls. */
  inrun_pool_set_threads(openblas_get_num_threads());
  openblas_set_num_threads(1);
  return exports;
}
