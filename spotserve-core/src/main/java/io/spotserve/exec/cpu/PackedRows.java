package io.spotserve.exec.cpu;

/**
 * The weight layout the vector matmul reads: a row-major matrix of {@code rows × n} floats whose rows are
 * interleaved in groups of four, so that the 4-row register tile reads one sequential stream (the hardware
 * prefetcher follows one stream far better than four streams {@code n} floats apart; on the benchmark machine
 * the 4-row tile ran at 7.5 GB/s over plain rows and at DRAM speed over packed ones).
 *
 * <p>A full group g (rows 4g..4g+3) occupies the same {@code 4n} floats the plain rows would, at the same
 * offset: first, for each vector chunk c of {@code lanes} columns below {@code bound = n - n % lanes}, the
 * chunk of row 0, row 1, row 2, row 3 ({@code 4·lanes} floats); then the {@code n - bound} tail columns of
 * row 0, row 1, row 2, row 3. The last {@code rows % 4} rows stay plain. {@code lanes = 0} means no packing
 * (the scalar kernels' plain layout). Packing is a permutation inside the matrix, so any row segment can be
 * copied in or out on its own (partial slice import / export stays exact).
 */
final class PackedRows {
    private PackedRows() {
    }

    /**
     * Copies columns {@code [j0, j0 + len)} of row {@code r} between the matrix at {@code store[matOff]} and
     * the plain floats {@code canon[canonOff ..+len)}: into the matrix when {@code importing}, out otherwise.
     */
    static void segment(float[] store, int matOff, int rows, int n, int lanes, int r, int j0, float[] canon,
                        int canonOff, int len, boolean importing) {
        if (lanes == 0 || r >= rows - rows % 4) {
            copy(store, matOff + r * n + j0, canon, canonOff, len, importing);
            return;
        }
        int base = matOff + (r & ~3) * n;
        int i = r & 3;
        int bound = n - n % lanes;
        int j = j0;
        int end = j0 + len;
        while (j < end) {
            if (j < bound) {
                int chunkEnd = Math.min(end, (j / lanes + 1) * lanes);
                copy(store, base + (j / lanes) * 4 * lanes + i * lanes + j % lanes, canon, canonOff + (j - j0),
                        chunkEnd - j, importing);
                j = chunkEnd;
            } else {
                copy(store, base + 4 * bound + i * (n - bound) + (j - bound), canon, canonOff + (j - j0), end - j,
                        importing);
                j = end;
            }
        }
    }

    /** Copies whole rows {@code [r0, r0 + count)} (contiguous in {@code canon}) in or out. */
    static void rows(float[] store, int matOff, int rows, int n, int lanes, int r0, int count, float[] canon,
                     int canonOff, boolean importing) {
        for (int r = 0; r < count; r++) {
            segment(store, matOff, rows, n, lanes, r0 + r, 0, canon, canonOff + r * n, n, importing);
        }
    }

    private static void copy(float[] store, int storeOff, float[] canon, int canonOff, int len, boolean importing) {
        if (importing) {
            System.arraycopy(canon, canonOff, store, storeOff, len);
        } else {
            System.arraycopy(store, storeOff, canon, canonOff, len);
        }
    }
}
