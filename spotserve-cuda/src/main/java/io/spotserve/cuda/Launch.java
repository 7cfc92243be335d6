package io.spotserve.cuda;

/**
 * Grid and block shapes of every kernel in spotserve_kernels.cu, as pure arithmetic so they are unit-tested
 * without a GPU. The constants must match the #defines of the .cu file (a test reads them from the source).
 */
final class Launch {
    /**
     * Output rows per gemv block: one warp each (GEMV_ROWS_PER_BLOCK in the .cu). Four warps per block keep the
     * blocks small enough to spread a 2048-row matrix evenly over an H100's 132 SMs (512 blocks).
     */
    static final int GEMV_ROWS_PER_BLOCK = 4;
    /** Threads of a gemv block. */
    static final int GEMV_THREADS = GEMV_ROWS_PER_BLOCK * 32;
    /** Threads of the per-entry and element-wise kernels. */
    static final int THREADS = 256;
    /** Threads of an attention block (one block per entry and query head). */
    static final int ATTENTION_THREADS = 128;
    /** Grid-stride kernels never launch more blocks than this. */
    static final int MAX_GRID = 4096;
    /** Smallest attention shared-memory bucket, in floats. */
    static final int ATTENTION_MIN_BUCKET = 256;
    /** Shared memory a block may use without opting in (48 KiB on every GPU since Kepler). */
    static final int DEFAULT_SHARED_BYTES = 48 * 1024;
    /**
     * Static shared memory of the attention kernel ({@code red[32]} and {@code part[ATTENTION_MAX_WARPS][32]}
     * floats in the .cu); the scores' dynamic shared memory gets the rest of {@link #DEFAULT_SHARED_BYTES}.
     */
    static final int ATTENTION_STATIC_SHARED_BYTES = (32 + 4 * 32) * Float.BYTES;

    /** A launch shape: grid (x, y), block x threads, dynamic shared bytes. */
    record Config(int gridX, int gridY, int blockX, int sharedBytes) {
        Config {
            if (gridX < 1 || gridY < 1 || blockX < 1 || blockX > 1024 || sharedBytes < 0) {
                throw new IllegalArgumentException("launch grid (" + gridX + ", " + gridY + ") block " + blockX
                        + " shared " + sharedBytes + " is invalid; expected grid >= 1, block in [1, 1024]");
            }
        }
    }

    private Launch() {
    }

    /** gemv_f32 / gemv_f16 over {@code rows} output rows (any batch: the kernel tiles the batch itself). */
    static Config gemv(int rows) {
        return new Config(ceilDiv(rows, GEMV_ROWS_PER_BLOCK), 1, GEMV_THREADS, 0);
    }

    /** One block per batch entry (rmsnorm, rmsnorm_select, rope_store, embed) or per row (argmax, softmax). */
    static Config perRow(int rows) {
        return new Config(rows, 1, THREADS, 0);
    }

    /**
     * attention: one block per (entry, local query head); scores of up to {@code longest} positions in dynamic
     * shared memory. The shared size is rounded up to a power-of-two bucket of floats (at least 256, at most
     * what {@code limitBytes} allows), so consecutive decode steps launch the same shape and a captured CUDA
     * graph can be replayed across them.
     *
     * @param limitBytes the dynamic shared memory a block of the attention kernel may use on this GPU
     * @throws IllegalArgumentException if the scores do not fit {@code limitBytes}
     */
    static Config attention(int batch, int heads, int longest, int limitBytes) {
        long bytes = (long) longest * Float.BYTES;
        if (bytes > limitBytes) {
            throw new IllegalArgumentException("attention over " + longest + " positions needs " + bytes
                    + " bytes of shared memory, more than the " + limitBytes + " a block of it may use on this GPU");
        }
        long bucket = Math.max(ATTENTION_MIN_BUCKET, Long.highestOneBit(Math.max(1, longest - 1)) << 1) * Float.BYTES;
        return new Config(batch, heads, ATTENTION_THREADS, (int) Math.min(bucket, limitBytes));
    }

    /**
     * attention within the default 48 KiB of shared memory less the kernel's static bytes (a GPU without the
     * opt-in limit).
     */
    static Config attention(int batch, int heads, int longest) {
        return attention(batch, heads, longest, DEFAULT_SHARED_BYTES - ATTENTION_STATIC_SHARED_BYTES);
    }

    /** Grid-stride element-wise kernels over {@code count} elements (add_inplace, swiglu, f32_to_f16). */
    static Config elementwise(long count) {
        return new Config((int) Math.max(1, Math.min(MAX_GRID, ceilDiv(count, THREADS))), 1, THREADS, 0);
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
