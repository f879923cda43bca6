/*
 * inrun_ops: the element-wise and reduction kernels of `KernelOps` (src/kernels/types.ts) for the
 * native addon — bias add and sum, column sums, element-wise add, activations with their backward
 * and R-operator, softmax cross-entropy, attention's causal softmax, LayerNorm, gather/scatter
 * (im2col, col2im, max-pool routing), transpose, max-pool forward, the SGD/Adam updates, and for
 * valued steps the LayerNorm and loss R-operators and Adam's plan vectors.
 * Registered on the addon's exports by inrun_ops_register (called from inrun_blas.c).
 *
 * Every entry point checks its arguments first, with the same rules and messages as the portable
 * twins (src/kernels/ops.ts): float arrays of one type, lengths enough for the sizes given, index
 * tables inside their arrays. The loops themselves live in inrun_ops_impl.h, once per element
 * type, and are built with -O3 so the compiler vectorises the element-wise ones.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inrun_pool.h"

#define MSG_LEN 512
#define MAX_ARGS 14

/*
 * The element-wise loops are built twice, for AVX2 and for any x86-64, and the dynamic loader picks
 * the one this CPU runs (GCC function multiversioning): four doubles per instruction instead of
 * two, with the same arithmetic (no FMA contraction under -std=c11), so both give the same bits.
 * Elsewhere they are built once for the compiler's target.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

enum { ACT_RELU = 0, ACT_GELU = 1, ACT_TANH = 2, ACT_SIGMOID = 3 };

/* GELU with GPT-2's tanh approximation, as src/kernels/ops.ts. */
#define GELU_C 0.7978845608028654 /* √(2/π) */
#define GELU_A 0.044715

/*
 * exp(x) written so the compiler can vectorise loops that call it (libm's exp is one scalar call
 * per element): x = k·ln2 + r with |r| ≤ ln2/2 (Cody–Waite: ln2 in two parts, k·LN2_HI exact), e^r
 * by its Taylor series to r¹³ (truncation < 1e-17 relative), 2^k from the exponent bits. k is
 * read off the bits of x/ln2 + 1.5·2⁵² and applied as two factors 2^k1·2^k2, so results that
 * overflow become ∞ and those below the normal range round through the subnormals, as libm's do.
 * Within 2 ulp of the correctly rounded value on the tests' grids; NaN stays NaN, ±∞ give ∞ and 0.
 */
static inline double vexp(double x) {
  const double shifter = 0x1.8p52;
  const double xc = x < -746 ? -746 : (x > 710 ? 710 : x);
  const double kd = xc * 0x1.71547652b82fep0 + shifter; /* x/ln2 rounded to an integer, in the low bits */
  uint64_t kbits, shifter_bits;
  memcpy(&kbits, &kd, sizeof kd);
  memcpy(&shifter_bits, &shifter, sizeof shifter);
  const double k = kd - shifter;
  const double r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r * r + r + 1.0;
  /* k ∈ [−1077, 1025]: k1 = ⌊(k + 2048)/2⌋ − 1024 and k2 = k − k1 are both normal exponents. */
  const uint64_t biased = kbits - shifter_bits + 2048; /* k + 2048 ≥ 0 */
  const uint64_t k1 = (biased >> 1) - 1024 + 1023, k2 = biased - (biased >> 1) - 1024 + 1023;
  const uint64_t b1 = k1 << 52, b2 = k2 << 52;
  double s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return p * s1 * s2;
}

/*
 * Long sums run in LANES partial sums, element e into lane e mod LANES and the last (n mod LANES)
 * elements added after them: one running sum waits on each add, eight vectorise. They are combined
 * in this fixed order, which the TypeScript twins (laneSum in src/kernels/ops.ts) repeat exactly.
 */
