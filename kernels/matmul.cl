/* Matrix multiply, batched: the matmul op (hand-written; see benchmarks/matmul_kernel.py).

   For each batch index b (global id 2), row i < M and column j < N:
     C[c_off + b*M*N + i*N + j] =
       sum_{k<K} A[a_off + b*a_bs + i*a_rs + k*a_cs] * B[b_off + b*b_bs + k*b_rs + j*b_cs]
   A and B are fully strided (a transposed A has a_rs = 1, a_cs = M; a transposed B,
   such as a Linear layer's weight, b_rs = 1, b_cs = K), C is contiguous. a_bs or b_bs
   may be 0 (broadcast batch). Offsets and strides count elements; sums accumulate in
   ACC. Needs M, N >= 1; K may be 0 (C = 0).

   Arguments, the same for the three kernels:
     (__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
      __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
      __global T* C, long c_off, int M, int N, int K)

   Build options: -cl-std=CL1.2 -cl-mad-enable -D T=<storage> -D ACC=<compute>
     T/ACC: float/float, double/double, half/float, int/int, int/long, long/long, ...
     half: -D IS_HALF=1 (also implied by T=half) with ACC=float. Loads turn half bits
       into floats with integer ops, stores use vstore_half (round to nearest even); no
       cl_khr_fp16 needed.
     cl_khr_fp64 is enabled only when T or ACC is double.
   Tile macros (defaults measured best on PoCL, 2 AMD EPYC cores, LLVM target znver3):
     matmul_rb: TM=6 rows x TN=VW*NV columns per work-item; VW = 8 (4 when ACC is 64-bit)
       so that one vector is one 256-bit register, NV=2: 12 accumulators + 2 B vectors +
       1 broadcast = the 16 ymm registers. LM=16 work-items per work-group along M.
       KC=256 rows of B packed into local memory per step.
       APACK=1: A, strided along k, is packed too (KC x LM*TM per step; see matmul_rb),
       shared by NTG column tiles per work-group (NTG work-items along dim 0, each with
       its own B panel), so that each packed row of A serves NTG * TN columns.
     matmul_tiled: TS=16.
     NO_CLANG_EXT=1: use vloadN/convert_* built-ins instead of clang vector extensions.

   Kernels and launch geometry (global sizes are rounded up; extra work-items do
   nothing; any M, N, K tail is handled; no alignment requirement on any offset):
     matmul_rb     register-blocked, for CPUs. Each work-item accumulates a TM x TN
                   tile in ACC vectors; its work-group packs a KC x TN panel of B into
                   local memory, because B's rows (N elements apart) alias in L1 when
                   N*sizeof(T) is a multiple of 4 KiB.
                   global = (ceil(ceil(N/TN)/NTG)*NTG, ceil(ceil(M/TM)/LM)*LM, batch)
                   local  = (NTG, LM, 1)   required (reqd_work_group_size)
                   local memory: NTG*KC*TN*sizeof(ACC) (16 or 32 KiB for float, NTG 1),
                   plus KC*(LM*TM+16)*sizeof(ACC) with APACK.
     matmul_tiled  16x16 local-memory tiles, for GPUs (about 1 GFLOP/s on PoCL).
                   global = (ceil(N/TS)*TS, ceil(M/TS)*TS, batch)
                   local  = (TS, TS, 1)  required
     matmul_naive  one work-item per element of C; the reference.
                   global = (N, M, batch), may be rounded up; local = NULL or any.

   PoCL 3.0 here (measured): its built-ins are not inlined (vloadN, convert_*, min,
   fma are calls that spill every vector register), so the hot loops use clang vector
   typedefs and __builtin_convertvector. Its LLVM targets znver3 (AVX2) although the
   CPU has AVX-512: a 512-bit vector (float16, double8, long8) passed to a built-in
   draws an ABI warning, and such a program loses its kernels (INVALID_KERNEL_NAME)
   when PoCL later loads it from its cache, so no built-in here takes one. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#ifndef T
#define T float
#endif
#ifndef ACC
#define ACC float
#endif
#ifndef TM
#define TM 6
#endif
#ifndef NV
#define NV 2
#endif
#ifndef LM
#define LM 16
#endif
#ifndef KC
#define KC 256
#endif
#ifndef TS
#define TS 16
#endif
#ifndef APACK
#define APACK 0
#endif
#ifndef NTG
#define NTG 1
#endif

/* type ids, so the preprocessor can tell storage and compute types apart */
#define char_TID_ 1
#define uchar_TID_ 2
#define short_TID_ 3
#define ushort_TID_ 4
#define int_TID_ 5
#define uint_TID_ 6
#define long_TID_ 7
#define ulong_TID_ 8
#define half_TID_ 9
#define float_TID_ 10
#define double_TID_ 11
#define TID_T CAT(T, _TID_)
#define TID_ACC CAT(ACC, _TID_)

#if TID_T == 11 || TID_ACC == 11
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifndef VW /* one 256-bit register per vector */
#if TID_ACC == 7 || TID_ACC == 8 || TID_ACC == 11
#define VW 4
#else
#define VW 8
#endif
#endif
#if !defined(IS_HALF) && TID_T == 9
#define IS_HALF 1
#endif
#ifndef IS_HALF
#define IS_HALF 0
#endif
#ifndef IS_BF16
#define IS_BF16 0
#endif
#if !IS_HALF && !IS_BF16 && TID_T == TID_ACC
#define SAME_TYPE 1
#else
#define SAME_TYPE 0
#endif

#define TN (VW * NV)
#define VACC CAT(ACC, VW)
#define VT CAT(T, VW)

