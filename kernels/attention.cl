/* Fused scaled-dot-product attention (flash attention): softmax(q k^T * scale + mask) v
   without the L x S matrix in memory. The forward keeps each query row's running maximum
   and sum over blocks of keys (online softmax) and stores the row's log-sum-exp for the
   backward, which recomputes the probabilities block by block.

   Layouts (float32, bh = b * H + h over the batch dims, H the last one):
     q (bh, L, E), k (bh, S, E), v (bh, S, EV), o and do (bh, L, EV): rows read in place
     (ROWS: offset and the strides of b, h and the row; elements contiguous);
     dq, dk, dv written in place the same way (ROWS_OUT); lse and dd (bh, LP);
     transposed copies (transpose_pad): kt (bh, E, SP), vt (bh, EV, SP), qt (bh, E, LP),
     dot (bh, EV, LP), zero beyond S (L); SP and LP round S and L up to VW.
     mask: additive float (0 or -inf for a bool mask), element (b, h, i, j) at
     m_off + b * m_bs + h * m_hs + i * m_ls + j (strides 0 broadcast), when HAS_MASK.
   A row whose keys are all masked gets a zero output and lse = +inf (zero gradients).
   Causal: key j is kept for query i when j <= i (PyTorch's top-left alignment).

   Kernels: vectors of VW keys (forward, dq) or queries (dk/dv) per step, R rows per
   work-item sharing each loaded key/value (or query) vector; explicit float vectors
   because PoCL vectorizes those (POCL-NOTES).
     sdpa_fwd, sdpa_bwd_dq: global = (ceil(L / R), bh), local any
     sdpa_bwd_dkv:          global = (ceil(S / R), bh)
   Build options: -D E=.. -D EV=.. -D VW=8|16 -D R=.. -D KB=.. (key vectors per step of
   the CPU forward's online softmax) */

#ifndef VW
#define VW 16
#endif
#ifndef R
#define R 4
#endif
#ifndef KB
#define KB 1
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VF CAT(float, VW)
#define VI CAT(int, VW)
#define EVV (EV / VW) /* value vectors per row (EV is a multiple of VW) */
#define EQV (E / VW)  /* query/key vectors per row (E is a multiple of VW) */
#define NEG_INF (-INFINITY)
/* max without a built-in call (PoCL does not inline them); no NaN reaches it */
#define VMAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__clang__)
typedef float vf_u __attribute__((ext_vector_type(VW), aligned(4)));
#define LDV(p) (*(__global const vf_u*)(p))
#define STV(v, p) (*(__global vf_u*)(p) = (v))
#else
#define LDV(p) CAT(vload, VW)(0, (p))
#define STV(v, p) CAT(vstore, VW)((v), 0, (p))
#endif

#if VW == 16
#define LANES (VI)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
inline float hmax(float16 v) {
    float8 a = VMAX(v.lo, v.hi); float4 b = VMAX(a.lo, a.hi); float2 c = VMAX(b.lo, b.hi);
    return VMAX(c.x, c.y);
}
inline float hsum(float16 v) {
    float8 a = v.lo + v.hi; float4 b = a.lo + a.hi; float2 c = b.lo + b.hi; return c.x + c.y;
}
#else
#define LANES (VI)(0, 1, 2, 3, 4, 5, 6, 7)
inline float hmax(float8 v) {
    float4 b = VMAX(v.lo, v.hi); float2 c = VMAX(b.lo, b.hi); return VMAX(c.x, c.y);
}
inline float hsum(float8 v) { float4 b = v.lo + v.hi; float2 c = b.lo + b.hi; return c.x + c.y; }
#endif

/* a strided operand (b, h, row, e) with unit e stride, bh = b * H + h: its parameters and
   the address of row ``i`` of (bh) */
#define ROWS(p) __global const float* p, const long p##_off, const long p##_sb, \
    const long p##_sh, const long p##_sl
#define ROWS_OUT(p) __global float* p, const long p##_off, const long p##_sb, \
    const long p##_sh, const long p##_sl
#define AT(p, bh, i) ((p) + p##_off + (long)((bh) / H) * p##_sb + (long)((bh) % H) * p##_sh \
    + (long)(i) * p##_sl)

#define MASK_PARAMS __global const float* mask, const long m_off, const long m_bs, \
    const long m_hs, const long m_ls, const int H, const int causal

/* dropout (DROPOUT=1): weight (b*H+h, i, j) is kept with probability 1 - pdrop and then
   scaled by 1 / (1 - pdrop); the choice is a hash of the call's two seeds (drawn from the
   generator manual_seed drives) and the position, so the backward redraws the same mask */
#define DROP_PARAMS __global const long* seeds, const float pdrop
#define DROP_HASH(h, s0, s1, bh, i, j)                                                    \
    h = (s0) ^ ((uint)(bh) * 0x9E3779B1u);                                                 \
    h ^= (i) * 0x85EBCA77u;                                                               \
    h = (h ^ (h >> 15)) * 0x2C1B3C6Du;                                                    \
    h ^= (j) * 0xC2B2AE3Du + (s1);                                                        \
    h = (h ^ (h >> 12)) * 0x297A2D39u;                                                    \
    h ^= h >> 15;
#define VU CAT(uint, VW)
inline float drop1(__global const long* seeds, float pdrop, int bh, int i, int j)
{
    uint h;
    DROP_HASH(h, (uint)seeds[0], (uint)seeds[1], bh, (uint)i, (uint)j)
    return (h >> 8) >= (uint)(pdrop * 16777216.0f) ? 1.0f / (1.0f - pdrop) : 0.0f;
}
inline VF dropv(__global const long* seeds, float pdrop, int bh, VI i, VI j)
{
    VU h;
    DROP_HASH(h, (uint)seeds[0], (uint)seeds[1], bh, CAT(as_, VU)(i), CAT(as_, VU)(j))
    return (h >> 8) >= (VU)((uint)(pdrop * 16777216.0f)) ? (VF)(1.0f / (1.0f - pdrop))
                                                         : (VF)(0.0f);
}
#if DROPOUT
#define DROPV(iv, jv) dropv(seeds, pdrop, bh, (iv), (jv))
#define DROP1(i, j) drop1(seeds, pdrop, bh, (i), (j))
#else
#define DROPV(iv, jv) ((VF)(1.0f))
#define DROP1(i, j) 1.0f
#endif

