// CPU emulation of the CUDA subset spotserve_kernels.cu uses, so the REAL kernel source compiles with g++
// (C++20) and runs on a machine without a GPU (KernelEmulationTest). Semantics emulated:
//  * threadIdx / blockIdx / blockDim / gridDim are thread_local; launch() runs the blocks one after another
//    and each block's threads as std::threads, so every interleaving the OS picks is a legal GPU schedule;
//  * __shared__ locals are function statics (one block at a time, shared by its threads); dynamic shared
//    memory (SPOTSERVE_DYNAMIC_SHARED, a macro hook in the .cu) is a fresh buffer of exactly the launch's
//    size per block, filled with 0x7f bytes (3.4e38 floats) and followed by a canary checked after the block;
//  * __syncthreads is a std::barrier over the block, __shfl_xor_sync a per-warp exchange slot plus a warp
//    barrier; a returning thread leaves both barriers (arrive_and_drop), so early returns cannot deadlock, and
//    a shuffle in a warp with returned lanes, or with a partial mask, fails the run;
//  * __half is a 16-bit struct with round-to-nearest-even conversions written from the IEEE 754 definition;
//  * __ldg / __ldcs (the kernels' vector loads) fail the run on a pointer not aligned to the loaded type,
//    which is how the tests see that misaligned inputs take the scalar path, or outside the buffers the
//    harness registered (allow_reads);
//  * after each __syncthreads one warp is held back (rotating), so races on shared memory surface.
// A failure prints "FAIL shim: ..." with the running case and exits with status 3.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define SPOTSERVE_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(cuda_shim::dynamic_shared())

struct uint3 {
    unsigned int x = 0, y = 0, z = 0;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct __half {
    unsigned short bits;
};

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

namespace cuda_shim {

inline std::string current_case = "(none)";
// __ldg / __ldcs calls since the last reset: lets a test see which gemv path (vector or scalar) ran.
inline std::atomic<long> vector_loads{0};

// Address ranges a kernel may read with __ldg / __ldcs (the harness registers its buffers; changed only
// between launches). Empty = unchecked.
inline std::vector<std::pair<uintptr_t, uintptr_t>> readable;

inline void allow_reads(const void* p, size_t bytes) {
    readable.emplace_back(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes);
}

inline void forbid_reads(const void* p) {
    for (size_t i = 0; i < readable.size(); i++) {
        if (readable[i].first == reinterpret_cast<uintptr_t>(p)) {
            readable.erase(readable.begin() + (long) i);
            return;
        }
    }
}

[[noreturn]] inline void fail(const std::string& what) {
    static std::atomic_flag reported = ATOMIC_FLAG_INIT;
    if (!reported.test_and_set()) {  // threads failing together: one line
        std::fprintf(stdout, "FAIL shim: %s (case: %s)\n", what.c_str(), current_case.c_str());
        std::fflush(stdout);
        std::_Exit(3);
    }
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // the first thread is exiting the process
}

struct Warp {
    // When a shuffle's phase completes, exitedAtPhase records how many lanes had returned instead of
    // contributing a value (read by the lanes after they wake: the completion happens before).
    struct Snapshot {
        Warp* w;
        void operator()() noexcept { w->exitedAtPhase = w->exited.load(); }
    };
    std::barrier<Snapshot> bar{32, Snapshot{this}};
    std::atomic<int> exited{0};
    int exitedAtPhase = 0;
    uint64_t slot[2][32] = {};  // double-buffered: one barrier per shuffle suffices
};

struct Block {
    explicit Block(unsigned threads, size_t sharedBytes)
        : bar(threads), warps(threads / 32), shared(sharedBytes + kCanary) {
        // 3.4e38 as floats (not NaN, which fmaxf would skip): a read of a score never written, or past the
        // launch's size into the canary, shows up in the results
        std::memset(shared.data(), 0x7f, sharedBytes + kCanary);
        bytes = sharedBytes;
        for (auto& w : warps) w = std::make_unique<Warp>();
    }
    static constexpr size_t kCanary = 64;
    std::barrier<> bar;
    std::vector<std::unique_ptr<Warp>> warps;
    std::vector<unsigned char> shared;
    size_t bytes;
};

struct Thread {
    Block* block = nullptr;
    unsigned lane = 0, warp = 0, shuffles = 0, syncs = 0;
};
inline thread_local Thread self;

inline void* dynamic_shared() { return self.block->shared.data(); }

template <typename T>
inline T shfl_xor(unsigned mask, T v, int laneMask, int width) {
    static_assert(sizeof(T) <= sizeof(uint64_t));
    if (mask != 0xffffffffu || width != 32) fail("__shfl_xor_sync with a partial mask or width");
    Warp& w = *self.block->warps[self.warp];
    unsigned buf = self.shuffles++ & 1u;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slot[buf][self.lane] = bits;
    w.bar.arrive_and_wait();
    if (w.exitedAtPhase != 0) fail("__shfl_xor_sync in a warp with returned lanes");
    bits = w.slot[buf][(self.lane ^ (unsigned) laneMask) & 31u];
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}

template <typename T>
inline const T* check_aligned(const T* p, const char* what) {
    vector_loads.fetch_add(1, std::memory_order_relaxed);
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (a % alignof(T) != 0) {
        fail(std::string(what) + " of a " + std::to_string(sizeof(T)) + "-byte type at a misaligned address");
    }
    bool inside = readable.empty();
    for (const auto& r : readable) inside = inside || (a >= r.first && a + sizeof(T) <= r.second);
    if (!inside) fail(std::string(what) + " outside every input buffer");
    return p;
}

// Runs kernel<<<grid, block, sharedBytes>>>(args...) to completion on the CPU.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t sharedBytes, A... args) {
    if (block.x == 0 || block.x > 1024 || block.x % 32 != 0 || block.y != 1 || block.z != 1) {
        fail("block shape " + std::to_string(block.x) + " unsupported (1-D, a multiple of 32, <= 1024)");
    }
    for (unsigned by = 0; by < grid.y; by++) {
        for (unsigned bx = 0; bx < grid.x; bx++) {
            Block b(block.x, sharedBytes);
            std::vector<std::thread> threads;
            threads.reserve(block.x);
            for (unsigned tx = 0; tx < block.x; tx++) {
                threads.emplace_back([&, tx] {
                    threadIdx = uint3{tx, 0, 0};
                    blockIdx = uint3{bx, by, 0};
                    blockDim = block;
                    gridDim = grid;
                    self = Thread{&b, tx % 32, tx / 32, 0};
                    kernel(static_cast<P>(args)...);
                    Warp& w = *b.warps[tx / 32];
                    w.exited.fetch_add(1);
                    w.bar.arrive_and_drop();
                    b.bar.arrive_and_drop();
                });
            }
            for (auto& t : threads) t.join();
            for (size_t i = 0; i < Block::kCanary; i++) {
                if (b.shared[b.bytes + i] != 0x7f) fail("write past the dynamic shared memory of the launch");
            }
        }
    }
}

}  // namespace cuda_shim

