// CPU emulation test of every kernel in spotserve_kernels.cu (run by KernelEmulationTest; no GPU needed).
// The REAL .cu is compiled with g++ through cuda_cpu_shim.h and each kernel is run on seeded random inputs
// and edge cases, then compared with a brute-force reference computed here in double precision (or exactly,
// for gathers, conversions and argmax). fp16 references decode halves with the compiler's _Float16, an
// implementation independent of the shim's conversions. Every output buffer carries sentinel elements around
// and between its rows, so a write outside the expected region fails too.
//
// Build and run by hand (from spotserve-cuda/):
//   g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -Wno-unknown-pragmas -Isrc/test/native -Isrc/main/cuda
//       -DLAUNCH_THREADS=256 -DLAUNCH_ATTENTION_THREADS=128 src/test/native/kernels_test.cpp -o target/kernels_test
//   target/kernels_test          # one line per kernel/case: "PASS <kernel> <case>" or "FAIL <kernel> <case>: ..."
// Exit status 0 only if every case passed.
#include "cuda_cpu_shim.h"
#include "spotserve_kernels.cu"

#include <algorithm>
#include <cinttypes>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <sstream>

// Launch.THREADS and Launch.ATTENTION_THREADS (KernelEmulationTest passes the Java values).
#ifndef LAUNCH_THREADS
#define LAUNCH_THREADS 256
#endif
#ifndef LAUNCH_ATTENTION_THREADS
#define LAUNCH_ATTENTION_THREADS 128
#endif

using cuda_shim::launch;

namespace {

constexpr float SENTINEL = -7777.25f;
int failures = 0;
std::set<std::string> checked;
std::mt19937 rng(20241124);

float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
int uniformInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// Reference fp16 conversions (the compiler's _Float16: IEEE binary16, round to nearest even).
float refHalfToFloat(uint16_t bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return (float) h;
}
uint16_t refFloatToHalf(float f) {
    _Float16 h = (_Float16) f;
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}

// A 64-byte aligned host buffer; `at(offset)` gives deliberately misaligned views.
template <typename T>
struct Buf {
    explicit Buf(size_t n, T fill = T{}) : n(n) {
        p = static_cast<T*>(std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64 + 1) * 64));
        std::fill(p, p + n, fill);
        cuda_shim::allow_reads(p, n * sizeof(T));  // vector loads past the n elements fail the run
    }
    ~Buf() {
        cuda_shim::forbid_reads(p);
        std::free(p);
    }
    Buf(const Buf&) = delete;
    T& operator[](size_t i) { return p[i]; }
    T* p;
    size_t n;
};

std::string fmtCase(const char* kernel, const std::string& desc) { return std::string(kernel) + " " + desc; }

void report(const char* kernel, const std::string& desc, const std::string& error) {
    checked.insert(kernel);
    if (error.empty()) {
        std::printf("PASS %s %s\n", kernel, desc.c_str());
    } else {
        failures++;
        std::printf("FAIL %s %s: %s\n", kernel, desc.c_str(), error.c_str());
    }
    std::fflush(stdout);
}

void begin(const char* kernel, const std::string& desc) { cuda_shim::current_case = fmtCase(kernel, desc); }

// Compares a float buffer with expectations: exact (bitwise-equal value, NaN == NaN) where tol < 0,
// else |got - want| <= tol. Returns "" or the first mismatch.
std::string compare(const float* got, const std::vector<double>& want, const std::vector<double>& tol) {
    for (size_t i = 0; i < want.size(); i++) {
        double g = got[i], w = want[i];
        bool ok;
        if (tol[i] < 0) {
            ok = (std::isnan(g) && std::isnan(w)) || g == w;
        } else {
            ok = std::isfinite(g) && std::fabs(g - w) <= tol[i];
        }
        if (!ok) {
            std::ostringstream s;
            s.precision(9);
            s << "element " << i << " is " << g << ", expected " << w;
            if (tol[i] >= 0) s << " +- " << tol[i];
            return s.str();
        }
    }
    return "";
}

// Expectation of a whole buffer: starts as "unchanged" (exact) everywhere.
struct Expect {
    explicit Expect(const float* initial, size_t n) : want(initial, initial + n), tol(n, -1.0) {}
    void set(size_t i, double w, double t) {
        want[i] = w;
        tol[i] = t;
    }
    std::vector<double> want, tol;
};

// ------------------------------------------------------------------------------------------------- gemv

