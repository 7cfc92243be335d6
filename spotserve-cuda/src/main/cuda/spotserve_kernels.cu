// SpotServe-J CUDA kernels: the LLaMA forward pass of one pipeline position (stage, shard), mirroring the
// CPU executor's StageShard math (llama2.c run.c). Compiled to PTX by ../../../build-ptx.sh; the PTX is
// committed under src/main/resources/io/spotserve/cuda/ and loaded with cuModuleLoadData (driver API only,
// so no CUDA runtime or cuBLAS library is needed at run time).
//
// Conventions: every kernel is extern "C" (stable entry names the Java side looks up); matrices are
// row-major; a "batch" is the entries of one forward step; per-entry KV caches are passed as an array of
// device addresses (unsigned long long) with their capacities. All accumulation is fp32.
#include <cuda_fp16.h>

#define WARP 32
#define GEMV_ROWS_PER_BLOCK 4   // warps per gemv block, one output row each (Launch.GEMV_ROWS_PER_BLOCK)
#define GEMV_BATCH_TILE 8       // batch entries that share one pass over a weight row
#define GEMV_UNROLL 8           // 16-byte weight loads in flight per lane at batch 1 (fewer for larger tiles)

// Dynamic shared memory. A macro so the CPU emulation test (src/test/native/cuda_cpu_shim.h) can give each
// emulated block a buffer of exactly the launch's size; under nvcc it is the plain extern declaration.
#ifndef SPOTSERVE_DYNAMIC_SHARED
#define SPOTSERVE_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v, float* red) {
    int lane = threadIdx.x % WARP, wid = threadIdx.x / WARP, nw = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[wid] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    v = warp_sum(v);
    return v;
}

__device__ float block_max(float v, float* red) {
    int lane = threadIdx.x % WARP, wid = threadIdx.x / WARP, nw = blockDim.x / WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[wid] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : -INFINITY;
    v = warp_max(v);
    return v;
}

