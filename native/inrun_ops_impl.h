/*
 * The loops of native/inrun_ops.c for one element type, included once per type with
 *   T    the element type (float or double)
 *   SUF  the name suffix (f32 or f64)
 * Each follows its portable twin in src/kernels/ops.ts operation for operation: arithmetic in
 * double, values rounded to T exactly where the TypeScript stores them into a typed array, sums in
 * the same order. No -ffast-math: the compiler may vectorise the element-wise loops (no
 * reordering needed there) but must keep the reductions' order, which is what makes native and
 * portable agree to the last bit or so. Arguments arrive checked (lengths, index ranges).
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

VECTOR_CLONES static void FN(add_bias)(T *restrict data, const T *restrict bias, int64_t outer, int64_t channels,
                         int64_t inner) {
  if (inner == 1) {
    for (int64_t o = 0; o < outer; o++) {
      T *restrict row = data + o * channels;
      for (int64_t c = 0; c < channels; c++) row[c] = (T)((double)row[c] + (double)bias[c]);
    }
    return;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t c = 0; c < channels; c++) {
      T *restrict row = data + (o * channels + c) * inner;
      const double b = (double)bias[c];
      for (int64_t p = 0; p < inner; p++) row[p] = (T)((double)row[p] + b);
    }
}

VECTOR_CLONES static void FN(sum_bias)(T *restrict out, const T *restrict data, int64_t outer, int64_t channels,
                         int64_t inner, double scale, double *restrict acc) {
  for (int64_t c = 0; c < channels; c++) acc[c] = 0;
  if (inner == 1) {
    for (int64_t o = 0; o < outer; o++) {
      const T *restrict row = data + o * channels;
      for (int64_t c = 0; c < channels; c++) acc[c] += (double)row[c];
    }
  } else {
    for (int64_t o = 0; o < outer; o++)
      for (int64_t c = 0; c < channels; c++) {
        const T *restrict row = data + (o * channels + c) * inner;
        double s = 0;
        for (int64_t p = 0; p < inner; p++) s += (double)row[p];
        acc[c] += s;
      }
  }
  for (int64_t c = 0; c < channels; c++) out[c] = (T)((double)out[c] + scale * acc[c]);
}

/* Each row's sum runs in LANES partial sums (see lane_sum); the TypeScript twin sums in the same order. */
VECTOR_CLONES static void FN(row_dots)(const T *a, const T *b, const T *w, int64_t rows, int64_t length,
                                       int64_t stride_a, int64_t stride_b, double *restrict out) {
  const int64_t body = length - length % LANES;
  for (int64_t r = 0; r < rows; r++) {
    const T *restrict ra = a + r * stride_a;
    const T *restrict rb = b + r * stride_b;
    double s[LANES] = {0};
    int64_t e = 0;
    if (w)
      for (; e < body; e += LANES)
        for (int k = 0; k < LANES; k++) s[k] += (double)ra[e + k] * (double)rb[e + k] * (double)w[e + k];
    else
      for (; e < body; e += LANES)
        for (int k = 0; k < LANES; k++) s[k] += (double)ra[e + k] * (double)rb[e + k];
    double sum = lane_sum(s);
    if (w)
      for (; e < length; e++) sum += (double)ra[e] * (double)rb[e] * (double)w[e];
    else
      for (; e < length; e++) sum += (double)ra[e] * (double)rb[e];
    out[r] += sum;
  }
}

VECTOR_CLONES static void FN(column_sums)(double *restrict out, const T *restrict a, const T *restrict b,
                                          int64_t segments, int64_t R, int64_t W, int64_t stride) {
  for (int64_t s = 0; s < segments; s++) {
    double *restrict o = out + s * stride;
    for (int64_t r = 0; r < R; r++) {
      const int64_t base = (s * R + r) * W;
      const T *restrict ar = a + base;
      if (b) {
        const T *restrict br = b + base;
        for (int64_t c = 0; c < W; c++) o[c] += (double)ar[c] * (double)br[c];
      } else {
        for (int64_t c = 0; c < W; c++) o[c] += (double)ar[c];
      }
    }
  }
}

/* No restrict: out may be a or b itself. */
VECTOR_CLONES static void FN(add)(const T *a, const T *b, T *out, int64_t n) {
  for (int64_t e = 0; e < n; e++) out[e] = (T)((double)a[e] + (double)b[e]);
}