/* the kept scores of keys j0 .. j0+VW-1 for query i: -inf where masked out or j >= S */
inline VF masked(VF s, int i, int j0, int S, int bh, MASK_PARAMS)
{
    const VI j = (VI)(j0) + LANES;
    VI keep = j < (VI)(S);
    if (causal) keep = keep & (j <= (VI)(i));
#if HAS_MASK
    const __global float* mrow = mask + m_off + (bh / H) * m_bs + (bh % H) * m_hs + (long)i * m_ls;
    if (j0 + VW <= S) {
        s += LDV(mrow + j0);
    } else {
        float t[VW];
        for (int u = 0; u < VW; ++u) t[u] = j0 + u < S ? mrow[j0 + u] : 0.0f;
        s += CAT(vload, VW)(0, t);
    }
#endif
    return keep ? s : (VF)(NEG_INF);
}

__kernel void transpose_pad(ROWS(x), __global float* y, const int N, const int C,
                            const int NP, const int H)
{
    /* x (bh, N, C) -> y (bh, C, NP), zero for n >= N; C is a multiple of VW. Work-item
       (n, cb, bh) moves VW channels of row n: one vector load, VW stores that neighbouring
       work-items make to neighbouring addresses. global = (NP, C / VW, bh) */
    const int n = get_global_id(0), c0 = get_global_id(1) * VW, bh = get_global_id(2);
    if (n >= NP) return;
    float t[VW];
    if (n < N) {
        CAT(vstore, VW)(LDV(AT(x, bh, n) + c0), 0, t);
    } else {
        for (int u = 0; u < VW; ++u) t[u] = 0.0f;
    }
    __global float* out = y + ((long)bh * C + c0) * NP + n;
#pragma unroll
    for (int u = 0; u < VW; ++u) out[(long)u * NP] = t[u];
}

/* acc[r] += p[r][t] * v[j0 + t] for every row r */
#define PV_STEP(t)                                                                        \
    {                                                                                     \
        const __global float* vr = AT(v, bh, j0 + (t));                                   \
        _Pragma("unroll") for (int c = 0; c < EVV; ++c) {                                 \
            const VF vv = LDV(vr + c * VW);                                               \
            _Pragma("unroll") for (int r = 0; r < R; ++r) acc[r][c] = p[r][t] * vv + acc[r][c]; \
        }                                                                                 \
    }

__kernel void sdpa_fwd(ROWS(q), __global const float* kt, ROWS(v), MASK_PARAMS, DROP_PARAMS,
                       ROWS_OUT(o),
                       __global float* lse, const int L, const int S, const int SP,
                       const int LP, const float scale)
{
    const int bh = get_global_id(1), i0 = get_global_id(0) * R;
    if (i0 >= L) return;
    float qa[R][E];
    VF acc[R][EVV];
    float m[R], l[R];
    for (int r = 0; r < R; ++r) {
        const int i = min(i0 + r, L - 1);
        for (int e = 0; e < E; ++e) qa[r][e] = AT(q, bh, i)[e] * scale;
        for (int c = 0; c < EVV; ++c) acc[r][c] = (VF)(0.0f);
        m[r] = NEG_INF;
        l[r] = 0.0f;
    }
    const __global float* ktb = kt + (long)bh * E * SP;
    const int jend = causal ? min(S, i0 + R) : S;
    /* KB vectors of keys per step: the running maximum, its rescale of the accumulators
       and the horizontal sums once per KB * VW keys (SP is a multiple of VW; blocks past
       SP are never read: their scores stay -inf) */
    for (int j0 = 0; j0 < jend; j0 += KB * VW) {
        VF s[R][KB];
        for (int r = 0; r < R; ++r)
            for (int b = 0; b < KB; ++b) s[r][b] = (VF)(0.0f);
#pragma unroll
        for (int e = 0; e < E; ++e) {
#pragma unroll
            for (int b = 0; b < KB; ++b) {
                if (KB == 1 || j0 + b * VW < SP) {
                    const VF kv = LDV(ktb + (long)e * SP + j0 + b * VW);
                    for (int r = 0; r < R; ++r) s[r][b] = qa[r][e] * kv + s[r][b];
                }
            }
        }
        float p[R][KB * VW];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            VF sm[KB];
            VF top = (VF)(NEG_INF);
#pragma unroll
            for (int b = 0; b < KB; ++b) {
                sm[b] = masked(s[r][b], i0 + r, j0 + b * VW, S, bh, mask, m_off, m_bs, m_hs,
                               m_ls, H, causal);
                top = fmax(top, sm[b]);
            }
            const float mn = VMAX(m[r], hmax(top));
            /* every key so far masked: mn = -inf; exponents against 0 then give zeros */
            const float base = mn == NEG_INF ? 0.0f : mn;
            const float alpha = exp(m[r] - base);
            VF tot = (VF)(0.0f);
#pragma unroll
            for (int b = 0; b < KB; ++b) {
                const VF pv = exp(sm[b] - (VF)(base));
                tot += pv;
                CAT(vstore, VW)(pv * DROPV((VI)(i0 + r), (VI)(j0 + b * VW) + LANES), 0,
                                p[r] + b * VW);
            }
            l[r] = l[r] * alpha + hsum(tot);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < EVV; ++c) acc[r][c] *= alpha;
        }
        if (j0 + KB * VW <= S) {
#pragma unroll
            for (int t = 0; t < KB * VW; ++t) PV_STEP(t)
        } else {
            for (int t = 0; t < S - j0; ++t) PV_STEP(t)
        }
    }
    for (int r = 0; r < R && i0 + r < L; ++r) {
        const int i = i0 + r;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        __global float* orow = AT(o, bh, i);
        for (int c = 0; c < EVV; ++c) STV(acc[r][c] * inv, orow + c * VW);
        lse[(long)bh * LP + i] = l[r] > 0.0f ? m[r] + log(l[r]) : INFINITY;
    }
}

/* dq[i] = scale * sum_j p_ij (dp_ij - dd_i) k_j, p_ij = exp(s_ij - lse_i),
   dp_ij = do_i . v_j, dd_i = do_i . o_i */
