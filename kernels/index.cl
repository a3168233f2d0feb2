// Indexing and join kernels: gathers, scatters, nonzero, triangular copies. Ops in
// clgraph/ops/index.py (index, index_put, gather, scatter, scatter_add, index_select,
// index_add, nonzero, masked_select) and clgraph/ops/join.py (tril, triu).
//
// Shapes, strides and offsets arrive as arguments, never in the source: one program per
// option set serves every shape. `meta` is a small long buffer holding the shape of the
// iteration space (r entries) followed by one stride list (r entries) per operand, in the
// order given in each kernel's comment. Strides and offsets count elements.
//
// Options: -D T (element type; the copy kernels move bits, so T is uchar/ushort/uint/ulong
// by element size), -D IDX (int or long, the index type), -D ADD=1 to build the accumulating
// scatter instead of the copy kernels, with -D ACC (arithmetic type), -D IS_HALF, -D IS_BOOL
// and -D USE_FP64; -D CHUNK (elements per work-item of index_gather and tri_copy).
//
// Indices are validated (and negative ones wrapped) on the host before launch, so no kernel
// reads or writes out of bounds.

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#if !ADD

// index_gather: out[i] = src[soff + sum_d c_d * sst_d + idx[ioff + sum_d c_d * ist_d] * mult]
// for the contiguous output element i with coordinates c over shape sh.
// meta: sh[r], sst[r], ist[r]. Launch: one work-item per CHUNK consecutive elements
// (ceil(n / CHUNK)), padded; offsets are recomputed only when the innermost coordinate wraps.
__kernel void index_gather(__global T* out, const long n, const int r,
                           __global const long* meta, __global const T* src, const long soff,
                           __global const IDX* idx, const long ioff, const long mult) {
  const long i0 = (long)get_global_id(0) * CHUNK;
  if (i0 >= n) return;
  const long i1 = min(n, i0 + CHUNK);
  const long inner = r ? meta[r - 1] : 1, sin = r ? meta[2 * r - 1] : 0,
             iin = r ? meta[3 * r - 1] : 0;
  long s = 0, k = 0, ci = 0;
  for (long i = i0; i < i1; ++i) {
    if (i == i0 || ci == inner) {
      long rem = i;
      s = soff;
      k = ioff;
      for (int d = r - 1; d >= 0; --d) {
        const long c = rem % meta[d];
        rem /= meta[d];
        s += c * meta[r + d];
        k += c * meta[2 * r + d];
      }
      ci = r ? i % inner : 0;
    }
    out[i] = src[s + (long)idx[k] * mult];
    ++ci;
    s += sin;
    k += iin;
  }
}

// index_scatter: for every fiber f (coordinates c over sh) and k in its chunk, in order:
//   dst[doff + sum c_d * dst_d + idx[ioff + sum c_d * ist_d + k * ik] * dmult]
//     = src[soff + sum c_d * sst_d + k * sk]
// meta: sh[r], dst[r], sst[r], ist[r]. Launch: nf * nchunks work-items, padded; work-item g
// takes fiber g % nf and k in [kc * kchunk, (kc + 1) * kchunk) with kc = g / nf. With one
// chunk per fiber the writes of a fiber happen in k order, so the last duplicate wins.
__kernel void index_scatter(__global T* dst, const long doff, const long nf, const int r,
                            __global const long* meta, __global const T* src, const long soff,
                            __global const IDX* idx, const long ioff, const long K,
                            const long kchunk, const long ik, const long sk, const long dmult,
                            const long total) {
  const long g = get_global_id(0);
  if (g >= total) return;
  const long f = g % nf;
  const long k0 = (g / nf) * kchunk;
  const long k1 = min(K, k0 + kchunk);
  long rem = f, o = doff, s = soff, q = ioff;
  for (int d = r - 1; d >= 0; --d) {
    const long c = rem % meta[d];
    rem /= meta[d];
    o += c * meta[r + d];
    s += c * meta[2 * r + d];
    q += c * meta[3 * r + d];
  }
  for (long k = k0; k < k1; ++k) {
    dst[o + (long)idx[q + k * ik] * dmult] = src[s + k * sk];
  }
}

// tri_copy: out[ooff + sum c_d * ost_d] = keep ? src[soff + sum c_d * sst_d] : fill (the
// bits of the fill value: 0, or -inf for a causal attention mask), where the last two
// coordinates are (row, col) and keep is col - row <= diag (lower) or >= diag.
// meta: sh[r], sst[r], ost[r] (r >= 2). Launch: one work-item per CHUNK consecutive elements,
// padded; offsets are recomputed only when the column wraps.
__kernel void tri_copy(__global T* out, const long ooff, const long n, const int r,
                       __global const long* meta, __global const T* src, const long soff,
                       const long diag, const int lower, const T fill) {
  const long i0 = (long)get_global_id(0) * CHUNK;
  if (i0 >= n) return;
  const long i1 = min(n, i0 + CHUNK);
  const long cols = meta[r - 1], scol = meta[2 * r - 1], ocol = meta[3 * r - 1];
  long s = 0, o = 0, row = 0, col = 0;
  for (long i = i0; i < i1; ++i) {
    if (i == i0 || col == cols) {
      long rem = i;
      s = soff;
      o = ooff;
      for (int d = r - 1; d >= 0; --d) {
        const long c = rem % meta[d];
        rem /= meta[d];
        if (d == r - 1) col = c;
        if (d == r - 2) row = c;
        s += c * meta[r + d];
        o += c * meta[2 * r + d];
      }
    }
    const int keep = lower ? (col - row <= diag) : (col - row >= diag);
    out[o] = keep ? src[s] : fill;
    ++col;
    s += scol;
    o += ocol;
  }
}