VECTOR_CLONES static void FN(act_forward)(int kind, const T *restrict x, T *restrict y, int64_t n) {
  switch (kind) {
    case ACT_RELU:
      for (int64_t e = 0; e < n; e++) {
        const double v = (double)x[e];
        y[e] = (T)((v + fabs(v)) * 0.5);
      }
      return;
    case ACT_TANH:
      for (int64_t e = 0; e < n; e++) y[e] = (T)tanh((double)x[e]);
      return;
    case ACT_SIGMOID:
      for (int64_t e = 0; e < n; e++) y[e] = (T)(1 / (1 + vexp(-(double)x[e])));
      return;
    case ACT_GELU:
      for (int64_t e = 0; e < n; e++) y[e] = (T)GELU((REAL)x[e]);
      return;
  }
}

VECTOR_CLONES static void FN(act_backward)(int kind, const T *restrict x, const T *restrict y, const T *restrict dy,
                             T *restrict dx, int64_t n) {
  switch (kind) {
    case ACT_RELU:
      for (int64_t e = 0; e < n; e++) dx[e] = (T)((double)dy[e] * (double)((double)x[e] > 0));
      return;
    case ACT_TANH:
      for (int64_t e = 0; e < n; e++) {
        const double v = (double)y[e];
        dx[e] = (T)((1 - v * v) * (double)dy[e]);
      }
      return;
    case ACT_SIGMOID:
      for (int64_t e = 0; e < n; e++) {
        const double v = (double)y[e];
        dx[e] = (T)(v * (1 - v) * (double)dy[e]);
      }
      return;
    case ACT_GELU:
      for (int64_t e = 0; e < n; e++) dx[e] = (T)(GELU_DF((REAL)x[e]) * (REAL)dy[e]);
      return;
  }
}

VECTOR_CLONES static void FN(act_rforward)(int kind, const T *restrict x, const T *restrict y, const T *restrict rx,
                             T *restrict ry, int64_t n) {
  FOR_EACH_ACTIVATION(kind, K, {
    for (int64_t e = 0; e < n; e++) ry[e] = (T)(act_df(K, (double)x[e], (double)y[e]) * (double)rx[e]);
  });
}

VECTOR_CLONES static void FN(act_rbackward)(int kind, const T *restrict x, const T *restrict y, const T *restrict dy,
                              const T *restrict rdy, const T *restrict rx, T *restrict rdx, int64_t n) {
  FOR_EACH_ACTIVATION(kind, K, {
    if (rx) {
      for (int64_t e = 0; e < n; e++) {
        const double xv = (double)x[e], yv = (double)y[e];
        const double r = act_df(K, xv, yv) * (double)rdy[e];
        rdx[e] = (T)(r + act_d2f(K, xv, yv) * (double)rx[e] * (double)dy[e]);
      }
    } else {
      for (int64_t e = 0; e < n; e++) rdx[e] = (T)(act_df(K, (double)x[e], (double)y[e]) * (double)rdy[e]);
    }
  });
}

VECTOR_CLONES static void FN(sce_forward)(const T *restrict z, const int32_t *restrict targets, const double *restrict weights,
                            int64_t rows, int64_t C, T *restrict p, double *restrict row_loss) {
  for (int64_t r = 0; r < rows; r++) {
    const T *restrict zr = z + r * C;
    T *restrict pr = p + r * C;
    /* The max in lanes too (selects, so NaN is passed over as by one running max). */
    const int64_t body = C - C % LANES;
    double m[LANES];
    for (int k = 0; k < LANES; k++) m[k] = -INFINITY;
    for (int64_t c = 0; c < body; c += LANES)
      for (int k = 0; k < LANES; k++) m[k] = (double)zr[c + k] > m[k] ? (double)zr[c + k] : m[k];
    double max = -INFINITY;
    for (int k = 0; k < LANES; k++) max = m[k] > max ? m[k] : max;
    for (int64_t c = body; c < C; c++) max = (double)zr[c] > max ? (double)zr[c] : max;
    /* The exponentials in vectorised chunks (a multiple of LANES long), summed in lanes as the
     * portable twin does; the last chunk's tail is still in `chunk` after the loop. */
    double s[LANES] = {0};
    double chunk[256];
    int64_t tail_at = 0;
    for (int64_t c0 = 0; c0 < C; c0 += 256) {
      const int64_t len = C - c0 < 256 ? C - c0 : 256;
      for (int64_t j = 0; j < len; j++) {
        chunk[j] = (double)EXP((REAL)((double)zr[c0 + j] - max));
        pr[c0 + j] = (T)chunk[j];
      }
      const int64_t lanes_len = c0 + len <= body ? len : body - c0;
      for (int64_t j = 0; j < lanes_len; j += LANES)
        for (int k = 0; k < LANES; k++) s[k] += chunk[j + k];
      tail_at = c0;
    }
    double sum = lane_sum(s);
    for (int64_t c = body; c < C; c++) sum += chunk[c - tail_at];
    for (int64_t c = 0; c < C; c++) pr[c] = (T)((double)pr[c] / sum);
    const double w = weights[r];
    row_loss[r] = w == 0 ? 0 : w * (log(sum) + max - (double)zr[targets[r]]);
  }
}