__kernel void sdpa_bwd_dq(ROWS(q), ROWS(k), __global const float* kt,
                          __global const float* vt, MASK_PARAMS, DROP_PARAMS, ROWS(dO),
                          __global const float* lse,
                          __global const float* dd, ROWS_OUT(dq), const int L,
                          const int S, const int SP, const int LP, const float scale)
{
    const int bh = get_global_id(1), i0 = get_global_id(0) * R;
    if (i0 >= L) return;
    float qa[R][E], ga[R][EV];
    VF acc[R][EQV];
    float lr[R], dr[R];
    for (int r = 0; r < R; ++r) {
        const int i = min(i0 + r, L - 1);
        for (int e = 0; e < E; ++e) qa[r][e] = AT(q, bh, i)[e] * scale;
        for (int e = 0; e < EV; ++e) ga[r][e] = AT(dO, bh, i)[e];
        for (int c = 0; c < EQV; ++c) acc[r][c] = (VF)(0.0f);
        lr[r] = lse[(long)bh * LP + i];
        dr[r] = dd[(long)bh * LP + i];
    }
    const __global float* ktb = kt + (long)bh * E * SP;
    const __global float* vtb = vt + (long)bh * EV * SP;
    const int jend = causal ? min(S, i0 + R) : S;
    for (int j0 = 0; j0 < jend; j0 += VW) {
        VF s[R], dp[R];
        for (int r = 0; r < R; ++r) s[r] = dp[r] = (VF)(0.0f);
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const VF kv = LDV(ktb + (long)e * SP + j0);
            for (int r = 0; r < R; ++r) s[r] = qa[r][e] * kv + s[r];
        }
#pragma unroll
        for (int e = 0; e < EV; ++e) {
            const VF vv = LDV(vtb + (long)e * SP + j0);
            for (int r = 0; r < R; ++r) dp[r] = ga[r][e] * vv + dp[r];
        }
        float ds[R][VW];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const VF sm = masked(s[r], i0 + r, j0, S, bh, mask, m_off, m_bs, m_hs, m_ls, H,
                                 causal);
            const VF p = exp(sm - (VF)(lr[r]));
            const VF w = DROPV((VI)(i0 + r), (VI)(j0) + LANES);
            CAT(vstore, VW)(p * (dp[r] * w - (VF)(dr[r])) * scale, 0, ds[r]);
        }
#define DSK_STEP(t)                                                                       \
    {                                                                                     \
        const __global float* kr = AT(k, bh, j0 + (t));                                   \
        _Pragma("unroll") for (int c = 0; c < EQV; ++c) {                                 \
            const VF kv = LDV(kr + c * VW);                                               \
            _Pragma("unroll") for (int r = 0; r < R; ++r) acc[r][c] = ds[r][t] * kv + acc[r][c]; \
        }                                                                                 \
    }
        if (j0 + VW <= S) {
#pragma unroll
            for (int t = 0; t < VW; ++t) DSK_STEP(t)
        } else {
            for (int t = 0; t < S - j0; ++t) DSK_STEP(t)
        }
    }
    for (int r = 0; r < R && i0 + r < L; ++r) {
        __global float* out = AT(dq, bh, i0 + r);
        for (int c = 0; c < EQV; ++c) STV(acc[r][c], out + c * VW);
    }
}

/* dv[j] = sum_i p_ij do_i, dk[j] = scale * sum_i p_ij (dp_ij - dd_i) q_i: vectors of VW
   queries per step (qt, dot), R keys per work-item */
__kernel void sdpa_bwd_dkv(ROWS(q), __global const float* qt, ROWS(k), ROWS(v),
                           MASK_PARAMS, DROP_PARAMS, ROWS(dO), __global const float* dot,
                           __global const float* lse, __global const float* dd,
                           ROWS_OUT(dk), ROWS_OUT(dv), const int L, const int S,
                           const int SP, const int LP, const float scale)
{
    const int bh = get_global_id(1), j0 = get_global_id(0) * R;
    if (j0 >= S) return;
    float ka[R][E], va[R][EV];
    VF gk[R][EQV], gv[R][EVV];
    for (int r = 0; r < R; ++r) {
        const int j = min(j0 + r, S - 1);
        for (int e = 0; e < E; ++e) ka[r][e] = AT(k, bh, j)[e] * scale;
        for (int e = 0; e < EV; ++e) va[r][e] = AT(v, bh, j)[e];
        for (int c = 0; c < EQV; ++c) gk[r][c] = (VF)(0.0f);
        for (int c = 0; c < EVV; ++c) gv[r][c] = (VF)(0.0f);
    }
    const __global float* qtb = qt + (long)bh * E * LP;
    const __global float* dotb = dot + (long)bh * EV * LP;
    const int istart = causal ? (j0 / VW) * VW : 0;
    for (int i0 = istart; i0 < L; i0 += VW) {
        VF s[R], dp[R];
        for (int r = 0; r < R; ++r) s[r] = dp[r] = (VF)(0.0f);
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const VF qv = LDV(qtb + (long)e * LP + i0);
            for (int r = 0; r < R; ++r) s[r] = ka[r][e] * qv + s[r];
        }
#pragma unroll
        for (int e = 0; e < EV; ++e) {
            const VF gv_ = LDV(dotb + (long)e * LP + i0);
            for (int r = 0; r < R; ++r) dp[r] = va[r][e] * gv_ + dp[r];
        }
        const VF lv = LDV(lse + (long)bh * LP + i0), dv_ = LDV(dd + (long)bh * LP + i0);
        const VI iv = (VI)(i0) + LANES;
        float pa[R][VW], da[R][VW];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            VF sm = s[r];
#if HAS_MASK
            /* the mask's column j for queries i0 .. i0+VW-1 */
            const int j = min(j0 + r, S - 1);
            const __global float* mcol = mask + m_off + (bh / H) * m_bs + (bh % H) * m_hs + j;
            float t[VW];
            for (int u = 0; u < VW; ++u) t[u] = i0 + u < L ? mcol[(long)(i0 + u) * m_ls] : 0.0f;
            sm += CAT(vload, VW)(0, t);
#endif
            VI keep = iv < (VI)(L);
            if (causal) keep = keep & (iv >= (VI)(j0 + r));
            sm = keep ? sm : (VF)(NEG_INF);
            const VF p = exp(sm - lv);
            const VF w = DROPV(iv, (VI)(j0 + r));
            CAT(vstore, VW)(p * w, 0, pa[r]);
            CAT(vstore, VW)(p * (dp[r] * w - dv_) * scale, 0, da[r]);
        }
