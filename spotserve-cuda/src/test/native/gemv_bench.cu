// GEMV bandwidth check for a GPU session (no JDK needed): times gemv_f16 / gemv_f32 from the real
// spotserve_kernels.cu on the LLaMA-1B decode shapes against the device's measured copy bandwidth, after a
// correctness check of each path against a host double-precision reference. Built as PTX for compute_75 only,
// so the driver JIT-compiles it exactly as it does the committed PTX the Java side loads.
//
//   nvcc -O3 -std=c++17 -gencode arch=compute_75,code=compute_75 -Ispotserve-cuda/src/main/cuda \
//        spotserve-cuda/src/test/native/gemv_bench.cu -o /tmp/gemv_bench && /tmp/gemv_bench
//
// Variants of the tuning knobs: add e.g. -DGEMV_MIN_BLOCKS=8 or -DGEMV_UNROLL=4 (the first line printed says
// which were used).
//
// Output: one line per (precision, shape, batch): microseconds per launch, weight GB/s, % of copy bandwidth;
// then the summed time of one decode step's GEMVs (22 layers + classifier) against the bandwidth bound.
// Exit status 1 if a correctness check fails. Weights rotate over enough copies to defeat the L2 cache.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "spotserve_kernels.cu"

#define CHECK(call)                                                                                 \
    do {                                                                                            \
        cudaError_t e_ = (call);                                                                    \
        if (e_ != cudaSuccess) {                                                                    \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(2);                                                                           \
        }                                                                                           \
    } while (0)

// Deterministic pseudo-random fill in [-1, 1).
__global__ void fill_random(float* p, long long count, unsigned seed) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count;
         i += (long long) gridDim.x * blockDim.x) {
        unsigned h = (unsigned) i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = (h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

static unsigned gemvGrid(int rows) { return (unsigned) ((rows + GEMV_ROWS_PER_BLOCK - 1) / GEMV_ROWS_PER_BLOCK); }

static void launchGemv(bool f16, const void* w, int n, int rows, const float* x, int batch, float* out, int acc) {
    if (f16) {
        gemv_f16<<<gemvGrid(rows), GEMV_ROWS_PER_BLOCK * WARP>>>((const __half*) w, n, rows, x, n, batch, out, rows,
                                                                 acc);
    } else {
        gemv_f32<<<gemvGrid(rows), GEMV_ROWS_PER_BLOCK * WARP>>>((const float*) w, n, rows, x, n, batch, out, rows,
                                                                 acc);
    }
}

// Copy bandwidth (bytes read + bytes written per second) of a 1 GiB device-to-device copy.
static double copyBandwidth() {
    size_t bytes = 1ull << 30;
    void *a, *b;
    CHECK(cudaMalloc(&a, bytes));
    CHECK(cudaMalloc(&b, bytes));
    CHECK(cudaMemset(a, 1, bytes));
    cudaEvent_t s, e;
    CHECK(cudaEventCreate(&s));
    CHECK(cudaEventCreate(&e));
    CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(s));
    for (int i = 0; i < 10; i++) CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(e));
    CHECK(cudaEventSynchronize(e));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, s, e));
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    return 2.0 * bytes * 10 / (ms * 1e-3);
}