VECTOR_CLONES static void FN(sce_backward)(const T *restrict p, const int32_t *restrict targets, const double *restrict weights,
                             int64_t rows, int64_t C, T *restrict dz) {
  for (int64_t r = 0; r < rows; r++) {
    const double w = weights[r];
    if (w == 0) continue;
    const T *restrict pr = p + r * C;
    T *restrict dr = dz + r * C;
    for (int64_t c = 0; c < C; c++) dr[c] = (T)(w * (double)pr[c]);
    dr[targets[r]] = (T)((double)dr[targets[r]] - w);
  }
}

VECTOR_CLONES static void FN(sce_rbackward)(const T *restrict p, const T *restrict rz, const double *restrict weights,
                                            int64_t rows, int64_t C, T *restrict rdz) {
  for (int64_t r = 0; r < rows; r++) {
    T *restrict dr = rdz + r * C;
    const double w = weights[r];
    if (w == 0) {
      for (int64_t c = 0; c < C; c++) dr[c] = 0;
      continue;
    }
    const T *restrict pr = p + r * C;
    const T *restrict zr = rz + r * C;
    double dot = 0;
    for (int64_t c = 0; c < C; c++) dot += (double)pr[c] * (double)zr[c];
    for (int64_t c = 0; c < C; c++) dr[c] = (T)(w * (double)pr[c] * ((double)zr[c] - dot));
  }
}

/* n is the block size T (T names the element type here). */
VECTOR_CLONES static void FN(causal_softmax_forward)(T *restrict s, int64_t blocks, int64_t n) {
  double chunk[256];
  for (int64_t b = 0; b < blocks * n; b++) {
    const int64_t t = b % n;
    T *restrict row = s + b * n;
    double max = -INFINITY;
    for (int64_t j = 0; j <= t; j++)
      if ((double)row[j] > max) max = (double)row[j];
    /* As sce_forward: exponentials in vectorised chunks, stored and summed in order. */
    double sum = 0;
    for (int64_t c0 = 0; c0 <= t; c0 += 256) {
      const int64_t len = t + 1 - c0 < 256 ? t + 1 - c0 : 256;
      for (int64_t j = 0; j < len; j++) chunk[j] = vexp((double)row[c0 + j] - max);
      for (int64_t j = 0; j < len; j++) {
        row[c0 + j] = (T)chunk[j];
        sum += chunk[j];
      }
    }
    const double inv = 1 / sum;
    for (int64_t j = 0; j <= t; j++) row[j] = (T)((double)row[j] * inv);
    for (int64_t j = t + 1; j < n; j++) row[j] = 0;
  }
}

VECTOR_CLONES static void FN(causal_softmax_backward)(const T *restrict p, T *restrict g, int64_t blocks,
                                                      int64_t n) {
  for (int64_t b = 0; b < blocks * n; b++) {
    const int64_t t = b % n;
    const T *restrict pr = p + b * n;
    T *restrict gr = g + b * n;
    double c = 0;
    for (int64_t j = 0; j <= t; j++) c += (double)gr[j] * (double)pr[j];
    for (int64_t j = 0; j <= t; j++) gr[j] = (T)((double)pr[j] * ((double)gr[j] - c));
    for (int64_t j = t + 1; j < n; j++) gr[j] = 0;
  }
}