#define KV_STEP(t)                                                                        \
    {                                                                                     \
        const __global float* gr = AT(dO, bh, i0 + (t));                                  \
        _Pragma("unroll") for (int c = 0; c < EVV; ++c) {                                 \
            const VF g = LDV(gr + c * VW);                                                \
            _Pragma("unroll") for (int r = 0; r < R; ++r) gv[r][c] = pa[r][t] * g + gv[r][c]; \
        }                                                                                 \
        const __global float* qr = AT(q, bh, i0 + (t));                                   \
        _Pragma("unroll") for (int c = 0; c < EQV; ++c) {                                 \
            const VF qq = LDV(qr + c * VW);                                               \
            _Pragma("unroll") for (int r = 0; r < R; ++r) gk[r][c] = da[r][t] * qq + gk[r][c]; \
        }                                                                                 \
    }
        if (i0 + VW <= L) {
#pragma unroll
            for (int t = 0; t < VW; ++t) KV_STEP(t)
        } else {
            for (int t = 0; t < L - i0; ++t) KV_STEP(t)
        }
    }
    for (int r = 0; r < R && j0 + r < S; ++r) {
        __global float* ok = AT(dk, bh, j0 + r);
        __global float* ov = AT(dv, bh, j0 + r);
        for (int c = 0; c < EQV; ++c) STV(gk[r][c], ok + c * VW);
        for (int c = 0; c < EVV; ++c) STV(gv[r][c], ov + c * VW);
    }
}

/* --- GPU variants: one query (or key) row per work-item, BQ rows per work-group, the
   other side's rows staged through local memory in tiles of BK, shared by the group's
   work-items (scalar code; no transposed copies). Same arguments as the CPU kernels
   (kt, vt, qt and dot unused), global = (ceil(rows / BQ) * BQ, bh), local = (BQ, 1). */
#ifndef BQ
#define BQ 64
#endif
#ifndef BK
#define BK 32
#endif

/* the score of query i and key j after the mask: -inf where masked out */
inline float masked1(float s, int i, int j, int bh, MASK_PARAMS)
{
    if (causal && j > i) return NEG_INF;
#if HAS_MASK
    s += mask[m_off + (bh / H) * m_bs + (bh % H) * m_hs + (long)i * m_ls + j];
#endif
    return s;
}

/* rows [r0, r0 + BK) of x (bh, N, C) into local memory, zeros past N */
#define STAGE(dst, x, r0, N, C)                                                           \
    for (int e_ = lid; e_ < BK * (C); e_ += BQ)                                           \
        dst[e_] = (r0) + e_ / (C) < (N) ? AT(x, bh, (r0) + e_ / (C))[e_ % (C)] : 0.0f;

__kernel __attribute__((reqd_work_group_size(BQ, 1, 1)))
void sdpa_fwd_tiled(ROWS(q), __global const float* kt, ROWS(v), MASK_PARAMS, DROP_PARAMS,
                    ROWS_OUT(o),
                    __global float* lse, const int L, const int S, const int SP,
                    const int LP, const float scale, ROWS(k))
{
    __local float kl[BK * E], vl[BK * EV];
    const int bh = get_group_id(1), lid = get_local_id(0);
    const int i = get_group_id(0) * BQ + lid, ic = min(i, L - 1);
    float qr[E], acc[EV], sb[BK];
    for (int e = 0; e < E; ++e) qr[e] = AT(q, bh, ic)[e] * scale;
    for (int e = 0; e < EV; ++e) acc[e] = 0.0f;
    float m = NEG_INF, l = 0.0f;
    const int jend = causal ? min(S, (int)(get_group_id(0) + 1) * BQ) : S;
    for (int j0 = 0; j0 < jend; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE(kl, k, j0, S, E)
        STAGE(vl, v, j0, S, EV)
        barrier(CLK_LOCAL_MEM_FENCE);
        float bm = NEG_INF;
        for (int t = 0; t < BK; ++t) {
            float s = 0.0f;
            for (int e = 0; e < E; ++e) s = qr[e] * kl[t * E + e] + s;
            s = j0 + t < S ? masked1(s, ic, j0 + t, bh, mask, m_off, m_bs, m_hs, m_ls, H,
                                     causal) : NEG_INF;
            sb[t] = s;
            bm = VMAX(bm, s);
        }
        const float mn = VMAX(m, bm), base = mn == NEG_INF ? 0.0f : mn;
        const float alpha = exp(m - base);
        l *= alpha;
        for (int e = 0; e < EV; ++e) acc[e] *= alpha;
        for (int t = 0; t < BK; ++t) {
            const float p = exp(sb[t] - base), pw = p * DROP1(ic, j0 + t);
            l += p;
            for (int e = 0; e < EV; ++e) acc[e] = pw * vl[t * EV + e] + acc[e];
        }
        m = mn;
    }
    if (i >= L) return;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int e = 0; e < EV; ++e) AT(o, bh, i)[e] = acc[e] * inv;
    lse[(long)bh * LP + i] = l > 0.0f ? m + log(l) : INFINITY;
}

__kernel __attribute__((reqd_work_group_size(BQ, 1, 1)))
void sdpa_bwd_dq_tiled(ROWS(q), ROWS(k), __global const float* kt,
                       __global const float* vt, MASK_PARAMS, DROP_PARAMS, ROWS(dO),
                       __global const float* lse, __global const float* dd,
                       ROWS_OUT(dq), const int L, const int S, const int SP,
                       const int LP, const float scale, ROWS(v))
{
    __local float kl[BK * E], vl[BK * EV];
    const int bh = get_group_id(1), lid = get_local_id(0);
    const int i = get_group_id(0) * BQ + lid, ic = min(i, L - 1);
    float qr[E], gr[EV], acc[E];
    for (int e = 0; e < E; ++e) { qr[e] = AT(q, bh, ic)[e] * scale; acc[e] = 0.0f; }
    for (int e = 0; e < EV; ++e) gr[e] = AT(dO, bh, ic)[e];
    const float li = lse[(long)bh * LP + ic], di = dd[(long)bh * LP + ic];
    const int jend = causal ? min(S, (int)(get_group_id(0) + 1) * BQ) : S;
    for (int j0 = 0; j0 < jend; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE(kl, k, j0, S, E)
        STAGE(vl, v, j0, S, EV)
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = 0; t < BK && j0 + t < S; ++t) {
            float s = 0.0f, dp = 0.0f;
            for (int e = 0; e < E; ++e) s = qr[e] * kl[t * E + e] + s;
            for (int e = 0; e < EV; ++e) dp = gr[e] * vl[t * EV + e] + dp;
            s = masked1(s, ic, j0 + t, bh, mask, m_off, m_bs, m_hs, m_ls, H, causal);
            const float ds = exp(s - li) * (dp * DROP1(ic, j0 + t) - di) * scale;
            for (int e = 0; e < E; ++e) acc[e] = ds * kl[t * E + e] + acc[e];
        }
    }
    if (i >= L) return;
    for (int e = 0; e < E; ++e) AT(dq, bh, i)[e] = acc[e];
}