__device__ __forceinline__ bool aligned16(const void* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

// ---------------------------------------------------------------------------------------------------------
// GEMV (decode is weight-bandwidth bound: every weight byte is read from DRAM once per step, so the kernels
// are built around streaming the weights at full bandwidth; see benchmarks/notes/cuda.md "Kernels (session 4)").
//
// One warp per output row, GEMV_ROWS_PER_BLOCK rows per block. Vector path (weights, x and both strides
// 16-byte aligned, checked once per launch so the branch is uniform): each lane streams 16-byte chunks of the
// row (uint4 = 8 halves or float4 = 4 floats; a warp reads 512 contiguous bytes per load), GEMV_UNROLL loads
// in flight before the math, weights through the streaming cache path (__ldcs: read once per step) and x
// through the read-only path (__ldg: x is re-read by every row, so it stays in L1). The batch is processed
// in tiles of up to GEMV_BATCH_TILE entries with the tile size a template parameter (1 is the batch-1
// specialisation: one accumulator, no predicates), so batch 16 reads each weight row twice, the second time
// from cache. Scalar path (any alignment): the same math one element per lane per step.
// ---------------------------------------------------------------------------------------------------------

// Weight element types: the 16-byte vector, elements per vector, and the conversion to fp32.
struct WeightF32 {
    typedef float Elem;
    typedef float4 Vec;
    static constexpr int PER_VEC = 4;
    static __device__ __forceinline__ float toFloat(float v) { return v; }
    static __device__ __forceinline__ void unpack(const float4& v, float* f) {
        f[0] = v.x;
        f[1] = v.y;
        f[2] = v.z;
        f[3] = v.w;
    }
};

struct WeightF16 {
    typedef __half Elem;
    typedef uint4 Vec;
    static constexpr int PER_VEC = 8;
    static __device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
    static __device__ __forceinline__ void unpack2(unsigned int u, float* f) {
        f[0] = __half2float(__ushort_as_half((unsigned short) (u & 0xffffu)));  // little-endian: low half first
        f[1] = __half2float(__ushort_as_half((unsigned short) (u >> 16)));
    }
    static __device__ __forceinline__ void unpack(const uint4& v, float* f) {
        unpack2(v.x, f);
        unpack2(v.y, f + 2);
        unpack2(v.z, f + 4);
        unpack2(v.w, f + 6);
    }
};

// acc[t] += w[k .. k+PER_VEC) . x[t][k .. k+PER_VEC) for the NB entries of a tile.
template <typename W, int NB>
__device__ __forceinline__ void gemv_chunk(const typename W::Vec& v, const float* __restrict__ x, int xStride, int k,
                                           float* acc) {
    float w[W::PER_VEC];
    W::unpack(v, w);
#pragma unroll
    for (int t = 0; t < NB; t++) {
        // 32-bit offsets (an activation buffer is far below 2^31 floats): one register per entry, not two
        const float4* xv = reinterpret_cast<const float4*>(x + (t * xStride + k));
#pragma unroll
        for (int q = 0; q < W::PER_VEC / 4; q++) {
            float4 xx = __ldg(xv + q);
            acc[t] += w[4 * q] * xx.x;
            acc[t] += w[4 * q + 1] * xx.y;
            acc[t] += w[4 * q + 2] * xx.z;
            acc[t] += w[4 * q + 3] * xx.w;
        }
    }
}

// Lane t of the warp writes entry t's result (after the butterfly every lane holds every sum).
template <int NB>
__device__ __forceinline__ void gemv_store(float* acc, int lane, float* __restrict__ out, int outStride, int r,
                                           int accumulate) {
#pragma unroll
    for (int t = 0; t < NB; t++) acc[t] = warp_sum(acc[t]);
#pragma unroll
    for (int t = 0; t < NB; t++) {
        if (lane == t) {
            float* o = out + (size_t) t * outStride + r;
            *o = (accumulate ? *o : 0.0f) + acc[t];
        }
    }
}

// Vector path for one row and a tile of NB entries (x and out already offset to the tile's first entry).
template <typename W, int NB>
__device__ __forceinline__ void gemv_tile(const typename W::Elem* __restrict__ wr, int n,
                                          const float* __restrict__ x, int xStride, float* __restrict__ out,
                                          int outStride, int r, int lane, int accumulate) {
    const typename W::Vec* wv = reinterpret_cast<const typename W::Vec*>(wr);
    int chunks = n / W::PER_VEC;
    float acc[NB];
#pragma unroll
    for (int t = 0; t < NB; t++) acc[t] = 0.0f;
    // Each step issues U weight loads per lane before any math, the last step with predicates instead of a
    // serial remainder loop, so a row costs ceil(chunks / (32 * U)) memory round trips. Larger tiles use a
    // smaller U: their x loads are in flight too, and it bounds the registers.
    constexpr int U = NB == 1 ? GEMV_UNROLL : NB <= 4 ? GEMV_UNROLL / 4 : 1;
    for (int c = lane; c < chunks; c += U * WARP) {
        typename W::Vec v[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (c + u * WARP < chunks) v[u] = __ldcs(wv + c + u * WARP);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (c + u * WARP < chunks) gemv_chunk<W, NB>(v[u], x, xStride, (c + u * WARP) * W::PER_VEC, acc);
        }
    }
    gemv_store<NB>(acc, lane, out, outStride, r, accumulate);
}

// Scalar path for one row, any n and alignment (a fallback: n or a pointer not 16-byte aligned): one weight
// element per lane per step, one entry at a time (the row is re-read from cache for the next entry), which
// keeps its registers below the vector path's.
template <typename W>
__device__ __forceinline__ void gemv_row_scalar(const typename W::Elem* __restrict__ wr, int n, const float* __restrict__ x,
                                int xStride, int batch, float* __restrict__ out, int outStride, int r, int lane,
                                int accumulate) {
    for (int b = 0; b < batch; b++) {
        const float* xb = x + (size_t) b * xStride;
        float acc = 0.0f;
        for (int k = lane; k < n; k += WARP) acc += W::toFloat(wr[k]) * xb[k];
        acc = warp_sum(acc);
        if (lane == 0) {
            float* o = out + (size_t) b * outStride + r;
            *o = (accumulate ? *o : 0.0f) + acc;
        }
    }
}

template <typename W>
__device__ __forceinline__ void gemv_body(const typename W::Elem* __restrict__ w, int n, int rows,
                                          const float* __restrict__ x, int xStride, int batch,
                                          float* __restrict__ out, int outStride, int accumulate) {
    int r = blockIdx.x * GEMV_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (r >= rows) return;  // whole warps only: no shuffle partner is ever missing
    const typename W::Elem* wr = w + (size_t) r * n;
    // Same value in every thread of the launch: the vector/scalar choice never diverges.
    bool vec = aligned16(w) && aligned16(x) && n % W::PER_VEC == 0 && xStride % 4 == 0;
    if (!vec) {
        gemv_row_scalar<W>(wr, n, x, xStride, batch, out, outStride, r, lane, accumulate);
        return;
    }
    int b0 = 0;
    for (; batch - b0 >= GEMV_BATCH_TILE; b0 += GEMV_BATCH_TILE) {
        gemv_tile<W, GEMV_BATCH_TILE>(wr, n, x + (size_t) b0 * xStride, xStride, out + (size_t) b0 * outStride,
                                      outStride, r, lane, accumulate);
    }
    const float* xt = x + (size_t) b0 * xStride;
    float* ot = out + (size_t) b0 * outStride;
    switch (batch - b0) {
        case 1: gemv_tile<W, 1>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 2: gemv_tile<W, 2>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 3: gemv_tile<W, 3>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 4: gemv_tile<W, 4>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 5: gemv_tile<W, 5>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 6: gemv_tile<W, 6>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        case 7: gemv_tile<W, 7>(wr, n, xt, xStride, ot, outStride, r, lane, accumulate); break;
        default: break;  // 0: the batch was a multiple of the tile
    }
}

// out[b * outStride + r] = (accumulate ? out[b * outStride + r] : 0) + sum_k w[r * n + k] * x[b * xStride + k]
// for r < rows, b < batch (fp32 accumulation; accumulate = 1 fuses the residual add). `out` must not alias w
// or x. Grid: ceil(rows / GEMV_ROWS_PER_BLOCK) blocks of GEMV_ROWS_PER_BLOCK * 32 threads (Launch.gemv).
extern "C" __global__ void __launch_bounds__(GEMV_ROWS_PER_BLOCK * WARP)
gemv_f32(const float* __restrict__ w, int n, int rows, const float* __restrict__ x, int xStride, int batch,
         float* __restrict__ out, int outStride, int accumulate) {
    gemv_body<WeightF32>(w, n, rows, x, xStride, batch, out, outStride, accumulate);
}

// As gemv_f32 with fp16 weights (half the weight traffic); activations and accumulation stay fp32.
extern "C" __global__ void __launch_bounds__(GEMV_ROWS_PER_BLOCK * WARP)
gemv_f16(const __half* __restrict__ w, int n, int rows, const float* __restrict__ x, int xStride, int batch,
         float* __restrict__ out, int outStride, int accumulate) {
    gemv_body<WeightF16>(w, n, rows, x, xStride, batch, out, outStride, accumulate);
}

// dst[i] = (half) src[i]: converts fp32 weights to the fp16 storage gemv_f16 reads.
extern "C" __global__ void f32_to_f16(const float* __restrict__ src, __half* __restrict__ dst, long long count) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count;
         i += (long long) gridDim.x * blockDim.x) {
        dst[i] = __float2half_rn(src[i]);
    }
}

