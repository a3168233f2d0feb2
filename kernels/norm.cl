/* Row normalizations: layer_norm (RMS=0) and rms_norm (RMS=1) over the last n elements of
   each row, forward and backward, each row read from global memory once per kernel.

     forward:  mean = sum(x) / n (layer_norm only), rstd = 1 / sqrt(sum((x - mean)^2) / n
               + eps) (rms_norm: sum(x^2)), y = (x - mean) * rstd * w + b
     backward: xh = (x - mean) * rstd, gw = g * w,
               dx = rstd * (gw - sum(gw) / n - xh * sum(gw * xh) / n)  (rms_norm: no sum(gw))
               dw = sum over rows of g * xh, db = sum over rows of g  (norm_bwd_wb: columns)

   Layouts: x and g are rows of n contiguous elements at x_off + r * x_rs (g_off, g_rs);
   y, dx are contiguous (rows, n); w, b contiguous (n); mean and rstd (rows) in ACC (float
   for half and bfloat16, as PyTorch saves them). has_w / has_b: 0 when weight / bias is
   None (the pointer is then any buffer, never read).

   Kernels (one program per dtype, RMS and VW):
     norm_fwd, norm_bwd (CPU): one work-item per row; the statistics pass reads the row with
       VW-wide vectors into 4 vector accumulators, the second pass re-reads it from the
       core's cache (rows up to a few 10^4 elements stay there); global = rows rounded up
       to the local size. Explicit vectors: PoCL vectorizes only those (POCL-NOTES).
     norm_fwd_tree, norm_bwd_tree (GPU): tpr work-items per row (a power of two <= the
       work-group size L), L / tpr rows per work-group, local-memory tree sums; the row (in
       the backward: gw and xh) stays in local memory between the passes when the group's
       rows fit in CACHE elements. global = ceil(rows / (L / tpr)) * L, local = L.
     norm_bwd_wb: work-item j sums TILE * VW adjacent columns (TILE = 1 on GPUs:
       neighbouring work-items read neighbouring vectors) over rows [c * chunk, (c + 1) *
       chunk) of chunk c = get_global_id(1), writing dw and db partials (nchunk, n) in ACC.
       Wide tiles touch fewer pages per element (each row is a new one): on 2048 x 8192
       float32 (PoCL, AVX-512) 4 x float16 took 12 ms, 2 x 17 ms, 1 x 27 ms (medians).
   int loop counters in the kernels with barriers (POCL-NOTES: AVX-512 hosts).
   Build options: -D T -D IS_HALF -D IS_BF16 (storage), -D ACC (float | double), -D VW,
   -D RMS, -D L (tree work-group size), -D CACHE (tree local elements), -D TILE. */

#include "rowvec.cl"

#ifndef RMS
#define RMS 0
#endif
#ifndef L
#define L 256
#endif
#ifndef CACHE
#define CACHE 1024
#endif
#ifndef TILE
#define TILE 4 /* vectors of columns per work-item of norm_bwd_wb */
#endif

/* the sum over a row of EXPR(V), V the elements at i: 4 vector accumulators, then one,
   then a scalar tail; EXPR is written for vectors and scalars alike */
#define ROW_SUM(out, n, LOADV, LOAD1, EXPR)                                                \
    {                                                                                      \
        VA s0_ = (VA)0, s1_ = (VA)0, s2_ = (VA)0, s3_ = (VA)0;                             \
        long i = 0;                                                                        \
        for (; i + 4 * VW <= (n); i += 4 * VW) {                                           \
            { const VA V = LOADV(i); s0_ += EXPR; }                                        \
            { const VA V = LOADV(i + VW); s1_ += EXPR; }                                   \
            { const VA V = LOADV(i + 2 * VW); s2_ += EXPR; }                               \
            { const VA V = LOADV(i + 3 * VW); s3_ += EXPR; }                               \
        }                                                                                  \
        for (; i + VW <= (n); i += VW) { const VA V = LOADV(i); s0_ += EXPR; }             \
        ACC t_ = hsum((s0_ + s1_) + (s2_ + s3_));                                          \
        for (; i < (n); ++i) { const ACC V = LOAD1(i); t_ += EXPR; }                       \
        out = t_;                                                                          \
    }