__kernel __attribute__((reqd_work_group_size(BQ, 1, 1)))
void sdpa_bwd_dkv_tiled(ROWS(q), __global const float* qt, ROWS(k), ROWS(v), MASK_PARAMS,
                        DROP_PARAMS, ROWS(dO), __global const float* dot,
                        __global const float* lse, __global const float* dd,
                        ROWS_OUT(dk), ROWS_OUT(dv), const int L, const int S,
                        const int SP, const int LP, const float scale)
{
    __local float ql[BK * E], gl[BK * EV], ll[BK], dl[BK];
    const int bh = get_group_id(1), lid = get_local_id(0);
    const int j = get_group_id(0) * BQ + lid, jc = min(j, S - 1);
    float kr[E], vr[EV], gk[E], gv[EV];
    for (int e = 0; e < E; ++e) { kr[e] = AT(k, bh, jc)[e] * scale; gk[e] = 0.0f; }
    for (int e = 0; e < EV; ++e) { vr[e] = AT(v, bh, jc)[e]; gv[e] = 0.0f; }
    const int istart = causal ? (int)get_group_id(0) * BQ / BK * BK : 0;
    for (int i0 = istart; i0 < L; i0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE(ql, q, i0, L, E)
        STAGE(gl, dO, i0, L, EV)
        for (int t = lid; t < BK; t += BQ) {
            ll[t] = i0 + t < L ? lse[(long)bh * LP + i0 + t] : INFINITY;
            dl[t] = i0 + t < L ? dd[(long)bh * LP + i0 + t] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int t = 0; t < BK && i0 + t < L; ++t) {
            float s = 0.0f, dp = 0.0f;
            for (int e = 0; e < E; ++e) s = kr[e] * ql[t * E + e] + s;
            for (int e = 0; e < EV; ++e) dp = vr[e] * gl[t * EV + e] + dp;
            s = masked1(s, i0 + t, jc, bh, mask, m_off, m_bs, m_hs, m_ls, H, causal);
            const float w = DROP1(i0 + t, jc);
            const float p = exp(s - ll[t]), ds = p * (dp * w - dl[t]) * scale;
            for (int e = 0; e < EV; ++e) gv[e] = p * w * gl[t * EV + e] + gv[e];
            for (int e = 0; e < E; ++e) gk[e] = ds * ql[t * E + e] + gk[e];
        }
    }
    if (j >= S) return;
    for (int e = 0; e < E; ++e) AT(dk, bh, j)[e] = gk[e];
    for (int e = 0; e < EV; ++e) AT(dv, bh, j)[e] = gv[e];
}

/* the dropout weights themselves (the create_graph path composes ops with them):
   w (bh, L, S); global = (S, L, bh) */
__kernel void sdpa_dropout_weights(DROP_PARAMS, __global float* w, const int L, const int S)
{
    const int j = get_global_id(0), i = get_global_id(1), bh = get_global_id(2);
    if (j >= S || i >= L) return;
    w[((long)bh * L + i) * S + j] = drop1(seeds, pdrop, bh, i, j);
}

#if SDPA_MMA
/* --- tensor cores: FlashAttention-2 for float16 and bfloat16 operands (rows of their bits,
   ROWS16), on a device whose probe of these kernels passed (ops/attention.py). A
   work-group of MMA_WARPS warps owns 16 rows per warp (queries in the forward and dq,
   keys in dk/dv); the other side comes in blocks of BKM rows staged in local memory, with
   the contracted index contiguous and rows padded by 16 bytes, so that a warp's fragment
   loads hit distinct banks. The owned rows' operands are read once, into registers as A
   fragments.
   Products on the tensor cores accumulate in float; a product's accumulators become the
   next product's A fragments in registers (an m16n8 accumulator pair is an m16n8k16 A
   fragment), rounded to the operand type, as FlashAttention-2 does.
     sdpa_fwd_mma:     S = Q K^T, mask, online softmax over the accumulators (a row's
                       values lie in the 4 lanes of a quad: QUAD_MAX), O += P V.
     sdpa_bwd_dq_mma:  S = Q K^T, dP = dO V^T, dS = P (dP - D) scale, dQ += dS K.
     sdpa_bwd_dkv_mma: S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q.
   Outputs are stored rounded to the operand type, lse as float. Head dims are padded
   with zeros: E to EP (16), EV to EVK (16) where it is contracted and EVP (8) where it
   is a product's columns.
   Every loop over fragments is unrolled, so that the fragments are registers: rolled, with
   the instruction emulated, PoCL 3.0 gave wrong results (a private array indexed by a loop
   counter and live across the emulation's barriers).
     global = (ceil(rows / BQM) * 32 * MMA_WARPS, bh), local = (32 * MMA_WARPS, 1) */
#ifndef MMA_WARPS
#define MMA_WARPS 4
#endif
#include "mma.cl"
#ifndef BKM
#define BKM 64
#endif
#define BQM (16 * MMA_WARPS)
#define NT_M (32 * MMA_WARPS)
#define EP (((E) + 15) / 16 * 16)
#define EVK (((EV) + 15) / 16 * 16)
#define EVP (((EV) + 7) / 8 * 8)
#define QKP (EP + 8)  /* elements per row of a tile along E */
#define VKP (EVK + 8) /* elements per row of a tile along EV */
#define BKP (BKM + 8) /* elements per row of a transposed tile (along the block's rows) */
#define ROWS16(p) __global const ushort* p, const long p##_off, const long p##_sb, \
    const long p##_sh, const long p##_sl