VECTOR_CLONES static void FN(causal_softmax_rbackward)(const T *restrict p, const T *restrict rp, T *restrict ds,
                                                       T *restrict rds, int64_t blocks, int64_t n) {
  for (int64_t b = 0; b < blocks * n; b++) {
    const int64_t t = b % n;
    const T *restrict pr = p + b * n;
    T *restrict dr = ds + b * n;
    T *restrict rr = rds + b * n;
    double c = 0, rc = 0;
    if (rp) {
      const T *restrict qr = rp + b * n;
      for (int64_t j = 0; j <= t; j++) {
        c += (double)dr[j] * (double)pr[j];
        rc += (double)rr[j] * (double)pr[j];
        rc += (double)dr[j] * (double)qr[j];
      }
      for (int64_t j = 0; j <= t; j++) {
        const double g = (double)dr[j] - c;
        const double r = (double)pr[j] * ((double)rr[j] - rc) + (double)qr[j] * g;
        dr[j] = (T)((double)pr[j] * g);
        rr[j] = (T)r;
      }
    } else {
      for (int64_t j = 0; j <= t; j++) {
        c += (double)dr[j] * (double)pr[j];
        rc += (double)rr[j] * (double)pr[j];
      }
      for (int64_t j = 0; j <= t; j++) {
        const double g = (double)dr[j] - c;
        const double r = (double)pr[j] * ((double)rr[j] - rc);
        dr[j] = (T)((double)pr[j] * g);
        rr[j] = (T)r;
      }
    }
    for (int64_t j = t + 1; j < n; j++) {
      dr[j] = 0;
      rr[j] = 0;
    }
  }
}

VECTOR_CLONES static void FN(ln_forward)(const T *restrict x, const T *restrict gamma, const T *restrict beta, int64_t rows,
                           int64_t d, double eps, bool center, T *restrict xhat, double *restrict rstd,
                           T *restrict y) {
  for (int64_t row = 0; row < rows; row++) {
    const T *restrict xr = x + row * d;
    double mu = 0;
    if (center) {
      for (int64_t c = 0; c < d; c++) mu += (double)xr[c];
      mu /= (double)d;
    }
    double ms = 0;
    for (int64_t c = 0; c < d; c++) {
      const double zc = (double)xr[c] - mu;
      ms += zc * zc;
    }
    const double r = 1 / sqrt(ms / (double)d + eps);
    rstd[row] = r;
    T *restrict hr = xhat + row * d;
    T *restrict yr = y + row * d;
    for (int64_t c = 0; c < d; c++) {
      const double h = ((double)xr[c] - mu) * r;
      hr[c] = (T)h;
      yr[c] = (T)((double)gamma[c] * h + (beta ? (double)beta[c] : 0));
    }
  }
}

VECTOR_CLONES static void FN(ln_backward)(const T *restrict dy, const T *restrict xhat, const double *restrict rstd,
                            const T *restrict gamma, int64_t rows, int64_t d, bool center, T *restrict dx) {
  for (int64_t row = 0; row < rows; row++) {
    const T *restrict gr = dy + row * d;
    const T *restrict hr = xhat + row * d;
    double a = 0, bdot = 0;
    for (int64_t c = 0; c < d; c++) {
      const double h = (double)gamma[c] * (double)gr[c];
      a += h;
      bdot += h * (double)hr[c];
    }
    a = center ? a / (double)d : 0;
    bdot /= (double)d;
    const double r = rstd[row];
    T *restrict out = dx + row * d;
    for (int64_t c = 0; c < d; c++)
      out[c] = (T)(r * ((double)gamma[c] * (double)gr[c] - a - (double)hr[c] * bdot));
  }
}

VECTOR_CLONES static void FN(ln_rforward)(const T *restrict xhat, const double *restrict rstd, const T *restrict gamma,
                                          const T *restrict vg, const T *restrict vb, const T *restrict rx,
                                          int64_t rows, int64_t d, bool center, T *restrict rxhat,
                                          double *restrict shrink, T *restrict ry) {
  for (int64_t row = 0; row < rows; row++) {
    const T *restrict hr = xhat + row * d;
    T *restrict yr = ry + row * d;
    if (!rx) {
      for (int64_t c = 0; c < d; c++) yr[c] = (T)((double)vg[c] * (double)hr[c] + (vb ? (double)vb[c] : 0));
      continue;
    }
    const T *restrict xr = rx + row * d;
    T *restrict qr = rxhat + row * d;
    double rmu = 0;
    if (center) {
      for (int64_t c = 0; c < d; c++) rmu += (double)xr[c];
      rmu /= (double)d;
    }
    double dotz = 0;
    for (int64_t c = 0; c < d; c++) dotz += (double)hr[c] * ((double)xr[c] - rmu);
    const double r = rstd[row];
    const double cs = (r * dotz) / (double)d;
    shrink[row] = cs;
    for (int64_t c = 0; c < d; c++) qr[c] = (T)(r * ((double)xr[c] - rmu) - cs * (double)hr[c]);
    /* R{x̂} read back as stored, as the portable twin does. */
    for (int64_t c = 0; c < d; c++)
      yr[c] = (T)((double)vg[c] * (double)hr[c] + (vb ? (double)vb[c] : 0) + (double)gamma[c] * (double)qr[c]);
  }
}