#define LANES 8
static inline double lane_sum(const double s[LANES]) {
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static inline double fast_tanh(double u) { return 1 - 2 / (vexp(2 * u) + 1); }

static inline double gelu_df(double x) {
  const double th = fast_tanh(GELU_C * (x + GELU_A * x * x * x));
  const double du = GELU_C * (1 + 3 * GELU_A * x * x);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
}

/*
 * Float32 tensors take float arithmetic in the step's costliest transcendental loops (GELU forward
 * and backward, softmax cross-entropy's exponentials): a vector holds 8 floats to 4 doubles, and
 * the exponential needs 7 polynomial terms instead of 13. vexpf is vexp's method in float:
 * x = k·ln2 + r (Cody–Waite, |r| ≤ ln2/2), e^r to r⁷ (truncation 5e-9 relative), 2^k as two factors
 * so that overflow gives ∞ and underflow goes through the subnormals; about 1–2 float ulp. The
 * results differ from the float64-arithmetic TypeScript twins by a few float ulp, the rounding
 * float32 storage already adds (tested: within 2.5e-7 of max(1, |value|) of float64 definitions).
 */
static inline float vexpf(float x) {
  const float shifter = 0x1.8p23f;
  const float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  const float kd = xc * 0x1.715476p0f + shifter; /* x/ln2 rounded to an integer, in the low bits */
  uint32_t kbits, shifter_bits;
  memcpy(&kbits, &kd, sizeof kd);
  memcpy(&shifter_bits, &shifter, sizeof shifter);
  const float k = kd - shifter;
  const float r = (xc - k * 0x1.62e4p-1f) - k * 0x1.7f7d1cp-20f; /* ln2 = hi + lo, k·hi exact */
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r * r + r + 1.0f;
  /* k ∈ [−151, 129]: k1 = ⌊(k + 256)/2⌋ − 128 and k2 = k − k1 are both normal exponents. */
  const uint32_t biased = kbits - shifter_bits + 256; /* k + 256 ≥ 0 */
  const uint32_t k1 = (biased >> 1) - 128 + 127, k2 = biased - (biased >> 1) - 128 + 127;
  const uint32_t b1 = k1 << 23, b2 = k2 << 23;
  float s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return p * s1 * s2;
}

/*
 * GELU in float as x·σ(2u), u = √(2/π)(x + 0.044715x³) (the same function as ½x(1 + tanh u)), with
 * σ(2u) and 1 − σ(2u) both from e^{−2|u|}, so neither cancels in float; its derivative is
 * σ + 2x·σ(1 − σ)·u′.
 */
static inline void gelu_sigmoids_f32(float x, float *s, float *sc) {
  const float u = (float)GELU_C * (x + (float)GELU_A * x * x * x);
  const float e = vexpf(-2.0f * fabsf(u));
  const float r = 1.0f / (1.0f + e);
  *s = u >= 0 ? r : e * r;
  *sc = u >= 0 ? e * r : r;
}

static inline float gelu_f32(float x) {
  float s, sc;
  gelu_sigmoids_f32(x, &s, &sc);
  return x * s;
}

static inline float gelu_df_f32(float x) {
  float s, sc;
  gelu_sigmoids_f32(x, &s, &sc);
  return s + 2.0f * x * s * sc * ((float)GELU_C * (1.0f + 3.0f * (float)GELU_A * x * x));
}

static inline double gelu_f64(double x) { return 0.5 * x * (1 + fast_tanh(GELU_C * (x + GELU_A * x * x * x))); }

static inline double act_df(int kind, double x, double y) {
  switch (kind) {
    case ACT_RELU: return (double)(x > 0);
    case ACT_TANH: return 1 - y * y;
    case ACT_SIGMOID: return y * (1 - y);
    default: return gelu_df(x);
  }
}

static inline double act_d2f(int kind, double x, double y) {
  switch (kind) {
    case ACT_RELU: return 0;
    case ACT_TANH: return -2 * y * (1 - y * y);
    case ACT_SIGMOID: return y * (1 - y) * (1 - 2 * y);
    default: {
      const double th = fast_tanh(GELU_C * (x + GELU_A * x * x * x));
      const double sech2 = 1 - th * th;
      const double du = GELU_C * (1 + 3 * GELU_A * x * x);
      const double d2u = GELU_C * 6 * GELU_A * x;
      return sech2 * du - x * sech2 * th * du * du + 0.5 * x * sech2 * d2u;
    }
  }
}

/*
 * Runs the body (the last argument) with `name` bound to the constant activation `kind`, so that each loop inside is
 * compiled once per activation, free of the switch in act_df/act_d2f, and can vectorise.
 */
#define FOR_EACH_ACTIVATION(kind, name, ...) \
  switch (kind) {                             \
    case ACT_RELU: {                          \
      const int name = ACT_RELU;              \
      __VA_ARGS__;                            \
    } break;                                  \
    case ACT_TANH: {                          \
      const int name = ACT_TANH;              \
      __VA_ARGS__;                            \
    } break;                                  \
    case ACT_SIGMOID: {                       \
      const int name = ACT_SIGMOID;           \
      __VA_ARGS__;                            \
    } break;                                  \
    default: {                                \
      const int name = ACT_GELU;              \
      __VA_ARGS__;                            \
    } break;                                  \
  }

/* Per element type: the arithmetic type of the loops that have one, and their exp and GELU (see vexpf). */
#define T float
#define SUF f32
#define REAL float
#define EXP vexpf
#define GELU gelu_f32
#define GELU_DF gelu_df_f32
#include "inrun_ops_impl.h"
#undef T
#undef SUF
#undef REAL
#undef EXP
#undef GELU
#undef GELU_DF
#define T double
#define SUF f64
#define REAL double
#define EXP vexp
#define GELU gelu_f64
#define GELU_DF gelu_df
#include "inrun_ops_impl.h"
#undef T
#undef SUF
#undef REAL
#undef EXP
#undef GELU
#undef GELU_DF

/* ---------------------------------------------------------------- argument reading */

/* One call's arguments; `type` is the element type of the first float array read. */
typedef struct {
  napi_env env;
  const char *fn;
  napi_value argv[MAX_ARGS];
  bool have_type;
  napi_typedarray_type type;
  const char *type_name;
} call;

static void throw_fmt(call *c, bool range, const char *fmt, ...) {
  char msg[MSG_LEN];
  int used = snprintf(msg, sizeof msg, "%s: ", c->fn);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + used, sizeof msg - (size_t)used, fmt, ap);
  va_end(ap);
  if (range) {
    napi_throw_range_error(c->env, NULL, msg);
  } else {
    napi_throw_type_error(c->env, NULL, msg);
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
    case napi_bigint: return "bigint";
    case napi_function: return "function";
    default: return "object";
  }
}

static const char *array_type_name(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint8_array: return "Uint8Array";
    default: return "TypedArray";
  }
}

static bool begin(call *c, napi_env env, napi_callback_info info, const char *fn) {
  c->env = env;
  c->fn = fn;
  c->have_type = false;
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, c->argv, NULL, NULL) != napi_ok) return false;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < MAX_ARGS; i++) c->argv[i] = undef;
  return true;
}