#define ROWS16_OUT(p) __global ushort* p, const long p##_off, const long p##_sb, \
    const long p##_sh, const long p##_sl

/* ST_STORE: a float stored rounded to the operand type (to nearest even); pack2: two
   floats rounded so into one operand word, lo in the lower half */
#if IS_BF16
#define ST_STORE(v, p) (*(p) = cg_bfbits(v))
#else
#define ST_STORE(v, p) vstore_half_rte((v), 0, (__global half*)(p))
#endif
#if !MMA_EMULATE /* one instruction on NVIDIA; it puts its first source in the upper half */
inline uint pack2(float lo, float hi)
{
    uint r;
#if IS_BF16
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
    return r;
}
#elif IS_BF16
inline uint pack2(float lo, float hi) { return cg_bfbits(lo) | ((uint)cg_bfbits(hi) << 16); }
#else
inline uint pack2(float lo, float hi)
{
    ushort b[2];
    vstore_half_rte(lo, 0, (__private half*)b);
    vstore_half_rte(hi, 1, (__private half*)b);
    return b[0] | ((uint)b[1] << 16);
}
#endif

/* rows [r0, r0 + NR) of x (bh, N, C) into the local tile dst as (row, c), RL elements per
   row (STAGE16) or as (c, row) (STAGE16_T); zeros past N and C up to CP columns. With
   VEC8=1 (every operand's rows start 16-byte aligned and C is a multiple of 8: heads split
   from a projection) a work-item moves 8 elements per load. */
#ifndef VEC8
#define VEC8 0
#endif
#if VEC8
#define CHUNK_AT(w_, x, r0, N, C, CP)                                                      \
    const int r_ = x_ / ((CP) / 8), c_ = x_ % ((CP) / 8) * 8;                              \
    const uint4 w_ = (r0) + r_ < (N) && c_ < (C)                                           \
        ? vload4(0, (__global const uint*)(AT(x, bh, (r0) + r_) + c_)) : (uint4)(0u);
#define STAGE16(dst, x, r0, NR, N, C, CP, RL)                                              \
    for (int x_ = tid; x_ < (NR) * ((CP) / 8); x_ += NT_M) {                               \
        CHUNK_AT(w_, x, r0, N, C, CP)                                                      \
        vstore4(w_, 0, (__local uint*)dst + ((r_ * (RL) + c_) >> 1));                      \
    }
#define STAGE16_T(dst, x, r0, NR, N, C, CP, RL)                                            \
    for (int x_ = tid; x_ < (NR) * ((CP) / 8); x_ += NT_M) {                               \
        CHUNK_AT(w_, x, r0, N, C, CP)                                                      \
        const uint u_[4] = {w_.s0, w_.s1, w_.s2, w_.s3};                                   \
        _Pragma("unroll") for (int e_ = 0; e_ < 8; ++e_)                                   \
            dst[(c_ + e_) * (RL) + r_] = (ushort)(u_[e_ >> 1] >> (16 * (e_ & 1)));         \
    }
#else
#define STAGE16(dst, x, r0, NR, N, C, CP, RL)                                              \
    for (int x_ = tid; x_ < (NR) * (CP); x_ += NT_M) {                                     \
        const int r_ = x_ / (CP), c_ = x_ % (CP);                                          \
        dst[r_ * (RL) + c_] = (r0) + r_ < (N) && c_ < (C) ? AT(x, bh, (r0) + r_)[c_]       \
                                                          : (ushort)0;                     \
    }
#define STAGE16_T(dst, x, r0, NR, N, C, CP, RL)                                            \
    for (int x_ = tid; x_ < (NR) * (CP); x_ += NT_M) {                                     \
        const int r_ = x_ / (CP), c_ = x_ % (CP);                                          \
        dst[c_ * (RL) + r_] = (r0) + r_ < (N) && c_ < (C) ? AT(x, bh, (r0) + r_)[c_]       \
                                                          : (ushort)0;                     \
    }
#endif
/* the B fragment of column n at ks k0 .. k0+15 of a local tile (32-bit words w) whose
   rows, RL elements long, hold a column each */
#define B_FRAG(bf, w, RL, n, k0)                                                           \
    const uint bf[2] = {w[((n) * (RL) + (k0) + t2) >> 1], w[((n) * (RL) + (k0) + 8 + t2) >> 1]};
/* the A fragment of ks 16 kk .. 16 kk + 15 from accumulators x[n-tile][4] */
#define ACC_FRAG(x, kk)                                                                    \
    {pack2(x[2 * (kk)][0], x[2 * (kk)][1]), pack2(x[2 * (kk)][2], x[2 * (kk)][3]),         \
     pack2(x[2 * (kk) + 1][0], x[2 * (kk) + 1][1]),                                        \
     pack2(x[2 * (kk) + 1][2], x[2 * (kk) + 1][3])}
#define ZERO(x, n)                                                                         \
    _Pragma("unroll") for (int z_ = 0; z_ < (n); ++z_) {                                   \
        x[z_][0] = 0.0f; x[z_][1] = 0.0f; x[z_][2] = 0.0f; x[z_][3] = 0.0f;                 \
    }
/* acc[n-tile] += A B for B's columns 8 ni + g of tile w (rows of RL elements), k < K16 */
#define PRODUCT(acc, af, w, RL, NTILES, K16)                                               \
    _Pragma("unroll") for (int ni = 0; ni < (NTILES); ++ni)                                \
        _Pragma("unroll") for (int ks = 0; ks < (K16) / 16; ++ks) {                 \
            B_FRAG(bf, w, RL, ni * 8 + g, ks * 16)                                         \
            MMA(acc[ni], af[ks], bf);                                                      \
        }
/* acc[n-tile] += P B, P's A fragments from accumulators p[BKM / 8][4] (k = the block's
   rows), B's columns 8 nd + g of tile w, whose rows hold the block's rows contiguous */
#define PRODUCT_P(acc, p, w, NTILES)                                                       \
    _Pragma("unroll") for (int kk = 0; kk < BKM / 16; ++kk) {                              \
        const uint pf[4] = ACC_FRAG(p, kk);                                                \
        _Pragma("unroll") for (int nd = 0; nd < (NTILES); ++nd) {                          \
            B_FRAG(bf, w, BKP, nd * 8 + g, kk * 16)                                        \
            MMA(acc[nd], pf, bf);                                                          \
        }                                                                                  \
    }
