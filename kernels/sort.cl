// Sorting kernels: rows of a contiguous (rows, row) array sorted by value, stably, with the
// positions they came from. Ops in clgraph/ops/sort.py (sort, argsort, topk, unique,
// multinomial).
//
// Every dtype sorts as (key, index) pairs: sort_keys turns each value into a 64-bit unsigned
// key whose integer order is the value order (NaN above +inf, -0.0 equal to 0.0, all bits
// flipped for a descending sort) and pairs it with its position in the row. Pairs compare
// by key, then by position: no two are equal, so every sorting network below is stable.
//   1. sort_keys            one work-item per element
//   2. sort_bitonic (GPUs)  bitonic networks in local memory over blocks of up to CAP
//      or sort_serial (CPUs) one work-item per block: insertion runs, then merges
//   3. sort_merge (GPUs)    while a row holds several sorted blocks: one pass merges
//                           neighbouring runs of `width` (binary search per element)
//      or sort_merge_chunks (CPUs) the same pass, sequential merges of output chunks
//   4. sort_finish          values and int64 indices from the sorted positions
// search_cdf (multinomial) finds sampled categories in rows of a cumulative sum.
//
// Options: -D U (unsigned type of the values' width), -D S (signed type of that width),
// -D KIND (0 signed integer, 1 unsigned integer or bool, 2 IEEE float bits), -D SIGNBIT,
// -D EXPBITS (the float's sign bit and its all-ones exponent: +inf) for sort_keys and
// sort_finish; -D CAP (a power of two) and -D WG (the local size) for sort_bitonic;
// -D ACC (float or double) with -D USE_FP64 for search_cdf. Loops over work-items in kernels
// with barriers count in int (see POCL-NOTES.md).

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

// pair a strictly before pair b
inline int pair_less(ulong ka, int ia, ulong kb, int ib) {
  return ka < kb || (ka == kb && ia < ib);
}

#ifdef KIND

inline ulong order_key(U u) {
#if KIND == 0
  return (ulong)(long)(S)u ^ 0x8000000000000000ul;
#elif KIND == 1
  return (ulong)u;
#else
  const U mag = u & (U)(~(U)SIGNBIT);
  if (mag > (U)EXPBITS) u = (U)EXPBITS + (U)1;  // every NaN: one value above +inf
  else if (mag == (U)0) u = (U)0;                // -0.0 sorts as 0.0
  return (ulong)((u & (U)SIGNBIT) ? (U)~u : (U)(u | (U)SIGNBIT));
#endif
}

// key[i], idx[i] for element i of the (rows, row) array at x + xoff.
// Launch: n work-items, padded.
__kernel void sort_keys(__global const U* x, const long xoff, const long n, const long row,
                        const int descending, __global ulong* key, __global int* idx) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const ulong k = order_key(x[xoff + i]);
  key[i] = descending ? ~k : k;
  idx[i] = (int)(i % row);
}

// values[i] = x[xoff + (row of i) * row + idx[i]], indices[i] = idx[i].
// Launch: n work-items, padded.
__kernel void sort_finish(__global const U* x, const long xoff, __global const int* idx,
                          const long n, const long row, __global U* values,
                          __global long* indices) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const int j = idx[i];
  values[i] = x[xoff + i - i % row + j];
  indices[i] = j;
}

#endif

#ifdef CAP