static bool is_null(call *c, int i) {
  napi_valuetype t;
  return napi_typeof(c->env, c->argv[i], &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

static bool get_number(call *c, int i, const char *name, double *out) {
  napi_valuetype t;
  if (napi_typeof(c->env, c->argv[i], &t) != napi_ok || t != napi_number) {
    throw_fmt(c, false, "%s must be a number, got %s", name, value_type_name(c->env, c->argv[i]));
    return false;
  }
  return napi_get_value_double(c->env, c->argv[i], out) == napi_ok;
}

static bool get_size(call *c, int i, const char *name, int64_t *out) {
  double d;
  if (!get_number(c, i, name, &d)) return false;
  if (!(d == floor(d) && d >= 0 && d <= 2147483647.0)) {
    char got[64];
    snprintf(got, sizeof got, "%.17g", d);
    throw_fmt(c, true, "%s must be an integer in [0, 2147483647], got %s", name, got);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool get_bool(call *c, int i, const char *name, bool *out) {
  napi_valuetype t;
  if (napi_typeof(c->env, c->argv[i], &t) != napi_ok || t != napi_boolean) {
    throw_fmt(c, false, "%s must be a boolean, got %s", name, value_type_name(c->env, c->argv[i]));
    return false;
  }
  return napi_get_value_bool(c->env, c->argv[i], out) == napi_ok;
}

/* A typed array of any kind: its type, data pointer (view offset applied) and length. */
static bool typed(call *c, int i, const char *name, const char *want, napi_typedarray_type *type, void **data,
                  size_t *length) {
  bool is_ta = false;
  if (napi_is_typedarray(c->env, c->argv[i], &is_ta) != napi_ok || !is_ta) {
    throw_fmt(c, false, "%s must be a%s %s, got %s", name, want[0] == 'I' ? "n" : "", want,
              value_type_name(c->env, c->argv[i]));
    return false;
  }
  if (napi_get_typedarray_info(c->env, c->argv[i], type, length, data, NULL, NULL) != napi_ok) {
    throw_fmt(c, false, "cannot read %s", name);
    return false;
  }
  return true;
}

static bool check_length(call *c, const char *name, size_t length, double need) {
  if ((double)length < need) {
    throw_fmt(c, true, "%s has %zu elements but needs %.0f", name, length, need);
    return false;
  }
  return true;
}

/* A Float32Array or Float64Array of at least `need` elements, of the call's element type. */
static bool get_floats(call *c, int i, const char *name, double need, void **data, size_t *length) {
  napi_typedarray_type type;
  size_t len;
  if (!typed(c, i, name, "Float32Array or Float64Array", &type, data, &len)) return false;
  if (type != napi_float32_array && type != napi_float64_array) {
    throw_fmt(c, false, "%s must be a Float32Array or Float64Array, got %s", name, array_type_name(type));
    return false;
  }
  if (!c->have_type) {
    c->have_type = true;
    c->type = type;
    c->type_name = array_type_name(type);
  } else if (type != c->type) {
    throw_fmt(c, false,
              "%s is a %s but the first array is a %s (float arrays must share one element type)", name,
              array_type_name(type), c->type_name);
    return false;
  }
  if (length) *length = len;
  return check_length(c, name, len, need);
}

static bool get_typed_of(call *c, int i, const char *name, napi_typedarray_type want, const char *want_name,
                         double need, void **data, size_t *length) {
  napi_typedarray_type type;
  size_t len;
  if (!typed(c, i, name, want_name, &type, data, &len)) return false;
  if (type != want) {
    throw_fmt(c, false, "%s must be a%s %s, got %s", name, want_name[0] == 'I' ? "n" : "", want_name,
              array_type_name(type));
    return false;
  }
  if (length) *length = len;
  return check_length(c, name, len, need);
}

static bool get_ints(call *c, int i, const char *name, double need, int32_t **data, size_t *length) {
  return get_typed_of(c, i, name, napi_int32_array, "Int32Array", need, (void **)data, length);
}

static bool get_doubles(call *c, int i, const char *name, double need, double **data) {
  return get_typed_of(c, i, name, napi_float64_array, "Float64Array", need, (void **)data, NULL);
}

static bool get_kind(call *c, int i, int *kind) {
  char buf[16];
  size_t len = 0;
  napi_valuetype t;
  if (napi_typeof(c->env, c->argv[i], &t) == napi_ok && t == napi_string &&
      napi_get_value_string_utf8(c->env, c->argv[i], buf, sizeof buf, &len) == napi_ok) {
    if (strcmp(buf, "relu") == 0) return (*kind = ACT_RELU), true;
    if (strcmp(buf, "gelu") == 0) return (*kind = ACT_GELU), true;
    if (strcmp(buf, "tanh") == 0) return (*kind = ACT_TANH), true;
    if (strcmp(buf, "sigmoid") == 0) return (*kind = ACT_SIGMOID), true;
  }
  throw_fmt(c, false, "kind must be one of relu, gelu, tanh, sigmoid, got %s",
            t == napi_string ? buf : value_type_name(c->env, c->argv[i]));
  return false;
}

/* Every index < 0 (skipped) or inside `length` elements for all `count` blocks `stride` apart. */
static bool check_index_range(call *c, const int32_t *index, int64_t L, int64_t stride, int64_t count,
                              size_t length) {
  int64_t max = -1;
  for (int64_t j = 0; j < L; j++)
    if (index[j] > max) max = index[j];
  if (count > 0 && max >= 0 && (double)(count - 1) * (double)stride + (double)max >= (double)length) {
    throw_fmt(c, true, "index reaches %lld in block %lld (stride %lld), past the array's %zu elements",
              (long long)max, (long long)(count - 1), (long long)stride, length);
    return false;
  }
  return true;
}

#define F32 (c.type == napi_float32_array)

/* ---------------------------------------------------------------- splitting over the pool */

/*
 * The long loops are split over the pool's threads (native/inrun_pool.h) by elements or by rows;
 * every element and every row is computed by one thread exactly as a single thread would, so the
 * results do not depend on the thread count. Below these sizes a call stays on its thread: waking
 * a worker costs microseconds. Memory-bound loops (one add per element) need more work to pay.
 */
#define SPLIT_WORK 65536
#define SPLIT_WORK_LIGHT 262144

/* A checked call's arguments for the range functions: float arrays (NULL where absent) first. */
typedef struct {
  bool f32;
  int kind;
  bool flag;
  void *a[8];
  double *d[4];
  const int32_t *idx;
  int32_t *idx_out;
  int64_t n1, n2, n3;
  double s[8];
} split_args;

/* Float array k advanced by i elements of the call's type (NULL stays NULL). */
static inline void *at(const split_args *j, int k, int64_t i) {
  return j->a[k] ? (char *)j->a[k] + i * (j->f32 ? (int64_t)sizeof(float) : (int64_t)sizeof(double)) : NULL;
}

/* The float32 or the float64 loop, by the call's type. */
#define DISPATCH(j, name, ...) ((j)->f32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

/* Rows of `width` per part so that a part holds at least `work` element operations (at least one row). */
static inline int64_t rows_per_part(int64_t width, int64_t work) { return width > 0 && width < work ? work / width : 1; }

static void add_bias_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, add_bias, at(j, 0, b * j->n1 * j->n2), j->a[1], e - b, j->n1, j->n2);
}

static void row_dots_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, row_dots, at(j, 0, b * j->n2), at(j, 1, b * j->n3), j->a[2], e - b, j->n1, j->n2, j->n3,
           j->d[0] + b);
}

static void add_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, add, at(j, 0, b), at(j, 1, b), at(j, 2, b), e - b);
}

static void act_forward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, act_forward, j->kind, at(j, 0, b), at(j, 1, b), e - b);
}

static void act_backward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, act_backward, j->kind, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), e - b);
}

static void act_rforward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, act_rforward, j->kind, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), e - b);
}

static void act_rbackward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, act_rbackward, j->kind, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), at(j, 4, b),
           at(j, 5, b), e - b);
}

static void sce_forward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, sce_forward, at(j, 0, b * j->n1), j->idx + b, j->d[0] + b, e - b, j->n1, at(j, 1, b * j->n1),
           j->d[1] + b);
}

static void sce_backward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, sce_backward, at(j, 0, b * j->n1), j->idx + b, j->d[0] + b, e - b, j->n1, at(j, 1, b * j->n1));
}

static void causal_softmax_forward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, causal_softmax_forward, at(j, 0, b * j->n1 * j->n1), e - b, j->n1);
}

static void causal_softmax_backward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1 * j->n1;
  DISPATCH(j, causal_softmax_backward, at(j, 0, o), at(j, 1, o), e - b, j->n1);
}

static void causal_softmax_rbackward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1 * j->n1;
  DISPATCH(j, causal_softmax_rbackward, at(j, 0, o), at(j, 1, o), at(j, 2, o), at(j, 3, o), e - b, j->n1);
}

static void ln_forward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1;
  DISPATCH(j, ln_forward, at(j, 0, o), j->a[1], j->a[2], e - b, j->n1, j->s[0], j->flag, at(j, 3, o), j->d[0] + b,
           at(j, 4, o));
}

static void ln_backward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1;
  DISPATCH(j, ln_backward, at(j, 0, o), at(j, 1, o), j->d[0] + b, j->a[2], e - b, j->n1, j->flag, at(j, 3, o));
}

static void sce_rbackward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1;
  DISPATCH(j, sce_rbackward, at(j, 0, o), at(j, 1, o), j->d[0] + b, e - b, j->n1, at(j, 2, o));
}

static void ln_rforward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1;
  DISPATCH(j, ln_rforward, at(j, 0, o), j->d[0] + b, j->a[1], j->a[2], j->a[3], at(j, 4, o), e - b, j->n1, j->flag,
           at(j, 5, o), j->d[1] ? j->d[1] + b : NULL, at(j, 6, o));
}

/* Split by columns: each part sums its columns over all rows, in row order. */
static void ln_rbackward_sums_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, ln_rbackward_sums, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), j->n2, j->n1, e - b,
           j->d[2] + b, j->d[3] ? j->d[3] + b : NULL);
}