template <bool F16>
void gemvCase(int n, int rows, int batch, int accumulate, int wOffset, int xOffset, int xPad, const char* what) {
    const char* kernel = F16 ? "gemv_f16" : "gemv_f32";
    int xStride = n + xPad, outStride = rows + 3;
    std::ostringstream d;
    d << "n=" << n << " rows=" << rows << " batch=" << batch << " acc=" << accumulate << " xStride=" << xStride
      << " " << what;
    begin(kernel, d.str());
    size_t wCount = (size_t) rows * n + wOffset;
    Buf<float> wf(wCount);
    Buf<uint16_t> wh(wCount);
    std::vector<float> wv((size_t) rows * n);  // the weight values the kernel sees
    for (size_t i = 0; i < wv.size(); i++) {
        float v = uniform(-1, 1);
        if (F16) {
            uint16_t h = refFloatToHalf(v);
            wh[wOffset + i] = h;
            v = refHalfToFloat(h);
        } else {
            wf[wOffset + i] = v;
        }
        wv[i] = v;
    }
    Buf<float> x((size_t) batch * xStride + xOffset + 4, std::numeric_limits<float>::quiet_NaN());
    for (int b = 0; b < batch; b++) {
        for (int k = 0; k < n; k++) x[xOffset + (size_t) b * xStride + k] = uniform(-1, 1);
    }
    size_t outCount = (size_t) batch * outStride + 5;
    Buf<float> out(outCount, SENTINEL);
    for (int b = 0; b < batch; b++) {
        for (int r = 0; r < rows; r++) out[(size_t) b * outStride + r] = accumulate ? uniform(-4, 4) : SENTINEL;
    }
    Expect e(out.p, outCount);
    for (int b = 0; b < batch; b++) {
        for (int r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (int k = 0; k < n; k++) {
                double p = (double) wv[(size_t) r * n + k] * x[xOffset + (size_t) b * xStride + k];
                s += p;
                mag += std::fabs(p);
            }
            size_t i = (size_t) b * outStride + r;
            double prior = accumulate ? out[i] : 0.0;
            e.set(i, prior + s, 1e-5 * std::sqrt((double) n) * mag + 1e-6 * std::fabs(prior) + 1e-30);
        }
    }
    dim3 grid{(unsigned) ((rows + GEMV_ROWS_PER_BLOCK - 1) / GEMV_ROWS_PER_BLOCK)}, block{GEMV_ROWS_PER_BLOCK * WARP};
    cuda_shim::vector_loads = 0;
    if (F16) {
        launch(gemv_f16, grid, block, 0, reinterpret_cast<const __half*>(wh.p + wOffset), n, rows, x.p + xOffset,
               xStride, batch, out.p, outStride, accumulate);
    } else {
        launch(gemv_f32, grid, block, 0, wf.p + wOffset, n, rows, x.p + xOffset, xStride, batch, out.p, outStride,
               accumulate);
    }
    std::string err = compare(out.p, e.want, e.tol);
    bool vector = std::strncmp(what, "vector", 6) == 0;
    if (err.empty() && vector != (cuda_shim::vector_loads > 0)) {
        err = vector ? "took the scalar path on aligned inputs" : "used vector loads on misaligned inputs";
    }
    report(kernel, d.str(), err);
}

template <bool F16>
void gemvCases() {
    // Vector path; n leaves a remainder after the unrolled steps of every tile size (261 or 259 16-byte chunks:
    // two steps of 32 lanes x GEMV_UNROLL chunks at batch 1, the last one partial).
    int nv = F16 ? 8 * (32 * GEMV_UNROLL + 5) : 4 * (32 * GEMV_UNROLL + 3);
    for (int acc = 0; acc <= 1; acc++) {
        for (int batch : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17}) {
            if (acc == 0 && (batch == 2 || batch == 4 || batch == 5 || batch == 6 || batch == 7)) continue;
            gemvCase<F16>(nv, 5, batch, acc, 0, 0, 4, "vector");
        }
    }
    gemvCase<F16>(F16 ? 8 : 4, 4, 3, 1, 0, 0, 0, "vector one chunk");
    gemvCase<F16>(2048, 9, 1, 0, 0, 0, 0, "vector LLaMA width");
    gemvCase<F16>(2048, 9, 16, 1, 0, 0, 0, "vector LLaMA width");
    gemvCase<F16>(F16 ? 64 : 32, 3, 8, 1, 0, 0, 4, "vector fewer rows than a block");
    gemvCase<F16>(F16 ? 64 : 32, 2, 2, 0, 0, 0, 4, "vector fewer rows than a block");
    gemvCase<F16>(256, 1, 64, 1, 0, 0, 0, "vector batch 64");
    // Scalar path: n not a multiple of the vector width, misaligned w / x, x stride not a multiple of 4.
    gemvCase<F16>(37, 6, 1, 0, 0, 0, 1, "scalar n%8");
    gemvCase<F16>(37, 6, 9, 1, 0, 0, 2, "scalar n%8");
    gemvCase<F16>(F16 ? 44 : 42, 7, 3, 0, 0, 0, 0, "scalar n%vec (rows aligned only for the first)");
    gemvCase<F16>(64, 5, 3, 1, 1, 0, 0, "scalar misaligned w");
    gemvCase<F16>(64, 5, 2, 0, 0, 1, 0, "scalar misaligned x");
    gemvCase<F16>(64, 5, 17, 1, 0, 0, 1, "scalar x stride %4");
}