#if defined(__clang__) && !defined(NO_CLANG_EXT)
/* unaligned vector loads/stores and conversions without built-in calls (see above) */
#define FAST_VEC 1
typedef ACC vacc_u __attribute__((ext_vector_type(VW), aligned(sizeof(ACC))));
#define CVTV(v, type) __builtin_convertvector((v), type)
#else
#define FAST_VEC 0
#define CVTV(v, type) CAT(convert_, type)(v)
#endif

#if IS_HALF
#define VUINT CAT(uint, VW)
#define VUSHORT CAT(ushort, VW)
#if FAST_VEC
typedef ushort vush_u __attribute__((ext_vector_type(VW), aligned(2)));
#define LOADV_BITS(p) (*(__global const vush_u*)(p))
#else
#define LOADV_BITS(p) CAT(vload, VW)(0, (__global const ushort*)(p))
#endif
/* half bits -> float with integer ops only (exact, incl. subnormals, inf, nan) */
inline VACC half_bits_to_float_v(VUSHORT h)
{
    VUINT u = CVTV(h, VUINT);
    VUINT m = (u & 0x7fffu) << 13;
    VUINT e = u & 0x7c00u;
    VACC fn = CAT(as_, VACC)(m + (112u << 23));
    VACC fd = CAT(as_, VACC)(m + (113u << 23)) - CAT(as_, VACC)((VUINT)(113u << 23));
    VUINT r = CAT(as_, VUINT)(e == (VUINT)0 ? fd : fn);
    r = e == (VUINT)0x7c00u ? m + (224u << 23) : r;
    return CAT(as_, VACC)(r | ((u & 0x8000u) << 16));
}
inline float half_bits_to_float(ushort h)
{
    uint u = h;
    uint m = (u & 0x7fffu) << 13;
    uint e = u & 0x7c00u;
    float fn = as_float(m + (112u << 23));
    float fd = as_float(m + (113u << 23)) - as_float(113u << 23);
    uint r = as_uint(e == 0 ? fd : fn);
    r = e == 0x7c00u ? m + (224u << 23) : r;
    return as_float(r | ((u & 0x8000u) << 16));
}
#define LOAD(p) half_bits_to_float(*(__global const ushort*)(p))
#define LOADV(p) half_bits_to_float_v(LOADV_BITS(p))
#define STORE(v, p) vstore_half((v), 0, (p))
#define STOREV(v, p) CAT(vstore_half, VW)((v), 0, (p))
#elif IS_BF16
/* bfloat16 (T = ushort): the bits are float's upper half; stores round to nearest even
   (cg_bfbits, from the prelude every template kernel gets) */
#define VUINT CAT(uint, VW)
#if FAST_VEC
typedef ushort vbf_u __attribute__((ext_vector_type(VW), aligned(2)));
#define LOADV_BITS(p) (*(__global const vbf_u*)(p))
#else
#define LOADV_BITS(p) CAT(vload, VW)(0, (__global const ushort*)(p))
#endif
#define LOAD(p) as_float((uint)(*(p)) << 16)
#define LOADV(p) CAT(as_, VACC)(CVTV(LOADV_BITS(p), VUINT) << 16)
#define STORE(v, p) (*(p) = cg_bfbits(v))
#define STOREV(v, p) CAT(vstore, VW)(CAT(cg_bfbits, VW)(v), 0, (p))
#else
#define LOAD(p) ((ACC)(*(p)))
#define STORE(v, p) (*(p) = (T)(v))
#if FAST_VEC && SAME_TYPE
#define LOADV(p) (*(__global const vacc_u*)(p))
#define STOREV(v, p) (*(__global vacc_u*)(p) = (v))
#elif FAST_VEC
typedef T vt_u __attribute__((ext_vector_type(VW), aligned(sizeof(T))));
#define LOADV(p) CVTV(*(__global const vt_u*)(p), VACC)
#define STOREV(v, p) (*(__global vt_u*)(p) = CVTV((v), VT))
#else
#define LOADV(p) CAT(convert_, VACC)(CAT(vload, VW)(0, (p)))
#define STOREV(v, p) CAT(vstore, VW)(CAT(convert_, VT)(v), 0, (p))
#endif
#endif

#if FAST_VEC
#define LSTOREV(v, p) (*(__local vacc_u*)(p) = (v))
#define PLOADV(p) (*(const vacc_u*)(p))
#define PSTOREV(v, p) (*(vacc_u*)(p) = (v))
#else
#define PLOADV(p) CAT(vload, VW)(0, (p))
#define PSTOREV(v, p) CAT(vstore, VW)((v), 0, (p))
#define LSTOREV(v, p) CAT(vstore, VW)((v), 0, (p))
#endif

#define IMIN(a, b) ((a) < (b) ? (a) : (b))

/* KN steps of the register tile, rows 0..NR-1: B vectors from BLOAD(kk, v), A from ALOAD(AADDR(r, kk)) */
#define RB_LOOP(NR, KN, BLOAD, ALOAD, AADDR)                                               \
    for (int kk = 0; kk < (KN); ++kk) {                                                    \
        VACC bv[NV];                                                                       \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = BLOAD(kk, v);               \
        _Pragma("unroll") for (int r = 0; r < (NR); ++r) {                                 \
            ACC a = ALOAD(AADDR(r, kk));                                                   \
            _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = a * bv[v] + acc[r][v]; \
        }                                                                                  \
    }
#define AADDR_ROW(r, kk) (ar[r] + k0 + (kk))
#define AADDR_STRIDED(r, kk) (ar[r] + (long)(k0 + (kk)) * a_cs)
#define PLOAD(p) (*(p))
#define AADDR_PAN(r, kk) (apan + (kk) * APAN + lid * TM + (r))
#define APAN (LM * TM + 64 / (int)sizeof(ACC))
#define BLOAD_PACKED(kk, v) bpan[(kk) * NV + (v)]
#define BLOAD_GLOBAL(kk, v) LOADV(Bb + (long)(k0 + (kk)) * b_rs + (v) * VW)