__kernel void norm_fwd(__global const T* x, const long x_off, const long x_rs,
                       __global const T* w, __global const T* b, __global T* y,
                       __global ACC* mean, __global ACC* rstd, const long rows, const long n,
                       const ACC eps, const int has_w, const int has_b)
{
    const long r = get_global_id(0);
    if (r >= rows) return;
    __global const T* xr = x + x_off + r * x_rs;
    __global T* yr = y + r * n;
#define XV(i) LDV(xr, i)
#define X1(i) LD1(xr, i)
    ACC m = 0;
#if !RMS
    ACC s;
    ROW_SUM(s, n, XV, X1, V)
    m = s / (ACC)n;
    mean[r] = m;
#endif
    ACC q;
    ROW_SUM(q, n, XV, X1, (V - m) * (V - m))
    const ACC rs = rsqrt(q / (ACC)n + eps);
    rstd[r] = rs;
    long i = 0;
    for (; i + VW <= n; i += VW) {
        VA v = (XV(i) - m) * rs;
        if (has_w) v *= LDV(w, i);
        if (has_b) v += LDV(b, i);
        STV(yr, i, v);
    }
    for (; i < n; ++i) {
        ACC v = (X1(i) - m) * rs;
        if (has_w) v *= LD1(w, i);
        if (has_b) v += LD1(b, i);
        ST1(yr, i, v);
    }
#undef XV
#undef X1
}

__kernel void norm_bwd(__global const T* g, const long g_off, const long g_rs,
                       __global const T* x, const long x_off, const long x_rs,
                       __global const T* w, __global const ACC* mean,
                       __global const ACC* rstd, __global T* dx, const long rows,
                       const long n, const int has_w)
{
    const long r = get_global_id(0);
    if (r >= rows) return;
    __global const T* xr = x + x_off + r * x_rs;
    __global const T* gr = g + g_off + r * g_rs;
    __global T* dr = dx + r * n;
#if RMS
    const ACC m = 0;
#else
    const ACC m = mean[r];
#endif
    const ACC rs = rstd[r];
    /* gw and xh of element(s) i */
#define GWV(i) (has_w ? LDV(gr, i) * LDV(w, i) : LDV(gr, i))
#define GW1(i) (has_w ? LD1(gr, i) * LD1(w, i) : LD1(gr, i))
#define XHV(i) ((LDV(xr, i) - m) * rs)
#define XH1(i) ((LD1(xr, i) - m) * rs)
#define PRODV(i) (GWV(i) * XHV(i))
#define PROD1(i) (GW1(i) * XH1(i))
    ACC c;
    ROW_SUM(c, n, PRODV, PROD1, V)
    c /= (ACC)n;
    ACC a = 0;
#if !RMS
    ROW_SUM(a, n, GWV, GW1, V)
    a /= (ACC)n;
#endif
    long i = 0;
    for (; i + VW <= n; i += VW) STV(dr, i, rs * (GWV(i) - a - XHV(i) * c));
    for (; i < n; ++i) ST1(dr, i, rs * (GW1(i) - a - XH1(i) * c));
}

/* the column sums of g * xh and g over rows [lo, hi) for the U vectors of columns at j */
#define WB_TILE(U)                                                                         \
    {                                                                                      \
        VA sw[U], sb[U];                                                                   \
        for (int u = 0; u < (U); ++u) { sw[u] = (VA)0; sb[u] = (VA)0; }                    \
        for (long r = lo; r < hi; ++r) {                                                   \
            const ACC m = RMS ? (ACC)0 : mean[r], rs = rstd[r];                            \
            __global const T* gr = g + g_off + r * g_rs + j;                               \
            __global const T* xr = x + x_off + r * x_rs + j;                               \
            for (int u = 0; u < (U); ++u) {                                                \
                const VA gv = LDV(gr, u * VW);                                             \
                sw[u] += gv * ((LDV(xr, u * VW) - m) * rs);                                \
                sb[u] += gv;                                                               \
            }                                                                              \
        }                                                                                  \
        for (int u = 0; u < (U); ++u) {                                                    \
            if (has_w) STA(dwr, j + u * VW, sw[u]);                                        \
            if (has_b) STA(dbr, j + u * VW, sb[u]);                                        \
        }                                                                                  \
    }

__kernel void norm_bwd_wb(__global const T* g, const long g_off, const long g_rs,
                          __global const T* x, const long x_off, const long x_rs,
                          __global const ACC* mean, __global const ACC* rstd,
                          __global ACC* dw, __global ACC* db, const long rows, const long n,
                          const long chunk, const int has_w, const int has_b)
{
    long j = get_global_id(0) * (TILE * VW);
    if (j >= n) return;
    const long c = get_global_id(1);
    const long lo = c * chunk, hi = min(lo + chunk, rows);
    __global ACC* dwr = dw + c * n;
    __global ACC* dbr = db + c * n;
    if (j + TILE * VW <= n) {
        WB_TILE(TILE)
        return;
    }
    for (; j + VW <= n; j += VW) WB_TILE(1)
    for (long k = j; k < n; ++k) {
        ACC sw = 0, sb = 0;
        for (long r = lo; r < hi; ++r) {
            const ACC gv = LD1(g, g_off + r * g_rs + k);
            const ACC m = RMS ? (ACC)0 : mean[r];
            sw += gv * ((LD1(x, x_off + r * x_rs + k) - m) * rstd[r]);
            sb += gv;
        }
        if (has_w) dwr[k] = sw;
        if (has_b) dbr[k] = sb;
    }
}

