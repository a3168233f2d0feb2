/* Convolution and pooling kernels for the rows of clgraph/ops/conv.py: im2col (kernels
   im2col and im2row), col2im, transpose_copy (transpose), and the 2-d and 3-d pools:
   max_pool, max_pool_backward, avg_pool, avg_pool_backward, adaptive_avg_pool,
   adaptive_avg_pool_backward.
   conv2d is im2row, the matmul kernels, and transpose.

   Images are (N, C, H, W) read through an element offset and element strides
   (IMG(x) = x, xoff, xsn, xsc, xsh, xsw), so any view works without a copy; every output
   is a fresh contiguous buffer. Window geometry (GEOM, all int):
     C H W      channels and input height/width
     KH KW      kernel size; SH SW stride; DH DW dilation
     PH PW      top/left padding (bottom/right padding only shows in OH/OW)
     OH OW      output height/width (of the sliding blocks or the pooled image)
   Output position (oh, ow) and kernel tap (i, j) read input pixel
     (oh*SH - PH + i*DH, ow*SW - PW + j*DW); taps outside the image are padding.

   Kernels. No two work-items write the same element, and each adds its contributions in
   a fixed order: results are deterministic and need no atomics.
     im2col     (IMG(x), GEOM, rows, cols): cols[n, (c*KH + i)*KW + j, oh*OW + ow] =
                x[n, c, ih, iw], 0 in the padding; (N, C*KH*KW, OH*OW), the layout of
                torch.nn.functional.unfold. rows = N*C*KH*KW*OH, one per run of OW outputs.
     im2row     (IMG(x), GEOM, rows, out): the same patches as rows, (N, OH*OW, C*KH*KW):
                conv2d's layout. rows = N*OH; a work-item writes OW*C*KH*KW contiguous.
     col2im     (cols, coff, csn, csk, csl, GEOM, rows, gx): im2col's adjoint (fold):
                gx[n, c, h, w] = sum of cols[n, (c*KH + i)*KW + j, oh*OW + ow] over the taps
                and positions that read (h, w); cols is read through strides (csk == 1 for
                im2row's layout). rows = N*C*H; a work-item owns one image row, zeroes it
                and adds along it tap by tap (no divisions in the inner loop).
     transpose  (x, xoff, xs1, xs2, xsr, xsc, B2, R, Cn, tiles, out): out[b1, b2, c, r] =
                x[b1, b2, r, c] for x of shape (B1, B2, R, Cn) with the given strides.
                One work-item per 8x8 tile: tiles = B1*B2*ceil(R/8)*ceil(Cn/8).
     The pools are N-d: a volume (N, C, D, H, W) read through VOL(x) (IMG plus a depth
     stride), GEOM3 = GEOM plus the depth's D, KD, SD, PD, DD, OD; a 2-d pool runs with
     D = KD = SD = DD = OD = 1 and PD = 0. "Row" below is an output row (nc, od, oh).
     max_pool   (VOL(x), GEOM3, rows, y, idx, want_idx): y = max over the window's taps in
                the volume (a NaN wins); with want_idx, idx = the flat index
                (id*H + ih)*W + iw PyTorch's CPU kernel reports (the first maximum, or the
                last NaN). rows = N*C*OD*OH, one per output row. Rows max_pool2d/3d.
     max_pool_backward
                (VOL(g), VOL(x), GEOM3, rows, gx): gx[n, c, d, h, w] = sum of
                g[n, c, od, oh, ow] over the windows whose argmax (recomputed from x as in
                max_pool) is (d, h, w). rows = N*C*OD*OH: work-item (od, oh) owns the input
                planes from od*SD - PD to the next one's start and likewise the rows (see
                stripe()), zeroes them and visits, in order, the windows that meet them.
     max_pool2x2, max_pool2x2_backward
                2-d 2x2 windows at stride 2 over float rows of unit stride (IMG, GEOM), 8
                outputs per work-item with vector loads (see above them).
     avg_pool   (VOL(x), GEOM3, include_pad, divisor, rows, y): y = window sum / divisor,
                the divisor being divisor (when not 0), else the window clipped to the padded
                volume (include_pad) or to the volume, as PyTorch's. DD = DH = DW = 1.
                rows = N*C*OD*OH.
     avg_pool_backward
                (VOL(g), GEOM3, include_pad, divisor, rows, gx): the adjoint;
                rows = N*C*D*H, a work-item owns one image row.
     adaptive_avg_pool
                (VOL(x), C, D, H, W, OD, OH, OW, rows, y): the mean over planes
                [od*D/OD, ceil((od+1)*D/OD)), rows and columns likewise. rows = N*C*OD*OH.
     adaptive_avg_pool_backward
                (VOL(g), C, D, H, W, OD, OH, OW, rows, gx): the adjoint; rows = N*C*D*H.

   Launch geometry: 1-D, global = rows (or tiles) rounded up to a multiple of the local
   size, local = codegen.local_size (64 on CPUs); extra work-items return at once.

   Build options: -D T (storage: float, double or half), -D ACC (arithmetic: float or
   double), -D IS_HALF=1 for half storage (vload_half/vstore_half, no cl_khr_fp16 needed),
   -D USE_FP64=1 when T or ACC is double. Integer types (max_pool, avg_pool of long, the
   im2col/col2im/transpose copies of integer convolutions) compute in their own type, with
   -D LOWEST=<its min> for max_pool; C's integer division truncates avg_pool toward zero.

   PoCL (measured, 2 EPYC cores): it vectorizes these kernels across work-items when the
   loops are plain reductions; isnan() and the integer min()/max() are calls there that
   stop it, hence v != v and the IMIN/IMAX ternaries. */

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#ifndef T
#define T float
#endif
#ifndef ACC
#define ACC float
#endif
#ifndef IS_HALF
#define IS_HALF 0
#endif
#ifndef IS_BF16
#define IS_BF16 0
#endif
#ifndef F32_ROWS /* whether T is float: the 2x2 max pool kernels read float rows */
#define F32_ROWS 1
#endif
#ifndef LOWEST /* below every value of ACC: max_pool's start (integer types pass their min) */
#define LOWEST (-INFINITY)
#define IS_NAN(v) ((v) != (v)) /* isnan() is a call */
#else
#define IS_NAN(v) 0 /* integers: no NaN (and no self-comparison warnings) */
#endif