/* Epilogue: a compiled graph may fuse elementwise work on the product into the store
   (bias, activation): it defines EPI_PARAMS (more kernel parameters), EPI_V(v, row, col)
   on one VACC of columns col..col+VW-1 and EPI_S(x, row, col) on one element. */
#ifndef EPI_PARAMS
#define EPI_PARAMS
#define EPI_V(v, row, col) (v)
#define EPI_S(x, row, col) (x)
#endif

__kernel __attribute__((reqd_work_group_size(NTG, LM, 1)))
void matmul_rb(__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
               __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
               __global T* C, long c_off, int M, int N, int K EPI_PARAMS)
{
    __local VACC bpans[NTG * KC * NV];
    const int lid = get_local_id(1);
    __local VACC* bpan = bpans + get_local_id(0) * (KC * NV);
#if APACK
    /* A strided along k (a transposed A, as in a weight gradient g^T x): reading it in
       place hops a row of A (often a multiple of 4 KiB: one L1 set, a new page) for every
       k, 32 bytes at a time. The group's LM*TM rows over KC steps of k are packed into
       local memory instead, copied as they lie in a transposed A: apan[kk][LM*TM], rows
       padded by one cache line so that a work-item's reads down k spread over L1's sets. */
    __local ACC apan[KC * APAN];
    const int ig0 = get_group_id(1) * (LM * TM);
    const int tid = lid * NTG + get_local_id(0);
#endif
    const int j0 = get_global_id(0) * TN;
    const int i0 = get_global_id(1) * TM;
    const long bat = get_global_id(2);
    const int active = i0 < M && j0 < N;
    /* the last column tile is shifted back so that full vectors stay inside B and C */
    const int jb = N >= TN ? IMIN(j0, N - TN) : 0;
    const __global T* Ab = A + a_off + bat * a_bs;
    const __global T* Bb = B + b_off + bat * b_bs + jb * b_cs;
    __global T* Cb = C + c_off + bat * (long)M * N;

    /* rows past M repeat row M-1 (computed, never stored) */
    const __global T* ar[TM];
#pragma unroll
    for (int r = 0; r < TM; ++r) ar[r] = Ab + (long)IMIN(i0 + r, M - 1) * a_rs;

    VACC acc[TM][NV];
#pragma unroll
    for (int r = 0; r < TM; ++r)
#pragma unroll
        for (int v = 0; v < NV; ++v) acc[r][v] = (VACC)0;

    /* with one row tile (M <= TM) nothing reuses a packed panel: read B in place (rows of
       unit stride only) */
    const int packed = M > TM || N < TN || b_cs != 1;
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kn = IMIN(KC, K - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        /* pack B[k0:k0+kn, jb:jb+TN] (zero columns past N when N < TN) */
        for (int kk = lid; packed && kk < kn; kk += LM) {
            const __global T* src = Bb + (long)(k0 + kk) * b_rs;
            if (N >= TN && b_cs == 1) {
#pragma unroll
                for (int v = 0; v < NV; ++v) bpan[kk * NV + v] = LOADV(src + v * VW);
            } else {
                /* a short or strided row (a transposed B gathers TN columns; neighbouring
                   work-items read the neighbouring elements of the same lines) */
                ACC tmp[TN];
#pragma unroll
                for (int t = 0; t < TN; ++t) tmp[t] = t < N ? LOAD(src + t * b_cs) : (ACC)0;
#pragma unroll
                for (int v = 0; v < NV; ++v) bpan[kk * NV + v] = PLOADV(tmp + v * VW);
            }
        }
#if APACK
        for (int kk = tid; packed && kk < kn; kk += LM * NTG) {
            const __global T* src = Ab + (long)(k0 + kk) * a_cs;
            __local ACC* dst = apan + kk * APAN;
            if (a_rs == 1 && ig0 + LM * TM <= M) {
#pragma unroll
                for (int c = 0; c < LM * TM; c += VW) LSTOREV(LOADV(src + ig0 + c), dst + c);
            } else {
                for (int c = 0; c < LM * TM; ++c) dst[c] = LOAD(src + (long)IMIN(ig0 + c, M - 1) * a_rs);
            }
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
        if (active) {
            if (!packed) {
                if (M == 1) {
                    RB_LOOP(1, kn, BLOAD_GLOBAL, LOAD, AADDR_STRIDED)
                } else {
                    RB_LOOP(TM, kn, BLOAD_GLOBAL, LOAD, AADDR_STRIDED)
                }
            } else if (a_cs == 1) {
#if IS_HALF
                /* convert the A rows with vector ops first: scalar conversions in the
                   loop would cost ~10 integer ops per multiply-add */
                ACC abuf[TM][KC];
#pragma unroll
                for (int r = 0; r < TM; ++r) {
                    int kk = 0;
                    for (; kk + VW <= kn; kk += VW) PSTOREV(LOADV(ar[r] + k0 + kk), &abuf[r][kk]);
                    for (; kk < kn; ++kk) abuf[r][kk] = LOAD(ar[r] + k0 + kk);
                }
#define AADDR_BUF(r, kk) (&abuf[r][kk])
                RB_LOOP(TM, kn, BLOAD_PACKED, PLOAD, AADDR_BUF)
#else
                RB_LOOP(TM, kn, BLOAD_PACKED, LOAD, AADDR_ROW)
#endif
            } else {
#if APACK
                RB_LOOP(TM, kn, BLOAD_PACKED, PLOAD, AADDR_PAN)
#else
                RB_LOOP(TM, kn, BLOAD_PACKED, LOAD, AADDR_STRIDED)
#endif
            }
        }
    }

    if (!active) return;
    const int rend = IMIN(TM, M - i0);
    /* columns jb..j0-1 belong to the neighbouring tile */
    const int c0 = j0 - jb, cend = IMIN(TN, N - jb);
    if (c0 == 0 && cend == TN) {
#pragma unroll
        for (int r = 0; r < TM; ++r)
            if (r < rend)
#pragma unroll
                for (int v = 0; v < NV; ++v)
                    STOREV(EPI_V(acc[r][v], i0 + r, jb + v * VW),
                           Cb + (long)(i0 + r) * N + jb + v * VW);
    } else {
#pragma unroll
        for (int r = 0; r < TM; ++r) {
            if (r < rend) {
                ACC tmp[TN];
#pragma unroll
                for (int v = 0; v < NV; ++v) PSTOREV(acc[r][v], tmp + v * VW);
                for (int t = c0; t < cend; ++t)
                    STORE(EPI_S(tmp[t], i0 + r, jb + t), Cb + (long)(i0 + r) * N + jb + t);
            }
        }
    }
}

__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void matmul_tiled(__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
                  __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
                  __global T* C, long c_off, int M, int N, int K)
{
    __local ACC As[TS][TS];
    __local ACC Bs[TS][TS];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int j = get_global_id(0), i = get_global_id(1);
    const long bat = get_global_id(2);
    const __global T* Ab = A + a_off + bat * a_bs;
    const __global T* Bb = B + b_off + bat * b_bs;
    ACC sum = (ACC)0;
    for (int k0 = 0; k0 < K; k0 += TS) {
        /* the A tile is read along k by tx: coalesced when a_cs == 1 */
        As[ty][tx] = i < M && k0 + tx < K ? LOAD(Ab + (long)i * a_rs + (long)(k0 + tx) * a_cs) : (ACC)0;
        Bs[ty][tx] = j < N && k0 + ty < K ? LOAD(Bb + (long)(k0 + ty) * b_rs + (long)j * b_cs) : (ACC)0;
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int kk = 0; kk < TS; ++kk) sum = As[ty][kk] * Bs[kk][tx] + sum;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (i < M && j < N) STORE(sum, C + c_off + bat * (long)M * N + (long)i * N + j);
}

__kernel void matmul_naive(__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
                           __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
                           __global T* C, long c_off, int M, int N, int K)
{
    const int j = get_global_id(0), i = get_global_id(1);
    const long bat = get_global_id(2);
    if (i >= M || j >= N) return;
    const __global T* pa = A + a_off + bat * a_bs + (long)i * a_rs;
    const __global T* pb = B + b_off + bat * b_bs + (long)j * b_cs;
    ACC sum = (ACC)0;
    for (int k = 0; k < K; ++k) sum += LOAD(pa + (long)k * a_cs) * LOAD(pb + (long)k * b_rs);
    STORE(sum, C + c_off + bat * (long)M * N + (long)i * N + j);
}

/* The GPU GEMM family (tuned per device and shape class, clgraph/tune.py; ops/gemm.py).
   GEMM_CORE computes an M x N product C = A B over K from element accessors the kernel
   defines first: A_ELEM(i, k), B_ELEM(k, j) (values in ACC, or 0 outside the operand)
   and C_STORE(v, i, j); A_ALONG_K / B_ALONG_N say which way each operand is contiguous,
   so that neighbouring work-items load neighbouring elements. matmul_gemm reads strided
   matrices; conv_gemm_* (built with -DGEMM_CONV=1) gather convolution patches on the
   fly (implicit GEMM: no im2col matrix in memory).
   A work-group of NDIMC x MDIMC work-items computes an MWG x NWG tile of C; work-item
   (tn, tm) holds MWI x NWI accumulators for rows tm + r*MDIMC and columns tn + c*NDIMC,
   so neighbouring work-items store neighbouring columns. Each KWG-deep step stages an
   MWG x KWG tile of A and a KWG x NWG tile of B in local memory, loaded by all
   work-items. With DB=1 the next step's tiles are read into registers while this step
   computes (double buffering). Any M, N, K.
     global = (ceil(N/NWG)*NDIMC, ceil(M/MWG)*MDIMC, batch), local = (NDIMC, MDIMC, 1) */
#ifndef MWG
#define MWG 64
#endif
#ifndef NWG
#define NWG 64
#endif
#ifndef KWG
#define KWG 16
#endif
#ifndef MDIMC
#define MDIMC 16
#endif
#ifndef NDIMC
#define NDIMC 16
#endif
#ifndef DB
#define DB 0
#endif
#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define GEMM_THREADS (MDIMC * NDIMC)
#define A_PER ((MWG * KWG) / GEMM_THREADS)
#define B_PER ((KWG * NWG) / GEMM_THREADS)
#if (MWG % MDIMC) || (NWG % NDIMC) || ((MWG * KWG) % GEMM_THREADS) || ((KWG * NWG) % GEMM_THREADS)
#error "GEMM: tile sizes must divide evenly among the work-items"
#endif

/* element s of this work-item's share of a tile, as (row, k) of A or (k, col) of B */
#define A_AT(s, r, kk)                                                   \
    const int e_ = tid + (s) * GEMM_THREADS;                             \
    const int r = (A_ALONG_K) ? e_ / KWG : e_ % MWG;                     \
    const int kk = (A_ALONG_K) ? e_ % KWG : e_ / MWG;
#define B_AT(s, kk, c)                                                   \
    const int e_ = tid + (s) * GEMM_THREADS;                             \
    const int kk = (B_ALONG_N) ? e_ / NWG : e_ % KWG;                    \
    const int c = (B_ALONG_N) ? e_ % NWG : e_ / KWG;
/* this step's share of the tiles, from global memory into registers */
#define GEMM_FETCH(k0, GM, GN, GK)                                                          \
    _Pragma("unroll") for (int s = 0; s < A_PER; ++s) {                                     \
        A_AT(s, r, kk)                                                                      \
        const int gi = i0 + r, gk = (k0) + kk;                                              \
        ra[s] = gi < (GM) && gk < (GK) ? A_ELEM(gi, gk) : (ACC)0;                           \
    }                                                                                       \
    _Pragma("unroll") for (int s = 0; s < B_PER; ++s) {                                     \
        B_AT(s, kk, c)                                                                      \
        const int gk = (k0) + kk, gj = j0 + c;                                              \
        rb[s] = gk < (GK) && gj < (GN) ? B_ELEM(gk, gj) : (ACC)0;                           \
    }
#if DB
#define GEMM_PREFETCH(k0, GM, GN, GK) if ((k0) + KWG < (GK)) { GEMM_FETCH((k0) + KWG, GM, GN, GK) }
#define GEMM_LATE_FETCH(k0, GM, GN, GK)
#else
#define GEMM_PREFETCH(k0, GM, GN, GK)
#define GEMM_LATE_FETCH(k0, GM, GN, GK) if ((k0) + KWG < (GK)) { GEMM_FETCH((k0) + KWG, GM, GN, GK) }
#endif
#define GEMM_CORE(GM, GN, GK)                                                               \
    __local ACC Al[KWG][MWG + 1];                                                           \
    __local ACC Bl[KWG][NWG];                                                               \
    const int tn = get_local_id(0), tm = get_local_id(1);                                   \
    const int tid = tm * NDIMC + tn;                                                        \
    const int i0 = get_group_id(1) * MWG, j0 = get_group_id(0) * NWG;                       \
    ACC acc[MWI][NWI];                                                                      \
    _Pragma("unroll") for (int r = 0; r < MWI; ++r)                                         \
        _Pragma("unroll") for (int c = 0; c < NWI; ++c) acc[r][c] = (ACC)0;                 \
    ACC ra[A_PER], rb[B_PER];                                                               \
    GEMM_FETCH(0, GM, GN, GK)                                                               \
    for (int k0 = 0; k0 < (GK); k0 += KWG) {                                                \
        _Pragma("unroll") for (int s = 0; s < A_PER; ++s) { A_AT(s, r, kk) Al[kk][r] = ra[s]; } \
        _Pragma("unroll") for (int s = 0; s < B_PER; ++s) { B_AT(s, kk, c) Bl[kk][c] = rb[s]; } \
        barrier(CLK_LOCAL_MEM_FENCE);                                                       \
        GEMM_PREFETCH(k0, GM, GN, GK)                                                       \
        _Pragma("unroll") for (int kk = 0; kk < KWG; ++kk) {                                \
            ACC av[MWI], bv[NWI];                                                           \
            _Pragma("unroll") for (int r = 0; r < MWI; ++r) av[r] = Al[kk][tm + r * MDIMC]; \
            _Pragma("unroll") for (int c = 0; c < NWI; ++c) bv[c] = Bl[kk][tn + c * NDIMC]; \
            _Pragma("unroll") for (int r = 0; r < MWI; ++r)                                 \
                _Pragma("unroll") for (int c = 0; c < NWI; ++c)                             \
                    acc[r][c] = av[r] * bv[c] + acc[r][c];                                  \
        }                                                                                   \
        barrier(CLK_LOCAL_MEM_FENCE);                                                       \
        GEMM_LATE_FETCH(k0, GM, GN, GK)                                                     \
    }                                                                                       \
    _Pragma("unroll") for (int r = 0; r < MWI; ++r) {                                       \
        const int i = i0 + tm + r * MDIMC;                                                  \
        _Pragma("unroll") for (int c = 0; c < NWI; ++c) {                                   \
            const int j = j0 + tn + c * NDIMC;                                              \
            if (i < (GM) && j < (GN)) C_STORE(acc[r][c], i, j);                             \
        }                                                                                   \
    }

/* matmul_gemm: strided A and B read in place (a row-major A is loaded along k, a
   transposed one along m; a row-major B along n, a transposed one along k), batched by
   global id 2, the EPI epilogue hook on the store. */
#define A_ALONG_K (a_cs == 1)
#define B_ALONG_N (!(b_rs == 1 && b_cs != 1))
#define A_ELEM(i, k) LOAD(Ab + (long)(i) * a_rs + (long)(k) * a_cs)
#define B_ELEM(k, j) LOAD(Bb + (long)(k) * b_rs + (long)(j) * b_cs)
#define C_STORE(v, i, j) STORE(EPI_S((v), (i), (j)), Cb + (long)(i) * N + (j))
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void matmul_gemm(__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
                 __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
                 __global T* C, long c_off, int M, int N, int K EPI_PARAMS)
{
    const long bat = get_global_id(2);
    const __global T* Ab = A + a_off + bat * a_bs;
    const __global T* Bb = B + b_off + bat * b_bs;
    __global T* Cb = C + c_off + bat * (long)M * N;
    GEMM_CORE(M, N, K)
}
#undef A_ALONG_K
#undef B_ALONG_N
#undef A_ELEM
#undef B_ELEM
#undef C_STORE

#if GEMM_CONV
/* Implicit-GEMM convolution (groups of one), NCHW images with any strides, weights
   (O, C, KH, KW) contiguous, results contiguous. Taps are (c, ki, kj) in weight order,
   output pixels (n, oh, ow); ``geometry`` is conv.cl's GEOM. */
#define CONV_GEOM                                                                           \
    const int C, const int H, const int W, const int KH, const int KW, const int SH,        \
    const int SW, const int PH, const int PW, const int DH, const int DW, const int OH,     \
    const int OW
#define IMAGE(p) __global const T* p, const long p##off, const long p##sn, const long p##sc, \
                 const long p##sh, const long p##sw
/* tap (c, ki, kj) of output pixel (n, oh, ow) of image x: 0 in the padding */
inline ACC conv_tap(const __global T* x, long xoff, long xsn, long xsc, long xsh, long xsw,
                    int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW,
                    int DH, int DW, int OH, int OW, int tap, int pix)
{
    const int kj = tap % KW, ki = (tap / KW) % KH, c = tap / (KW * KH);
    const int ow = pix % OW, oh = (pix / OW) % OH, n = pix / (OW * OH);
    const int h = oh * SH - PH + ki * DH, w = ow * SW - PW + kj * DW;
    return h >= 0 && h < H && w >= 0 && w < W
        ? LOAD(x + xoff + n * xsn + c * xsc + h * xsh + w * xsw) : (ACC)0;
}
#define TAP(img, tap, pix) conv_tap(img, img##off, img##sn, img##sc, img##sh, img##sw, C, H, \
    W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, (tap), (pix))

