/* Cross entropy over class indices, forward and backward, each row of logits read from
   global memory once per kernel.

     forward:  lse = log(sum(exp(x))) (an online max and sum of exp in one read), and with
               wt = w[t] (1 without weights), W = sum(w) (C), eps the label smoothing:
               loss = (1 - eps) * wt * (lse - x[t]) + eps / C * (W * lse - sum(w * x))
               (0 where t == ignore); the mean divides the summed losses by the sum of wt
     backward: p = exp(x - lse), gs = g (the row's, or g / denominator for the mean):
               dx = gs * (((1 - eps) * wt + eps / C * W) * p - eps / C * w - (1 - eps) * wt
               * onehot(t)), zeros on an ignored row

   Layouts: x is rows of C contiguous elements at x_off + r * x_rs; the targets (long) at
   t_off + r * t_st; w contiguous (C), read only when has_w; dx contiguous (rows, C). The
   forward writes lse[r] (ACC) and, with summed = 0 (reduction none), the loss out[r] (T);
   with summed = 1 the loss and wt of row r to part[r] and part[rows + r] (ACC), which
   ce_reduce sums into out[0] (T) and lse[rows] (the mean's denominator; 1 otherwise). The
   backward reads g at g_off + r * g_st (g_st = 0: one gradient for every row).

   Kernels (one program per dtype and VW):
     ce_fwd, ce_bwd (CPU): one work-item per row, VW-wide vectors (PoCL vectorizes only
       those: POCL-NOTES); the forward's running max moves once per 4 vectors, so a
       vector of elements costs 1.25 vector exps. global = rows rounded up to L.
     ce_fwd_tree, ce_bwd_tree (GPU): tpr work-items per row (a power of two <= L), L / tpr
       rows per work-group, local-memory trees; global = ceil(rows / (L / tpr)) * L.
     ce_reduce: one work-group of L work-items sums part; global = local = L.
   int loop counters in the kernels with barriers (POCL-NOTES: AVX-512 hosts).
   Build options: -D T -D IS_HALF -D IS_BF16 (storage), -D ACC (float | double), -D VW,
   -D L (work-group size). */

#include "rowvec.cl"

#ifndef L
#define L 64
#endif
#if defined(USE_FP64)
#define LOWEST (-DBL_MAX)
#else
#define LOWEST (-FLT_MAX)
#endif

inline ACC hmax(VA v) {
#if VW == 16
    const CAT(ACC, 8) a8 = fmax(v.lo, v.hi); const CAT(ACC, 4) a4 = fmax(a8.lo, a8.hi);
#elif VW == 8
    const CAT(ACC, 4) a4 = fmax(v.lo, v.hi);
#endif
#if VW >= 8
    const CAT(ACC, 2) a2 = fmax(a4.lo, a4.hi);
#elif VW == 4
    const CAT(ACC, 2) a2 = fmax(v.lo, v.hi);
#else
    const CAT(ACC, 2) a2 = v;
#endif
    return fmax(a2.x, a2.y);
}

/* The loss of a row and its target's weight (both 0 when ignored), from its lse, its first
   element x0 and, with smoothing, xs = sum(w * (x - x0)) and W = sum(w). */
inline ACC ce_row_loss(__global const T* xr, __global const T* w, const long t, const long C,
                       const long ignore, const ACC smooth, const int has_w, const ACC lse,
                       const ACC x0, const ACC xs, const ACC W, ACC* wt)
{
    if (t == ignore) {
        *wt = 0;
        return 0;
    }
    if (t < 0 || t >= C) { /* the host checks the targets first: never reached */
        *wt = NAN;
        return NAN;
    }
    const ACC wt_ = has_w ? LD1(w, t) : (ACC)1;
    *wt = wt_;
    ACC loss = (1 - smooth) * wt_ * (lse - LD1(xr, t));
    if (smooth > 0) loss += smooth / (ACC)C * (W * (lse - x0) - xs);
    return loss;
}

/* one logit (or vector of logits) v of a row into the running maximum m and the sum s of
   exp(. - m); with label smoothing (sm), its distance from x0 weighted by WC into xs and,
   when ADD_W, its weight into W. TY: v's type (ACC or VA). */
#define CE_STEP(TY, m, s, xs, W, v, WC, ADD_W) \
    {                                          \
        const TY mn_ = fmax(m, v);             \
        s = s * exp(m - mn_) + exp(v - mn_);   \
        m = mn_;                               \
        if (sm) {                              \
            const TY wc_ = WC;                 \
            xs += wc_ * (v - x0);              \
            if (ADD_W) W += wc_;               \
        }                                      \
    }

