/* The row kernels' vector helpers (included by kernels/norm.cl and kernels/loss.cl): the
   ACC / VW defaults and the fp64 pragma (USE_FP64); VA, vectors of VW ACC; LDA/STA load
   and store them in place; LD1/ST1 and LDV/STV load and store one element or a vector of
   storage type T as ACC (half and bfloat16 converted); hsum, a vector's horizontal sum. */

#ifndef ACC
#define ACC float
#endif
#ifndef VW
#define VW 8
#endif
#if defined(USE_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VA CAT(ACC, VW)

/* vectors of ACC (and of T when T is ACC) */
#if defined(__clang__)
/* PoCL does not inline vloadN/vstoreN: element-aligned vector types load in place */
typedef ACC va_u __attribute__((ext_vector_type(VW), aligned(sizeof(ACC))));
#define LDA(p, i) (*(__global const va_u*)((p) + (i)))
#define STA(p, i, v) (*(__global va_u*)((p) + (i)) = (v))
#else
#define LDA(p, i) CAT(vload, VW)(0, (p) + (i))
#define STA(p, i, v) CAT(vstore, VW)((v), 0, (p) + (i))
#endif

#if IS_HALF
#define LD1(p, i) vload_half((i), (p))
#define ST1(p, i, v) vstore_half((v), (i), (p))
#define LDV(p, i) CAT(vload_half, VW)(0, (p) + (i))
#define STV(p, i, v) CAT(vstore_half, VW)((v), 0, (p) + (i))
#elif IS_BF16
#define LD1(p, i) cg_bf16((p)[i])
#define ST1(p, i, v) ((p)[i] = cg_bfbits((float)(v)))
#define LDBF_(w, p) CG_LDBF(w, p) /* (VW expanded before CG_LDBF pastes it) */
#define STBF_(w, v, p) CG_STBF(w, v, p)
#define LDV(p, i) LDBF_(VW, (p) + (i))
#define STV(p, i, v) STBF_(VW, (v), (p) + (i))
#else
#define LD1(p, i) ((ACC)(p)[i])
#define ST1(p, i, v) ((p)[i] = (T)(v))
#define LDV(p, i) LDA(p, i)
#define STV(p, i, v) STA(p, i, v)
#endif

inline ACC hsum(VA v) {
#if VW == 16
    const CAT(ACC, 8) a8 = v.lo + v.hi; const CAT(ACC, 4) a4 = a8.lo + a8.hi;
#elif VW == 8
    const CAT(ACC, 4) a4 = v.lo + v.hi;
#endif
#if VW >= 8
    const CAT(ACC, 2) a2 = a4.lo + a4.hi;
#elif VW == 4
    const CAT(ACC, 2) a2 = v.lo + v.hi;
#else
    const CAT(ACC, 2) a2 = v;
#endif
    return a2.x + a2.y;
}