#if IS_HALF
#define LOAD(p, i) vload_half((i), (p))
#define STORE(p, i, v) vstore_half((v), (i), (p))
#elif IS_BF16
#define LOAD(p, i) cg_bf16((p)[i])
#define STORE(p, i, v) ((p)[i] = cg_bfbits((float)(v)))
#else
#define LOAD(p, i) ((ACC)(p)[i])
#define STORE(p, i, v) ((p)[i] = (T)(v))
#endif

/* min/max as ternaries: PoCL calls (does not inline) its integer built-ins */
#define IMIN(a, b) ((a) < (b) ? (a) : (b))
#define IMAX(a, b) ((a) > (b) ? (a) : (b))

#define GEOM                                                                             \
  const int C, const int H, const int W, const int KH, const int KW, const int SH,       \
      const int SW, const int PH, const int PW, const int DH, const int DW, const int OH, \
      const int OW

#define IMG(name) __global const T *name, const long name##off, const long name##sn, \
                  const long name##sc, const long name##sh, const long name##sw

/* the pools' geometry and volumes: GEOM with a depth (a 2-d pool is one of depth 1) */
#define GEOM3                                                                               \
  const int C, const int D, const int H, const int W, const int KD, const int KH,           \
      const int KW, const int SD, const int SH, const int SW, const int PD, const int PH,   \
      const int PW, const int DD, const int DH, const int DW, const int OD, const int OH,   \
      const int OW

#define VOL(name) __global const T *name, const long name##off, const long name##sn, \
                  const long name##sc, const long name##sd, const long name##sh,      \
                  const long name##sw

/* the window (or tap) position oh that reads input row h through tap i: -1 if none */
inline int tap_src(const int h, const int i, const int P, const int D, const int S,
                   const int O) {
  const int num = h + P - i * D;
  if (num < 0 || num % S) return -1;
  const int o = num / S;
  return o < O ? o : -1;
}