// ------------------------------------------------------------------------------------------------- norms

template <bool F16>
void rmsnormCase(int size, int batch, int pad, float amplitude = 3.0f) {
    const char* kernel = F16 ? "rmsnorm_h" : "rmsnorm";
    int xStride = size + pad, oStride = size + 2 * pad + 1;
    std::ostringstream d;
    d << "size=" << size << " batch=" << batch << " xStride=" << xStride << " oStride=" << oStride
      << " |x|<=" << amplitude;
    begin(kernel, d.str());
    Buf<float> x((size_t) batch * xStride, std::numeric_limits<float>::quiet_NaN());
    for (int b = 0; b < batch; b++) {
        for (int j = 0; j < size; j++) x[(size_t) b * xStride + j] = uniform(-amplitude, amplitude);
    }
    Buf<float> wf(size);
    Buf<uint16_t> wh(size);
    std::vector<double> w(size);
    for (int j = 0; j < size; j++) {
        float v = uniform(0.5f, 1.5f);
        wh[j] = refFloatToHalf(v);
        if (F16) v = refHalfToFloat(wh[j]);
        wf[j] = v;
        w[j] = v;
    }
    size_t oCount = (size_t) batch * oStride + 3;
    Buf<float> o(oCount, SENTINEL);
    Expect e(o.p, oCount);
    for (int b = 0; b < batch; b++) {
        double ss = 0;
        for (int j = 0; j < size; j++) ss += (double) x[(size_t) b * xStride + j] * x[(size_t) b * xStride + j];
        double inv = 1.0 / std::sqrt(ss / size + 1e-5);
        for (int j = 0; j < size; j++) {
            double v = w[j] * inv * x[(size_t) b * xStride + j];
            e.set((size_t) b * oStride + j, v, 1e-5 * std::sqrt((double) size) * std::fabs(v) + 1e-7);
        }
    }
    if (F16) {
        launch(rmsnorm_h, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, o.p, oStride, x.p, xStride,
               reinterpret_cast<const __half*>(wh.p), size);
    } else {
        launch(rmsnorm, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, o.p, oStride, x.p, xStride, wf.p, size);
    }
    report(kernel, d.str(), compare(o.p, e.want, e.tol));
}

template <bool F16>
void rmsnormSelectCase(int size, std::vector<int> rowMap) {
    const char* kernel = F16 ? "rmsnorm_select_h" : "rmsnorm_select";
    int batch = (int) rowMap.size();
    int outRows = 1 + *std::max_element(rowMap.begin(), rowMap.end());
    std::ostringstream d;
    d << "size=" << size << " rowMap=";
    for (int r : rowMap) d << r << ",";
    begin(kernel, d.str());
    Buf<float> x((size_t) batch * size);
    for (size_t i = 0; i < x.n; i++) x[i] = uniform(-2, 2);
    Buf<float> wf(size);
    Buf<uint16_t> wh(size);
    for (int j = 0; j < size; j++) {
        wh[j] = refFloatToHalf(uniform(0.5f, 1.5f));
        wf[j] = F16 ? refHalfToFloat(wh[j]) : uniform(0.5f, 1.5f);
    }
    Buf<int> map(batch);
    std::copy(rowMap.begin(), rowMap.end(), map.p);
    size_t oCount = (size_t) (outRows + 1) * size;  // one spare row that no entry maps to
    Buf<float> o(oCount, SENTINEL);
    Expect e(o.p, oCount);
    for (int b = 0; b < batch; b++) {
        if (rowMap[b] < 0) continue;
        double ss = 0;
        for (int j = 0; j < size; j++) ss += (double) x[(size_t) b * size + j] * x[(size_t) b * size + j];
        double inv = 1.0 / std::sqrt(ss / size + 1e-5);
        for (int j = 0; j < size; j++) {
            double v = (double) wf[j] * inv * x[(size_t) b * size + j];
            e.set((size_t) rowMap[b] * size + j, v, 1e-5 * std::sqrt((double) size) * std::fabs(v) + 1e-7);
        }
    }
    if (F16) {
        launch(rmsnorm_select_h, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, o.p, x.p,
               reinterpret_cast<const __half*>(wh.p), size, map.p);
    } else {
        launch(rmsnorm_select, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, o.p, x.p, wf.p, size, map.p);
    }
    report(kernel, d.str(), compare(o.p, e.want, e.tol));
}

