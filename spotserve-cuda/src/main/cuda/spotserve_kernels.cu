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
// The two tuning knobs can be overridden with -D for experiments (src/test/native/gemv_bench.cu); the committed
// PTX uses these values.
#ifndef GEMV_UNROLL
#define GEMV_UNROLL 8           // 16-byte weight loads in flight per lane at batch 1
#endif
#ifndef GEMV_MIN_BLOCKS
#define GEMV_MIN_BLOCKS 5       // resident gemv blocks per SM the register budget must allow (96 registers)
#endif
#define ATTENTION_MAX_WARPS 4   // attention blocks have at most this many warps (Launch.ATTENTION_THREADS)

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
// GEMV_ROWS_PER_BLOCK rows per block of as many warps. Vector path (weights, x and both strides 16-byte
// aligned, checked once per launch so the branch is uniform): lanes stream 16-byte chunks (uint4 = 8 halves
// or float4 = 4 floats; a warp reads 512 contiguous bytes per load) through the streaming cache path (__ldcs:
// weights are read once per step), x through the read-only path (__ldg: x is re-read by every row, so it
// stays in L1).
//  * batch 1: one warp per row, GEMV_UNROLL loads in flight per lane before any math (gemv_row_batch1);
//  * batch >= 2: tiles of up to GEMV_BATCH_TILE entries (the tile size a template parameter), the block's
//    warps splitting the k range of its rows so that each x load serves all of them (gemv_tile_block);
//    batch 16 reads each weight row twice, the second time right after the first (from cache).
// Scalar path (any n or alignment): one element per lane per step, one entry at a time.
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
    // Elements 4q .. 4q+3 of the vector (q = 0 only).
    static __device__ __forceinline__ void unpack4(const float4& v, int, float* f) { unpack(v, f); }
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
    // Elements 4q .. 4q+3 of the vector (q = 0 or 1).
    static __device__ __forceinline__ void unpack4(const uint4& v, int q, float* f) {
        unpack2(q == 0 ? v.x : v.z, f);
        unpack2(q == 0 ? v.y : v.w, f + 2);
    }
};

// Batch-1 vector path, one warp per row: each step issues GEMV_UNROLL weight loads per lane before any math
// (the last step with predicates instead of a serial remainder loop), so a row costs
// ceil(chunks / (32 * GEMV_UNROLL)) memory round trips: one for n = 2048 in fp16.
template <typename W>
__device__ __forceinline__ void gemv_row_batch1(const typename W::Elem* __restrict__ wr, int n,
                                                const float* __restrict__ x, float* __restrict__ out, int r,
                                                int lane, int accumulate) {
    const typename W::Vec* wv = reinterpret_cast<const typename W::Vec*>(wr);
    const float4* xv = reinterpret_cast<const float4*>(x);
    int chunks = n / W::PER_VEC;
    float acc = 0.0f;
    for (int c = lane; c < chunks; c += GEMV_UNROLL * WARP) {
        typename W::Vec v[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            if (c + u * WARP < chunks) v[u] = __ldcs(wv + c + u * WARP);
        }
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            if (c + u * WARP < chunks) {
                float wf[W::PER_VEC];
                W::unpack(v[u], wf);
#pragma unroll
                for (int q = 0; q < W::PER_VEC / 4; q++) {
                    float4 xx = __ldg(xv + (c + u * WARP) * (W::PER_VEC / 4) + q);
                    acc += wf[4 * q] * xx.x;
                    acc += wf[4 * q + 1] * xx.y;
                    acc += wf[4 * q + 2] * xx.z;
                    acc += wf[4 * q + 3] * xx.w;
                }
            }
        }
    }
    acc = warp_sum(acc);
    if (lane == 0) out[r] = (accumulate ? out[r] : 0.0f) + acc;
}

// Transposing butterfly over 2H values per lane: after the step with distance H a lane keeps half of its
// values (the upper half when lane & H), adding the partner's copy of that half. After the last step acc[0]
// is value (lane & (2H - 1)) summed over the 2H lanes that differ only in those bits: 2H - 1 shuffles in all
// instead of 5 per value.
template <int H>
__device__ __forceinline__ void transpose_reduce(float* acc, int lane) {
    if constexpr (H >= 1) {
        bool upper = (lane & H) != 0;
#pragma unroll
        for (int i = 0; i < H; i++) {
            float send = upper ? acc[i] : acc[i + H];
            float keep = upper ? acc[i + H] : acc[i];
            acc[i] = keep + __shfl_xor_sync(0xffffffffu, send, H);
        }
        transpose_reduce<H / 2>(acc, lane);
    }
}