__kernel void im2col(IMG(x), GEOM, const long rows, __global T *cols) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH;
  const long q = r / OH;  // (n, c, i, j) = n * C*KH*KW + ckk
  const int ckk = q % (C * KH * KW);
  const long n = q / (C * KH * KW);
  const int c = ckk / (KH * KW), i = (ckk / KW) % KH, j = ckk % KW;
  __global T *out = cols + r * OW;
  const int ih = oh * SH - PH + i * DH;
  if (ih < 0 || ih >= H) {
    for (int ow = 0; ow < OW; ++ow) STORE(out, ow, (ACC)0);
    return;
  }
  const long base = xoff + n * xsn + c * xsc + ih * xsh;
  int iw = j * DW - PW;
  for (int ow = 0; ow < OW; ++ow, iw += SW) {
    const ACC v = (iw >= 0 && iw < W) ? LOAD(x, base + iw * xsw) : (ACC)0;
    STORE(out, ow, v);
  }
}

__kernel void im2row(IMG(x), GEOM, const long rows, __global T *out) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH;
  const long n = r / OH;
  const int K = C * KH * KW;
  __global T *o = out + r * OW * K;
  const long base = xoff + n * xsn;
  for (int ow = 0; ow < OW; ++ow) {
    for (int c = 0; c < C; ++c) {
      for (int i = 0; i < KH; ++i) {
        const int ih = oh * SH - PH + i * DH;
        const int hin = ih >= 0 && ih < H;
        const long rowp = base + c * xsc + ih * xsh;
        int iw = ow * SW - PW;
        for (int j = 0; j < KW; ++j, iw += DW, ++o) {
          const ACC v = (hin && iw >= 0 && iw < W) ? LOAD(x, rowp + iw * xsw) : (ACC)0;
          STORE(o, 0, v);
        }
      }
    }
  }
}

/* 8 x 8 tiles: a work-item reads 8 rows of 8 and writes 8 rows of 8 */
#define TT 8
__kernel void transpose(__global const T *x, const long xoff, const long xs1, const long xs2,
                        const long xsr, const long xsc, const int B2, const int R,
                        const int Cn, const long tiles, __global T *out) {
  const long t = get_global_id(0);
  if (t >= tiles) return;
  const int nct = (Cn + TT - 1) / TT, nrt = (R + TT - 1) / TT;
  const int c0 = (t % nct) * TT;
  const long q = t / nct;
  const int r0 = (q % nrt) * TT;
  const long b = q / nrt;
  const long src = xoff + (b / B2) * xs1 + (b % B2) * xs2;
  __global T *dst = out + b * R * Cn;
  if (r0 + TT <= R && c0 + TT <= Cn && xsr == 1) {
    /* a transposed view (x @ W.T's weight): each output row's 8 elements lie side by side
       in x too, a copy of 8-element runs */
    for (int j = 0; j < TT; ++j) {
      const long s = src + r0 + (c0 + j) * xsc;
      const long d = (long)(c0 + j) * R + r0;
      for (int i = 0; i < TT; ++i) STORE(dst, d + i, LOAD(x, s + i));
    }
  } else if (r0 + TT <= R && c0 + TT <= Cn && xsc == 1) {
    ACC v[TT][TT];
    for (int i = 0; i < TT; ++i)
      for (int j = 0; j < TT; ++j) v[i][j] = LOAD(x, src + (r0 + i) * xsr + c0 + j);
    for (int j = 0; j < TT; ++j)
      for (int i = 0; i < TT; ++i) STORE(dst, (long)(c0 + j) * R + r0 + i, v[i][j]);
  } else if (r0 + TT <= R && c0 + TT <= Cn) {
    ACC v[TT][TT];
    for (int i = 0; i < TT; ++i)
      for (int j = 0; j < TT; ++j) v[i][j] = LOAD(x, src + (r0 + i) * xsr + (c0 + j) * xsc);
    for (int j = 0; j < TT; ++j)
      for (int i = 0; i < TT; ++i) STORE(dst, (long)(c0 + j) * R + r0 + i, v[i][j]);
  } else {
    const int re = IMIN(R - r0, TT), ce = IMIN(Cn - c0, TT);
    for (int j = 0; j < ce; ++j)
      for (int i = 0; i < re; ++i)
        STORE(dst, (long)(c0 + j) * R + r0 + i, LOAD(x, src + (r0 + i) * xsr + (c0 + j) * xsc));
  }
}