static void ln_rbackward_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1;
  DISPATCH(j, ln_rbackward, at(j, 0, o), at(j, 1, o), at(j, 2, o), at(j, 3, o), j->d[0] + b,
           j->d[1] ? j->d[1] + b : NULL, j->a[4], j->a[5], e - b, j->n1, j->flag, at(j, 6, o));
}

static void gather_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, gather, at(j, 0, b * j->n2), j->idx, j->n1, e - b, j->n2, at(j, 1, b * j->n1));
}

/* Only for blocks that do not overlap (every index below the stride): each writes its own. */
static void scatter_add_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, scatter_add, at(j, 0, b * j->n1), j->idx, j->n1, e - b, j->n2, at(j, 1, b * j->n2));
}

static void gather_rows_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, gather_rows, j->a[0], j->idx + b, e - b, j->n1, at(j, 1, b * j->n1));
}

static void transpose_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const int64_t o = b * j->n1 * j->n2;
  DISPATCH(j, transpose, at(j, 0, o), at(j, 1, o), e - b, j->n1, j->n2);
}

static void max_pool_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, max_pool, j->a[0], j->idx, b, e, j->n1, j->n2, j->n3, j->a[1], j->idx_out);
}

static void sgd_update_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, sgd_update, at(j, 0, b), at(j, 1, b), at(j, 2, b), e - b, j->s[0], j->s[1], j->s[2], j->s[3], j->s[4],
           j->flag);
}

static void adam_update_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const double *s = j->s;
  DISPATCH(j, adam_update, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), e - b, s[0], s[1], s[2], s[3], s[4],
           s[5], s[6], s[7]);
}

static void adam_preconditioner_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const double *s = j->s;
  DISPATCH(j, adam_preconditioner, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), e - b, s[0], s[1], s[2], s[3],
           s[4]);
}

static void adam_linearise_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  const double *s = j->s;
  DISPATCH(j, adam_linearise, at(j, 0, b), at(j, 1, b), at(j, 2, b), at(j, 3, b), e - b, s[0], s[1], j->flag, s[2],
           s[3]);
}

static void scale_vector_range(void *p, int64_t b, int64_t e) {
  const split_args *j = p;
  DISPATCH(j, scale_vector, at(j, 0, b), j->s[0], at(j, 1, b), at(j, 2, b), e - b);
}

/* ---------------------------------------------------------------- entry points */

static napi_value js_add_bias(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "addBias")) return NULL;
  int64_t outer, channels, inner;
  void *data, *bias;
  if (!get_size(&c, 2, "outer", &outer) || !get_size(&c, 3, "channels", &channels) ||
      !get_size(&c, 4, "inner", &inner))
    return NULL;
  if (!get_floats(&c, 0, "data", (double)outer * channels * inner, &data, NULL)) return NULL;
  if (!get_floats(&c, 1, "bias", (double)channels, &bias, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {data, bias}, .n1 = channels, .n2 = inner};
  inrun_parallel_for(outer, rows_per_part(channels * inner, SPLIT_WORK_LIGHT), add_bias_range, &j);
  return NULL;
}

static napi_value js_sum_bias(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "sumBias")) return NULL;
  int64_t outer, channels, inner;
  double scale;
  void *out, *data;
  if (!get_size(&c, 2, "outer", &outer) || !get_size(&c, 3, "channels", &channels) ||
      !get_size(&c, 4, "inner", &inner) || !get_number(&c, 5, "scale", &scale))
    return NULL;
  if (!get_floats(&c, 0, "out", (double)channels, &out, NULL)) return NULL;
  if (!get_floats(&c, 1, "data", (double)outer * channels * inner, &data, NULL)) return NULL;
  double *acc = malloc(sizeof(double) * (size_t)(channels > 0 ? channels : 1));
  if (!acc) {
    throw_fmt(&c, true, "out of memory");
    return NULL;
  }
  if (F32) sum_bias_f32(out, data, outer, channels, inner, scale, acc);
  else sum_bias_f64(out, data, outer, channels, inner, scale, acc);
  free(acc);
  return NULL;
}

static napi_value js_row_dots(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "rowDots")) return NULL;
  int64_t rows, length, stride_a, stride_b;
  void *a, *b, *w = NULL;
  double *out;
  if (!get_size(&c, 3, "rows", &rows) || !get_size(&c, 4, "length", &length) ||
      !get_size(&c, 5, "strideA", &stride_a) || !get_size(&c, 6, "strideB", &stride_b))
    return NULL;
  const double span_a = rows == 0 ? 0 : (double)(rows - 1) * stride_a + length;
  const double span_b = rows == 0 ? 0 : (double)(rows - 1) * stride_b + length;
  if (!get_floats(&c, 0, "a", span_a, &a, NULL) || !get_floats(&c, 1, "b", span_b, &b, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "weights", (double)length, &w, NULL)) return NULL;
  if (!get_doubles(&c, 7, "out", (double)rows, &out)) return NULL;
  split_args j = {.f32 = F32, .a = {a, b, w}, .d = {out}, .n1 = length, .n2 = stride_a, .n3 = stride_b};
  inrun_parallel_for(rows, rows_per_part(length, SPLIT_WORK_LIGHT), row_dots_range, &j);
  return NULL;
}

static napi_value js_column_sums(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "columnSums")) return NULL;
  int64_t segments, R, W, stride;
  double *out;
  void *a, *b = NULL;
  if (!get_size(&c, 3, "segments", &segments) || !get_size(&c, 4, "rowsPerSegment", &R) ||
      !get_size(&c, 5, "width", &W))
    return NULL;
  napi_valuetype t;
  /* outStride defaults to width only when left out (undefined), as a TypeScript default parameter. */
  if (napi_typeof(env, c.argv[6], &t) == napi_ok && t == napi_undefined) stride = W;
  else if (!get_size(&c, 6, "outStride", &stride)) return NULL;
  const double total = (double)segments * R * W;
  const double span = segments == 0 || W == 0 ? 0 : (double)(segments - 1) * stride + W;
  if (!get_doubles(&c, 0, "out", span, &out) || !get_floats(&c, 1, "a", total, &a, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "b", total, &b, NULL)) return NULL;
  if (F32) column_sums_f32(out, a, b, segments, R, W, stride);
  else column_sums_f64(out, a, b, segments, R, W, stride);
  return NULL;
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "add")) return NULL;
  void *a, *b, *out;
  size_t na, nb, n;
  if (!get_floats(&c, 0, "a", 0, &a, &na) || !get_floats(&c, 1, "b", 0, &b, &nb) ||
      !get_floats(&c, 2, "out", 0, &out, &n) || !check_length(&c, "a", na, (double)n) ||
      !check_length(&c, "b", nb, (double)n))
    return NULL;
  split_args j = {.f32 = F32, .a = {a, b, out}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK_LIGHT, add_range, &j);
  return NULL;
}

