// fusion/layout.cuh - data movement, sums and embeddings (the layout family).
//
// Copies move bits, never values: every element type (f32, bf16, f16, i32, i64) is copied
// through unsigned units of 16, 8, 4, 2 or 1 bytes, the widest that divides the contiguous
// run lengths, pitches and both base addresses (checked at run time, so a misaligned buffer
// falls back to narrower units instead of faulting). As on the CPU backend:
//   rowCopy     rows of a [rows, pitch] byte matrix: dst[a, j] = src[a, j - lo] for j in
//               [lo, hi), zero bits elsewhere. slice, slice_grad (zeros around the window)
//               and each part of concat are one rowCopy.
//   gather      out[o] = in[Σ_d index_d(o)·stride_d], out row-major: transpose (permuted
//               strides) and broadcast (stride 0 on the new dimensions). At most
//               kLayoutMaxDims dimensions, innermost first, after the launch merged
//               contiguous ones.
//   sum         out[o] = Σ_r in[base(o) + off(r)], fp64 accumulation rounded once (the CPU
//               kernel sums in double too). Block (TX, TY): TX consecutive outputs, TY
//               threads splitting the reduced elements, a fixed-order tree over TY. With
//               few outputs the launch also splits the reduced range over gridDim.y blocks:
//               each writes fp64 partials to a module-level scratch, the last to finish
//               (an atomic ticket after a fence) adds them in block order. Deterministic.
//   embedding   out[p, :] = table[ids[p], :]; an id outside [0, V) gives a row of zero bits
//               (the CPU kernel rejects the launch instead; a GPU kernel cannot report it).
//   embeddingGrad  dtable[v, :] = Σ_{p: ids[p] = v} dy[p, :] in token order, fp64, rounded
//               once to f32: bit-identical to the CPU kernel. Block (row group, column
//               slice) owns R rows x C columns of fp64 accumulators in shared memory; it
//               scans all ids in chunks of C·8 tokens, compacts the tokens of its rows in
//               order (block prefix sum) and adds their dy rows, one thread per column.
//               Ids outside [0, V) match no block: they contribute nothing.
#pragma once
#include "fusion/common.cuh"

namespace fk {

enum : int {
  /// Dimensions a gather handles (after merging) and the groups of kept / reduced
  /// dimensions a sum handles.
  kLayoutMaxDims = 8,
  kSumMaxGroups = 4,
  /// Sum scratch: at most kSumMaxSplits blocks x 32 outputs of fp64 partials.
  kSumMaxSplits = 256,
  /// Tokens per thread of an embeddingGrad scan chunk, and the bits of a token's position
  /// within its chunk in a list entry (1024 threads x 8 tokens < 2^13).
  kGradIdsPerThread = 8,
  kGradLocalBits = 13,
};

/// The widest unit (16, 8, 4, 2 or 1 bytes) dividing `bytes` (an OR of byte counts) and
/// both addresses.
__device__ __forceinline__ int layoutUnit(uint64_t bytes, const void *a, const void *b) {
  uint64_t m = bytes | (uint64_t)(uintptr_t)a | (uint64_t)(uintptr_t)b;
  int unit = 16;
  while (unit > 1 && (m & (uint64_t)(unit - 1)))
    unit >>= 1;
  return unit;
}

//===----------------------------------------------------------------------===//
// Row copies: slice, slice_grad, concat
//===----------------------------------------------------------------------===//

/// dst[a·dstPitch + j] = src[a·srcPitch + j − lo] for lo <= j < hi, else zero bits, for
/// a < rows and j < row (all in units of U).
template <class U>
__device__ void rowCopyUnits(const U *src, U *dst, int64_t rows, int64_t row, int64_t dstPitch,
                             int64_t srcPitch, int64_t lo, int64_t hi) {
  const int64_t n = rows * row;
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    int64_t a = i / row, j = i - a * row;
    U v = U();
    if (j >= lo && j < hi)
      v = src[a * srcPitch + (j - lo)];
    dst[a * dstPitch + j] = v;
  }
}