// One work-group sorts CAP / P blocks of a (rows, row) array of pairs in place: a row is cut
// into blocks of `block` elements (the last one shorter), P is the power of two at or above
// `block`, and `nblocks` counts the blocks of all rows. Each block is padded to P with pairs
// that sort last and sorted by one bitonic network in local memory; in the last merge
// (k == P) every block sorts ascending, so that the blocks stay independent.
// Launch: ceil(nblocks / (CAP / P)) work-groups of WG work-items.
__kernel void sort_bitonic(__global ulong* key, __global int* idx, const long row,
                           const long block, const long nblocks, const int P) {
  __local ulong lk[CAP];
  __local int li[CAP];
  const int lid = get_local_id(0);
  const int per_group = CAP / P;
  const long per_row = (row + block - 1) / block;
  const long first = (long)get_group_id(0) * per_group;
  for (int t = lid; t < CAP; t += WG) {
    const long b = first + t / P;
    const int pos = t % P;
    const long part = b % per_row;
    const long len = b < nblocks ? min(block, row - part * block) : 0;
    const long at = (b / per_row) * row + part * block + pos;
    lk[t] = pos < len ? key[at] : 0xFFFFFFFFFFFFFFFFul;
    li[t] = pos < len ? idx[at] : 0x7FFFFFFF;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int k = 2; k <= P; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = lid; t < CAP / 2; t += WG) {
        const int i = 2 * t - (t & (j - 1));
        const int p = i + j;
        const int up = k == P || (i & k) == 0;
        const ulong ki = lk[i], kp = lk[p];
        const int ii = li[i], ip = li[p];
        if (pair_less(kp, ip, ki, ii) == up) {
          lk[i] = kp;
          lk[p] = ki;
          li[i] = ip;
          li[p] = ii;
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
  }
  for (int t = lid; t < CAP; t += WG) {
    const long b = first + t / P;
    const int pos = t % P;
    const long part = b % per_row;
    if (b < nblocks && pos < min(block, row - part * block)) {
      const long at = (b / per_row) * row + part * block + pos;
      key[at] = lk[t];
      idx[at] = li[t];
    }
  }
}

#endif

#define RUN 16

// Merge the sorted runs a[lo, mid) and a[mid, hi) into b[lo, hi).
inline void merge_runs(__global const ulong* ka, __global const int* ia, __global ulong* kb,
                       __global int* ib, long lo, long mid, long hi) {
  long p = lo, q = mid;
  for (long o = lo; o < hi; ++o) {
    const int right = q < hi && (p >= mid || pair_less(ka[q], ia[q], ka[p], ia[p]));
    const long s = right ? q++ : p++;
    kb[o] = ka[s];
    ib[o] = ia[s];
  }
}

// One work-item sorts one block (as sort_bitonic cuts rows) of (key, idx): insertion sort
// of runs of RUN pairs, then bottom-up merges through the scratch (key2, idx2); the sorted
// block ends in (key, idx). Launch: nblocks work-items, padded.
__kernel void sort_serial(__global ulong* key, __global int* idx, __global ulong* key2,
                          __global int* idx2, const long row, const long block,
                          const long nblocks) {
  const long b = get_global_id(0);
  if (b >= nblocks) return;
  const long per_row = (row + block - 1) / block;
  const long part = b % per_row;
  const long start = (b / per_row) * row + part * block;
  const long len = min(block, row - part * block);
  __global ulong* ka = key + start;
  __global int* ia = idx + start;
  __global ulong* kb = key2 + start;
  __global int* ib = idx2 + start;
  for (long a = 0; a < len; a += RUN) {
    const long e = min(a + RUN, len);
    for (long i = a + 1; i < e; ++i) {
      const ulong k = ka[i];
      const int x = ia[i];
      long j = i;
      while (j > a && pair_less(k, x, ka[j - 1], ia[j - 1])) {
        ka[j] = ka[j - 1];
        ia[j] = ia[j - 1];
        --j;
      }
      ka[j] = k;
      ia[j] = x;
    }
  }
  for (long w = RUN; w < len; w *= 2) {
    for (long lo = 0; lo < len; lo += 2 * w)
      merge_runs(ka, ia, kb, ib, lo, min(lo + w, len), min(lo + 2 * w, len));
    __global ulong* tk = ka;
    __global int* ti = ia;
    ka = kb;
    ia = ib;
    kb = tk;
    ib = ti;
  }
  if (ka != key + start)
    for (long i = 0; i < len; ++i) {
      key[start + i] = ka[i];
      idx[start + i] = ia[i];
    }
}

// One merge pass: rows hold sorted runs of `width` pairs (the last one may be shorter);
// each pair of neighbouring runs becomes one sorted run of 2 * width in (dst_key, dst_idx).
// A pair's place is its rank in its own run plus the number of pairs of the other run
// before it. Launch: n work-items, padded.
__kernel void sort_merge(__global const ulong* key, __global const int* idx,
                         __global ulong* dst_key, __global int* dst_idx, const long n,
                         const long row, const long width) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long j = i % row;
  const long base = i - j;
  const long run = j / width;
  const long other = (run ^ 1) * width;
  const ulong k = key[i];
  const int x = idx[i];
  long place = j;
  if (other < row) {
    long lo = 0, hi = min(width, row - other);
    while (lo < hi) {
      const long mid = (lo + hi) / 2;
      if (pair_less(key[base + other + mid], idx[base + other + mid], k, x)) lo = mid + 1;
      else hi = mid;
    }
    place = (run & ~1l) * width + (j - run * width) + lo;
  }
  dst_key[base + place] = k;
  dst_idx[base + place] = x;
}