static napi_value js_act_forward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "activationForward")) return NULL;
  int kind;
  void *x, *y;
  size_t n;
  if (!get_kind(&c, 0, &kind) || !get_floats(&c, 1, "x", 0, &x, &n) || !get_floats(&c, 2, "y", (double)n, &y, NULL))
    return NULL;
  split_args j = {.f32 = F32, .kind = kind, .a = {x, y}};
  inrun_parallel_for((int64_t)n, kind == ACT_RELU ? SPLIT_WORK_LIGHT : SPLIT_WORK, act_forward_range, &j);
  return NULL;
}

static napi_value js_act_backward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "activationBackward")) return NULL;
  int kind;
  void *x, *y, *dy, *dx;
  size_t n;
  if (!get_kind(&c, 0, &kind) || !get_floats(&c, 1, "x", 0, &x, &n) ||
      !get_floats(&c, 2, "y", (double)n, &y, NULL) || !get_floats(&c, 3, "dy", (double)n, &dy, NULL) ||
      !get_floats(&c, 4, "dx", (double)n, &dx, NULL))
    return NULL;
  split_args j = {.f32 = F32, .kind = kind, .a = {x, y, dy, dx}};
  inrun_parallel_for((int64_t)n, kind == ACT_RELU ? SPLIT_WORK_LIGHT : SPLIT_WORK, act_backward_range, &j);
  return NULL;
}

static napi_value js_act_rforward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "activationRForward")) return NULL;
  int kind;
  void *x, *y, *rx, *ry;
  size_t n;
  if (!get_kind(&c, 0, &kind) || !get_floats(&c, 1, "x", 0, &x, &n) ||
      !get_floats(&c, 2, "y", (double)n, &y, NULL) || !get_floats(&c, 3, "rx", (double)n, &rx, NULL) ||
      !get_floats(&c, 4, "ry", (double)n, &ry, NULL))
    return NULL;
  split_args j = {.f32 = F32, .kind = kind, .a = {x, y, rx, ry}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK, act_rforward_range, &j);
  return NULL;
}

static napi_value js_act_rbackward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "activationRBackward")) return NULL;
  int kind;
  void *x, *y, *dy, *rdy, *rx = NULL, *rdx;
  size_t n;
  if (!get_kind(&c, 0, &kind) || !get_floats(&c, 1, "x", 0, &x, &n) ||
      !get_floats(&c, 2, "y", (double)n, &y, NULL) || !get_floats(&c, 3, "dy", (double)n, &dy, NULL) ||
      !get_floats(&c, 4, "rdy", (double)n, &rdy, NULL))
    return NULL;
  if (!is_null(&c, 5) && !get_floats(&c, 5, "rx", (double)n, &rx, NULL)) return NULL;
  if (!get_floats(&c, 6, "rdx", (double)n, &rdx, NULL)) return NULL;
  split_args j = {.f32 = F32, .kind = kind, .a = {x, y, dy, rdy, rx, rdx}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK, act_rbackward_range, &j);
  return NULL;
}

/* Targets of the rows with a non-zero weight must be classes. */
static bool check_targets(call *c, const int32_t *targets, const double *weights, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; r++) {
    if (weights[r] != 0 && !(targets[r] >= 0 && targets[r] < C)) {
      throw_fmt(c, true, "targets[%lld] = %d is outside 0..%lld", (long long)r, targets[r], (long long)(C - 1));
      return false;
    }
  }
  return true;
}

static napi_value js_sce_forward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "softmaxCrossEntropyForward")) return NULL;
  int64_t rows, C;
  void *z, *p;
  int32_t *targets;
  double *weights, *row_loss;
  if (!get_size(&c, 4, "classes", &C) || !get_size(&c, 3, "rows", &rows)) return NULL;
  const double total = (double)rows * C;
  if (!get_floats(&c, 0, "z", total, &z, NULL) || !get_ints(&c, 1, "targets", (double)rows, &targets, NULL) ||
      !get_doubles(&c, 2, "weights", (double)rows, &weights) || !get_floats(&c, 5, "p", total, &p, NULL) ||
      !get_doubles(&c, 6, "rowLoss", (double)rows, &row_loss))
    return NULL;
  if (!check_targets(&c, targets, weights, rows, C)) return NULL;
  split_args j = {.f32 = F32, .a = {z, p}, .d = {weights, row_loss}, .idx = targets, .n1 = C};
  inrun_parallel_for(rows, rows_per_part(C, SPLIT_WORK), sce_forward_range, &j);
  return NULL;
}

static napi_value js_sce_backward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "softmaxCrossEntropyBackward")) return NULL;
  int64_t rows, C;
  void *p, *dz;
  int32_t *targets;
  double *weights;
  if (!get_size(&c, 4, "classes", &C) || !get_size(&c, 3, "rows", &rows)) return NULL;
  const double total = (double)rows * C;
  if (!get_floats(&c, 0, "p", total, &p, NULL) || !get_ints(&c, 1, "targets", (double)rows, &targets, NULL) ||
      !get_doubles(&c, 2, "weights", (double)rows, &weights) || !get_floats(&c, 5, "dz", total, &dz, NULL))
    return NULL;
  if (!check_targets(&c, targets, weights, rows, C)) return NULL;
  split_args j = {.f32 = F32, .a = {p, dz}, .d = {weights}, .idx = targets, .n1 = C};
  inrun_parallel_for(rows, rows_per_part(C, SPLIT_WORK_LIGHT), sce_backward_range, &j);
  return NULL;
}

static napi_value js_sce_rbackward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "softmaxCrossEntropyRBackward")) return NULL;
  int64_t rows, C;
  void *p, *rz, *rdz;
  double *weights;
  if (!get_size(&c, 4, "classes", &C) || !get_size(&c, 3, "rows", &rows)) return NULL;
  const double total = (double)rows * C;
  if (!get_floats(&c, 0, "p", total, &p, NULL) || !get_floats(&c, 1, "rz", total, &rz, NULL) ||
      !get_doubles(&c, 2, "weights", (double)rows, &weights) || !get_floats(&c, 5, "rdz", total, &rdz, NULL))
    return NULL;
  split_args j = {.f32 = F32, .a = {p, rz, rdz}, .d = {weights}, .n1 = C};
  inrun_parallel_for(rows, rows_per_part(C, SPLIT_WORK), sce_rbackward_range, &j);
  return NULL;
}

static napi_value js_causal_softmax_forward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "causalSoftmaxForward")) return NULL;
  int64_t blocks, n;
  void *s;
  if (!get_size(&c, 1, "blocks", &blocks) || !get_size(&c, 2, "T", &n) ||
      !get_floats(&c, 0, "s", (double)blocks * n * n, &s, NULL))
    return NULL;
  split_args j = {.f32 = F32, .a = {s}, .n1 = n};
  inrun_parallel_for(blocks, rows_per_part(n * n, SPLIT_WORK), causal_softmax_forward_range, &j);
  return NULL;
}