/// rowCopyUnits in bytes, through the widest unit that fits.
__device__ void rowCopy(const void *src, void *dst, int64_t rows, int64_t row, int64_t dstPitch,
                        int64_t srcPitch, int64_t lo, int64_t hi) {
  if (rows <= 0 || row <= 0)
    return;
  int u = layoutUnit((uint64_t)(row | dstPitch | srcPitch | lo | hi), src, dst);
  switch (u) {
  case 16:
    return rowCopyUnits((const uint4 *)src, (uint4 *)dst, rows, row / 16, dstPitch / 16,
                        srcPitch / 16, lo / 16, hi / 16);
  case 8:
    return rowCopyUnits((const uint2 *)src, (uint2 *)dst, rows, row / 8, dstPitch / 8,
                        srcPitch / 8, lo / 8, hi / 8);
  case 4:
    return rowCopyUnits((const uint32_t *)src, (uint32_t *)dst, rows, row / 4, dstPitch / 4,
                        srcPitch / 4, lo / 4, hi / 4);
  case 2:
    return rowCopyUnits((const uint16_t *)src, (uint16_t *)dst, rows, row / 2, dstPitch / 2,
                        srcPitch / 2, lo / 2, hi / 2);
  default:
    return rowCopyUnits((const uint8_t *)src, (uint8_t *)dst, rows, row, dstPitch, srcPitch,
                        lo, hi);
  }
}

/// slice: x viewed as [outer, full, inner] → out [outer, size, inner] from index `start`.
template <class T>
__device__ void slice(const T *x, T *out, int64_t outer, int64_t full, int64_t size,
                      int64_t start, int64_t inner) {
  const int64_t w = sizeof(T);
  rowCopy(x + start * inner, out, outer, size * inner * w, size * inner * w, full * inner * w,
          0, size * inner * w);
}

/// slice_grad: dx [outer, full, inner] is zero except dx[:, start:start+size, :] = dy.
template <class T>
__device__ void sliceGrad(const T *dy, T *dx, int64_t outer, int64_t full, int64_t size,
                          int64_t start, int64_t inner) {
  const int64_t w = sizeof(T);
  rowCopy(dy, dx, outer, full * inner * w, full * inner * w, size * inner * w,
          start * inner * w, (start + size) * inner * w);
}

/// One input of a concat: x [outer, size, inner] → out[:, pos:pos+size, :] of an output
/// [outer, total, inner]. The wrapper calls it with the input of blockIdx.y.
template <class T>
__device__ void concatPart(const T *x, T *out, int64_t outer, int64_t inner, int64_t total,
                           int64_t size, int64_t pos) {
  const int64_t w = sizeof(T);
  rowCopy(x, out + pos * inner, outer, size * inner * w, total * inner * w, size * inner * w,
          0, size * inner * w);
}

//===----------------------------------------------------------------------===//
// Strided gather: transpose, broadcast
//===----------------------------------------------------------------------===//

template <class U>
__device__ void gatherUnits(const U *src, U *dst, int rank, const int64_t *sizes,
                            const int64_t *strides, int64_t n) {
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    int64_t rest = i, offset = 0;
#pragma unroll
    for (int d = 0; d < kLayoutMaxDims; ++d) {
      if (d < rank) {
        int64_t q = rest / sizes[d];
        offset += (rest - q * sizes[d]) * strides[d];
        rest = q;
      }
    }
    dst[i] = src[offset];
  }
}

