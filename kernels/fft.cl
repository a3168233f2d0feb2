// Fast Fourier transform passes: rows of complex values stored as interleaved (re, im)
// pairs of T (float or double). Op in clgraph/fft.py (fft_pow2: every torch.fft transform
// runs on it; other lengths through Bluestein's chirp convolution).
//
// fft_radix2: one radix-2 Stockham (self-sorting) pass over rows of n = 2^k values: work-item
// i of a row (0 <= i < n/2) reads x[i] and x[i + n/2], multiplies the second by the twiddle
// exp(sign * i * pi * q / p) (q = i mod p), and writes their sum and difference to
// y[2i - q] and y[2i - q + p]. Passes with p = 1, 2, ..., n/2 alternate between two buffers
// and leave the transform in natural order. sign: -1 forward, +1 inverse (unnormalized).
// Launch: rows * n/2 work-items, one per butterfly; src is read from offset soff (in T
// elements).
//
// Options: -D T (float or double), -D USE_FP64 with double.

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

__kernel void fft_radix2(__global const T* src, const long soff, __global T* dst,
                         const long total, const int n, const int p, const T sign) {
  long g = get_global_id(0);
  if (g >= total) return;
  int h = n >> 1;
  long row = g / h;
  int i = (int)(g - row * h);
  __global const T* x = src + soff + row * 2 * (long)n;
  __global T* y = dst + row * 2 * (long)n;
  int q = i & (p - 1);
  T a_re = x[2 * i], a_im = x[2 * i + 1];
  T b_re = x[2 * (i + h)], b_im = x[2 * (i + h) + 1];
  T c;
  T s = sincos(sign * (T)M_PI * (T)q / (T)p, &c);
  T t_re = b_re * c - b_im * s;
  T t_im = b_re * s + b_im * c;
  int j = 2 * i - q;
  y[2 * j] = a_re + t_re;
  y[2 * j + 1] = a_im + t_im;
  y[2 * (j + p)] = a_re - t_re;
  y[2 * (j + p) + 1] = a_im - t_im;
}