static napi_value js_causal_softmax_backward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "causalSoftmaxBackward")) return NULL;
  int64_t blocks, n;
  void *p, *g;
  if (!get_size(&c, 2, "blocks", &blocks) || !get_size(&c, 3, "T", &n)) return NULL;
  const double total = (double)blocks * n * n;
  if (!get_floats(&c, 0, "p", total, &p, NULL) || !get_floats(&c, 1, "g", total, &g, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {p, g}, .n1 = n};
  inrun_parallel_for(blocks, rows_per_part(n * n, SPLIT_WORK_LIGHT), causal_softmax_backward_range, &j);
  return NULL;
}

static napi_value js_causal_softmax_rbackward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "causalSoftmaxRBackward")) return NULL;
  int64_t blocks, n;
  void *p, *rp = NULL, *ds, *rds;
  if (!get_size(&c, 4, "blocks", &blocks) || !get_size(&c, 5, "T", &n)) return NULL;
  const double total = (double)blocks * n * n;
  if (!get_floats(&c, 0, "p", total, &p, NULL)) return NULL;
  if (!is_null(&c, 1) && !get_floats(&c, 1, "rp", total, &rp, NULL)) return NULL;
  if (!get_floats(&c, 2, "dS", total, &ds, NULL) || !get_floats(&c, 3, "rdS", total, &rds, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {p, rp, ds, rds}, .n1 = n};
  inrun_parallel_for(blocks, rows_per_part(n * n, SPLIT_WORK_LIGHT), causal_softmax_rbackward_range, &j);
  return NULL;
}

static napi_value js_ln_forward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "layerNormForward")) return NULL;
  int64_t rows, d;
  double eps;
  bool center;
  void *x, *gamma, *beta = NULL, *xhat, *y;
  double *rstd;
  if (!get_size(&c, 4, "width", &d) || !get_size(&c, 3, "rows", &rows) || !get_number(&c, 5, "eps", &eps) ||
      !get_bool(&c, 6, "center", &center))
    return NULL;
  const double total = (double)rows * d;
  if (!get_floats(&c, 0, "x", total, &x, NULL) || !get_floats(&c, 1, "gamma", (double)d, &gamma, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "beta", (double)d, &beta, NULL)) return NULL;
  if (!get_floats(&c, 7, "xhat", total, &xhat, NULL) || !get_doubles(&c, 8, "rstd", (double)rows, &rstd) ||
      !get_floats(&c, 9, "y", total, &y, NULL))
    return NULL;
  split_args j = {.f32 = F32, .flag = center, .a = {x, gamma, beta, xhat, y}, .d = {rstd}, .n1 = d, .s = {eps}};
  inrun_parallel_for(rows, rows_per_part(d, SPLIT_WORK_LIGHT), ln_forward_range, &j);
  return NULL;
}

static napi_value js_ln_backward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "layerNormBackward")) return NULL;
  int64_t rows, d;
  bool center;
  void *dy, *xhat, *gamma, *dx;
  double *rstd;
  if (!get_size(&c, 5, "width", &d) || !get_size(&c, 4, "rows", &rows) || !get_bool(&c, 6, "center", &center))
    return NULL;
  const double total = (double)rows * d;
  if (!get_floats(&c, 0, "dy", total, &dy, NULL) || !get_floats(&c, 1, "xhat", total, &xhat, NULL) ||
      !get_doubles(&c, 2, "rstd", (double)rows, &rstd) || !get_floats(&c, 3, "gamma", (double)d, &gamma, NULL) ||
      !get_floats(&c, 7, "dx", total, &dx, NULL))
    return NULL;
  split_args j = {.f32 = F32, .flag = center, .a = {dy, xhat, gamma, dx}, .d = {rstd}, .n1 = d};
  inrun_parallel_for(rows, rows_per_part(d, SPLIT_WORK_LIGHT), ln_backward_range, &j);
  return NULL;
}

static napi_value js_ln_rforward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "layerNormRForward")) return NULL;
  int64_t rows, d;
  bool center;
  void *xhat, *gamma, *vg, *vb = NULL, *rx = NULL, *rxhat = NULL, *ry;
  double *rstd, *shrink = NULL;
  if (!get_size(&c, 7, "width", &d) || !get_size(&c, 6, "rows", &rows) || !get_bool(&c, 8, "center", &center))
    return NULL;
  const double total = (double)rows * d;
  if (!get_floats(&c, 0, "xhat", total, &xhat, NULL) || !get_doubles(&c, 1, "rstd", (double)rows, &rstd) ||
      !get_floats(&c, 2, "gamma", (double)d, &gamma, NULL) || !get_floats(&c, 3, "vGamma", (double)d, &vg, NULL))
    return NULL;
  if (!is_null(&c, 4) && !get_floats(&c, 4, "vBeta", (double)d, &vb, NULL)) return NULL;
  if (!is_null(&c, 5) &&
      (!get_floats(&c, 5, "rx", total, &rx, NULL) || !get_floats(&c, 9, "rxhat", total, &rxhat, NULL) ||
       !get_doubles(&c, 10, "shrink", (double)rows, &shrink)))
    return NULL;
  if (!get_floats(&c, 11, "ry", total, &ry, NULL)) return NULL;
  split_args j = {.f32 = F32, .flag = center, .a = {xhat, gamma, vg, vb, rx, rxhat, ry}, .d = {rstd, shrink}, .n1 = d};
  inrun_parallel_for(rows, rows_per_part(d, SPLIT_WORK_LIGHT), ln_rforward_range, &j);
  return NULL;
}

static napi_value js_ln_rbackward(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "layerNormRBackward")) return NULL;
  int64_t rows, d;
  bool center;
  void *dy, *rdy, *xhat, *rxhat = NULL, *gamma, *vg, *rdx = NULL;
  double *rstd, *shrink = NULL, *gsums, *bsums = NULL;
  if (!get_size(&c, 9, "width", &d) || !get_size(&c, 8, "rows", &rows) || !get_bool(&c, 10, "center", &center))
    return NULL;
  const double total = (double)rows * d;
  if (!get_floats(&c, 0, "dy", total, &dy, NULL) || !get_floats(&c, 1, "rdy", total, &rdy, NULL) ||
      !get_floats(&c, 2, "xhat", total, &xhat, NULL))
    return NULL;
  if (!is_null(&c, 3) && !get_floats(&c, 3, "rxhat", total, &rxhat, NULL)) return NULL;
  if (!get_doubles(&c, 4, "rstd", (double)rows, &rstd)) return NULL;
  if (!is_null(&c, 5) && !get_doubles(&c, 5, "shrink", (double)rows, &shrink)) return NULL;
  if (!get_floats(&c, 6, "gamma", (double)d, &gamma, NULL) || !get_floats(&c, 7, "vGamma", (double)d, &vg, NULL) ||
      !get_doubles(&c, 11, "gammaSums", (double)d, &gsums))
    return NULL;
  if (!is_null(&c, 12) && !get_doubles(&c, 12, "betaSums", (double)d, &bsums)) return NULL;
  if (!is_null(&c, 13) && !get_floats(&c, 13, "rdx", total, &rdx, NULL)) return NULL;
  split_args j = {.f32 = F32,
                  .flag = center,
                  .a = {dy, rdy, xhat, rxhat, gamma, vg, rdx},
                  .d = {rstd, shrink, gsums, bsums},
                  .n1 = d,
                  .n2 = rows};
  /* The sums split by columns (each column's rows stay in order), rdx by rows. */
  inrun_parallel_for(d, rows_per_part(rows, SPLIT_WORK_LIGHT), ln_rbackward_sums_range, &j);
  if (rdx) inrun_parallel_for(rows, rows_per_part(d, SPLIT_WORK), ln_rbackward_range, &j);
  return NULL;
}