/// out[o] = x[Σ_d index_d(o)·strides[d]] over the row-major output of `sizes` (dimension 0
/// innermost, strides in elements). When the innermost dimension is contiguous (stride 1)
/// it moves units of up to 16 bytes.
template <class T>
__device__ void gather(const T *x, T *out, int rank, const int64_t *sizesIn,
                       const int64_t *stridesIn) {
  int64_t sizes[kLayoutMaxDims], strides[kLayoutMaxDims];
  int64_t n = 1;
  uint64_t bytes = 0;
#pragma unroll
  for (int d = 0; d < kLayoutMaxDims; ++d) {
    sizes[d] = d < rank ? sizesIn[d] : 1;
    strides[d] = d < rank ? stridesIn[d] : 0;
    n *= sizes[d];
    if (d > 0)
      bytes |= (uint64_t)(strides[d] * (int64_t)sizeof(T));
  }
  if (n <= 0)
    return;
  int u = (int)sizeof(T);
  if (rank > 0 && strides[0] == 1) {
    int widest = layoutUnit(bytes | (uint64_t)(sizes[0] * (int64_t)sizeof(T)), x, out);
    if (widest > u)
      u = widest;
  }
  const int64_t k = u / (int64_t)sizeof(T); // elements per unit
  if (k > 1) {
    sizes[0] /= k;
#pragma unroll
    for (int d = 1; d < kLayoutMaxDims; ++d)
      strides[d] /= k;
    n /= k;
  }
  switch (u) {
  case 16:
    return gatherUnits((const uint4 *)x, (uint4 *)out, rank, sizes, strides, n);
  case 8:
    return gatherUnits((const uint2 *)x, (uint2 *)out, rank, sizes, strides, n);
  case 4:
    return gatherUnits((const uint32_t *)x, (uint32_t *)out, rank, sizes, strides, n);
  default:
    return gatherUnits((const uint16_t *)x, (uint16_t *)out, rank, sizes, strides, n);
  }
}

//===----------------------------------------------------------------------===//
// Sum
//===----------------------------------------------------------------------===//

/// The sum's module-level scratch: fp64 partials of the split blocks and the count of blocks
/// that have written theirs (reset by the last one, so every launch finds it 0). A class
/// template, so only modules that launch a sum hold it. One launch at a time per module: the
/// runtime loads one module per plan kernel and computes on one stream.
template <int Tag> struct SumScratch {
  __device__ static double *partials() {
    static double storage[kSumMaxSplits * 32];
    return storage;
  }
  __device__ static unsigned int *counter() {
    static unsigned int count = 0;
    return &count;
  }
};

/// out[o] (numOut outputs, o = outer·K2 + k2) = Σ over r < R of x[base(o) + off(r)], where
/// base(o) = k2 + Σ_g index_g(outer)·keptStride[g] and off(r) = Σ_g index_g(r)·redStride[g]
/// (groups innermost first, unused ones of size 1). blockDim.y is a power of two; with
/// gridDim.y > 1 (the launch then uses gridDim.x = 1 and blockDim.x <= 32) the reduced
/// range is split over blockIdx.y and the partials meet in SumScratch.
template <class TI, class TO>
__device__ void sum(const TI *x, TO *out, int64_t numOut, int64_t R, int64_t K2,
                    const int64_t *keptSize, const int64_t *keptStride, const int64_t *redSize,
                    const int64_t *redStride) {
  extern __shared__ __align__(16) unsigned char layoutSumShared[];
  __shared__ bool isLast;
  double *partial = (double *)layoutSumShared; // [TY][TX]
  const int TX = blockDim.x, TY = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t splits = gridDim.y, split = blockIdx.y;
  const int64_t chunk = (R + splits - 1) / splits;
  const int64_t rBegin = split * chunk;
  const int64_t rEnd = R < rBegin + chunk ? R : rBegin + chunk;
  const bool contiguous = redSize[1] == 1 && redSize[2] == 1 && redSize[3] == 1;
  const int64_t tiles = (numOut + TX - 1) / TX;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t o = tile * TX + tx;
    double acc = 0.0;
    if (o < numOut) {
      int64_t rest = o / K2, base = o - rest * K2;
#pragma unroll
      for (int g = 0; g < kSumMaxGroups; ++g) {
        if (keptSize[g] != 1) {
          int64_t q = rest / keptSize[g];
          base += (rest - q * keptSize[g]) * keptStride[g];
          rest = q;
        }
      }
      const TI *xo = x + base;
      int64_t r = rBegin + ty;
      if (contiguous) {
        const int64_t s = redStride[0];
        for (; r + 3 * (int64_t)TY < rEnd; r += 4 * (int64_t)TY) {
          float a0 = ld(xo[r * s]), a1 = ld(xo[(r + TY) * s]);
          float a2 = ld(xo[(r + 2 * TY) * s]), a3 = ld(xo[(r + 3 * TY) * s]);
          acc += a0;
          acc += a1;
          acc += a2;
          acc += a3;
        }
        for (; r < rEnd; r += TY)
          acc += ld(xo[r * s]);
      } else {
        for (; r < rEnd; r += TY) {
          int64_t rr = r, off = 0;
#pragma unroll
          for (int g = 0; g < kSumMaxGroups; ++g) {
            int64_t q = rr / redSize[g];
            off += (rr - q * redSize[g]) * redStride[g];
            rr = q;
          }
          acc += ld(xo[off]);
        }
      }
    }
    partial[ty * TX + tx] = acc;
    __syncthreads();
    for (int half = TY / 2; half > 0; half >>= 1) {
      if (ty < half)
        partial[ty * TX + tx] += partial[(ty + half) * TX + tx];
      __syncthreads();
    }
    if (ty == 0 && o < numOut) {
      if (splits == 1)
        st(out + o, (float)partial[tx]);
      else
        SumScratch<0>::partials()[split * TX + tx] = partial[tx];
    }
    __syncthreads(); // the next tile reuses `partial`
  }
  if (splits == 1)
    return;

  // The last split block to finish adds the partials in block order.
  __threadfence();
  __syncthreads();
  unsigned int *counter = SumScratch<0>::counter();
  if (tx == 0 && ty == 0)
    isLast = atomicAdd(counter, 1u) == (unsigned int)(splits - 1);
  __syncthreads();
  if (!isLast)
    return;
  __threadfence();
  if (ty == 0 && tx < numOut) {
    const double *partials = SumScratch<0>::partials();
    double total = 0.0;
    for (int64_t s = 0; s < splits; ++s)
      total += __ldcg(partials + s * TX + tx);
    st(out + tx, (float)total);
  }
  if (tx == 0 && ty == 0)
    *counter = 0;
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