__kernel void col2im(__global const T *cols, const long coff, const long csn,
                     const long csk, const long csl, GEOM, const long rows, __global T *gx) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  /* with patches as rows (csk == 1) consecutive work-items take the channels of one image
     row, so they read the same cache lines; otherwise the rows of one plane */
  int c, h;
  long n;
  if (csk == 1) {
    c = r % C;
    h = (r / C) % H;
    n = r / C / H;
  } else {
    h = r % H;
    c = (r / H) % C;
    n = r / H / C;
  }
  __global T *out = gx + ((n * C + c) * H + h) * W;
  for (int w = 0; w < W; ++w) STORE(out, w, (ACC)0);
  const long cbase = coff + n * csn + (long)c * KH * KW * csk;
  /* scatter within the owned row, so no tap needs a division */
  for (int i = 0; i < KH; ++i) {
    const int oh = tap_src(h, i, PH, DH, SH, OH);
    if (oh < 0) continue;
    for (int j = 0; j < KW; ++j) {
      const long src = cbase + (i * KW + j) * csk + (long)oh * OW * csl;
      int w = j * DW - PW;
      for (int ow = 0; ow < OW; ++ow, w += SW)
        if (w >= 0 && w < W) STORE(out, w, LOAD(out, w) + LOAD(cols, src + ow * csl));
    }
  }
}

/* a window's taps inside the image along one axis: [*s, *e) in steps of D */
inline void window_span(const int start, const int K, const int D, const int n, int *s,
                        int *e) {
  int t = start;
  while (t < 0) t += D;
  *s = t;
  *e = IMIN(start + (K - 1) * D + 1, n);
}

/* The maximum of a window (a NaN wins), then in a second pass the flat index
   (id*H + ih)*W + iw PyTorch's scan reports: the first tap equal to the maximum, or the
   last NaN. PoCL vectorizes these two loops across work-items but not one loop that tracks
   the position (64x16x28x28, 2x2 windows: 0.67 ms against 3.9 ms). */
#define WINDOW_MAX(m, x, base, xsd, xsh, xsw, ds, de, hs, he, ws, we, DD, DH, DW) \
  ACC m = LOWEST;                                                               \
  for (int id = ds; id < de; id += DD)                                          \
    for (int ih = hs; ih < he; ih += DH)                                        \
      for (int iw = ws; iw < we; iw += DW) {                                    \
        const ACC v_ = LOAD(x, base + id * xsd + ih * xsh + iw * xsw);          \
        m = (v_ > m || IS_NAN(v_)) ? v_ : m;                                    \
      }

inline long window_argmax(__global const T *x, const long base, const long xsd,
                          const long xsh, const long xsw, const int ds, const int de,
                          const int hs, const int he, const int ws, const int we,
                          const int DD, const int DH, const int DW, const int H, const int W,
                          const ACC m) {
  long pos = -1;
  for (int id = ds; id < de; id += DD)
    for (int ih = hs; ih < he; ih += DH)
      for (int iw = ws; iw < we; iw += DW) {
        const ACC v = LOAD(x, base + id * xsd + ih * xsh + iw * xsw);
        const long p = ((long)id * H + ih) * W + iw;
        pos = IS_NAN(v) ? p : (pos < 0 && v == m) ? p : pos;
      }
  return pos < 0 ? ((long)ds * H + hs) * W + ws : pos;
}