// run.c rmsnorm of one entry: o = w * (x / sqrt(mean(x^2) + 1e-5)); W is the norm weights' element type.
template <typename W>
__device__ __forceinline__ void rmsnorm_entry(float* __restrict__ ob, const float* __restrict__ xb,
                                              const typename W::Elem* __restrict__ w, int size, float* red) {
    float ss = 0.0f;
    for (int j = threadIdx.x; j < size; j += blockDim.x) ss += xb[j] * xb[j];
    ss = block_sum(ss, red);
    ss = 1.0f / sqrtf(ss / size + 1e-5f);
    for (int j = threadIdx.x; j < size; j += blockDim.x) ob[j] = W::toFloat(w[j]) * (ss * xb[j]);
}

// rmsnorm per entry. Grid: batch blocks.
extern "C" __global__ void rmsnorm(float* __restrict__ o, int oStride, const float* __restrict__ x, int xStride,
                                   const float* __restrict__ w, int size) {
    __shared__ float red[32];
    rmsnorm_entry<WeightF32>(o + (size_t) blockIdx.x * oStride, x + (size_t) blockIdx.x * xStride, w, size, red);
}

// rmsnorm with fp16 norm weights.
extern "C" __global__ void rmsnorm_h(float* __restrict__ o, int oStride, const float* __restrict__ x, int xStride,
                                     const __half* __restrict__ w, int size) {
    __shared__ float red[32];
    rmsnorm_entry<WeightF16>(o + (size_t) blockIdx.x * oStride, x + (size_t) blockIdx.x * xStride, w, size, red);
}