/* forward: y[n, o, oh, ow] = sum over taps of w[o, tap] x[tap of (n, oh, ow)]:
   M = O, N = N*OH*OW, K = C*KH*KW */
#define A_ALONG_K 1
#define B_ALONG_N 1
#define A_ELEM(i, k) LOAD(wt + (long)(i) * taps + (k))
#define B_ELEM(k, j) TAP(x, (k), (j))
#define C_STORE(v, i, j) STORE((v), y + ((long)((j) / L) * O + (i)) * L + (j) % L)
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void conv_gemm_fwd(IMAGE(x), __global const T* wt, CONV_GEOM, const int O, const int NB,
                   __global T* y)
{
    const int taps = C * KH * KW, L = OH * OW;
    GEMM_CORE(O, NB * L, taps)
}
#undef A_ELEM
#undef B_ELEM
#undef C_STORE

/* input gradient: gx[n, c, h, w] = sum over (o, ki, kj) of w[o, c, ki, kj] g[n, o, oh, ow]
   where (h, w) is tap (ki, kj) of output pixel (oh, ow): M = C, N = N*H*W, K = O*KH*KW */
inline ACC conv_back_tap(const __global T* g, long goff, long gsn, long gsc, long gsh,
                         long gsw, int H, int W, int KH, int KW, int SH, int SW, int PH,
                         int PW, int DH, int DW, int OH, int OW, int k, int pix)
{
    const int kj = k % KW, ki = (k / KW) % KH, o = k / (KW * KH);
    const int w = pix % W, h = (pix / W) % H, n = pix / (W * H);
    const int hh = h + PH - ki * DH, ww = w + PW - kj * DW;
    if (hh < 0 || ww < 0 || hh % SH || ww % SW) return (ACC)0;
    const int oh = hh / SH, ow = ww / SW;
    return oh < OH && ow < OW ? LOAD(g + goff + n * gsn + o * gsc + oh * gsh + ow * gsw)
                              : (ACC)0;
}
#define A_ELEM(i, k) LOAD(wt + ((long)((k) / (KH * KW)) * C + (i)) * (KH * KW) + (k) % (KH * KW))
#define B_ELEM(k, j) conv_back_tap(g, goff, gsn, gsc, gsh, gsw, H, W, KH, KW, SH, SW, PH, \
    PW, DH, DW, OH, OW, (k), (j))