__kernel void max_pool(VOL(x), GEOM3, const long rows, __global T *y, __global long *idx,
                       const int want_idx) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, od = (r / OH) % OD;
  const long nc = r / OH / OD;
  const long base = xoff + (nc / C) * xsn + (nc % C) * xsc;
  int ds, de, hs, he;
  window_span(od * SD - PD, KD, DD, D, &ds, &de);
  window_span(oh * SH - PH, KH, DH, H, &hs, &he);
  for (int ow = 0; ow < OW; ++ow) {
    int ws, we;
    window_span(ow * SW - PW, KW, DW, W, &ws, &we);
    WINDOW_MAX(m, x, base, xsd, xsh, xsw, ds, de, hs, he, ws, we, DD, DH, DW)
    STORE(y, r * OW + ow, m);
    if (want_idx)
      idx[r * OW + ow] =
          window_argmax(x, base, xsd, xsh, xsw, ds, de, hs, he, ws, we, DD, DH, DW, H, W, m);
  }
}

/* first input row owned by pooling row o: the rows from o*S - P up to the next row's start
   (row 0 also owns the rows above, the last row the rows below); likewise for planes */
inline int stripe(const int o, const int S, const int P, const int O, const int H) {
  return o <= 0 ? 0 : o >= O ? H : IMAX(0, IMIN(H, o * S - P));
}

/* the first and last pooling positions whose windows meet input rows [h0, h1) */
inline void meeting(const int h0, const int h1, const int K, const int S, const int P,
                    const int D, const int O, int *o0, int *o1) {
  const int lo = h0 + P - (K - 1) * D;
  *o0 = lo <= 0 ? 0 : (lo + S - 1) / S;
  *o1 = IMIN(O - 1, (h1 - 1 + P) / S);
}

__kernel void max_pool_backward(VOL(g), VOL(x), GEOM3, const long rows, __global T *gx) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, od = (r / OH) % OD;
  const long nc = r / OH / OD;
  const int d0 = stripe(od, SD, PD, OD, D), d1 = stripe(od + 1, SD, PD, OD, D);
  const int h0 = stripe(oh, SH, PH, OH, H), h1 = stripe(oh + 1, SH, PH, OH, H);
  if (d0 >= d1 || h0 >= h1) return;
  const long HW = (long)H * W;
  __global T *out = gx + nc * D * HW;
  for (int d = d0; d < d1; ++d)
    for (long p = h0 * W; p < h1 * W; ++p) STORE(out, d * HW + p, (ACC)0);
  const long xbase = xoff + (nc / C) * xsn + (nc % C) * xsc;
  const long gbase = goff + (nc / C) * gsn + (nc % C) * gsc;
  /* the windows that meet the owned planes and rows, in a fixed order; each adds its
     gradient to its argmax when that lies in them */
  int a0, a1, b0, b1;
  meeting(d0, d1, KD, SD, PD, DD, OD, &a0, &a1);
  meeting(h0, h1, KH, SH, PH, DH, OH, &b0, &b1);
  for (int a = a0; a <= a1; ++a) {
    int ds, de;
    window_span(a * SD - PD, KD, DD, D, &ds, &de);
    for (int b = b0; b <= b1; ++b) {
      int hs, he;
      window_span(b * SH - PH, KH, DH, H, &hs, &he);
      for (int ow = 0; ow < OW; ++ow) {
        int ws, we;
        window_span(ow * SW - PW, KW, DW, W, &ws, &we);
        WINDOW_MAX(m, x, xbase, xsd, xsh, xsw, ds, de, hs, he, ws, we, DD, DH, DW)
        const long at =
            window_argmax(x, xbase, xsd, xsh, xsw, ds, de, hs, he, ws, we, DD, DH, DW, H, W, m);
        const int ad = at / HW, ah = (at / W) % H;
        if (ad >= d0 && ad < d1 && ah >= h0 && ah < h1)
          STORE(out, at, LOAD(out, at) + LOAD(g, gbase + a * gsd + b * gsh + ow * gsw));
      }
    }
  }
}

#if F32_ROWS /* float rows only; built for float32 storage alone */
/* 2x2 windows, stride 2, no padding or dilation, float, rows read with unit stride (the
   pooling of nearly every CNN): a work-item takes 8 outputs of one output row, reading 16
   floats of each of the two input rows as vectors; taps in the order (0,0) (0,1) (1,0)
   (1,1), a tap taking over when it is greater or NaN, as window_argmax (the first maximum,
   or the last NaN). Shares the IMG layout (the backward's gradient may have any strides);
   (C, H, W, OH, OW) with OH = H/2, OW = W/2; rows = N*C*OH, global = rows * ceil(OW/8). */