static napi_value js_gather(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "gather")) return NULL;
  int64_t count, stride;
  void *src, *dst;
  int32_t *index;
  size_t L, src_len;
  if (!get_size(&c, 2, "count", &count) || !get_size(&c, 3, "srcStride", &stride) ||
      !get_ints(&c, 1, "index", 0, &index, &L) || !get_floats(&c, 0, "src", 0, &src, &src_len) ||
      !get_floats(&c, 4, "dst", (double)count * (double)L, &dst, NULL))
    return NULL;
  if (!check_index_range(&c, index, (int64_t)L, stride, count, src_len)) return NULL;
  split_args j = {.f32 = F32, .a = {src, dst}, .idx = index, .n1 = (int64_t)L, .n2 = stride};
  inrun_parallel_for(count, rows_per_part((int64_t)L, SPLIT_WORK_LIGHT), gather_range, &j);
  return NULL;
}

static napi_value js_scatter_add(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "scatterAdd")) return NULL;
  int64_t count, stride;
  void *src, *dst;
  int32_t *index;
  size_t L, dst_len;
  if (!get_size(&c, 2, "count", &count) || !get_size(&c, 3, "dstStride", &stride) ||
      !get_ints(&c, 1, "index", 0, &index, &L) || !get_floats(&c, 0, "src", (double)count * (double)L, &src, NULL) ||
      !get_floats(&c, 4, "dst", 0, &dst, &dst_len))
    return NULL;
  if (!check_index_range(&c, index, (int64_t)L, stride, count, dst_len)) return NULL;
  int32_t max = -1;
  for (size_t k = 0; k < L; k++)
    if (index[k] > max) max = index[k];
  split_args j = {.f32 = F32, .a = {src, dst}, .idx = index, .n1 = (int64_t)L, .n2 = stride};
  /* Blocks that overlap (an index at or past the stride, e.g. stride 0) add into each other: one thread. */
  const int64_t parts = max < stride ? rows_per_part((int64_t)L, SPLIT_WORK_LIGHT) : count;
  inrun_parallel_for(count, parts > 0 ? parts : 1, scatter_add_range, &j);
  return NULL;
}

/* Every rows[r] names a whole row of `width` elements inside an array of `length`. */
static bool check_rows(call *c, const int32_t *rows, size_t count, int64_t width, const char *name, size_t length) {
  const int64_t table_rows = width == 0 ? INT64_MAX : (int64_t)length / width;
  for (size_t r = 0; r < count; r++) {
    if (rows[r] < 0 || rows[r] >= table_rows) {
      throw_fmt(c, true, "rows[%zu] is %d, outside the %lld rows of %s (width %lld)", r, rows[r],
                (long long)table_rows, name, (long long)width);
      return false;
    }
  }
  return true;
}

static napi_value js_gather_rows(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "gatherRows")) return NULL;
  int64_t width;
  void *src, *dst;
  int32_t *rows;
  size_t count, src_len;
  if (!get_size(&c, 2, "width", &width) || !get_ints(&c, 1, "rows", 0, &rows, &count) ||
      !get_floats(&c, 0, "src", 0, &src, &src_len) || !get_floats(&c, 3, "dst", (double)count * width, &dst, NULL) ||
      !check_rows(&c, rows, count, width, "src", src_len))
    return NULL;
  split_args j = {.f32 = F32, .a = {src, dst}, .idx = rows, .n1 = width};
  inrun_parallel_for((int64_t)count, rows_per_part(width, SPLIT_WORK_LIGHT), gather_rows_range, &j);
  return NULL;
}

static napi_value js_scatter_add_rows(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "scatterAddRows")) return NULL;
  int64_t width;
  double scale;
  void *src, *dst;
  int32_t *rows;
  size_t count, dst_len;
  if (!get_size(&c, 2, "width", &width) || !get_number(&c, 3, "scale", &scale) ||
      !get_ints(&c, 1, "rows", 0, &rows, &count) || !get_floats(&c, 0, "src", (double)count * width, &src, NULL) ||
      !get_floats(&c, 4, "dst", 0, &dst, &dst_len) || !check_rows(&c, rows, count, width, "dst", dst_len))
    return NULL;
  if (F32) scatter_add_rows_f32(src, rows, (int64_t)count, width, scale, dst);
  else scatter_add_rows_f64(src, rows, (int64_t)count, width, scale, dst);
  return NULL;
}

static napi_value js_transpose(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "transpose")) return NULL;
  int64_t batch, rows, cols;
  void *src, *dst;
  if (!get_size(&c, 3, "rows", &rows) || !get_size(&c, 4, "cols", &cols) || !get_size(&c, 2, "batch", &batch))
    return NULL;
  const double total = (double)batch * rows * cols;
  if (!get_floats(&c, 0, "src", total, &src, NULL) || !get_floats(&c, 1, "dst", total, &dst, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {src, dst}, .n1 = rows, .n2 = cols};
  inrun_parallel_for(batch, rows_per_part(rows * cols, SPLIT_WORK_LIGHT), transpose_range, &j);
  return NULL;
}

static napi_value js_max_pool(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "maxPoolForward")) return NULL;
  int64_t planes, plane_size, P, taps;
  void *x, *y;
  int32_t *offsets, *argmax;
  if (!get_size(&c, 2, "planes", &planes) || !get_size(&c, 3, "planeSize", &plane_size) ||
      !get_size(&c, 4, "positions", &P) || !get_size(&c, 5, "taps", &taps))
    return NULL;
  if (!get_floats(&c, 0, "x", (double)planes * plane_size, &x, NULL) ||
      !get_ints(&c, 1, "offsets", (double)P * taps, &offsets, NULL) ||
      !get_floats(&c, 6, "y", (double)planes * P, &y, NULL) ||
      !get_ints(&c, 7, "argmax", (double)planes * P, &argmax, NULL))
    return NULL;
  if (planes > 0 && !check_index_range(&c, offsets, P * taps, 0, 1, (size_t)plane_size)) return NULL;
  split_args j = {.f32 = F32, .a = {x, y}, .idx = offsets, .idx_out = argmax, .n1 = plane_size, .n2 = P, .n3 = taps};
  inrun_parallel_for(planes, rows_per_part(P * taps, SPLIT_WORK_LIGHT), max_pool_range, &j);
  return NULL;
}

