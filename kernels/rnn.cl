/* Recurrent cells: one time step's gate arithmetic in one kernel (the products by the
   weights run before, as matmuls). Operands are (N, k*H) matrices with contiguous rows
   and a row stride (``*_rs``, elements; offsets ``*_off``); results are contiguous.
   One work-item per (n, j), j < H: global = (ceil(N * H / local) * local).

   lstm_cell: gates = xg + hg (i, f, g, o blocks of H), c' = sig(f) c + sig(i) tanh(g),
              h' = sig(o) tanh(c')
   lstm_cell_backward: from dh', dc' -> dgates (N, 4H), dc (N, H)
   gru_cell: r = sig(xr + hr + br), z = sig(xz + hz + bz), n = tanh(xn + r (hn + bn)),
             h' = n + z (h - n); x the input part, hm = h W_hh^T (no bias), b = b_hh
   gru_cell_backward: from dh' -> dx (N, 3H), dhm (N, 3H), dh (N, H)
   Build options: -D T (storage) -D ACC (arithmetic) -D IS_HALF / IS_BF16 (16-bit floats,
   loaded and stored through conversions). */

#ifndef T
#define T float
#endif
#ifndef ACC
#define ACC float
#endif
#if defined(USE_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#if IS_HALF
#define LD(p, i) vload_half((i), (p))
#define ST(p, i, v) vstore_half((v), (i), (p))
#elif IS_BF16
#define LD(p, i) cg_bf16((p)[i])
#define ST(p, i, v) ((p)[i] = cg_bfbits((float)(v)))
#else
#define LD(p, i) ((ACC)(p)[i])
#define ST(p, i, v) ((p)[i] = (T)(v))
#endif

#define MAT(p) __global const T* p, const long p##_off, const long p##_rs
#define AT(p, n, j) (p##_off + (long)(n) * p##_rs + (j))

inline ACC sig(ACC x) { return (ACC)1 / ((ACC)1 + exp(-x)); }

/* the gates of element (n, j), as the forward and the backward both compute them */
#define GATE(p, q, k) (LD(p, AT(p, n, (k) * H + j)) + LD(q, AT(q, n, (k) * H + j)))
#define LSTM_GATES                                                                      \
    const ACC i = sig(GATE(xg, hg, 0)), f = sig(GATE(xg, hg, 1));                       \
    const ACC g = tanh(GATE(xg, hg, 2)), o = sig(GATE(xg, hg, 3));
#define GRU_GATES                                                                       \
    const ACC r = sig(GATE(x, hm, 0) + LD(b, j)), z = sig(GATE(x, hm, 1) + LD(b, H + j)); \
    const ACC hn = LD(hm, AT(hm, n, 2 * H + j)) + LD(b, 2 * H + j);                     \
    const ACC nn = tanh(LD(x, AT(x, n, 2 * H + j)) + r * hn);

__kernel void lstm_cell(MAT(xg), MAT(hg), MAT(c), __global T* h_out, __global T* c_out,
                        const int N, const int H)
{
    const long id = get_global_id(0);
    if (id >= (long)N * H) return;
    const int n = id / H, j = id % H;
    LSTM_GATES
    const ACC cn = f * LD(c, AT(c, n, j)) + i * g;
    ST(c_out, id, cn);
    ST(h_out, id, o * tanh(cn));
}

__kernel void lstm_cell_backward(MAT(xg), MAT(hg), MAT(c), MAT(dh), MAT(dc),
                                 __global T* dgates, __global T* dc_out, const int N,
                                 const int H)
{
    const long id = get_global_id(0);
    if (id >= (long)N * H) return;
    const int n = id / H, j = id % H;
    LSTM_GATES
    const ACC cp = LD(c, AT(c, n, j));
    const ACC tc = tanh(f * cp + i * g);
    const ACC gh = LD(dh, AT(dh, n, j));
    const ACC gc = LD(dc, AT(dc, n, j)) + gh * o * ((ACC)1 - tc * tc);
    const long row = (long)n * 4 * H;
    ST(dgates, row + j, gc * g * i * ((ACC)1 - i));
    ST(dgates, row + H + j, gc * cp * f * ((ACC)1 - f));
    ST(dgates, row + 2 * H + j, gc * i * ((ACC)1 - g * g));
    ST(dgates, row + 3 * H + j, gh * tc * o * ((ACC)1 - o));
    ST(dc_out, id, gc * f);
}

__kernel void gru_cell(MAT(x), MAT(hm), __global const T* b, MAT(h), __global T* h_out,
                       const int N, const int H)
{
    const long id = get_global_id(0);
    if (id >= (long)N * H) return;
    const int n = id / H, j = id % H;
    GRU_GATES
    ST(h_out, id, nn + z * (LD(h, AT(h, n, j)) - nn));
}

__kernel void gru_cell_backward(MAT(x), MAT(hm), __global const T* b, MAT(h), MAT(dh),
                                __global T* dx, __global T* dhm, __global T* dh_out,
                                const int N, const int H)
{
    const long id = get_global_id(0);
    if (id >= (long)N * H) return;
    const int n = id / H, j = id % H;
    GRU_GATES
    const ACC hp = LD(h, AT(h, n, j)), g = LD(dh, AT(dh, n, j));
    const ACC a = g * ((ACC)1 - z) * ((ACC)1 - nn * nn);  /* d(xn + r hn) */
    const ACC br = a * hn * r * ((ACC)1 - r);             /* d(xr + hr) */
    const ACC bz = g * (hp - nn) * z * ((ACC)1 - z);      /* d(xz + hz) */
    const long row = (long)n * 3 * H;
    ST(dx, row + j, br);
    ST(dx, row + H + j, bz);
    ST(dx, row + 2 * H + j, a);
    ST(dhm, row + j, br);
    ST(dhm, row + H + j, bz);
    ST(dhm, row + 2 * H + j, a * r);
    ST(dh_out, id, g * z);
}