// ------------------------------------------------------------------------------------------ rope, attention

void ropeStoreCase(int heads, int kvHeads, int hs, std::vector<int> pos, std::vector<int> caps) {
    const char* kernel = "rope_store";
    int batch = (int) pos.size(), qDim = heads * hs, kvDim = kvHeads * hs, qkvRows = qDim + 2 * kvDim + 3;
    int layers = 2, layer = 1, maxPos = 1 + *std::max_element(caps.begin(), caps.end());
    std::ostringstream d;
    d << "heads=" << heads << " kvHeads=" << kvHeads << " hs=" << hs << " batch=" << batch << " pos=";
    for (int p : pos) d << p << ",";
    begin(kernel, d.str());
    Buf<float> qkv((size_t) batch * qkvRows);
    for (size_t i = 0; i < qkv.n; i++) qkv[i] = uniform(-2, 2);
    Buf<float> rope((size_t) maxPos * hs);  // [pos][hs/2][cos, sin]
    for (int p = 0; p < maxPos; p++) {
        for (int i = 0; i < hs / 2; i++) {
            double a = p * std::pow(10000.0, -2.0 * i / hs);
            rope[((size_t) p * (hs / 2) + i) * 2] = (float) std::cos(a);
            rope[((size_t) p * (hs / 2) + i) * 2 + 1] = (float) std::sin(a);
        }
    }
    std::vector<std::unique_ptr<Buf<float>>> cache;
    Buf<unsigned long long> addr(batch);
    Buf<int> posB(batch), capB(batch);
    for (int b = 0; b < batch; b++) {
        cache.push_back(std::make_unique<Buf<float>>((size_t) layers * 2 * caps[b] * kvDim, SENTINEL));
        addr[b] = reinterpret_cast<unsigned long long>(cache[b]->p);
        posB[b] = pos[b];
        capB[b] = caps[b];
    }
    Expect eq(qkv.p, qkv.n);
    std::vector<Expect> ec;
    for (int b = 0; b < batch; b++) ec.emplace_back(cache[b]->p, cache[b]->n);
    auto rot = [&](int p, int i, float v0, float v1, double* r0, double* r1) {
        size_t t = ((size_t) p * (hs / 2) + (i % hs) / 2) * 2;
        double c = rope[t], s = rope[t + 1];
        *r0 = v0 * c - v1 * s;
        *r1 = v0 * s + v1 * c;
    };
    for (int b = 0; b < batch; b++) {
        const float* q = qkv.p + (size_t) b * qkvRows;
        for (int i = 0; i < qDim; i += 2) {
            double r0, r1;
            rot(pos[b], i, q[i], q[i + 1], &r0, &r1);
            eq.set((size_t) b * qkvRows + i, r0, 1e-6 * (std::fabs(q[i]) + std::fabs(q[i + 1])));
            eq.set((size_t) b * qkvRows + i + 1, r1, 1e-6 * (std::fabs(q[i]) + std::fabs(q[i + 1])));
        }
        const float* k = q + qDim;
        const float* v = k + kvDim;
        size_t kOff = ((size_t) (layer * 2) * caps[b] + pos[b]) * kvDim;
        size_t vOff = ((size_t) (layer * 2 + 1) * caps[b] + pos[b]) * kvDim;
        for (int i = 0; i < kvDim; i += 2) {
            double r0, r1;
            rot(pos[b], i, k[i], k[i + 1], &r0, &r1);
            ec[b].set(kOff + i, r0, 1e-6 * (std::fabs(k[i]) + std::fabs(k[i + 1])));
            ec[b].set(kOff + i + 1, r1, 1e-6 * (std::fabs(k[i]) + std::fabs(k[i + 1])));
            ec[b].set(vOff + i, v[i], -1);
            ec[b].set(vOff + i + 1, v[i + 1], -1);
        }
    }
    launch(rope_store, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, qkv.p, qkvRows, qDim, kvDim, hs, rope.p,
           posB.p, addr.p, capB.p, layer);
    std::string err = compare(qkv.p, eq.want, eq.tol);
    if (!err.empty()) err = "qkv " + err;
    for (int b = 0; b < batch && err.empty(); b++) {
        err = compare(cache[b]->p, ec[b].want, ec[b].tol);
        if (!err.empty()) err = "cache of entry " + std::to_string(b) + ": " + err;
    }
    report(kernel, d.str(), err);
}