// After each barrier one warp (rotating with the barrier count and the block) is held back briefly, so the
// other warps run ahead: a missing __syncthreads before shared memory is reused then shows up as a wrong
// result instead of depending on the OS scheduler.
inline void __syncthreads() {
    cuda_shim::Thread& t = cuda_shim::self;
    t.block->bar.arrive_and_wait();
    unsigned warps = (unsigned) t.block->warps.size();
    if (warps > 1 && t.warp == (t.syncs++ * 7u + blockIdx.x + blockIdx.y) % warps) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    return cuda_shim::shfl_xor(mask, v, laneMask, width);
}

template <typename T>
inline T __ldg(const T* p) { return *cuda_shim::check_aligned(p, "__ldg"); }

template <typename T>
inline T __ldcs(const T* p) { return *cuda_shim::check_aligned(p, "__ldcs"); }

// IEEE 754 binary32 -> binary16, round to nearest, ties to even; overflow to infinity; NaN stays NaN (quiet).
inline __half __float2half_rn(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return __half{(uint16_t) (sign | 0x7e00u | ((absx >> 13) & 0x3ffu))};
    if (absx == 0x7f800000u) return __half{(uint16_t) (sign | 0x7c00u)};
    int e = (int) (absx >> 23) - 127;                         // unbiased exponent (-127: zero or subnormal)
    uint32_t m = (absx & 0x7fffffu) | (e > -127 ? 0x800000u : 0u);  // significand with the hidden bit
    if (e == -127) e = -126;
    // value = m * 2^(e - 23); the half's unit in the last place is 2^(max(e, -14) - 10)
    int shift = 13 + (e < -14 ? -14 - e : 0);  // bits of m below the half's last place
    if (shift > 24) return __half{sign};        // below half of the smallest subnormal: rounds to zero
    uint32_t q = m >> shift;
    uint32_t rest = m & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) q++;
    // q counts units of the last place: assemble exponent and fraction (a carry into the exponent is right)
    uint32_t h;
    if (e < -14) {
        h = q;  // subnormal (or rounded up to the smallest normal, 0x400, which is also right)
    } else {
        h = ((uint32_t) (e + 15) << 10) + (q - 0x400u);
    }
    if (h >= 0x7c00u) h = 0x7c00u;  // overflow: infinity
    return __half{(uint16_t) (sign | h)};
}

inline float __half2float(__half h) {
    uint32_t sign = (uint32_t) (h.bits & 0x8000u) << 16;
    uint32_t e = (h.bits >> 10) & 0x1fu, m = h.bits & 0x3ffu;
    float v;
    if (e == 0x1f) {
        uint32_t x = sign | 0x7f800000u | (m << 13);
        std::memcpy(&v, &x, 4);
        return v;
    }
    v = e == 0 ? std::ldexp((float) m, -24) : std::ldexp((float) (m | 0x400u), (int) e - 25);
    return sign ? -v : v;
}

inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