/* the word of elements (c, c+1) of a row (zeros past C) */
inline uint word16(__global const ushort* row, int c, int C)
{
    return (c < C ? row[c] : 0u) | ((c + 1 < C ? (uint)row[c + 1] : 0u) << 16);
}
/* this lane's A fragments of rows r0 + wr and r0 + wr + 8 of x (bh, N, C), from global
   memory (once per work-group: the owned rows), zeros past N and C up to CP */
#define OWN_FRAGS(xf, x, r0, N, C, CP)                                                     \
    _Pragma("unroll") for (int h_ = 0; h_ < 2; ++h_) {                              \
        const int r_ = (r0) + wr + 8 * h_;                                                 \
        __global const ushort* p_ = AT(x, bh, min(r_, (N) - 1));                           \
        _Pragma("unroll") for (int ks = 0; ks < (CP) / 16; ++ks) {                  \
            xf[ks][h_] = r_ < (N) ? word16(p_, ks * 16 + t2, (C)) : 0u;                    \
            xf[ks][h_ + 2] = r_ < (N) ? word16(p_, ks * 16 + 8 + t2, (C)) : 0u;            \
        }                                                                                  \
    }
/* this lane's accumulators acc[n-tile] of its row r (0: row g of the warp's 16, 1: g+8),
   times f, into row i of x, columns below C */
#define STORE_ROW(x, acc, r, i, NTILES, C, f)                                              \
    _Pragma("unroll") for (int nd = 0; nd < (NTILES); ++nd)                                \
        _Pragma("unroll") for (int c = 0; c < 2; ++c) {                                    \
            const int e_ = nd * 8 + t2 + c;                                                \
            if (e_ < (C)) ST_STORE(acc[nd][2 * (r) + c] * (f), AT(x, bh, i) + e_);         \
        }
/* the block's scores s = A K^T and their gradient dp = dO V^T as accumulators, from the
   owned rows' A fragments along E (af) and EV (gf) and the block's tiles along E (w) and
   EV (wv); in dk/dv the roles of the two sides swap, giving s^T and dp^T */
#define SCORES_AND_GRADS(s, dp, af, w, gf, wv)                                             \
    float s[BKM / 8][4], dp[BKM / 8][4];                                                   \
    ZERO(s, BKM / 8)                                                                       \
    ZERO(dp, BKM / 8)                                                                      \
    PRODUCT(s, af, w, QKP, BKM / 8, EP)                                                    \
    PRODUCT(dp, gf, wv, VKP, BKM / 8, EVK)
#define MMA_IDS                                                                            \
    const int bh = get_group_id(1), tid = get_local_id(0), lane = tid & 31;                \
    const int warp = tid >> 5, g = lane >> 2, t2 = (lane & 3) * 2;                         \
    const int wr = warp * 16 + g; /* this lane's first row in the block; the other is +8 */

__kernel __attribute__((reqd_work_group_size(NT_M, 1, 1)))
void sdpa_fwd_mma(ROWS16(q), ROWS16(k), ROWS16(v), MASK_PARAMS, DROP_PARAMS, ROWS16_OUT(o),
                  __global float* lse, const int L, const int S, const int LP,
                  const float scale)
{
    __local uint Kl[BKM * QKP / 2]; /* (key, e) */
    __local uint Vl[EVP * BKP / 2]; /* (e, key) */
    MMA_SCRATCH
    __local ushort* Kh = (__local ushort*)Kl;
    __local ushort* Vh = (__local ushort*)Vl;
    MMA_IDS
    const int i0 = get_group_id(0) * BQM;
    uint qf[EP / 16][4];
    OWN_FRAGS(qf, q, i0, L, E, EP)
    float acc[EVP / 8][4];
    ZERO(acc, EVP / 8)
    float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.0f, 0.0f};
    const int row[2] = {min(i0 + wr, L - 1), min(i0 + wr + 8, L - 1)};
    const int jend = causal ? min(S, i0 + BQM) : S;

    for (int j0 = 0; j0 < jend; j0 += BKM) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE16(Kh, k, j0, BKM, S, E, EP, QKP)
        STAGE16_T(Vh, v, j0, BKM, S, EV, EVP, BKP)
        barrier(CLK_LOCAL_MEM_FENCE);
        float s[BKM / 8][4];
        ZERO(s, BKM / 8)
        PRODUCT(s, qf, Kl, QKP, BKM / 8, EP)
        float bm[2] = {NEG_INF, NEG_INF};
#pragma unroll
        for (int ni = 0; ni < BKM / 8; ++ni)
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int r = c >> 1, j = j0 + ni * 8 + t2 + (c & 1);
                const float x = j < S ? masked1(s[ni][c] * scale, row[r], j, bh, mask, m_off,
                                                m_bs, m_hs, m_ls, H, causal) : NEG_INF;
                s[ni][c] = x;
                bm[r] = VMAX(bm[r], x);
            }
        bm[0] = QUAD_MAX(bm[0]); /* (outside loops: a barrier when emulated) */
        bm[1] = QUAD_MAX(bm[1]);
        float base[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float mn = VMAX(m[r], bm[r]);
            base[r] = mn == NEG_INF ? 0.0f : mn;
            const float alpha = exp(m[r] - base[r]);
            l[r] *= alpha;
            m[r] = mn;
#pragma unroll
            for (int nd = 0; nd < EVP / 8; ++nd) {
                acc[nd][2 * r] *= alpha;
                acc[nd][2 * r + 1] *= alpha;
            }
        }
#pragma unroll
        for (int ni = 0; ni < BKM / 8; ++ni)
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int r = c >> 1, j = j0 + ni * 8 + t2 + (c & 1);
                const float p = exp(s[ni][c] - base[r]);
                l[r] += p;
                s[ni][c] = p * DROP1(row[r], j);
            }
        PRODUCT_P(acc, s, Vl, EVP / 8)
    }
    l[0] = QUAD_SUM(l[0]);
    l[1] = QUAD_SUM(l[1]);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int i = i0 + wr + 8 * r;
        const float tot = l[r];
        if (i >= L) continue;
        const float inv = tot > 0.0f ? 1.0f / tot : 0.0f;
        STORE_ROW(o, acc, r, i, EVP / 8, EV, inv)
        if ((lane & 3) == 0) lse[(long)bh * LP + i] = tot > 0.0f ? m[r] + log(tot) : INFINITY;
    }
}

