// Counter-based random numbers (Philox4x32-10) for rand/randn/randint/uniform_/normal_.
//
// random_fill(out, n, seed_lo, seed_hi, counter_base, a, b):
//   work-item g draws four 32-bit words from counter (counter_base + g) under key
//   (seed_lo, seed_hi) and writes out[4g .. 4g+3] (those below n):
//     KIND 0 uniform in [a, b)      KIND 1 normal, mean a, std b (Box-Muller)
//     KIND 2 integers in [a, b)
// Launch: global = ceil(n / 4) padded to the local size; any local size.
// Options: -D T (storage type), -D ACC (float or double), -D KIND, -D IS_HALF=1 for half.
// Same seed and counter give the same numbers on every device and launch geometry.

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#if IS_HALF
#define STORE(v, i) vstore_half((float)(v), (i), out)
#elif IS_BF16
#define STORE(v, i) out[(i)] = cg_bfbits((float)(v))
#else
#define STORE(v, i) out[(i)] = (T)(v)
#endif

inline uint4 philox(uint4 c, uint2 k) {
  for (int r = 0; r < 10; ++r) {
    uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
    uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += (uint2)(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

// uniform in [0, 1) with 24 (float) or 32 (double) random bits
inline ACC unit(uint x) {
#ifdef USE_FP64
  return (ACC)x * (ACC)2.3283064365386963e-10;
#else
  return (ACC)(x >> 8) * (ACC)5.9604644775390625e-08f;
#endif
}

__kernel void random_fill(__global T* out, const long n, const uint seed_lo, const uint seed_hi,
                          const ulong counter_base, const ACC a, const ACC b) {
  const ulong g = get_global_id(0);
  const long i0 = (long)g * 4;
  if (i0 >= n) return;
  const ulong c = counter_base + g;
  const uint4 r = philox((uint4)((uint)c, (uint)(c >> 32), 0x5EEDu, 0u), (uint2)(seed_lo, seed_hi));
  uint w[4] = {r.x, r.y, r.z, r.w};
#if KIND == 0
  for (int j = 0; j < 4; ++j)
    if (i0 + j < n) {
      ACC v = a + (b - a) * unit(w[j]);
      STORE(v >= b ? a : v, i0 + j);  // rounding can reach b; PyTorch's range is [a, b)
    }
#elif KIND == 1
  for (int j = 0; j < 4; j += 2) {
    const ACC u1 = (ACC)1 - unit(w[j]);  // (0, 1]: log is finite
    const ACC u2 = unit(w[j + 1]);
    const ACC rad = sqrt((ACC)-2 * log(u1));
    const ACC th = (ACC)6.283185307179586 * u2;
    if (i0 + j < n) STORE(a + b * rad * cos(th), i0 + j);
    if (i0 + j + 1 < n) STORE(a + b * rad * sin(th), i0 + j + 1);
  }
#else
  for (int j = 0; j < 4; ++j)
    if (i0 + j < n) {
      const ulong range = (ulong)(b - a);
      const ulong x = ((ulong)w[j] << 32) | (ulong)w[(j + 1) & 3];
      STORE((long)a + (long)(x % range), i0 + j);
    }
#endif
}