// The same merge pass with one work-item per `chunk` consecutive output places of a row
// (CPUs: a sequential merge reads its runs in order): the work-item finds how many of its
// first place's predecessors come from the left run (a binary search on the diagonal of the
// merge path), then merges; it searches again where a new pair of runs begins.
// Launch: rows * ceil(row / chunk) work-items, padded.
__kernel void sort_merge_chunks(__global const ulong* key, __global const int* idx,
                                __global ulong* dst_key, __global int* dst_idx,
                                const long rows, const long row, const long width,
                                const long chunk) {
  const long per_row = (row + chunk - 1) / chunk;
  const long g = get_global_id(0);
  if (g >= rows * per_row) return;
  const long base = (g / per_row) * row;
  const long j0 = (g % per_row) * chunk;
  const long j1 = min(row, j0 + chunk);
  long p = 0, q = 0, p_end = 0, q_end = 0;
  for (long j = j0; j < j1; ++j) {
    if (j == j0 || j % (2 * width) == 0) {
      const long s = j - j % (2 * width);
      const long la = min(width, row - s), lb = max(0l, min(width, row - s - width));
      const long k = j - s;
      long lo = max(0l, k - lb), hi = min(k, la);
      while (lo < hi) {
        const long i = (lo + hi) / 2;
        const long b = base + s + width + k - i - 1;
        if (pair_less(key[base + s + i], idx[base + s + i], key[b], idx[b])) lo = i + 1;
        else hi = i;
      }
      p = base + s + lo;
      q = base + s + width + k - lo;
      p_end = base + s + la;
      q_end = base + s + width + lb;
    }
    const int right = q < q_end && (p >= p_end || pair_less(key[q], idx[q], key[p], idx[p]));
    const long src = right ? q++ : p++;
    dst_key[base + j] = key[src];
    dst_idx[base + j] = idx[src];
  }
}

#ifdef ACC

// Inverse-CDF sampling: out[r * m + s] is the first category j of row r whose cumulative
// weight cdf[r * n + j] exceeds u[r * m + s] * (the row's total), a uniform u in [0, 1);
// a target rounded up to the total takes the first category that reaches it, so that
// zero-weight categories are never drawn. Launch: rows * m work-items, padded.
__kernel void search_cdf(__global const ACC* cdf, const long n, __global const ACC* u,
                         const long m, const long total, __global long* out) {
  const long g = get_global_id(0);
  if (g >= total) return;
  __global const ACC* c = cdf + (g / m) * n;
  const ACC last = c[n - 1];
  const ACC t = u[g] * last;
  long lo = 0, hi = n;
  while (lo < hi) {
    const long mid = (lo + hi) / 2;
    if (c[mid] > t) hi = mid;
    else lo = mid + 1;
  }
  if (lo == n) {
    hi = n - 1;
    lo = 0;
    while (lo < hi) {
      const long mid = (lo + hi) / 2;
      if (c[mid] >= last) hi = mid;
      else lo = mid + 1;
    }
  }
  out[g] = lo;
}

#endif