#define C_STORE(v, i, j) STORE((v), gx + ((long)((j) / HW) * C + (i)) * HW + (j) % HW)
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void conv_gemm_dx(IMAGE(g), __global const T* wt, CONV_GEOM, const int O, const int NB,
                  __global T* gx)
{
    const int HW = H * W;
    GEMM_CORE(C, NB * HW, O * KH * KW)
}
#undef A_ALONG_K
#undef A_ELEM
#undef B_ELEM
#undef C_STORE

/* weight gradient: gw[o, tap] = sum over output pixels (n, oh, ow) of g[n, o, oh, ow]
   x[tap of (n, oh, ow)]: M = O, N = C*KH*KW, K = N*OH*OW */
#define A_ALONG_K 1
#undef B_ALONG_N
#define B_ALONG_N 0
#define A_ELEM(i, k) LOAD(g + goff + (long)((k) / L) * gsn + (long)(i) * gsc \
                          + (long)(((k) % L) / OW) * gsh + (long)((k) % OW) * gsw)
#define B_ELEM(k, j) TAP(x, (j), (k))
#define C_STORE(v, i, j) STORE((v), gw + (long)(i) * taps + (j))
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void conv_gemm_dw(IMAGE(g), IMAGE(x), CONV_GEOM, const int O, const int NB, __global T* gw)
{
    const int taps = C * KH * KW, L = OH * OW;
    GEMM_CORE(O, taps, NB * L)
}
#undef A_ALONG_K
#undef B_ALONG_N
#undef A_ELEM
#undef B_ELEM
#undef C_STORE
#endif