__kernel __attribute__((reqd_work_group_size(NT_M, 1, 1)))
void sdpa_bwd_dq_mma(ROWS16(q), ROWS16(k), ROWS16(v), MASK_PARAMS, DROP_PARAMS, ROWS16(dO),
                     __global const float* lse, __global const float* dd, ROWS16_OUT(dq),
                     const int L, const int S, const int LP, const float scale)
{
    __local uint Kl[BKM * QKP / 2]; /* (key, e) */
    __local uint Kt[EP * BKP / 2];  /* (e, key) */
    __local uint Vl[BKM * VKP / 2]; /* (key, e) */
    MMA_SCRATCH
    __local ushort* Kh = (__local ushort*)Kl;
    __local ushort* Kth = (__local ushort*)Kt;
    __local ushort* Vh = (__local ushort*)Vl;
    MMA_IDS
    const int i0 = get_group_id(0) * BQM;
    uint qf[EP / 16][4], gf[EVK / 16][4];
    OWN_FRAGS(qf, q, i0, L, E, EP)
    OWN_FRAGS(gf, dO, i0, L, EV, EVK)
    float acc[EP / 8][4];
    ZERO(acc, EP / 8)
    const int row[2] = {min(i0 + wr, L - 1), min(i0 + wr + 8, L - 1)};
    const float li[2] = {lse[(long)bh * LP + row[0]], lse[(long)bh * LP + row[1]]};
    const float di[2] = {dd[(long)bh * LP + row[0]], dd[(long)bh * LP + row[1]]};
    const int jend = causal ? min(S, i0 + BQM) : S;

    for (int j0 = 0; j0 < jend; j0 += BKM) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE16(Kh, k, j0, BKM, S, E, EP, QKP)
        STAGE16_T(Kth, k, j0, BKM, S, E, EP, BKP)
        STAGE16(Vh, v, j0, BKM, S, EV, EVK, VKP)
        barrier(CLK_LOCAL_MEM_FENCE);
        SCORES_AND_GRADS(s, dp, qf, Kl, gf, Vl)
#pragma unroll
        for (int ni = 0; ni < BKM / 8; ++ni)
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int r = c >> 1, j = j0 + ni * 8 + t2 + (c & 1);
                const float x = j < S ? masked1(s[ni][c] * scale, row[r], j, bh, mask, m_off,
                                                m_bs, m_hs, m_ls, H, causal) : NEG_INF;
                const float p = exp(x - li[r]);
                s[ni][c] = p * (dp[ni][c] * DROP1(row[r], j) - di[r]) * scale;
            }
        PRODUCT_P(acc, s, Kt, EP / 8)
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int i = i0 + wr + 8 * r;
        if (i >= L) continue;
        STORE_ROW(dq, acc, r, i, EP / 8, E, 1.0f)
    }
}

__kernel __attribute__((reqd_work_group_size(NT_M, 1, 1)))
void sdpa_bwd_dkv_mma(ROWS16(q), ROWS16(k), ROWS16(v), MASK_PARAMS, DROP_PARAMS, ROWS16(dO),
                      __global const float* lse, __global const float* dd, ROWS16_OUT(dk),
                      ROWS16_OUT(dv), const int L, const int S, const int LP,
                      const float scale)
{
    __local uint Ql[BKM * QKP / 2]; /* (query, e) */
    __local uint Qt[EP * BKP / 2];  /* (e, query) */
    __local uint Gl[BKM * VKP / 2]; /* (query, e) of dO */
    __local uint Gt[EVP * BKP / 2]; /* (e, query) of dO */
    __local float ll[BKM], dl[BKM];
    MMA_SCRATCH
    __local ushort* Qh = (__local ushort*)Ql;
    __local ushort* Qth = (__local ushort*)Qt;
    __local ushort* Gh = (__local ushort*)Gl;
    __local ushort* Gth = (__local ushort*)Gt;
    MMA_IDS
    const int j0 = get_group_id(0) * BQM;
    uint kf[EP / 16][4], vf[EVK / 16][4];
    OWN_FRAGS(kf, k, j0, S, E, EP)
    OWN_FRAGS(vf, v, j0, S, EV, EVK)
    float gk[EP / 8][4], gv[EVP / 8][4];
    ZERO(gk, EP / 8)
    ZERO(gv, EVP / 8)
    const int col[2] = {min(j0 + wr, S - 1), min(j0 + wr + 8, S - 1)};
    const int istart = causal ? j0 / BKM * BKM : 0;

    for (int i0 = istart; i0 < L; i0 += BKM) {
        barrier(CLK_LOCAL_MEM_FENCE);
        STAGE16(Qh, q, i0, BKM, L, E, EP, QKP)
        STAGE16_T(Qth, q, i0, BKM, L, E, EP, BKP)
        STAGE16(Gh, dO, i0, BKM, L, EV, EVK, VKP)
        STAGE16_T(Gth, dO, i0, BKM, L, EV, EVP, BKP)
        for (int t = tid; t < BKM; t += NT_M) {
            ll[t] = i0 + t < L ? lse[(long)bh * LP + i0 + t] : INFINITY;
            dl[t] = i0 + t < L ? dd[(long)bh * LP + i0 + t] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        SCORES_AND_GRADS(s, dp, kf, Ql, vf, Gl)
#pragma unroll
        for (int ni = 0; ni < BKM / 8; ++ni)
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int r = c >> 1, t = ni * 8 + t2 + (c & 1), i = i0 + t;
                const float x = i < L ? masked1(s[ni][c] * scale, i, col[r], bh, mask, m_off,
                                                m_bs, m_hs, m_ls, H, causal) : NEG_INF;
                const float p = exp(x - ll[t]), w = DROP1(i, col[r]);
                s[ni][c] = p * w;
                dp[ni][c] = p * (dp[ni][c] * w - dl[t]) * scale;
            }
        PRODUCT_P(gv, s, Gt, EVP / 8)
        PRODUCT_P(gk, dp, Qt, EP / 8)
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int j = j0 + wr + 8 * r;
        if (j >= S) continue;
        STORE_ROW(dk, gk, r, j, EP / 8, E, 1.0f)
        STORE_ROW(dv, gv, r, j, EVP / 8, EV, 1.0f)
    }
}
#endif