#define POOL_TAKE(m, k, t, tap)                \
  {                                            \
    const int8 take_ = (t > m) | (t != t);     \
    m = select(m, t, take_);                   \
    k = select(k, (int8)(tap), take_);         \
  }

/* the taps (0..3) of the maxima of 8 windows from column 2*ow0 of rows r0 and r1, *m their
   values */
inline int8 pool2x2_taps8(__global const float *r0, __global const float *r1, const int ow0,
                          float8 *m) {
  const float16 a0 = vload16(0, r0 + 2 * ow0), a1 = vload16(0, r1 + 2 * ow0);
  float8 v = a0.even;
  int8 k = (int8)(0);
  const float8 t1 = a0.odd, t2 = a1.even, t3 = a1.odd;
  POOL_TAKE(v, k, t1, 1)
  POOL_TAKE(v, k, t2, 2)
  POOL_TAKE(v, k, t3, 3)
  *m = v;
  return k;
}

/* the same for the one window at output column ow */
inline int pool2x2_tap1(__global const float *r0, __global const float *r1, const int ow,
                        float *m) {
  const float t1 = r0[2 * ow + 1], t2 = r1[2 * ow], t3 = r1[2 * ow + 1];
  float v = r0[2 * ow];
  int k = 0;
  if (t1 > v || t1 != t1) { v = t1; k = 1; }
  if (t2 > v || t2 != t2) { v = t2; k = 2; }
  if (t3 > v || t3 != t3) { v = t3; k = 3; }
  *m = v;
  return k;
}

/* a work-item's output row r = (nc, oh), its first output column ow0 and the two input
   rows r0, r1 of x it reads; work-items past the rows return */
#define POOL2X2_ROW                                                                       \
  const int QW = (OW + 7) / 8;                                                           \
  const long gid = get_global_id(0);                                                     \
  if (gid >= rows * QW) return;                                                          \
  const long r = gid / QW;                                                               \
  const int ow0 = (int)(gid % QW) * 8;                                                   \
  const int oh = r % OH;                                                                 \
  const long nc = r / OH;                                                                \
  __global const float *r0 = x + xoff + (nc / C) * xsn + (nc % C) * xsc + 2 * oh * xsh;   \
  __global const float *r1 = r0 + xsh;

__kernel void max_pool2x2(IMG(x), const int C, const int H, const int W, const int OH,
                          const int OW, const long rows, __global float *y,
                          __global long *idx, const int want_idx) {
  POOL2X2_ROW
  const long ob = r * OW + ow0;
  if (ow0 + 8 <= OW) {
    float8 m;
    const int8 k = pool2x2_taps8(r0, r1, ow0, &m);
    vstore8(m, 0, y + ob);
    if (want_idx) {
      const int8 col = 2 * ow0 + (int8)(0, 2, 4, 6, 8, 10, 12, 14) + (k & 1);
      vstore8(convert_long8((2 * oh + (k >> 1)) * W + col), 0, idx + ob);
    }
    return;
  }
  for (int ow = ow0; ow < OW; ++ow) {
    float m;
    const int k = pool2x2_tap1(r0, r1, ow, &m);
    y[r * OW + ow] = m;
    if (want_idx) idx[r * OW + ow] = (long)(2 * oh + (k >> 1)) * W + 2 * ow + (k & 1);
  }
}

/* max_pool2x2's adjoint: each output's gradient goes to its window's argmax (recomputed
   from x), the window's other taps get 0; gx is a fresh contiguous (N, C, H, W). The last
   column of an odd W and the last row of an odd H belong to no window: the work-items at
   the row's end and at the last output row zero them. */