#if GEMM_MMA
/* matmul_mma: products on NVIDIA tensor cores through inline PTX, float accumulators:
   float16 or bfloat16 operands with mma.sync m16n8k16, or (MMA_TF32=1) float32 operands rounded to
   TF32 (10-bit mantissa, to nearest with ties away, as cvt.rna) with mma.sync m16n8k8,
   which set_float32_matmul_precision("high") allows. The same arguments, strided
   operands, batches and EPI hook as matmul_gemm. Built with -DGEMM_MMA=1 only on a
   device whose probe built it and reproduced a reference product (ops/gemm.py);
   MMA_EMULATE=1 replaces the instruction by a software version over the same register
   fragments (the PTX ISA's layout, exchanged through local memory), so that the tiling
   and fragment loads are tested on any device.
   A work-group of WARPS_M x WARPS_N warps computes a BM x BN tile of C; each warp a
   (WTM*16) x (WTN*8) tile, as WTM x WTN instructions per MMA_K-deep step. Each KS-deep
   step stages A's BM x KS tile and B's KS x BN tile in local memory as operand bits, both
   with k contiguous (a float16 fragment's two halves are then one 32-bit word), rows
   padded by 16 bytes so that the 32 lanes' fragment loads hit distinct banks. With DB=1
   the next step's tiles are read into registers while this step computes.
     global = (ceil(N/BN)*MMA_THREADS, ceil(M/BM), batch), local = (MMA_THREADS, 1, 1) */