// nonzero_count: counts[g] = number of nonzero bytes among mask elements [g * chunk,
// (g + 1) * chunk) in row-major order of sh. meta: sh[r], mst[r].
// Launch: one work-item per chunk (ceil(n / chunk)), padded.
__kernel void nonzero_count(__global const uchar* mask, const long moff, const long n,
                            const int r, __global const long* meta, const long chunk,
                            __global long* counts) {
  const long g = get_global_id(0);
  const long i0 = g * chunk;
  if (i0 >= n) return;
  const long i1 = min(n, i0 + chunk);
  const long inner = r ? meta[r - 1] : 1, min_ = r ? meta[2 * r - 1] : 0;
  long cnt = 0, p = 0, ci = 0;
  for (long i = i0; i < i1; ++i) {
    if (i == i0 || ci == inner) {
      long rem = i;
      p = moff;
      for (int d = r - 1; d >= 0; --d) {
        p += (rem % meta[d]) * meta[r + d];
        rem /= meta[d];
      }
      ci = r ? i % inner : 0;
    }
    cnt += mask[p] != 0;
    ++ci;
    p += min_;
  }
  counts[g] = cnt;
}

// nonzero_write: the chunk's nonzero elements, in order, from position starts[g] on:
// coords != 0 writes their coordinates (out[j * r + d] = c_d), else their offsets in a
// target view (out[j] = sum c_d * tst_d). meta: sh[r], mst[r], tst[r]. Launch as nonzero_count.
__kernel void nonzero_write(__global const uchar* mask, const long moff, const long n,
                            const int r, __global const long* meta, const long chunk,
                            __global const long* starts, __global long* out, const int coords) {
  const long g = get_global_id(0);
  const long i0 = g * chunk;
  if (i0 >= n) return;
  const long i1 = min(n, i0 + chunk);
  const long inner = r ? meta[r - 1] : 1, min_ = r ? meta[2 * r - 1] : 0,
             tin = r ? meta[3 * r - 1] : 0;
  long j = starts[g], p = 0, t = 0, ci = 0;
  for (long i = i0; i < i1; ++i) {
    if (i == i0 || ci == inner) {
      long rem = i;
      p = moff;
      t = 0;
      for (int d = r - 1; d >= 0; --d) {
        const long c = rem % meta[d];
        rem /= meta[d];
        p += c * meta[r + d];
        t += c * meta[2 * r + d];
      }
      ci = r ? i % inner : 0;
    }
    if (mask[p] != 0) {
      if (coords) {
        long rem = i;
        for (int d = r - 1; d >= 0; --d) {
          out[j * r + d] = rem % meta[d];
          rem /= meta[d];
        }
      } else {
        out[j] = t;
      }
      ++j;
    }
    ++ci;
    p += min_;
    t += tin;
  }
}

#else  // ADD

#if IS_HALF
#define LOAD(p, i) vload_half((i), (p))
#define STORE(p, i, v) vstore_half((v), (i), (p))
#elif IS_BF16
#define LOAD(p, i) cg_bf16((p)[i])
#define STORE(p, i, v) (p)[i] = cg_bfbits((float)(v))
#else
#define LOAD(p, i) ((ACC)(p)[i])
#define STORE(p, i, v) (p)[i] = (T)(v)
#endif
#if IS_BOOL
#define COMBINE(a, b) ((a) | (b))
#else
#define COMBINE(a, b) ((a) + (b))
#endif

// index_scatter_add: index_scatter with dst[...] += src[...] (in ACC, k in order per fiber,
// so results are deterministic). Same meta and launch as index_scatter.
__kernel void index_scatter_add(__global T* dst, const long doff, const long nf, const int r,
                                __global const long* meta, __global const T* src,
                                const long soff, __global const IDX* idx, const long ioff,
                                const long K, const long kchunk, const long ik, const long sk,
                                const long dmult, const long total) {
  const long g = get_global_id(0);
  if (g >= total) return;
  const long f = g % nf;
  const long k0 = (g / nf) * kchunk;
  const long k1 = min(K, k0 + kchunk);
  long rem = f, o = doff, s = soff, q = ioff;
  for (int d = r - 1; d >= 0; --d) {
    const long c = rem % meta[d];
    rem /= meta[d];
    o += c * meta[r + d];
    s += c * meta[2 * r + d];
    q += c * meta[3 * r + d];
  }
  for (long k = k0; k < k1; ++k) {
    const long p = o + (long)idx[q + k * ik] * dmult;
    STORE(dst, p, COMBINE(LOAD(dst, p), LOAD(src, s + k * sk)));
  }
}

#endif