__kernel void max_pool2x2_backward(IMG(g), IMG(x), const int C, const int H, const int W,
                                   const int OH, const int OW, const long rows,
                                   __global float *gx) {
  POOL2X2_ROW
  __global const float *gr = g + goff + (nc / C) * gsn + (nc % C) * gsc + oh * gsh;
  __global float *o0 = gx + nc * H * W + 2 * oh * W;
  __global float *o1 = o0 + W;
  const int ow1 = ow0 + 8 <= OW ? ow0 + 8 : OW;
  if (ow0 + 8 <= OW) {
    float8 m;
    const int8 k = pool2x2_taps8(r0, r1, ow0, &m);
    const float8 z = (float8)(0.0f);
    const float8 gv = gsw == 1 ? vload8(0, gr + ow0) : (float8)(
        gr[ow0 * gsw], gr[(ow0 + 1) * gsw], gr[(ow0 + 2) * gsw], gr[(ow0 + 3) * gsw],
        gr[(ow0 + 4) * gsw], gr[(ow0 + 5) * gsw], gr[(ow0 + 6) * gsw], gr[(ow0 + 7) * gsw]);
    float16 b0, b1;
    b0.even = select(z, gv, k == 0);
    b0.odd = select(z, gv, k == 1);
    b1.even = select(z, gv, k == 2);
    b1.odd = select(z, gv, k == 3);
    vstore16(b0, 0, o0 + 2 * ow0);
    vstore16(b1, 0, o1 + 2 * ow0);
  } else {
    for (int ow = ow0; ow < OW; ++ow) {
      float m;
      const int k = pool2x2_tap1(r0, r1, ow, &m);
      const float gv = gr[ow * gsw];
      o0[2 * ow] = k == 0 ? gv : 0.0f;
      o0[2 * ow + 1] = k == 1 ? gv : 0.0f;
      o1[2 * ow] = k == 2 ? gv : 0.0f;
      o1[2 * ow + 1] = k == 3 ? gv : 0.0f;
    }
  }
  const int c1 = ow1 == OW ? W : 2 * ow1;  /* the row's end takes the uncovered columns */
  for (int c = 2 * OW > 2 * ow0 ? 2 * OW : 2 * ow0; c < c1; ++c) {
    o0[c] = 0.0f;
    o1[c] = 0.0f;
  }
  if (oh == OH - 1)
    for (int h = 2 * OH; h < H; ++h)
      for (int c = 2 * ow0; c < c1; ++c) gx[nc * H * W + h * W + c] = 0.0f;
}
#endif /* F32_ROWS */

/* avg_pool's divisor for the window at (od, oh, ow); PyTorch's rule */
inline ACC avg_divisor(const int od, const int oh, const int ow, GEOM3, const int include_pad,
                       const int divisor) {
  if (divisor != 0) return (ACC)divisor; /* divisor_override, negative ones too */
  const int ds = od * SD - PD, hs = oh * SH - PH, ws = ow * SW - PW;
  const int de = IMIN(ds + KD, D + PD), he = IMIN(hs + KH, H + PH), we = IMIN(ws + KW, W + PW);
  if (include_pad) return (ACC)((de - ds) * (he - hs) * (we - ws));
  return (ACC)((IMIN(de, D) - IMAX(ds, 0)) * (IMIN(he, H) - IMAX(hs, 0)) *
               (IMIN(we, W) - IMAX(ws, 0)));
}

#define GEOM3_ARGS C, D, H, W, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW, OD, OH, OW

__kernel void avg_pool(VOL(x), GEOM3, const int include_pad, const int divisor,
                       const long rows, __global T *y) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, od = (r / OH) % OD;
  const long nc = r / OH / OD;
  const long base = xoff + (nc / C) * xsn + (nc % C) * xsc;
  const int ds = IMAX(od * SD - PD, 0), de = IMIN(od * SD - PD + KD, D);
  const int hs = IMAX(oh * SH - PH, 0), he = IMIN(oh * SH - PH + KH, H);
  for (int ow = 0; ow < OW; ++ow) {
    const int ws = IMAX(ow * SW - PW, 0), we = IMIN(ow * SW - PW + KW, W);
    ACC acc = 0;
    for (int id = ds; id < de; ++id)
      for (int ih = hs; ih < he; ++ih)
        for (int iw = ws; iw < we; ++iw) acc += LOAD(x, base + id * xsd + ih * xsh + iw * xsw);
    STORE(y, r * OW + ow, acc / avg_divisor(od, oh, ow, GEOM3_ARGS, include_pad, divisor));
  }
}