// One shape and batch against a host reference; exercises the batch-1, cooperative and scalar paths.
static bool checkCase(bool f16, int n, int rows, int batch, int acc) {
    size_t wCount = (size_t) rows * n;
    float *dw, *dx, *dout;
    __half* dh;
    CHECK(cudaMalloc(&dw, wCount * 4));
    CHECK(cudaMalloc(&dh, wCount * 2));
    CHECK(cudaMalloc(&dx, (size_t) batch * n * 4));
    CHECK(cudaMalloc(&dout, (size_t) batch * rows * 4));
    fill_random<<<256, 256>>>(dw, (long long) wCount, 1u + n);
    fill_random<<<256, 256>>>(dx, (long long) batch * n, 7u + batch);
    fill_random<<<256, 256>>>(dout, (long long) batch * rows, 11u);
    f32_to_f16<<<256, 256>>>(dw, dh, (long long) wCount);
    std::vector<float> w(wCount), x((size_t) batch * n), prior((size_t) batch * rows), got(prior.size());
    std::vector<__half> h(wCount);
    CHECK(cudaMemcpy(w.data(), dw, wCount * 4, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(h.data(), dh, wCount * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(x.data(), dx, x.size() * 4, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(prior.data(), dout, prior.size() * 4, cudaMemcpyDeviceToHost));
    launchGemv(f16, f16 ? (const void*) dh : (const void*) dw, n, rows, dx, batch, dout, acc);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost));
    double worst = 0;
    bool ok = true;
    for (int b = 0; b < batch; b++) {
        for (int r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (int k = 0; k < n; k++) {
                double wv = f16 ? (double) __half2float(h[(size_t) r * n + k]) : w[(size_t) r * n + k];
                s += wv * x[(size_t) b * n + k];
                mag += std::fabs(wv * x[(size_t) b * n + k]);
            }
            size_t i = (size_t) b * rows + r;
            double want = (acc ? prior[i] : 0.0) + s, tol = 1e-5 * std::sqrt((double) n) * mag + 1e-6;
            double err = std::fabs(got[i] - want);
            worst = std::fmax(worst, err / tol);
            if (!(err <= tol)) ok = false;
        }
    }
    std::printf("%s gemv_%s n=%d rows=%d batch=%d acc=%d (worst error %.2f of tolerance)\n", ok ? "PASS" : "FAIL",
                f16 ? "f16" : "f32", n, rows, batch, acc, worst);
    CHECK(cudaFree(dw));
    CHECK(cudaFree(dh));
    CHECK(cudaFree(dx));
    CHECK(cudaFree(dout));
    return ok;
}

// Microseconds per launch, weights rotating over copies that together exceed 4x the L2 cache.
static double timeGemv(bool f16, int n, int rows, int batch, int l2Bytes) {
    size_t bytes = (size_t) rows * n * (f16 ? 2 : 4);
    int copies = (int) std::fmax(2.0, std::ceil(4.0 * l2Bytes / (double) bytes));
    std::vector<void*> w(copies);
    for (int c = 0; c < copies; c++) {
        CHECK(cudaMalloc(&w[c], bytes));
        CHECK(cudaMemset(w[c], 0x11, bytes));  // 0x1111: a small finite half / float
    }
    float *x, *out;
    CHECK(cudaMalloc(&x, (size_t) batch * n * 4));
    CHECK(cudaMalloc(&out, (size_t) batch * rows * 4));
    fill_random<<<256, 256>>>(x, (long long) batch * n, 3u);
    for (int i = 0; i < copies; i++) launchGemv(f16, w[i], n, rows, x, batch, out, 1);
    int iters = (int) std::fmax(50.0, std::fmin(2000.0, 2e9 / bytes));
    cudaEvent_t s, e;
    CHECK(cudaEventCreate(&s));
    CHECK(cudaEventCreate(&e));
    CHECK(cudaEventRecord(s));
    for (int i = 0; i < iters; i++) launchGemv(f16, w[i % copies], n, rows, x, batch, out, 1);
    CHECK(cudaEventRecord(e));
    CHECK(cudaEventSynchronize(e));
    CHECK(cudaGetLastError());
    float ms;
    CHECK(cudaEventElapsedTime(&ms, s, e));
    for (void* p : w) CHECK(cudaFree(p));
    CHECK(cudaFree(x));
    CHECK(cudaFree(out));
    return ms * 1e3 / iters;
}

int main() {
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    double copy = copyBandwidth();
    std::printf("device %s, %d SMs, L2 %d MiB; copy bandwidth (read + write) %.0f GB/s; GEMV_MIN_BLOCKS=%d "
                "GEMV_UNROLL=%d\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, copy / 1e9,
                GEMV_MIN_BLOCKS, GEMV_UNROLL);

    bool ok = true;
    for (bool f16 : {true, false}) {
        for (int batch : {1, 3, 8, 16, 17}) ok &= checkCase(f16, 2048, 37, batch, batch % 2);
        ok &= checkCase(f16, 5632, 9, 1, 0);
        ok &= checkCase(f16, 172, 5, 16, 1);  // n % 8 != 0 in fp16: the scalar path
    }

    struct Shape {
        const char* name;
        int n, rows, perStep;  // perStep: launches per decode step (22 layers, or 1 classifier)
    };
    const Shape shapes[] = {{"wqkv", 2048, 2560, 22}, {"wo", 2048, 2048, 22}, {"w13", 2048, 11264, 22},
                            {"w2", 5632, 2048, 22}, {"classifier", 2048, 32000, 1}};
    for (bool f16 : {true, false}) {
        for (int batch : {1, 8, 16}) {
            double stepUs = 0, stepBytes = 0;
            for (const Shape& s : shapes) {
                double us = timeGemv(f16, s.n, s.rows, batch, prop.l2CacheSize);
                double bytes = (double) s.n * s.rows * (f16 ? 2 : 4);
                std::printf("gemv_%s %-10s n=%5d rows=%5d batch=%2d: %8.2f us  %7.0f GB/s  %5.1f%% of copy\n",
                            f16 ? "f16" : "f32", s.name, s.n, s.rows, batch, us, bytes / us / 1e3,
                            100.0 * bytes / us / 1e3 / (copy / 1e9));
                stepUs += us * s.perStep;
                stepBytes += bytes * s.perStep;
            }
            std::printf("gemv_%s batch=%2d decode step GEMVs: %.3f ms vs bound %.3f ms (%.1f%%)\n", f16 ? "f16" : "f32",
                        batch, stepUs / 1e3, stepBytes / copy * 1e3, 100.0 * (stepBytes / copy * 1e6) / stepUs);
        }
    }
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