// Batched vector path, one tile of NB entries (x and out offset to the tile's first entry): the block's
// GEMV_ROWS_PER_BLOCK warps split the k range of the block's rows, so every x load (a float4 of one entry)
// feeds all the block's rows instead of one: the x bytes read through L1 per weight byte drop by the factor
// GEMV_ROWS_PER_BLOCK (fp16, tile 8: from 16 to 4), which keeps a batch-8 tile on DRAM bandwidth rather
// than L1 bandwidth (benchmarks/notes/cuda.md has the arithmetic).
// The ROWS x NB partial sums of each lane are reduced across the warp by transpose_reduce and plain
// butterflies (one sum per lane) and across the warps through shared memory.
template <typename W, int NB>
__device__ __forceinline__ void gemv_tile_block(const typename W::Elem* __restrict__ w, int n, int rows,
                                                const float* __restrict__ x, int xStride, float* __restrict__ out,
                                                int outStride, int accumulate, float* red) {
    constexpr int R = GEMV_ROWS_PER_BLOCK;
    constexpr int NBP = NB <= 1 ? 1 : NB <= 2 ? 2 : NB <= 4 ? 4 : 8;  // entries padded to a power of two
    constexpr int V = R * NBP;                                         // partial sums per lane
    static_assert(V <= WARP && (V & (V - 1)) == 0, "one partial sum per lane after the butterfly");
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int r0 = blockIdx.x * R;
    int chunks = n / W::PER_VEC;
    // One 64-bit base and 32-bit offsets (a block's rows span far less than 2^31 vectors); rows past the
    // matrix re-read its last row (cached, valid memory) and their sums are never stored.
    const typename W::Vec* wv = reinterpret_cast<const typename W::Vec*>(w + (size_t) r0 * n);
    int last = min(R, rows - r0) - 1;
    float acc[V];
#pragma unroll
    for (int i = 0; i < V; i++) acc[i] = 0.0f;
    for (int c = warp * WARP + lane; c < chunks; c += R * WARP) {
        typename W::Vec v[R];
#pragma unroll
        for (int j = 0; j < R; j++) v[j] = __ldcs(wv + (min(j, last) * chunks + c));
        int k = c * W::PER_VEC;
#pragma unroll
        for (int q = 0; q < W::PER_VEC / 4; q++) {
            float wf[R][4];
#pragma unroll
            for (int j = 0; j < R; j++) W::unpack4(v[j], q, wf[j]);
#pragma unroll
            for (int t = 0; t < NB; t++) {
                // 32-bit offsets (an activation buffer is far below 2^31 floats)
                float4 xx = __ldg(reinterpret_cast<const float4*>(x + (t * xStride + k + 4 * q)));
#pragma unroll
                for (int j = 0; j < R; j++) {
                    float a = acc[j * NBP + t];
                    a += wf[j][0] * xx.x;
                    a += wf[j][1] * xx.y;
                    a += wf[j][2] * xx.z;
                    a += wf[j][3] * xx.w;
                    acc[j * NBP + t] = a;
                }
            }
        }
    }
    transpose_reduce<V / 2>(acc, lane);
#pragma unroll
    for (int o = V; o < WARP; o *= 2) acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], o);
    if (lane < V) red[warp * WARP + lane] = acc[0];
    __syncthreads();
    if (threadIdx.x < V) {
        int i = threadIdx.x, j = i / NBP, t = i % NBP;
        float s = 0.0f;
#pragma unroll
        for (int u = 0; u < R; u++) s += red[u * WARP + i];
        if (t < NB && r0 + j < rows) {
            float* o = out + (size_t) t * outStride + r0 + j;
            *o = (accumulate ? *o : 0.0f) + s;
        }
    }
    __syncthreads();  // red is reused by the next tile
}