template <class U, class TI>
__device__ void embeddingUnits(const U *table, const TI *ids, U *out, int64_t count,
                               int64_t vocab, int64_t row) {
  const int64_t n = count * row;
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    int64_t p = i / row, j = i - p * row;
    int64_t id = ldIndex(ids[p]);
    U v = U();
    if (id >= 0 && id < vocab)
      v = table[id * row + j];
    out[i] = v;
  }
}

/// out[p, :] = table[ids[p], :] (rows of dim elements), zero bits for an id outside
/// [0, vocab).
template <class T, class TI>
__device__ void embedding(const T *table, const TI *ids, T *out, int64_t count, int64_t vocab,
                          int64_t dim) {
  const int64_t row = dim * (int64_t)sizeof(T);
  if (count <= 0 || row <= 0)
    return;
  switch (layoutUnit((uint64_t)row, table, out)) {
  case 16:
    return embeddingUnits((const uint4 *)table, ids, (uint4 *)out, count, vocab, row / 16);
  case 8:
    return embeddingUnits((const uint2 *)table, ids, (uint2 *)out, count, vocab, row / 8);
  case 4:
    return embeddingUnits((const uint32_t *)table, ids, (uint32_t *)out, count, vocab, row / 4);
  default:
    return embeddingUnits((const uint16_t *)table, ids, (uint16_t *)out, count, vocab, row / 2);
  }
}

/// Inclusive prefix sum over a warp.
__device__ __forceinline__ int warpInclusiveScan(int v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    int other = __shfl_up_sync(0xffffffffu, v, offset);
    if (lane >= offset)
      v += other;
  }
  return v;
}