// Like rmsnorm but only for entries with rowMap[b] >= 0, written to row rowMap[b] of o (the classifier
// runs only on entries that asked for logits). Grid: batch blocks.
extern "C" __global__ void rmsnorm_select(float* __restrict__ o, const float* __restrict__ x,
                                          const float* __restrict__ w, int size, const int* __restrict__ rowMap) {
    __shared__ float red[32];
    int row = rowMap[blockIdx.x];
    if (row < 0) return;  // the whole block
    rmsnorm_entry<WeightF32>(o + (size_t) row * size, x + (size_t) blockIdx.x * size, w, size, red);
}

// rmsnorm_select with fp16 norm weights.
extern "C" __global__ void rmsnorm_select_h(float* __restrict__ o, const float* __restrict__ x,
                                            const __half* __restrict__ w, int size, const int* __restrict__ rowMap) {
    __shared__ float red[32];
    int row = rowMap[blockIdx.x];
    if (row < 0) return;
    rmsnorm_entry<WeightF16>(o + (size_t) row * size, x + (size_t) blockIdx.x * size, w, size, red);
}

// RoPE on q and k of each entry (pairs (2i, 2i+1), table [pos][hs/2][cos, sin] as the CPU executor builds
// it), then stores the rotated k and the v of the entry at its position in its KV cache of local layer
// `layer`: cache layout [layer][K|V][capacity][kvDim]. Grid: batch blocks.
extern "C" __global__ void rope_store(float* __restrict__ qkv, int qkvRows, int qDim, int kvDim, int hs,
                                      const float* __restrict__ rope, const int* __restrict__ pos,
                                      const unsigned long long* __restrict__ caches, const int* __restrict__ caps,
                                      int layer) {
    int b = blockIdx.x;
    int p = pos[b];
    int half = hs / 2;
    float* q = qkv + (size_t) b * qkvRows;
    float* k = q + qDim;
    const float* v = k + kvDim;
    float* cache = (float*) caches[b];
    int cap = caps[b];
    float* kc = cache + ((size_t) (layer * 2) * cap + p) * kvDim;
    float* vc = cache + ((size_t) (layer * 2 + 1) * cap + p) * kvDim;
    for (int i = 2 * threadIdx.x; i < qDim; i += 2 * blockDim.x) {
        int t = (p * half + (i % hs) / 2) * 2;
        float c = rope[t], s = rope[t + 1];
        float v0 = q[i], v1 = q[i + 1];
        q[i] = v0 * c - v1 * s;
        q[i + 1] = v0 * s + v1 * c;
    }
    for (int i = 2 * threadIdx.x; i < kvDim; i += 2 * blockDim.x) {
        int t = (p * half + (i % hs) / 2) * 2;
        float c = rope[t], s = rope[t + 1];
        float v0 = k[i], v1 = k[i + 1];
        kc[i] = v0 * c - v1 * s;
        kc[i + 1] = v0 * s + v1 * c;
        vc[i] = v[i];
        vc[i + 1] = v[i + 1];
    }
}

// Grouped-query attention over the KV cache: one block per (entry, local query head). Scores of the entry's
// pos[b] + 1 positions live in dynamic shared memory; the launch may give more (a power-of-two bucket, so a
// captured CUDA graph serves many steps): only scores[0 .. pos[b]] is ever written or read. Softmax is
// max-shifted like run.c; out is att[b][h*hs + d].
extern "C" __global__ void attention(const float* __restrict__ qkv, int qkvRows, float* __restrict__ att,
                                     int qDim, int kvDim, int hs, int group,
                                     const int* __restrict__ pos, const unsigned long long* __restrict__ caches,
                                     const int* __restrict__ caps, int layer, float scale) {
    SPOTSERVE_DYNAMIC_SHARED(float, scores);
    __shared__ float red[32];
    int b = blockIdx.x;
    int h = blockIdx.y;
    int n = pos[b] + 1;
    int cap = caps[b];
    const float* q = qkv + (size_t) b * qkvRows + h * hs;
    const float* cache = (const float*) caches[b];
    int kvh = (h / group) * hs;
    const float* kb = cache + (size_t) (layer * 2) * cap * kvDim + kvh;
    const float* vb = cache + (size_t) (layer * 2 + 1) * cap * kvDim + kvh;
    for (int t = threadIdx.x; t < n; t += blockDim.x) {
        const float* kt = kb + (size_t) t * kvDim;
        float s = 0.0f;
        for (int d = 0; d < hs; d++) s += q[d] * kt[d];
        scores[t] = s / scale;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int t = threadIdx.x; t < n; t += blockDim.x) m = fmaxf(m, scores[t]);
    m = block_max(m, red);
    float sum = 0.0f;
    for (int t = threadIdx.x; t < n; t += blockDim.x) {
        float e = expf(scores[t] - m);
        scores[t] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    for (int t = threadIdx.x; t < n; t += blockDim.x) scores[t] /= sum;  // run.c normalises by division
    __syncthreads();
    float* o = att + (size_t) b * qDim + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += scores[t] * vb[(size_t) t * kvDim + d];
        o[d] = acc;
    }
}