// sharedBytes: what the launch passes (a bucket >= the longest entry's scores, possibly much larger).
void attentionCase(int heads, int kvHeads, int hs, std::vector<int> pos, size_t sharedBytes) {
    const char* kernel = "attention";
    int batch = (int) pos.size(), qDim = heads * hs, kvDim = kvHeads * hs, qkvRows = qDim + 2 * kvDim + 1;
    int group = heads / kvHeads, layers = 2, layer = 1;
    std::ostringstream d;
    d << "heads=" << heads << " kvHeads=" << kvHeads << " hs=" << hs << " shared=" << sharedBytes << " pos=";
    for (int p : pos) d << p << ",";
    begin(kernel, d.str());
    Buf<float> qkv((size_t) batch * qkvRows);
    for (size_t i = 0; i < qkv.n; i++) qkv[i] = uniform(-1.5f, 1.5f);
    std::vector<std::unique_ptr<Buf<float>>> cache;
    Buf<unsigned long long> addr(batch);
    Buf<int> posB(batch), capB(batch);
    for (int b = 0; b < batch; b++) {
        int cap = pos[b] + 1 + b;  // positions after pos[b] hold NaN: the kernel must not read them
        cache.push_back(std::make_unique<Buf<float>>((size_t) layers * 2 * cap * kvDim,
                                                     std::numeric_limits<float>::quiet_NaN()));
        for (int kv = 0; kv < 2; kv++) {
            for (int l = 0; l < layers; l++) {
                for (int t = 0; t <= pos[b]; t++) {
                    for (int j = 0; j < kvDim; j++) {
                        (*cache[b])[(((size_t) l * 2 + kv) * cap + t) * kvDim + j] = uniform(-1.5f, 1.5f);
                    }
                }
            }
        }
        addr[b] = reinterpret_cast<unsigned long long>(cache[b]->p);
        posB[b] = pos[b];
        capB[b] = cap;
    }
    size_t attCount = (size_t) batch * qDim + 2;
    Buf<float> att(attCount, SENTINEL);
    Expect e(att.p, attCount);
    float scale = std::sqrt((float) hs);
    for (int b = 0; b < batch; b++) {
        int cap = capB[b], n = pos[b] + 1;
        const float* kb = cache[b]->p + (size_t) (layer * 2) * cap * kvDim;
        const float* vb = cache[b]->p + (size_t) (layer * 2 + 1) * cap * kvDim;
        for (int h = 0; h < heads; h++) {
            const float* q = qkv.p + (size_t) b * qkvRows + h * hs;
            int kvh = (h / group) * hs;
            std::vector<double> p(n);
            double m = -1e300, sum = 0;
            for (int t = 0; t < n; t++) {
                double s = 0;
                for (int j = 0; j < hs; j++) s += (double) q[j] * kb[(size_t) t * kvDim + kvh + j];
                p[t] = s / scale;
                m = std::max(m, p[t]);
            }
            for (int t = 0; t < n; t++) sum += p[t] = std::exp(p[t] - m);
            for (int j = 0; j < hs; j++) {
                double o = 0, mag = 0;
                for (int t = 0; t < n; t++) {
                    o += p[t] / sum * vb[(size_t) t * kvDim + kvh + j];
                    mag += p[t] / sum * std::fabs(vb[(size_t) t * kvDim + kvh + j]);
                }
                e.set((size_t) b * qDim + h * hs + j, o, 1e-5 * std::sqrt((double) n * hs) * mag + 1e-7);
            }
        }
    }
    launch(attention, dim3{(unsigned) batch, (unsigned) heads}, dim3{LAUNCH_ATTENTION_THREADS}, sharedBytes, qkv.p,
           qkvRows, att.p, qDim, kvDim, hs, group, posB.p, addr.p, capB.p, layer, scale);
    report(kernel, d.str(), compare(att.p, e.want, e.tol));
}