__kernel void avg_pool_backward(VOL(g), GEOM3, const int include_pad, const int divisor,
                                const long rows, __global T *gx) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int h = r % H, d = (r / H) % D;
  const long nc = r / H / D;
  const long gbase = goff + (nc / C) * gsn + (nc % C) * gsc;
  __global T *out = gx + r * W;
  for (int w = 0; w < W; ++w) STORE(out, w, (ACC)0);
  for (int k = 0; k < KD; ++k) {
    const int od = tap_src(d, k, PD, 1, SD, OD);
    if (od < 0) continue;
    for (int i = 0; i < KH; ++i) {
      const int oh = tap_src(h, i, PH, 1, SH, OH);
      if (oh < 0) continue;
      for (int ow = 0; ow < OW; ++ow) {
        const ACC v = LOAD(g, gbase + od * gsd + oh * gsh + ow * gsw) /
                      avg_divisor(od, oh, ow, GEOM3_ARGS, include_pad, divisor);
        const int w0 = ow * SW - PW;
        for (int w = IMAX(w0, 0); w < IMIN(w0 + KW, W); ++w) STORE(out, w, LOAD(out, w) + v);
      }
    }
  }
}

/* adaptive windows: [o*I/O, ceil((o+1)*I/O)) */
#define ASTART(o, I, O) (((o) * (I)) / (O))
#define AEND(o, I, O) ((((o) + 1) * (I) + (O) - 1) / (O))

__kernel void adaptive_avg_pool(VOL(x), const int C, const int D, const int H, const int W,
                                const int OD, const int OH, const int OW, const long rows,
                                __global T *y) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, od = (r / OH) % OD;
  const long nc = r / OH / OD;
  const long base = xoff + (nc / C) * xsn + (nc % C) * xsc;
  const int ds = ASTART(od, D, OD), de = AEND(od, D, OD);
  const int hs = ASTART(oh, H, OH), he = AEND(oh, H, OH);
  for (int ow = 0; ow < OW; ++ow) {
    const int ws = ASTART(ow, W, OW), we = AEND(ow, W, OW);
    ACC acc = 0;
    for (int id = ds; id < de; ++id)
      for (int ih = hs; ih < he; ++ih)
        for (int iw = ws; iw < we; ++iw) acc += LOAD(x, base + id * xsd + ih * xsh + iw * xsw);
    STORE(y, r * OW + ow, acc / (ACC)((de - ds) * (he - hs) * (we - ws)));
  }
}

__kernel void adaptive_avg_pool_backward(VOL(g), const int C, const int D, const int H,
                                         const int W, const int OD, const int OH,
                                         const int OW, const long rows, __global T *gx) {
  const long r = get_global_id(0);
  if (r >= rows) return;
  const int h = r % H, d = (r / H) % D;
  const long nc = r / H / D;
  const long gbase = goff + (nc / C) * gsn + (nc % C) * gsc;
  const int od0 = (d * OD) / D, od1 = AEND(d, OD, D);
  const int oh0 = (h * OH) / H, oh1 = AEND(h, OH, H);
  for (int w = 0; w < W; ++w) {
    const int ow0 = (w * OW) / W, ow1 = AEND(w, OW, W);
    ACC acc = 0;
    for (int od = od0; od < od1; ++od) {
      const int ds = ASTART(od, D, OD), de = AEND(od, D, OD);
      if (d < ds || d >= de) continue;
      for (int oh = oh0; oh < oh1; ++oh) {
        const int hs = ASTART(oh, H, OH), he = AEND(oh, H, OH);
        if (h < hs || h >= he) continue;
        for (int ow = ow0; ow < ow1; ++ow) {
          const int ws = ASTART(ow, W, OW), we = AEND(ow, W, OW);
          if (w < ws || w >= we) continue;
          acc += LOAD(g, gbase + od * gsd + oh * gsh + ow * gsw) /
                 (ACC)((de - ds) * (he - hs) * (we - ws));
        }
      }
    }
    STORE(gx, r * W + w, acc);
  }
}