// SwiGLU: hb[b][i] = silu(h13[b][i]) * h13[b][f + i] for i < f (w1 rows then w3 rows in h13).
extern "C" __global__ void swiglu(const float* __restrict__ h13, float* __restrict__ hb, int f, int batch) {
    long long total = (long long) f * batch;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total;
         i += (long long) gridDim.x * blockDim.x) {
        int b = (int) (i / f);
        int j = (int) (i % f);
        float v = h13[(size_t) b * 2 * f + j];
        v *= 1.0f / (1.0f + expf(-v));
        hb[i] = v * h13[(size_t) b * 2 * f + f + j];
    }
}

// x[i] += y[i]: the residual add and one step of the tensor-parallel all-reduce.
extern "C" __global__ void add_inplace(float* __restrict__ x, const float* __restrict__ y, int count) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) x[i] += y[i];
}

// Token embedding of a vocabulary shard [v0, v0 + vLocal): x[b] = emb[tok[b] - v0], or zeros when the token
// belongs to another shard (the all-reduce sum then assembles the full embedding). Grid: batch blocks.
template <typename W>
__device__ __forceinline__ void embed_entry(float* __restrict__ x, const typename W::Elem* __restrict__ emb,
                                            const int* __restrict__ tok, int v0, int vLocal, int dim) {
    int b = blockIdx.x;
    int t = tok[b] - v0;
    float* xb = x + (size_t) b * dim;
    bool mine = t >= 0 && t < vLocal;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) xb[j] = mine ? W::toFloat(emb[(size_t) t * dim + j]) : 0.0f;
}

extern "C" __global__ void embed(float* __restrict__ x, const float* __restrict__ emb, const int* __restrict__ tok,
                                 int v0, int vLocal, int dim) {
    embed_entry<WeightF32>(x, emb, tok, v0, vLocal, dim);
}

// embed with an fp16 embedding table (rows widened to fp32 activations).
extern "C" __global__ void embed_h(float* __restrict__ x, const __half* __restrict__ emb, const int* __restrict__ tok,
                                   int v0, int vLocal, int dim) {
    embed_entry<WeightF16>(x, emb, tok, v0, vLocal, dim);
}

// Sampling support: per row of `rows` x `n` logits, the first index of the maximum (run.c argmax; NaNs are
// skipped rather than winning at index 0 as in run.c).
// Grid: rows blocks; blockDim.x a power of two.
extern "C" __global__ void argmax_rows(const float* __restrict__ logits, int n, int* __restrict__ out) {
    __shared__ float bv[1024];
    __shared__ int bi[1024];
    const float* r = logits + (size_t) blockIdx.x * n;
    float best = -INFINITY;
    int idx = 0x7fffffff;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float v = r[j];
        if (v > best) { best = v; idx = j; }
    }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = idx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int) threadIdx.x < s) {
            float ov = bv[threadIdx.x + s];
            int oi = bi[threadIdx.x + s];
            if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    // No element above -inf (all -inf or NaN): run.c's argmax answers index 0.
    if (threadIdx.x == 0) out[blockIdx.x] = bi[0] == 0x7fffffff ? 0 : bi[0];
}

// Sampling support: in-place softmax of each row of logits divided by a temperature. Grid: rows blocks.
extern "C" __global__ void softmax_rows(float* __restrict__ logits, int n, float temperature) {
    __shared__ float red[32];
    float* r = logits + (size_t) blockIdx.x * n;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, r[j] / temperature);
    m = block_max(m, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = expf(r[j] / temperature - m);
        r[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] /= sum;
}