// Power-of-two bucket of the scores' bytes, as the Java side sizes the launch for graph reuse.
size_t bucket(int positions) {
    size_t b = 4;
    while (b < (size_t) positions * 4) b *= 2;
    return b;
}

// ------------------------------------------------------------------------------------- element-wise, misc

void swigluCase(int f, int batch, unsigned grid) {
    const char* kernel = "swiglu";
    std::ostringstream d;
    d << "f=" << f << " batch=" << batch << " grid=" << grid;
    begin(kernel, d.str());
    Buf<float> h13((size_t) batch * 2 * f);
    for (size_t i = 0; i < h13.n; i++) h13[i] = uniform(-6, 6);
    size_t count = (size_t) f * batch + 3;
    Buf<float> hb(count, SENTINEL);
    Expect e(hb.p, count);
    for (int b = 0; b < batch; b++) {
        for (int j = 0; j < f; j++) {
            double a = h13[(size_t) b * 2 * f + j], g = h13[(size_t) b * 2 * f + f + j];
            double v = a / (1 + std::exp(-a)) * g;
            e.set((size_t) b * f + j, v, 1e-6 * std::fabs(v) + 1e-7);
        }
    }
    launch(swiglu, dim3{grid}, dim3{LAUNCH_THREADS}, 0, h13.p, hb.p, f, batch);
    report(kernel, d.str(), compare(hb.p, e.want, e.tol));
}

void addInplaceCase(int count, unsigned grid) {
    const char* kernel = "add_inplace";
    std::ostringstream d;
    d << "count=" << count << " grid=" << grid;
    begin(kernel, d.str());
    Buf<float> x(count + 2, SENTINEL), y(count);
    for (int i = 0; i < count; i++) {
        x[i] = uniform(-5, 5);
        y[i] = uniform(-5, 5);
    }
    Expect e(x.p, x.n);
    for (int i = 0; i < count; i++) e.set(i, (double) (x[i] + y[i]), -1);  // one float add: exact
    launch(add_inplace, dim3{grid}, dim3{LAUNCH_THREADS}, 0, x.p, y.p, count);
    report(kernel, d.str(), compare(x.p, e.want, e.tol));
}

template <bool F16>
void embedCase(int dim, int v0, int vLocal, std::vector<int> tokens, bool allHalfPatterns) {
    const char* kernel = F16 ? "embed_h" : "embed";
    int batch = (int) tokens.size();
    std::ostringstream d;
    d << "dim=" << dim << " shard=[" << v0 << "," << v0 + vLocal << ") tokens=" << batch
      << (allHalfPatterns ? " (all 65536 half bit patterns)" : "");
    begin(kernel, d.str());
    Buf<float> ef((size_t) vLocal * dim);
    Buf<uint16_t> eh((size_t) vLocal * dim);
    for (size_t i = 0; i < ef.n; i++) {
        ef[i] = uniform(-1, 1);
        eh[i] = allHalfPatterns ? (uint16_t) i : refFloatToHalf(uniform(-1, 1));
    }
    Buf<int> tok(batch);
    std::copy(tokens.begin(), tokens.end(), tok.p);
    size_t count = (size_t) batch * dim + 2;
    Buf<float> x(count, SENTINEL);
    Expect e(x.p, count);
    for (int b = 0; b < batch; b++) {
        int t = tokens[b] - v0;
        for (int j = 0; j < dim; j++) {
            double v = 0;
            if (t >= 0 && t < vLocal) v = F16 ? refHalfToFloat(eh[(size_t) t * dim + j]) : ef[(size_t) t * dim + j];
            e.set((size_t) b * dim + j, v, -1);
        }
    }
    if (F16) {
        launch(embed_h, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, x.p, reinterpret_cast<const __half*>(eh.p),
               tok.p, v0, vLocal, dim);
    } else {
        launch(embed, dim3{(unsigned) batch}, dim3{LAUNCH_THREADS}, 0, x.p, ef.p, tok.p, v0, vLocal, dim);
    }
    report(kernel, d.str(), compare(x.p, e.want, e.tol));
}