__kernel void ce_fwd(__global const T* x, const long x_off, const long x_rs,
                     __global const long* tgt, const long t_off, const long t_st,
                     __global const T* w, __global ACC* lse, __global ACC* part,
                     __global T* out, const long rows, const long C, const long ignore,
                     const ACC smooth, const int has_w, const int summed)
{
    const long r = get_global_id(0);
    if (r >= rows) return;
    __global const T* xr = x + x_off + r * x_rs;
    const ACC x0 = C > 0 ? LD1(xr, 0) : (ACC)0;
    const int sm = smooth > 0;
    VA mv = (VA)LOWEST, sv = (VA)0, xv = (VA)0, wv = (VA)0;
    long i = 0;
    for (; i + 4 * VW <= C; i += 4 * VW) {
        const VA v0 = LDV(xr, i), v1 = LDV(xr, i + VW), v2 = LDV(xr, i + 2 * VW),
                 v3 = LDV(xr, i + 3 * VW);
        const VA mn = fmax(mv, fmax(fmax(v0, v1), fmax(v2, v3)));
        sv = sv * exp(mv - mn) + ((exp(v0 - mn) + exp(v1 - mn)) + (exp(v2 - mn) + exp(v3 - mn)));
        mv = mn;
        if (sm) {
            if (has_w) {
                const VA w0 = LDV(w, i), w1 = LDV(w, i + VW), w2 = LDV(w, i + 2 * VW),
                         w3 = LDV(w, i + 3 * VW);
                xv += (w0 * (v0 - x0) + w1 * (v1 - x0)) + (w2 * (v2 - x0) + w3 * (v3 - x0));
                wv += (w0 + w1) + (w2 + w3);
            } else {
                xv += ((v0 - x0) + (v1 - x0)) + ((v2 - x0) + (v3 - x0));
            }
        }
    }
    for (; i + VW <= C; i += VW) {
        const VA v = LDV(xr, i);
        CE_STEP(VA, mv, sv, xv, wv, v, has_w ? LDV(w, i) : (VA)1, 1)
    }
    ACC m = hmax(mv);
    ACC s = hsum(sv * exp(mv - m)), xs = hsum(xv), W = has_w ? hsum(wv) : (ACC)C;
    for (; i < C; ++i) {
        const ACC v = LD1(xr, i);
        CE_STEP(ACC, m, s, xs, W, v, has_w ? LD1(w, i) : (ACC)1, has_w)
    }
    const ACC l = m + log(s);
    lse[r] = l;
    ACC wt;
    const ACC loss = ce_row_loss(xr, w, tgt[t_off + r * t_st], C, ignore, smooth, has_w, l,
                                 x0, xs, W, &wt);
    if (summed) {
        part[r] = loss;
        part[rows + r] = wt;
    } else {
        ST1(out, r, loss);
        if (r == 0) lse[rows] = 1;
    }
}

/* The coefficients of a row's gradient: dx = a * p - b * w - ct * onehot(t) */
#define ROW_COEFFS                                                                         \
    ACC gs = LD1(g, g_off + r * g_st);                                                     \
    if (mean) gs /= lse[rows];                                                             \
    const ACC wt = has_w ? LD1(w, t) : (ACC)1;                                             \
    const ACC b = gs * smooth / (ACC)C, ct = gs * (1 - smooth) * wt;                       \
    const ACC a = ct + b * W;

__kernel void ce_bwd(__global const T* g, const long g_off, const long g_st,
                     __global const T* x, const long x_off, const long x_rs,
                     __global const long* tgt, const long t_off, const long t_st,
                     __global const T* w, __global const ACC* lse, __global T* dx,
                     const long rows, const long C, const long ignore, const ACC smooth,
                     const int has_w, const int mean)
{
    const long r = get_global_id(0);
    if (r >= rows) return;
    __global const T* xr = x + x_off + r * x_rs;
    __global T* dr = dx + r * C;
    const long t = tgt[t_off + r * t_st];
    long i = 0;
    if (t == ignore || t < 0 || t >= C) {
        for (; i + VW <= C; i += VW) STV(dr, i, (VA)0);
        for (; i < C; ++i) ST1(dr, i, (ACC)0);
        return;
    }
    ACC W = C;
    if (has_w && smooth > 0) {
        VA wv = (VA)0;
        for (; i + VW <= C; i += VW) wv += LDV(w, i);
        W = hsum(wv);
        for (; i < C; ++i) W += LD1(w, i);
        i = 0;
    }
    ROW_COEFFS
    const ACC l = lse[r];
    if (has_w && smooth > 0) {
        for (; i + VW <= C; i += VW) STV(dr, i, a * exp(LDV(xr, i) - l) - b * LDV(w, i));
        for (; i < C; ++i) ST1(dr, i, a * exp(LD1(xr, i) - l) - b * LD1(w, i));
    } else {
        for (; i + VW <= C; i += VW) STV(dr, i, a * exp(LDV(xr, i) - l) - b);
        for (; i < C; ++i) ST1(dr, i, a * exp(LD1(xr, i) - l) - b);
    }
    /* the target's element again, its one-hot term included (stored once, in ACC) */
    ST1(dr, t, a * exp(LD1(xr, t) - l) - b * (has_w ? LD1(w, t) : (ACC)1) - ct);
}