// Scalar path for one row, any n and alignment (a fallback: n or a pointer not 16-byte aligned): one weight
// element per lane per step, one entry at a time (the row is re-read from cache for the next entry), which
// keeps its registers below the vector path's.
template <typename W>
__device__ __forceinline__ void gemv_row_scalar(const typename W::Elem* __restrict__ wr, int n,
                                                const float* __restrict__ x, int xStride, int batch,
                                                float* __restrict__ out, int outStride, int r, int lane,
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
    __shared__ float red[GEMV_ROWS_PER_BLOCK * WARP];
    int r = blockIdx.x * GEMV_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    // Same value in every thread of the launch: the path choice never diverges.
    bool vec = aligned16(w) && aligned16(x) && n % W::PER_VEC == 0 && xStride % 4 == 0;
    if (vec && batch > 1) {  // the whole block cooperates (barriers): no thread may return before this
        if ((int) blockIdx.x * GEMV_ROWS_PER_BLOCK >= rows) return;  // grid larger than Launch.gemv: whole block
        int b0 = 0;
        for (; batch - b0 >= GEMV_BATCH_TILE; b0 += GEMV_BATCH_TILE) {
            gemv_tile_block<W, GEMV_BATCH_TILE>(w, n, rows, x + (size_t) b0 * xStride, xStride,
                                                out + (size_t) b0 * outStride, outStride, accumulate, red);
        }
        const float* xt = x + (size_t) b0 * xStride;
        float* ot = out + (size_t) b0 * outStride;
        switch (batch - b0) {
            case 1: gemv_tile_block<W, 1>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 2: gemv_tile_block<W, 2>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 3: gemv_tile_block<W, 3>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 4: gemv_tile_block<W, 4>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 5: gemv_tile_block<W, 5>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 6: gemv_tile_block<W, 6>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            case 7: gemv_tile_block<W, 7>(w, n, rows, xt, xStride, ot, outStride, accumulate, red); break;
            default: break;  // 0: the batch was a multiple of the tile
        }
        return;
    }
    if (r >= rows) return;  // whole warps only: no shuffle partner is ever missing
    const typename W::Elem* wr = w + (size_t) r * n;
    if (vec) {
        gemv_row_batch1<W>(wr, n, x, out, r, lane, accumulate);  // batch 1: one warp streams the row
    } else {
        gemv_row_scalar<W>(wr, n, x, xStride, batch, out, outStride, r, lane, accumulate);
    }
}

// out[b * outStride + r] = (accumulate ? out[b * outStride + r] : 0) + sum_k w[r * n + k] * x[b * xStride + k]
// for r < rows, b < batch (fp32 accumulation; accumulate = 1 fuses the residual add). `out` must not alias w
// or x. Grid: ceil(rows / GEMV_ROWS_PER_BLOCK) blocks of GEMV_ROWS_PER_BLOCK * 32 threads (Launch.gemv).
extern "C" __global__ void __launch_bounds__(GEMV_ROWS_PER_BLOCK * WARP, GEMV_MIN_BLOCKS)
gemv_f32(const float* __restrict__ w, int n, int rows, const float* __restrict__ x, int xStride, int batch,
         float* __restrict__ out, int outStride, int accumulate) {
    gemv_body<WeightF32>(w, n, rows, x, xStride, batch, out, outStride, accumulate);
}

// As gemv_f32 with fp16 weights (half the weight traffic); activations and accumulation stay fp32.
extern "C" __global__ void __launch_bounds__(GEMV_ROWS_PER_BLOCK * WARP, GEMV_MIN_BLOCKS)
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
// max-shifted like run.c; out is att[b][h*hs + d]. Block: at most ATTENTION_MAX_WARPS warps.
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
    // out = scores . V: warps take positions round-robin and lanes 32 consecutive dims of the head (coalesced
    // V rows), four independent loads in flight per lane; the warps' partial sums meet in shared memory.
    // (One thread per dim walking all positions serially would leave most threads idle and pay a memory
    // latency per position.)
    __shared__ float part[ATTENTION_MAX_WARPS][WARP];
    int lane = threadIdx.x % WARP, wid = threadIdx.x / WARP, nw = blockDim.x / WARP;
    float* o = att + (size_t) b * qDim + h * hs;
    for (int d0 = 0; d0 < hs; d0 += WARP) {
        int d = d0 + lane;
        float acc = 0.0f;
        if (d < hs) {
            const float* vd = vb + d;
            int t = wid;
            for (; t + 3 * nw < n; t += 4 * nw) {
                float v0 = vd[(size_t) t * kvDim], v1 = vd[(size_t) (t + nw) * kvDim];
                float v2 = vd[(size_t) (t + 2 * nw) * kvDim], v3 = vd[(size_t) (t + 3 * nw) * kvDim];
                acc += scores[t] * v0;
                acc += scores[t + nw] * v1;
                acc += scores[t + 2 * nw] * v2;
                acc += scores[t + 3 * nw] * v3;
            }
            for (; t < n; t += nw) acc += scores[t] * vd[(size_t) t * kvDim];
        }
        part[wid][lane] = acc;
        __syncthreads();
        if (wid == 0 && d < hs) {
            float sum = 0.0f;
            for (int u = 0; u < nw; u++) sum += part[u][lane];
            o[d] = sum;
        }
        __syncthreads();  // part is reused by the next 32 dims
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