#ifndef WARPS_M
#define WARPS_M 2
#endif
#ifndef WARPS_N
#define WARPS_N 2
#endif
#ifndef WTM
#define WTM 2
#endif
#ifndef WTN
#define WTN 4
#endif
#ifndef KS
#define KS 32
#endif
#define MMA_THREADS (32 * WARPS_M * WARPS_N)
#define BM (WARPS_M * WTM * 16)
#define BN (WARPS_N * WTN * 8)
#define MMA_WARPS (WARPS_M * WARPS_N)
#include "mma.cl"
#if MMA_TF32
#define OPERAND(p, idx) tf32_bits(LOAD((p) + (idx)))
#else /* float16 or bfloat16: the storage bits are the operands */
#define OPERAND(p, idx) (((__global const ushort*)(p))[idx])
#endif
#define KP (KS + 4 * EPW)
/* the 32-bit word of a local tile holding element (row, k) */
#define WORD(row, k) (((row) * KP + (k)) / EPW)
#define MA_PER ((BM * KS) / MMA_THREADS)
#define MB_PER ((BN * KS) / MMA_THREADS)
#if ((BM * KS) % MMA_THREADS) || ((BN * KS) % MMA_THREADS) || (KS % MMA_K)
#error "matmul_mma: tile sizes must divide evenly among the work-items"
#endif

/* element s of this work-item's share of a tile: (row, k) of A, (k, column) of B, read
   along the operand's contiguous dimension */
#define MA_AT(s, r, kk)                                                  \
    const int e_ = tid + (s) * MMA_THREADS;                              \
    const int r = a_k ? e_ / KS : e_ % BM;                               \
    const int kk = a_k ? e_ % KS : e_ / BM;
#define MB_AT(s, kk, c)                                                  \
    const int e_ = tid + (s) * MMA_THREADS;                              \
    const int kk = b_n ? e_ / BN : e_ % KS;                              \
    const int c = b_n ? e_ % BN : e_ / KS;
#define MMA_FETCH(k0)                                                                       \
    _Pragma("unroll") for (int s = 0; s < MA_PER; ++s) {                                    \
        MA_AT(s, r, kk)                                                                     \
        const int gi = i0 + r, gk = (k0) + kk;                                              \
        ra[s] = gi < M && gk < K ? OPERAND(Ab, (long)gi * a_rs + (long)gk * a_cs) : 0;      \
    }                                                                                       \
    _Pragma("unroll") for (int s = 0; s < MB_PER; ++s) {                                    \
        MB_AT(s, kk, c)                                                                     \
        const int gk = (k0) + kk, gj = j0 + c;                                              \
        rb[s] = gk < K && gj < N ? OPERAND(Bb, (long)gk * b_rs + (long)gj * b_cs) : 0;      \
    }

/* VEC8=1 (16-bit operands whose rows along the contiguous dimension start 16-byte aligned
   and hold a multiple of 8 elements, ops/gemm.py): a work-item moves 8 elements per load,
   when the tile sizes give it whole chunks of 8 */
#if defined(VEC8) && VEC8 && !MMA_TF32 && (MA_PER % 8 == 0) && (MB_PER % 8 == 0)
#define MMA_VEC 1
#else
#define MMA_VEC 0
#endif
#if MMA_VEC
/* chunk s of this work-item's share: 8 elements along the operand's contiguous dimension,
   starting at (row, k) of A or (k, column) of B */
#define MA8_AT(s, r, kk)                                                 \
    const int e_ = tid + (s) * MMA_THREADS;                              \
    const int r = a_k ? e_ / (KS / 8) : e_ % (BM / 8) * 8;               \
    const int kk = a_k ? e_ % (KS / 8) * 8 : e_ / (BM / 8);
#define MB8_AT(s, kk, c)                                                 \
    const int e_ = tid + (s) * MMA_THREADS;                              \
    const int kk = b_n ? e_ / (BN / 8) : e_ % (KS / 8) * 8;              \
    const int c = b_n ? e_ % (BN / 8) * 8 : e_ / (KS / 8);