/* The γ/β sums of ln_rbackward over `width` columns of rows `stride` apart (a column range of the pool's split). */
VECTOR_CLONES static void FN(ln_rbackward_sums)(const T *restrict dy, const T *restrict rdy, const T *restrict xhat,
                                                const T *restrict rxhat, int64_t rows, int64_t stride, int64_t width,
                                                double *restrict gsums, double *restrict bsums) {
  for (int64_t row = 0; row < rows; row++) {
    const int64_t o = row * stride;
    const T *restrict g = dy + o;
    const T *restrict rg = rdy + o;
    const T *restrict h = xhat + o;
    if (rxhat) {
      const T *restrict q = rxhat + o;
      for (int64_t c = 0; c < width; c++) gsums[c] += (double)rg[c] * (double)h[c] + (double)g[c] * (double)q[c];
    } else {
      for (int64_t c = 0; c < width; c++) gsums[c] += (double)rg[c] * (double)h[c];
    }
    if (bsums)
      for (int64_t c = 0; c < width; c++) bsums[c] += (double)rg[c];
  }
}

VECTOR_CLONES static void FN(ln_rbackward)(const T *restrict dy, const T *restrict rdy, const T *restrict xhat,
                                           const T *restrict rxhat, const double *restrict rstd,
                                           const double *restrict shrink, const T *restrict gamma,
                                           const T *restrict vg, int64_t rows, int64_t d, bool center,
                                           T *restrict rdx) {
  for (int64_t row = 0; row < rows; row++) {
    const T *restrict g = dy + row * d;
    const T *restrict rg = rdy + row * d;
    const T *restrict xh = xhat + row * d;
    const T *restrict q = rxhat ? rxhat + row * d : NULL;
    double a = 0, b = 0, ra = 0, rb = 0;
    for (int64_t c = 0; c < d; c++) {
      const double gc = (double)g[c];
      const double h = (double)gamma[c] * gc;
      const double rh = (double)vg[c] * gc + (double)gamma[c] * (double)rg[c];
      a += h;
      ra += rh;
      b += h * (double)xh[c];
      rb += rh * (double)xh[c];
      if (q) rb += h * (double)q[c];
    }
    a = center ? a / (double)d : 0;
    ra = center ? ra / (double)d : 0;
    b /= (double)d;
    rb /= (double)d;
    const double r = rstd[row];
    const double cs = shrink ? shrink[row] : 0;
    T *restrict out = rdx + row * d;
    /* h and R{h} formed again, as the portable twin does. */
    if (q) {
      for (int64_t c = 0; c < d; c++) {
        const double gc = (double)g[c], x = (double)xh[c];
        const double h = (double)gamma[c] * gc;
        const double rh = (double)vg[c] * gc + (double)gamma[c] * (double)rg[c];
        const double dxc = r * (h - a - x * b);
        double value = -cs * dxc + r * (rh - ra - x * rb);
        value -= r * b * (double)q[c];
        out[c] = (T)value;
      }
    } else {
      for (int64_t c = 0; c < d; c++) {
        const double gc = (double)g[c], x = (double)xh[c];
        const double h = (double)gamma[c] * gc;
        const double rh = (double)vg[c] * gc + (double)gamma[c] * (double)rg[c];
        const double dxc = r * (h - a - x * b);
        out[c] = (T)(-cs * dxc + r * (rh - ra - x * rb));
      }
    }
  }
}

static void FN(gather)(const T *restrict src, const int32_t *restrict index, int64_t L, int64_t count,
                       int64_t src_stride, T *restrict dst) {
  for (int64_t i = 0; i < count; i++) {
    const T *restrict s = src + i * src_stride;
    T *restrict out = dst + i * L;
    for (int64_t j = 0; j < L; j++) {
      const int32_t k = index[j];
      out[j] = k >= 0 ? s[k] : (T)0;
    }
  }
}