/* --- GPU: a work-group tree per row (or per group of short rows) ------------------------ */

/* out = the sum of val over the tpr work-items of this row (every work-item gets it) */
#define TREE_SUM(out, val)                                                                 \
    red[lid] = (val);                                                                      \
    for (int s_ = tpr >> 1; s_ > 0; s_ >>= 1) {                                            \
        barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        if (lane < s_) red[lid] += red[lid + s_];                                          \
    }                                                                                      \
    barrier(CLK_LOCAL_MEM_FENCE);                                                          \
    out = red[lid - lane];                                                                 \
    barrier(CLK_LOCAL_MEM_FENCE);

__kernel void norm_fwd_tree(__global const T* x, const long x_off, const long x_rs,
                            __global const T* w, __global const T* b, __global T* y,
                            __global ACC* mean, __global ACC* rstd, const long rows,
                            const int n, const ACC eps, const int has_w, const int has_b,
                            const int tpr)
{
    __local ACC red[L], xs_all[CACHE];
    const int lid = get_local_id(0), lane = lid & (tpr - 1), sub = lid / tpr;
    const long r = get_group_id(0) * (L / tpr) + sub;
    const int live = r < rows, cached = n * (L / tpr) <= CACHE;
    const int len = live ? n : 0;
    __global const T* xr = x + x_off + (live ? r : 0) * x_rs;
    __local ACC* xs = xs_all + (cached ? sub * n : 0);
    ACC m = 0, s = 0;
#if !RMS
    for (int t = lane; t < len; t += tpr) {
        const ACC v = LD1(xr, t);
        if (cached) xs[t] = v;
        s += v;
    }
    TREE_SUM(s, s)
    m = s / (ACC)n;
#endif
    ACC q = 0;
    for (int t = lane; t < len; t += tpr) {
#if RMS
        const ACC v = LD1(xr, t);
        if (cached) xs[t] = v;
#else
        const ACC v = cached ? xs[t] : LD1(xr, t);
#endif
        q += (v - m) * (v - m);
    }
    TREE_SUM(q, q)
    const ACC rs = rsqrt(q / (ACC)n + eps);
    if (live && lane == 0) {
        rstd[r] = rs;
#if !RMS
        mean[r] = m;
#endif
    }
    __global T* yr = y + (live ? r : 0) * (long)n;
    for (int t = lane; t < len; t += tpr) {
        ACC v = ((cached ? xs[t] : LD1(xr, t)) - m) * rs;
        if (has_w) v *= LD1(w, t);
        if (has_b) v += LD1(b, t);
        ST1(yr, t, v);
    }
}

__kernel void norm_bwd_tree(__global const T* g, const long g_off, const long g_rs,
                            __global const T* x, const long x_off, const long x_rs,
                            __global const T* w, __global const ACC* mean,
                            __global const ACC* rstd, __global T* dx, const long rows,
                            const int n, const int has_w, const int tpr)
{
    __local ACC red[L], cache[CACHE];
    const int lid = get_local_id(0), lane = lid & (tpr - 1), sub = lid / tpr;
    const long r = get_group_id(0) * (L / tpr) + sub;
    const int live = r < rows, cached = 2 * n * (L / tpr) <= CACHE;
    const int len = live ? n : 0;
    __global const T* xr = x + x_off + (live ? r : 0) * x_rs;
    __global const T* gr = g + g_off + (live ? r : 0) * g_rs;
    /* cached: gw at [0, n), xh at [n, 2n) of this row's slice */
    __local ACC* cs = cache + (cached ? 2 * sub * n : 0);
#if RMS
    const ACC m = 0;
#else
    const ACC m = live ? mean[r] : 0;
#endif
    const ACC rs = live ? rstd[r] : 0;
    ACC a = 0, c = 0;
    for (int t = lane; t < len; t += tpr) {
        const ACC gw = has_w ? LD1(gr, t) * LD1(w, t) : LD1(gr, t);
        const ACC xh = (LD1(xr, t) - m) * rs;
        if (cached) { cs[t] = gw; cs[n + t] = xh; }
        a += gw;
        c += gw * xh;
    }
    TREE_SUM(c, c)
    c /= (ACC)n;
#if RMS
    a = 0;
#else
    TREE_SUM(a, a)
    a /= (ACC)n;
#endif
    __global T* dr = dx + (live ? r : 0) * (long)n;
    for (int t = lane; t < len; t += tpr) {
        const ACC gw = cached ? cs[t] : (has_w ? LD1(gr, t) * LD1(w, t) : LD1(gr, t));
        const ACC xh = cached ? cs[n + t] : (LD1(xr, t) - m) * rs;
        ST1(dr, t, rs * (gw - a - xh * c));
    }
}