#define LOAD8(p, idx) vload4(0, (__global const uint*)((p) + (idx)))
#undef MMA_FETCH
#define MMA_FETCH(k0)                                                                       \
    _Pragma("unroll") for (int s = 0; s < MA_PER / 8; ++s) {                                \
        MA8_AT(s, r, kk)                                                                    \
        const int gi = i0 + r, gk = (k0) + kk;                                              \
        ra[s] = gi < M && gk < K ? LOAD8(Ab, (long)gi * a_rs + (long)gk * a_cs) : (uint4)(0u); \
    }                                                                                       \
    _Pragma("unroll") for (int s = 0; s < MB_PER / 8; ++s) {                                \
        MB8_AT(s, kk, c)                                                                    \
        const int gk = (k0) + kk, gj = j0 + c;                                              \
        rb[s] = gk < K && gj < N ? LOAD8(Bb, (long)gk * b_rs + (long)gj * b_cs) : (uint4)(0u); \
    }
/* a chunk into the local tile x (rows of KP elements, k contiguous): in place when the
   chunk runs along k, else spread over 8 rows */
#define PUT8(x, w, row, k, along_k)                                                         \
    if (along_k) {                                                                          \
        vstore4((w), 0, (__local uint*)(x) + ((row) * KP + (k)) / 2);                       \
    } else {                                                                                \
        const uint u_[4] = {(w).s0, (w).s1, (w).s2, (w).s3};                                \
        _Pragma("unroll") for (int q_ = 0; q_ < 8; ++q_)                                    \
            (x)[((row) + q_) * KP + (k)] = (ushort)(u_[q_ >> 1] >> (16 * (q_ & 1)));         \
    }
#define MMA_STORE_TILES                                                                     \
    _Pragma("unroll") for (int s = 0; s < MA_PER / 8; ++s) {                                \
        MA8_AT(s, r, kk) PUT8(Ah, ra[s], r, kk, a_k)                                        \
    }                                                                                       \
    _Pragma("unroll") for (int s = 0; s < MB_PER / 8; ++s) {                                \
        MB8_AT(s, kk, c) PUT8(Bh, rb[s], c, kk, !b_n)                                       \
    }
#define MMA_REGS uint4 ra[MA_PER / 8], rb[MB_PER / 8];
#else
#define MMA_STORE_TILES                                                                     \
    _Pragma("unroll") for (int s = 0; s < MA_PER; ++s) { MA_AT(s, r, kk) Ah[r * KP + kk] = ra[s]; } \
    _Pragma("unroll") for (int s = 0; s < MB_PER; ++s) { MB_AT(s, kk, c) Bh[c * KP + kk] = rb[s]; }
#define MMA_REGS ELEM ra[MA_PER], rb[MB_PER];
#endif

__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1)))
void matmul_mma(__global const T* A, long a_off, long a_bs, long a_rs, long a_cs,
                __global const T* B, long b_off, long b_bs, long b_rs, long b_cs,
                __global T* C, long c_off, int M, int N, int K EPI_PARAMS)
{
    __local uint Al[BM * KP / EPW]; /* A's tile as (row, k) operand bits */
    __local uint Bl[BN * KP / EPW]; /* B's tile as (column, k) operand bits */
    MMA_SCRATCH
    __local ELEM* Ah = (__local ELEM*)Al;
    __local ELEM* Bh = (__local ELEM*)Bl;
    const long bat = get_global_id(2);
    const __global T* Ab = A + a_off + bat * a_bs;
    const __global T* Bb = B + b_off + bat * b_bs;
    __global T* Cb = C + c_off + bat * (long)M * N;
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, tk = (lane & 3) * EPW;
    const int wm = (warp / WARPS_N) * WTM * 16, wn = (warp % WARPS_N) * WTN * 8;
    const int i0 = get_group_id(1) * BM, j0 = get_group_id(0) * BN;
    const bool a_k = a_cs == 1, b_n = !(b_rs == 1 && b_cs != 1);
    float acc[WTM][WTN][4];
#pragma unroll
    for (int mi = 0; mi < WTM; ++mi)
#pragma unroll
        for (int ni = 0; ni < WTN; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;
    MMA_REGS
    MMA_FETCH(0)
    for (int k0 = 0; k0 < K; k0 += KS) {
        MMA_STORE_TILES
        barrier(CLK_LOCAL_MEM_FENCE);
#if DB
        if (k0 + KS < K) { MMA_FETCH(k0 + KS) }
#endif
#pragma unroll
        for (int kk = 0; kk < KS; kk += MMA_K) {
            uint af[WTM][4], bf[WTN][2];
#pragma unroll
            for (int mi = 0; mi < WTM; ++mi) {
                const int r = wm + mi * 16 + g;
                af[mi][0] = Al[WORD(r, kk + tk)];
                af[mi][1] = Al[WORD(r + 8, kk + tk)];
                af[mi][2] = Al[WORD(r, kk + KHALF + tk)];
                af[mi][3] = Al[WORD(r + 8, kk + KHALF + tk)];
            }
#pragma unroll
            for (int ni = 0; ni < WTN; ++ni) {
                const int c = wn + ni * 8 + g;
                bf[ni][0] = Bl[WORD(c, kk + tk)];
                bf[ni][1] = Bl[WORD(c, kk + KHALF + tk)];
            }
#pragma unroll
            for (int mi = 0; mi < WTM; ++mi)
#pragma unroll
                for (int ni = 0; ni < WTN; ++ni) MMA(acc[mi][ni], af[mi], bf[ni]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#if !DB
        if (k0 + KS < K) { MMA_FETCH(k0 + KS) }
#endif
    }
#pragma unroll
    for (int mi = 0; mi < WTM; ++mi)
#pragma unroll
        for (int ni = 0; ni < WTN; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int i = i0 + wm + mi * 16 + g + (q >> 1) * 8;
                const int j = j0 + wn + ni * 8 + 2 * (lane & 3) + (q & 1);
                if (i < M && j < N) STORE(EPI_S(acc[mi][ni][q], i, j), Cb + (long)i * N + j);
            }
}
#endif