static void FN(scatter_add)(const T *restrict src, const int32_t *restrict index, int64_t L, int64_t count,
                            int64_t dst_stride, T *dst) {
  for (int64_t i = 0; i < count; i++) {
    const T *restrict s = src + i * L;
    T *out = dst + i * dst_stride; /* blocks may overlap (dst_stride 0): no restrict */
    for (int64_t j = 0; j < L; j++) {
      const int32_t k = index[j];
      if (k >= 0) out[k] = (T)((double)out[k] + (double)s[j]);
    }
  }
}

static void FN(gather_rows)(const T *restrict src, const int32_t *restrict rows, int64_t count, int64_t width,
                            T *restrict dst) {
  for (int64_t r = 0; r < count; r++) memcpy(dst + r * width, src + (int64_t)rows[r] * width, (size_t)width * sizeof(T));
}

/* Rows in order, one thread: a repeated row adds up in the portable twin's order. */
static void FN(scatter_add_rows)(const T *restrict src, const int32_t *restrict rows, int64_t count, int64_t width,
                                 double scale, T *dst) {
  for (int64_t r = 0; r < count; r++) {
    T *restrict d = dst + (int64_t)rows[r] * width;
    const T *restrict s = src + r * width;
    for (int64_t c = 0; c < width; c++) d[c] = (T)((double)d[c] + scale * (double)s[c]);
  }
}

static void FN(transpose)(const T *restrict src, T *restrict dst, int64_t batch, int64_t rows, int64_t cols) {
  /* Tiles of 16×16 keep both the reads and the writes within a few cache lines. */
  enum { TILE = 16 };
  for (int64_t b = 0; b < batch; b++) {
    const T *restrict s = src + b * rows * cols;
    T *restrict out = dst + b * rows * cols;
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
      for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
        const int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        const int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
        for (int64_t r = r0; r < r1; r++)
          for (int64_t c = c0; c < c1; c++) out[c * rows + r] = s[r * cols + c];
      }
  }
}

/*
 * max_pool where no window reaches into padding (every offset ≥ 0): tap by tap across a plane's
 * positions, so each comparison is a select the compiler vectorises (gathering x) rather than a
 * branch per tap that random data mispredicts half the time. The same choices as below: a later
 * tap wins only if larger, or NaN over a number, so ties keep the first and the first NaN stays.
 */
VECTOR_CLONES static void FN(max_pool_dense)(const T *restrict x, const int32_t *restrict offsets, int64_t first,
                                             int64_t end, int64_t plane_size, int64_t P, int64_t taps,
                                             T *restrict y, int32_t *restrict argmax) {
  for (int64_t k = first; k < end; k++) {
    const int64_t base = k * plane_size;
    const T *restrict xk = x + base;
    T *restrict yk = y + k * P;
    int32_t *restrict ak = argmax + k * P;
    for (int64_t p = 0; p < P; p++) {
      const int32_t off = offsets[p * taps];
      yk[p] = xk[off];
      ak[p] = (int32_t)(base + off);
    }
    for (int64_t q = 1; q < taps; q++)
      for (int64_t p = 0; p < P; p++) {
        const int32_t off = offsets[p * taps + q];
        const T v = xk[off];
        const T best = yk[p];
        const int take = (v > best) | ((v != v) & (best == best));
        yk[p] = take ? v : best;
        ak[p] = take ? (int32_t)(base + off) : ak[p];
      }
  }
}

/* Planes [first, end) of the call's; argmax holds flat indices into the whole x. */
static void FN(max_pool)(const T *restrict x, const int32_t *restrict offsets, int64_t first, int64_t end,
                         int64_t plane_size, int64_t P, int64_t taps, T *restrict y, int32_t *restrict argmax) {
  bool dense = taps > 0;
  for (int64_t i = 0; i < P * taps && dense; i++) dense = offsets[i] >= 0;
  if (dense) {
    FN(max_pool_dense)(x, offsets, first, end, plane_size, P, taps, y, argmax);
    return;
  }
  for (int64_t k = first; k < end; k++) {
    const int64_t base = k * plane_size;
    for (int64_t p = 0; p < P; p++) {
      double best = -INFINITY;
      int64_t arg = -1;
      for (int64_t q = 0; q < taps; q++) {
        const int32_t off = offsets[p * taps + q];
        if (off < 0) continue;
        const double v = (double)x[base + off];
        if (arg < 0 || v > best || isnan(v)) {
          best = v;
          arg = base + off;
          if (isnan(v)) break;
        }
      }
      y[k * P + p] = (T)best;
      argmax[k * P + p] = (int32_t)arg;
    }
  }
}

