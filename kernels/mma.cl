/* Tensor-core instructions (NVIDIA mma.sync through inline PTX), shared by matmul.cl
   (matmul_mma) and attention.cl (sdpa_fwd_mma).

   The includer defines MMA_WARPS (warps per work-group) and, as build options, IS_BF16
   (bfloat16 operands), MMA_TF32 (float32 operands rounded to TF32) and MMA_EMULATE.
   Operands are 32-bit words of EPW elements each (ELEM bits: half or bfloat16 pairs, or
   one TF32 float); one instruction is a 16 x 8 x MMA_K step with float accumulators.
   Fragment layout (the PTX ISA's): lane (g, t) = (lane / 4, lane % 4) holds A's rows g
   and g+8 at ks t*EPW .. t*EPW+EPW-1 and KHALF more (registers a[0..3]: (g, k), (g+8, k),
   (g, k+KHALF), (g+8, k+KHALF)), B's column g at the same ks (b[0], b[1]), and D's rows g
   and g+8 at columns 2t and 2t+1 (d[0], d[1] and d[2], d[3]).

   MMA_EMULATE=1 replaces the instruction by a software version over the same register
   fragments, exchanged through local memory (MMA_SCRATCH, 6 words per lane), so that
   kernels built on it are tested on any device; QUAD_MAX and QUAD_SUM (a value reduced
   over the 4 lanes that share a row) use shfl.sync on NVIDIA and the scratch emulated. */

#ifndef MMA_TF32
#define MMA_TF32 0
#endif
#ifndef MMA_EMULATE
#define MMA_EMULATE 0
#endif
#if MMA_TF32
#define ELEM uint   /* float bits, rounded to TF32 */
#define EPW 1       /* operand elements per 32-bit word */
#define MMA_K 8
#define MMA_SHAPE "m16n8k8.row.col.f32.tf32.tf32.f32"
inline uint tf32_bits(float x)
{
    const uint u = as_uint(x);
    return isfinite(x) ? (u + 0x1000u) & 0xffffe000u : u;
}
#define MMA_VALUE(w, sub) as_float(w)
#else /* float16 or bfloat16: the storage bits are the operands */
#define ELEM ushort /* half bits */
#define EPW 2
#define MMA_K 16
#if IS_BF16
#define MMA_SHAPE "m16n8k16.row.col.f32.bf16.bf16.f32"
#define MMA_VALUE(w, sub) as_float(((w) >> (16 * (sub))) << 16)
#else
#define MMA_SHAPE "m16n8k16.row.col.f32.f16.f16.f32"
inline float mma_half(ushort h) { return vload_half(0, (const __private half*)&h); }
#define MMA_VALUE(w, sub) mma_half((ushort)((w) >> (16 * (sub))))
#endif
#endif
#define KHALF (MMA_K / 2)

#if MMA_EMULATE
/* operand element (register reg, sub-element sub) of lane ``lane``, from the scratch */
inline float mma_elem(__local const uint* x, int lane, int reg, int sub)
{
    return MMA_VALUE(x[lane * 6 + reg], sub);
}
/* d += a b for one 16 x 8 x MMA_K step, every lane of the warp at once */
inline void mma_sync(float* d, const uint* a, const uint* b, __local uint* x, int lane)
{
    for (int r = 0; r < 4; ++r) x[lane * 6 + r] = a[r];
    x[lane * 6 + 4] = b[0];
    x[lane * 6 + 5] = b[1];
    barrier(CLK_LOCAL_MEM_FENCE);
    const int g = lane >> 2, t = lane & 3;
    for (int q = 0; q < 4; ++q) {
        const int row = g + (q >> 1) * 8, col = 2 * t + (q & 1);
        float s = 0.0f;
        for (int k = 0; k < MMA_K; ++k)
            s += mma_elem(x, (row & 7) * 4 + (k % KHALF) / EPW, (row >> 3) + 2 * (k / KHALF),
                          k % EPW)
               * mma_elem(x, col * 4 + (k % KHALF) / EPW, 4 + k / KHALF, k % EPW);
        d[q] += s;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
/* v reduced over the lanes 4 * (lane / 4) .. + 3; every lane of the warp calls it */
inline float quad_reduce(float v, int is_max, __local uint* x, int lane)
{
    x[lane] = as_uint(v);
    barrier(CLK_LOCAL_MEM_FENCE);
    const int q = lane & ~3;
    float r = as_float(x[q]);
    for (int u = 1; u < 4; ++u) {
        const float o = as_float(x[q + u]);
        r = is_max ? (o > r ? o : r) : r + o;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}
#define MMA_SCRATCH __local uint mma_x[MMA_WARPS * 32 * 6];
#define MMA(d, a, b) mma_sync((d), (a), (b), mma_x + warp * 32 * 6, lane)
#define QUAD_MAX(v) quad_reduce((v), 1, mma_x + warp * 32 * 6, lane)
#define QUAD_SUM(v) quad_reduce((v), 0, mma_x + warp * 32 * 6, lane)
#else
#define MMA_SCRATCH
#define MMA(d, a, b)                                                                        \
    asm volatile("mma.sync.aligned." MMA_SHAPE " "                                          \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"                \
                 : "=f"((d)[0]), "=f"((d)[1]), "=f"((d)[2]), "=f"((d)[3])                   \
                 : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]),         \
                   "r"((b)[1]), "f"((d)[0]), "f"((d)[1]), "f"((d)[2]), "f"((d)[3]))
inline float shfl_xor(float v, int m)
{
    float r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(m));
    return r;
}
inline float quad_max(float v)
{
    float o = shfl_xor(v, 1);
    v = o > v ? o : v;
    o = shfl_xor(v, 2);
    return o > v ? o : v;
}
inline float quad_sum(float v)
{
    v += shfl_xor(v, 1);
    return v + shfl_xor(v, 2);
}
#define QUAD_MAX(v) quad_max(v)
#define QUAD_SUM(v) quad_sum(v)
#endif