void f32ToF16Case(unsigned grid) {
    const char* kernel = "f32_to_f16";
    std::vector<float> src = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, -1e9f,
                              std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                              std::numeric_limits<float>::quiet_NaN(), 6.1035156e-05f /* 2^-14 */,
                              5.9604645e-08f /* 2^-24 */, 2.9802322e-08f /* 2^-25: tie to zero */,
                              2.9802326e-08f, 8.940697e-08f /* 1.5 * 2^-24: tie to even (2) */, 1e-10f,
                              std::numeric_limits<float>::denorm_min()};
    // Ties and their neighbours at every exponent: a half's midpoints are exactly representable in float.
    for (int e = -24; e <= 15; e++) {
        for (int m : {0, 1, 2, 3, 1023}) {
            float base = std::ldexp(1.0f + m / 1024.0f, e), ulp = std::ldexp(1.0f, e - 10);
            float tie = base + ulp / 2;
            for (float f : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 1e30f)}) {
                src.push_back(f);
                src.push_back(-f);
            }
        }
    }
    while (src.size() < 3000) src.push_back(std::ldexp(uniform(-1, 1), uniformInt(-30, 17)));
    std::ostringstream d;
    d << "count=" << src.size() << " grid=" << grid << " (specials, ties at every exponent, random)";
    begin(kernel, d.str());
    Buf<float> s(src.size());
    std::copy(src.begin(), src.end(), s.p);
    Buf<uint16_t> dst(src.size() + 2, 0xbeef);
    launch(f32_to_f16, dim3{grid}, dim3{LAUNCH_THREADS}, 0, s.p, reinterpret_cast<__half*>(dst.p),
           (long long) src.size());
    std::string err;
    for (size_t i = 0; i < src.size() && err.empty(); i++) {
        uint16_t want = refFloatToHalf(src[i]), got = dst[i];
        bool nanOk = std::isnan(src[i]) && (got & 0x7c00) == 0x7c00 && (got & 0x3ff) != 0;
        if (got != want && !nanOk) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "element %zu (%.9g) converted to 0x%04x, expected 0x%04x", i, src[i], got,
                          want);
            err = buf;
        }
    }
    for (size_t i = src.size(); i < dst.n && err.empty(); i++) {
        if (dst[i] != 0xbeef) err = "wrote past the end";
    }
    report(kernel, d.str(), err);
}

void argmaxCase(const char* what, int n, std::function<void(std::vector<float>&)> fill, int expected) {
    const char* kernel = "argmax_rows";
    std::ostringstream d;
    d << what << " n=" << n;
    begin(kernel, d.str());
    // Two rows: the case and a random row after it (rows are independent blocks).
    std::vector<float> row(n);
    for (float& v : row) v = uniform(-3, 3);
    fill(row);
    Buf<float> logits((size_t) 2 * n);
    std::copy(row.begin(), row.end(), logits.p);
    for (int j = 0; j < n; j++) logits[(size_t) n + j] = uniform(-3, 3);
    int want1 = (int) (std::max_element(logits.p + n, logits.p + 2 * n) - (logits.p + n));  // first max
    int want0 = expected >= 0 ? expected : (int) (std::max_element(row.begin(), row.end()) - row.begin());
    Buf<int> out(3, -99);
    launch(argmax_rows, dim3{2}, dim3{LAUNCH_THREADS}, 0, logits.p, n, out.p);
    std::string err;
    if (out[0] != want0 || out[1] != want1 || out[2] != -99) {
        err = "got " + std::to_string(out[0]) + ", " + std::to_string(out[1]) + " expected " + std::to_string(want0)
              + ", " + std::to_string(want1) + (out[2] != -99 ? " (wrote past the rows)" : "");
    }
    report(kernel, d.str(), err);
}