VECTOR_CLONES static void FN(sgd_update)(T *restrict w, const T *restrict grad, T *restrict buf, int64_t n, double lr, double k,
                           double wd, double dwd, double momentum, bool first) {
  if (buf) {
    for (int64_t e = 0; e < n; e++) {
      const double g = k * (double)grad[e] + wd * (double)w[e];
      const T b = (T)(first ? g : momentum * (double)buf[e] + g);
      buf[e] = b;
      w[e] = (T)((double)w[e] - lr * ((double)b + dwd * (double)w[e]));
    }
  } else {
    const double decay = wd + dwd;
    for (int64_t e = 0; e < n; e++) w[e] = (T)((double)w[e] - lr * (k * (double)grad[e] + decay * (double)w[e]));
  }
}

VECTOR_CLONES static void FN(adam_update)(T *restrict w, const T *restrict grad, T *restrict m, T *restrict v, int64_t n,
                            double k, double coupled, double beta1, double beta2, double shrink, double step_size,
                            double bc2_sqrt, double eps) {
  for (int64_t e = 0; e < n; e++) {
    const double we = (double)w[e];
    const double g = k * (double)grad[e] + coupled * we;
    const T me = (T)(beta1 * (double)m[e] + (1 - beta1) * g);
    const T ve = (T)(beta2 * (double)v[e] + (1 - beta2) * g * g);
    m[e] = me;
    v[e] = ve;
    w[e] = (T)(we * shrink - step_size * ((double)me / (sqrt((double)ve) / bc2_sqrt + eps)));
  }
}

VECTOR_CLONES static void FN(adam_preconditioner)(const T *restrict w, const T *restrict grad, const T *restrict v,
                                                  T *restrict out, int64_t n, double k, double coupled, double beta2,
                                                  double bc2_sqrt, double eps) {
  if (v) {
    for (int64_t e = 0; e < n; e++) {
      const double g = k * (double)grad[e] + coupled * (double)w[e];
      const double vt = beta2 * (double)v[e] + (1 - beta2) * g * g;
      out[e] = (T)(1 / (sqrt(vt) / bc2_sqrt + eps));
    }
  } else {
    for (int64_t e = 0; e < n; e++) {
      const double g = k * (double)grad[e] + coupled * (double)w[e];
      const double vt = 0 + (1 - beta2) * g * g;
      out[e] = (T)(1 / (sqrt(vt) / bc2_sqrt + eps));
    }
  }
}

VECTOR_CLONES static void FN(adam_linearise)(T *restrict P, const T *restrict w, const T *restrict m, T *restrict c,
                                             int64_t n, double beta1, double wd, bool decoupled, double bc1,
                                             double k_factor) {
  if (c && decoupled) {
    if (m)
      for (int64_t e = 0; e < n; e++) c[e] = (T)((double)P[e] * beta1 * (double)m[e] / bc1 + wd * (double)w[e]);
    else
      for (int64_t e = 0; e < n; e++) c[e] = (T)(0 + wd * (double)w[e]);
  } else if (c) {
    const double decay = (1 - beta1) * wd;
    if (m)
      for (int64_t e = 0; e < n; e++)
        c[e] = (T)((double)P[e] * (beta1 * (double)m[e] + decay * (double)w[e]) / bc1);
    else
      for (int64_t e = 0; e < n; e++) c[e] = (T)((double)P[e] * (0 + decay * (double)w[e]) / bc1);
  }
  for (int64_t e = 0; e < n; e++) P[e] = (T)((double)P[e] * k_factor);
}

/* No restrict on x and out: out may be x itself. */
VECTOR_CLONES static void FN(scale_vector)(const T *x, double scale, const T *restrict diag, T *out, int64_t n) {
  if (diag)
    for (int64_t e = 0; e < n; e++) out[e] = (T)(scale * (double)diag[e] * (double)x[e]);
  else
    for (int64_t e = 0; e < n; e++) out[e] = (T)(scale * (double)x[e]);
}

#undef FN
#undef CAT
#undef CAT_