/* --- GPU: a work-group tree per row (or per group of short rows) ------------------------ */

/* out = the sum (max) of val over the tpr work-items of this row (every work-item gets it) */
#define TREE(out, val, COMBINE)                                                            \
    red[lid] = (val);                                                                      \
    for (int s_ = tpr >> 1; s_ > 0; s_ >>= 1) {                                            \
        barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        if (lane < s_) red[lid] = COMBINE(red[lid], red[lid + s_]);                        \
    }                                                                                      \
    barrier(CLK_LOCAL_MEM_FENCE);                                                          \
    out = red[lid - lane];                                                                 \
    barrier(CLK_LOCAL_MEM_FENCE);
#define ADD(a, b) ((a) + (b))

__kernel void ce_fwd_tree(__global const T* x, const long x_off, const long x_rs,
                          __global const long* tgt, const long t_off, const long t_st,
                          __global const T* w, __global ACC* lse, __global ACC* part,
                          __global T* out, const long rows, const int C, const long ignore,
                          const ACC smooth, const int has_w, const int summed, const int tpr)
{
    __local ACC red[L];
    const int lid = get_local_id(0), lane = lid & (tpr - 1), sub = lid / tpr;
    const long r = get_group_id(0) * (L / tpr) + sub;
    const int live = r < rows, len = live ? C : 0, sm = smooth > 0;
    __global const T* xr = x + x_off + (live ? r : 0) * x_rs;
    const ACC x0 = len > 0 ? LD1(xr, 0) : (ACC)0;
    ACC m = LOWEST, s = 0, xs = 0, W = 0;
    for (int c = lane; c < len; c += tpr) {
        const ACC v = LD1(xr, c);
        CE_STEP(ACC, m, s, xs, W, v, has_w ? LD1(w, c) : (ACC)1, 1)
    }
    ACC M;
    TREE(M, m, fmax)
    TREE(s, s * exp(m - M), ADD)
    if (sm) {
        TREE(xs, xs, ADD)
        TREE(W, W, ADD)
    }
    if (!live || lane) return;
    const ACC l = M + log(s);
    lse[r] = l;
    ACC wt;
    const ACC loss = ce_row_loss(xr, w, tgt[t_off + r * t_st], C, ignore, smooth, has_w, l,
                                 x0, xs, has_w ? W : (ACC)C, &wt);
    if (summed) {
        part[r] = loss;
        part[rows + r] = wt;
    } else {
        ST1(out, r, loss);
        if (r == 0) lse[rows] = 1;
    }
}

__kernel void ce_bwd_tree(__global const T* g, const long g_off, const long g_st,
                          __global const T* x, const long x_off, const long x_rs,
                          __global const long* tgt, const long t_off, const long t_st,
                          __global const T* w, __global const ACC* lse, __global T* dx,
                          const long rows, const int C, const long ignore, const ACC smooth,
                          const int has_w, const int mean, const int tpr)
{
    __local ACC red[L];
    const int lid = get_local_id(0), lane = lid & (tpr - 1), sub = lid / tpr;
    const long r = get_group_id(0) * (L / tpr) + sub;
    const int live = r < rows, len = live ? C : 0;
    ACC W = C;
    if (has_w && smooth > 0) {
        ACC ws = 0;
        for (int c = lane; c < len; c += tpr) ws += LD1(w, c);
        TREE(W, ws, ADD)
    }
    if (!live) return;
    __global const T* xr = x + x_off + r * x_rs;
    __global T* dr = dx + r * (long)C;
    const long t = tgt[t_off + r * t_st];
    if (t == ignore || t < 0 || t >= C) {
        for (int c = lane; c < C; c += tpr) ST1(dr, c, (ACC)0);
        return;
    }
    ROW_COEFFS
    const ACC l = lse[r];
    for (int c = lane; c < C; c += tpr) {
        const ACC wc = has_w ? LD1(w, c) : (ACC)1;
        ST1(dr, c, a * exp(LD1(xr, c) - l) - b * wc - (c == t ? ct : (ACC)0));
    }
}

__kernel void ce_reduce(__global const ACC* part, __global ACC* lse, __global T* out,
                        const int rows, const int mean)
{
    __local ACC red_l[L], red_w[L];
    const int lid = get_local_id(0);
    ACC sl = 0, sw = 0;
    for (int i = lid; i < rows; i += L) {
        sl += part[i];
        sw += part[rows + i];
    }
    red_l[lid] = sl;
    red_w[lid] = sw;
    for (int s = L >> 1; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
            red_l[lid] += red_l[lid + s];
            red_w[lid] += red_w[lid + s];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        lse[rows] = mean ? red_w[0] : (ACC)1;
        ST1(out, 0, mean ? red_l[0] / red_w[0] : red_l[0]);
    }
}