/// dtable [vocab, dim] (f32) = Σ of the dy rows of the tokens of each id, in token order, in
/// fp64. Block (blockIdx.x, blockIdx.y) owns rows [blockIdx.x·R, +R) and columns
/// [blockIdx.y·C, +C) with C = blockDim.x (a multiple of 32, at most 1024). Dynamic shared
/// memory: R·C doubles, C·kGradIdsPerThread list entries, 33 ints.
template <class TI, class TG>
__device__ void embeddingGrad(const TI *ids, const TG *dy, float *dtable, int64_t count,
                              int64_t vocab, int64_t dim, int64_t rowsPerBlock) {
  extern __shared__ __align__(16) unsigned char layoutGradShared[];
  const int C = blockDim.x, tx = threadIdx.x, lane = tx & 31, warp = tx >> 5;
  const int warps = C >> 5;
  const int64_t r0 = (int64_t)blockIdx.x * rowsPerBlock;
  if (r0 >= vocab)
    return; // uniform over the block
  const int rows = (int)(vocab - r0 < rowsPerBlock ? vocab - r0 : rowsPerBlock);
  const int64_t col = (int64_t)blockIdx.y * C + tx;
  const bool hasColumn = col < dim;
  double *acc = (double *)layoutGradShared;                      // [rowsPerBlock][C]
  int *list = (int *)(acc + rowsPerBlock * (int64_t)C);          // [C·kGradIdsPerThread]
  int *warpOffsets = list + C * kGradIdsPerThread;               // [32] + total
  // Thread tx alone touches column tx of acc: no barrier between zeroing and adding.
  for (int r = 0; r < rows; ++r)
    acc[r * C + tx] = 0.0;

  const int64_t chunk = (int64_t)C * kGradIdsPerThread;
  for (int64_t base = 0; base < count; base += chunk) {
    // This thread's tokens base + tx·8 + i: which belong to this block's rows.
    int rowOf[kGradIdsPerThread];
    int matches = 0;
#pragma unroll
    for (int i = 0; i < kGradIdsPerThread; ++i) {
      int64_t p = base + (int64_t)tx * kGradIdsPerThread + i;
      rowOf[i] = -1;
      if (p < count) {
        int64_t id = ldIndex(ids[p]);
        if (id >= r0 && id < r0 + rows) {
          rowOf[i] = (int)(id - r0);
          ++matches;
        }
      }
    }
    // Block exclusive prefix sum of the match counts, in thread (= token) order.
    int inclusive = warpInclusiveScan(matches);
    if (lane == 31)
      warpOffsets[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
      int v = lane < warps ? warpOffsets[lane] : 0;
      int sum = warpInclusiveScan(v);
      if (lane < warps)
        warpOffsets[lane] = sum - v;
      if (lane == 31)
        warpOffsets[32] = sum;
    }
    __syncthreads();
    int slot = warpOffsets[warp] + inclusive - matches;
#pragma unroll
    for (int i = 0; i < kGradIdsPerThread; ++i)
      if (rowOf[i] >= 0)
        list[slot++] = (rowOf[i] << kGradLocalBits) | (tx * kGradIdsPerThread + i);
    __syncthreads();
    const int total = warpOffsets[32];
    if (hasColumn) {
      const TG *dyChunk = dy + base * dim + col;
      const int localMask = (1 << kGradLocalBits) - 1;
      int k = 0;
      for (; k + 4 <= total; k += 4) { // four loads in flight, adds in list order
        int e0 = list[k], e1 = list[k + 1], e2 = list[k + 2], e3 = list[k + 3];
        float g0 = ld(dyChunk[(int64_t)(e0 & localMask) * dim]);
        float g1 = ld(dyChunk[(int64_t)(e1 & localMask) * dim]);
        float g2 = ld(dyChunk[(int64_t)(e2 & localMask) * dim]);
        float g3 = ld(dyChunk[(int64_t)(e3 & localMask) * dim]);
        acc[(e0 >> kGradLocalBits) * C + tx] += (double)g0;
        acc[(e1 >> kGradLocalBits) * C + tx] += (double)g1;
        acc[(e2 >> kGradLocalBits) * C + tx] += (double)g2;
        acc[(e3 >> kGradLocalBits) * C + tx] += (double)g3;
      }
      for (; k < total; ++k) {
        int e = list[k];
        acc[(e >> kGradLocalBits) * C + tx] += (double)ld(dyChunk[(int64_t)(e & localMask) * dim]);
      }
    }
    __syncthreads(); // the list and offsets are rewritten by the next chunk
  }
  if (hasColumn)
    for (int r = 0; r < rows; ++r)
      dtable[(r0 + r) * dim + col] = (float)acc[r * C + tx];
}

} // namespace fk