static napi_value js_sgd_update(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "sgdUpdate")) return NULL;
  void *w, *grad, *buf = NULL;
  size_t n;
  double lr, k, wd, dwd, momentum;
  bool first;
  if (!get_floats(&c, 0, "params", 0, &w, &n) || !get_floats(&c, 1, "grad", (double)n, &grad, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "buffer", (double)n, &buf, NULL)) return NULL;
  if (!get_number(&c, 3, "lr", &lr) || !get_number(&c, 4, "gradScale", &k) ||
      !get_number(&c, 5, "weightDecay", &wd) || !get_number(&c, 6, "decoupledWeightDecay", &dwd) ||
      !get_number(&c, 7, "momentum", &momentum) || !get_bool(&c, 8, "first", &first))
    return NULL;
  split_args j = {.f32 = F32, .flag = first, .a = {w, grad, buf}, .s = {lr, k, wd, dwd, momentum}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK_LIGHT, sgd_update_range, &j);
  return NULL;
}

static napi_value js_adam_update(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "adamUpdate")) return NULL;
  void *w, *grad, *m, *v;
  size_t n;
  double s[8];
  static const char *names[8] = {"gradScale", "coupledWeightDecay", "beta1", "beta2",
                                 "shrink",    "stepSize",           "bc2Sqrt", "eps"};
  if (!get_floats(&c, 0, "params", 0, &w, &n) || !get_floats(&c, 1, "grad", (double)n, &grad, NULL) ||
      !get_floats(&c, 2, "m", (double)n, &m, NULL) || !get_floats(&c, 3, "v", (double)n, &v, NULL))
    return NULL;
  for (int i = 0; i < 8; i++)
    if (!get_number(&c, 4 + i, names[i], &s[i])) return NULL;
  split_args j = {.f32 = F32, .a = {w, grad, m, v}, .s = {s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK, adam_update_range, &j);
  return NULL;
}

static napi_value js_adam_preconditioner(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "adamPreconditioner")) return NULL;
  void *w, *grad, *v = NULL, *out;
  size_t n;
  double s[5];
  static const char *names[5] = {"gradScale", "coupledWeightDecay", "beta2", "bc2Sqrt", "eps"};
  if (!get_floats(&c, 0, "params", 0, &w, &n) || !get_floats(&c, 1, "grad", (double)n, &grad, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "v", (double)n, &v, NULL)) return NULL;
  for (int i = 0; i < 5; i++)
    if (!get_number(&c, 3 + i, names[i], &s[i])) return NULL;
  if (!get_floats(&c, 8, "out", (double)n, &out, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {w, grad, v, out}, .s = {s[0], s[1], s[2], s[3], s[4]}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK, adam_preconditioner_range, &j);
  return NULL;
}

static napi_value js_adam_linearise(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "adamLinearise")) return NULL;
  void *P, *w, *m = NULL, *cv = NULL;
  size_t n;
  double beta1, wd, bc1, k_factor;
  bool decoupled;
  if (!get_floats(&c, 0, "P", 0, &P, &n) || !get_floats(&c, 1, "params", (double)n, &w, NULL)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "m", (double)n, &m, NULL)) return NULL;
  if (!is_null(&c, 3) && !get_floats(&c, 3, "c", (double)n, &cv, NULL)) return NULL;
  if (!get_number(&c, 4, "beta1", &beta1) || !get_number(&c, 5, "weightDecay", &wd) ||
      !get_bool(&c, 6, "decoupled", &decoupled) || !get_number(&c, 7, "bc1", &bc1) ||
      !get_number(&c, 8, "kFactor", &k_factor))
    return NULL;
  split_args j = {.f32 = F32, .flag = decoupled, .a = {P, w, m, cv}, .s = {beta1, wd, bc1, k_factor}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK_LIGHT, adam_linearise_range, &j);
  return NULL;
}

static napi_value js_scale_vector(napi_env env, napi_callback_info info) {
  call c;
  if (!begin(&c, env, info, "scaleVector")) return NULL;
  void *x, *diag = NULL, *out;
  size_t n;
  double scale;
  if (!get_floats(&c, 0, "x", 0, &x, &n) || !get_number(&c, 1, "scale", &scale)) return NULL;
  if (!is_null(&c, 2) && !get_floats(&c, 2, "diagonal", (double)n, &diag, NULL)) return NULL;
  if (!get_floats(&c, 3, "out", (double)n, &out, NULL)) return NULL;
  split_args j = {.f32 = F32, .a = {x, diag, out}, .s = {scale}};
  inrun_parallel_for((int64_t)n, SPLIT_WORK_LIGHT, scale_vector_range, &j);
  return NULL;
}

/* Adds the ops to the addon's exports; false after a failed napi call. */
bool inrun_ops_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"addBias", NULL, js_add_bias, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sumBias", NULL, js_sum_bias, NULL, NULL, NULL, napi_enumerable, NULL},
    {"rowDots", NULL, js_row_dots, NULL, NULL, NULL, napi_enumerable, NULL},
    {"columnSums", NULL, js_column_sums, NULL, NULL, NULL, napi_enumerable, NULL},
    {"add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, NULL},
    {"activationForward", NULL, js_act_forward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"activationBackward", NULL, js_act_backward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"activationRForward", NULL, js_act_rforward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"activationRBackward", NULL, js_act_rbackward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"softmaxCrossEntropyForward", NULL, js_sce_forward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"softmaxCrossEntropyBackward", NULL, js_sce_backward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"softmaxCrossEntropyRBackward", NULL, js_sce_rbackward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"causalSoftmaxForward", NULL, js_causal_softmax_forward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"causalSoftmaxBackward", NULL, js_causal_softmax_backward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"causalSoftmaxRBackward", NULL, js_causal_softmax_rbackward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"layerNormForward", NULL, js_ln_forward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"layerNormBackward", NULL, js_ln_backward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"layerNormRForward", NULL, js_ln_rforward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"layerNormRBackward", NULL, js_ln_rbackward, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gather", NULL, js_gather, NULL, NULL, NULL, napi_enumerable, NULL},
    {"scatterAdd", NULL, js_scatter_add, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gatherRows", NULL, js_gather_rows, NULL, NULL, NULL, napi_enumerable, NULL},
    {"scatterAddRows", NULL, js_scatter_add_rows, NULL, NULL, NULL, napi_enumerable, NULL},
    {"transpose", NULL, js_transpose, NULL, NULL, NULL, napi_enumerable, NULL},
    {"maxPoolForward", NULL, js_max_pool, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sgdUpdate", NULL, js_sgd_update, NULL, NULL, NULL, napi_enumerable, NULL},
    {"adamUpdate", NULL, js_adam_update, NULL, NULL, NULL, napi_enumerable, NULL},
    {"adamPreconditioner", NULL, js_adam_preconditioner, NULL, NULL, NULL, napi_enumerable, NULL},
    {"adamLinearise", NULL, js_adam_linearise, NULL, NULL, NULL, napi_enumerable, NULL},
    {"scaleVector", NULL, js_scale_vector, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