void softmaxCase(int n, int rows, float temperature) {
    const char* kernel = "softmax_rows";
    std::ostringstream d;
    d << "n=" << n << " rows=" << rows << " temperature=" << temperature;
    begin(kernel, d.str());
    Buf<float> l((size_t) rows * n + 2, SENTINEL);
    for (size_t i = 0; i < (size_t) rows * n; i++) l[i] = uniform(-8, 8);
    Expect e(l.p, l.n);
    for (int r = 0; r < rows; r++) {
        double m = -1e300, sum = 0;
        for (int j = 0; j < n; j++) m = std::max(m, (double) (l[(size_t) r * n + j] / temperature));
        for (int j = 0; j < n; j++) sum += std::exp((double) (l[(size_t) r * n + j] / temperature) - m);
        for (int j = 0; j < n; j++) {
            double p = std::exp((double) (l[(size_t) r * n + j] / temperature) - m) / sum;
            e.set((size_t) r * n + j, p, 1e-5 * std::sqrt((double) n) * p + 1e-9);
        }
    }
    launch(softmax_rows, dim3{(unsigned) rows}, dim3{LAUNCH_THREADS}, 0, l.p, n, temperature);
    report(kernel, d.str(), compare(l.p, e.want, e.tol));
}

}  // namespace

int main() {
    gemvCases<false>();
    gemvCases<true>();

    f32ToF16Case(2);
    f32ToF16Case(12);

    rmsnormCase<false>(64, 3, 0);
    rmsnormCase<false>(300, 2, 5);
    rmsnormCase<true>(64, 1, 0);
    rmsnormCase<true>(300, 3, 7);
    rmsnormCase<false>(100, 2, 0, 3e-3f);  // mean(x^2) ~ the 1e-5 epsilon: the epsilon shows
    rmsnormCase<true>(100, 2, 0, 3e-3f);
    rmsnormSelectCase<false>(300, {2, -1, 0, -1});
    rmsnormSelectCase<false>(48, {-1, 0});
    rmsnormSelectCase<true>(300, {-1, 1, -1, 0});
    rmsnormSelectCase<true>(48, {0});

    ropeStoreCase(4, 2, 8, {0, 7, 4}, {8, 16, 5});
    ropeStoreCase(10, 2, 64, {3, 0}, {6, 2});  // qDim 640 > 2 * threads: the stride loop

    attentionCase(4, 2, 8, {0, 5, 130}, bucket(131));      // pos 0; 131 positions > the block's threads
    attentionCase(4, 4, 16, {255, 3}, bucket(256));        // exactly fills its bucket; group 1
    attentionCase(6, 2, 8, {0}, 4096);                     // pos 0 in a 1024-float bucket; group 3
    attentionCase(2, 1, 32, {256, 200}, bucket(257));      // one past a power of two: next bucket, half used
    attentionCase(4, 2, 64, {40, 17}, bucket(41));         // LLaMA head size: two 32-lane slices of dims
    attentionCase(2, 2, 48, {9}, bucket(10));              // head size not a multiple of 32

    swigluCase(37, 3, 1);
    swigluCase(300, 2, 3);
    addInplaceCase(1000, 2);
    addInplaceCase(1000, 4);

    embedCase<false>(300, 10, 7, {12, 3, 16, 17, 10, 9, 0}, false);
    embedCase<true>(300, 10, 7, {12, 3, 16, 17, 10, 9, 0}, false);
    std::vector<int> all(64);
    for (int i = 0; i < 64; i++) all[i] = (i * 37) % 64;  // every row of the table, out of order
    embedCase<true>(1024, 0, 64, all, true);

    argmaxCase("random", 1000, [](std::vector<float>&) {}, -1);
    argmaxCase("ties across threads", 1000, [](std::vector<float>& r) { r[700] = r[444] = r[999] = 9.0f; }, 444);
    argmaxCase("ties within a thread", 1000, [](std::vector<float>& r) { r[3 + 256] = r[3 + 512] = 9.0f; }, 259);
    argmaxCase("tie at index 0", 300, [](std::vector<float>& r) { r[0] = r[256] = r[1] = 9.0f; }, 0);
    argmaxCase("max at the last index", 513, [](std::vector<float>& r) { r[512] = 9.0f; }, 512);
    argmaxCase("all -inf", 300, [](std::vector<float>& r) { std::fill(r.begin(), r.end(), -INFINITY); }, 0);
    argmaxCase("n=1", 1, [](std::vector<float>&) {}, 0);
    argmaxCase("n < threads", 37, [](std::vector<float>& r) { r[36] = r[20] = 9.0f; }, 20);

    softmaxCase(300, 3, 0.7f);
    softmaxCase(17, 1, 1.0f);

    std::printf("checked:");
    for (const std::string& k : checked) std::printf(" %s", k.c_str());
    std::printf("\n%s: %d failure(s)\n", failures == 0 ? "OK" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
