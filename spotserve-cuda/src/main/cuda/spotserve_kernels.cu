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
#define GEMV_ROWS_PER_BLOCK 8   // 8 warps, one output row each
#define GEMV_BATCH_TILE 4       // entries that share one pass over a weight row

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

// out[b * outStride + r] = sum_k w[r * n + k] * x[b * xStride + k] for r < rows, b < batch.
// One warp per row; the weight row is read once per tile of GEMV_BATCH_TILE entries (decode is
// bandwidth-bound on the weights). Grid: ceil(rows / GEMV_ROWS_PER_BLOCK) blocks of 256 threads.
extern "C" __global__ void gemv_f32(const float* __restrict__ w, int n, int rows,
                                    const float* __restrict__ x, int xStride, int batch,
                                    float* __restrict__ out, int outStride) {
    int r = blockIdx.x * GEMV_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (r >= rows) return;
    const float* wr = w + (size_t) r * n;
    for (int b0 = 0; b0 < batch; b0 += GEMV_BATCH_TILE) {
        float acc[GEMV_BATCH_TILE] = {0.0f, 0.0f, 0.0f, 0.0f};
        int nb = min(GEMV_BATCH_TILE, batch - b0);
        for (int k = lane; k < n; k += WARP) {
            float wk = wr[k];
#pragma unroll
            for (int t = 0; t < GEMV_BATCH_TILE; t++) {
                if (t < nb) acc[t] += wk * x[(size_t) (b0 + t) * xStride + k];
            }
        }
#pragma unroll
        for (int t = 0; t < GEMV_BATCH_TILE; t++) {
            float s = warp_sum(acc[t]);
            if (lane == 0 && t < nb) out[(size_t) (b0 + t) * outStride + r] = s;
        }
    }
}

// As gemv_f32 with fp16 weights and fp32 activations and accumulation (halves the weight traffic).
extern "C" __global__ void gemv_f16(const __half* __restrict__ w, int n, int rows,
                                    const float* __restrict__ x, int xStride, int batch,
                                    float* __restrict__ out, int outStride) {
    int r = blockIdx.x * GEMV_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (r >= rows) return;
    const __half* wr = w + (size_t) r * n;
    for (int b0 = 0; b0 < batch; b0 += GEMV_BATCH_TILE) {
        float acc[GEMV_BATCH_TILE] = {0.0f, 0.0f, 0.0f, 0.0f};
        int nb = min(GEMV_BATCH_TILE, batch - b0);
        for (int k = lane; k < n; k += WARP) {
            float wk = __half2float(wr[k]);
#pragma unroll
            for (int t = 0; t < GEMV_BATCH_TILE; t++) {
                if (t < nb) acc[t] += wk * x[(size_t) (b0 + t) * xStride + k];
            }
        }
#pragma unroll
        for (int t = 0; t < GEMV_BATCH_TILE; t++) {
            float s = warp_sum(acc[t]);
            if (lane == 0 && t < nb) out[(size_t) (b0 + t) * outStride + r] = s;
        }
    }
}

// dst[i] = (half) src[i]: converts fp32 weights to the fp16 storage gemv_f16 reads.
extern "C" __global__ void f32_to_f16(const float* __restrict__ src, __half* __restrict__ dst, long long count) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count;
         i += (long long) gridDim.x * blockDim.x) {
        dst[i] = __float2half_rn(src[i]);
    }
}

// run.c rmsnorm per entry: o = w * (x / sqrt(mean(x^2) + 1e-5)). Grid: batch blocks.
extern "C" __global__ void rmsnorm(float* __restrict__ o, int oStride, const float* __restrict__ x, int xStride,
                                   const float* __restrict__ w, int size) {
    __shared__ float red[32];
    const float* xb = x + (size_t) blockIdx.x * xStride;
    float* ob = o + (size_t) blockIdx.x * oStride;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < size; j += blockDim.x) ss += xb[j] * xb[j];
    ss = block_sum(ss, red);
    ss = 1.0f / sqrtf(ss / size + 1e-5f);
    for (int j = threadIdx.x; j < size; j += blockDim.x) ob[j] = w[j] * (ss * xb[j]);
}

// Like rmsnorm but only for entries with rowMap[b] >= 0, written to row rowMap[b] of o (the classifier
// runs only on entries that asked for logits). Grid: batch blocks.
extern "C" __global__ void rmsnorm_select(float* __restrict__ o, const float* __restrict__ x,
                                          const float* __restrict__ w, int size, const int* __restrict__ rowMap) {
    __shared__ float red[32];
    int row = rowMap[blockIdx.x];
    if (row < 0) return;
    const float* xb = x + (size_t) blockIdx.x * size;
    float* ob = o + (size_t) row * size;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < size; j += blockDim.x) ss += xb[j] * xb[j];
    ss = block_sum(ss, red);
    ss = 1.0f / sqrtf(ss / size + 1e-5f);
    for (int j = threadIdx.x; j < size; j += blockDim.x) ob[j] = w[j] * (ss * xb[j]);
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

// Grouped-query attention over the KV cache: one block per (entry, local query head). Scores live in
// dynamic shared memory (capacity floats); softmax is max-shifted like run.c; out is att[b][h*hs + d].
extern "C" __global__ void attention(const float* __restrict__ qkv, int qkvRows, float* __restrict__ att,
                                     int qDim, int kvDim, int hs, int group,
                                     const int* __restrict__ pos, const unsigned long long* __restrict__ caches,
                                     const int* __restrict__ caps, int layer, float scale) {
    extern __shared__ float scores[];
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
extern "C" __global__ void embed(float* __restrict__ x, const float* __restrict__ emb, const int* __restrict__ tok,
                                 int v0, int vLocal, int dim) {
    int b = blockIdx.x;
    int t = tok[b] - v0;
    float* xb = x + (size_t) b * dim;
    bool mine = t >= 0 && t < vLocal;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) xb[j] = mine ? emb[(size_t) t * dim + j] : 0.0f;
}

// Sampling support: per row of `rows` x `n` logits, the first index of the maximum (run.c argmax).
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
        if (threadIdx.x < s) {
            float ov = bv[threadIdx.x + s];
            int oi = bi[threadIdx.x + s];
            if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = bi[0];
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
