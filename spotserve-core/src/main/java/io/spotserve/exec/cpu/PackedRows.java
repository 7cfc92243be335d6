package io.spotserve.exec.cpu;

/**
 * The weight layout the vector matmul reads: a row-major matrix of {@code rows × n} floats whose rows are
 * stored in column-major blocks of {@code 4·lanes} rows. A full block (rows {@code b..b+4·lanes}) occupies the
 * same {@code 4·lanes·n} floats the plain rows would, at the same offset, as {@code n} columns of
 * {@code 4·lanes} floats: element (r, j) at {@code matOff + b·n + j·4·lanes + (r - b)}. The matmul then keeps
 * four vectors of rows in registers and adds {@code column_j · x[j]} for j = 0, 1, ...: every lane is one row, so
 * there is no horizontal sum at all (JDK 17 compiles {@code reduceLanes(ADD)} as an ordered chain of scalar
 * adds, which dominated small matrices), and the weights are read as one sequential stream. The last
 * {@code rows % (4·lanes)} rows stay plain. {@code lanes = 0} means no packing (the scalar kernels' plain
 * layout). Packing is a permutation inside the matrix, so any row segment can be copied in or out on its own
 * (partial slice import / export stays exact).
 */
final class PackedRows {
    private PackedRows() {
    }

    /** Rows per column-major block for {@code lanes}-float vectors (0: plain rows). */
    static int blockRows(int lanes) {
        return 4 * lanes;
    }

    /**
     * Copies columns {@code [j0, j0 + len)} of row {@code r} between the matrix at {@code store[matOff]} and
     * the plain floats {@code canon[canonOff ..+len)}: into the matrix when {@code importing}, out otherwise.
     */
    static void segment(float[] store, int matOff, int rows, int n, int lanes, int r, int j0, CanonFloats canon,
                        int canonOff, int len, boolean importing) {
        int g = blockRows(lanes);
        if (lanes == 0 || r >= rows - rows % g) {
            canon.copy(store, matOff + r * n + j0, canonOff, len, importing);
            return;
        }
        canon.strided(store, matOff + (r - r % g) * n + r % g + j0 * g, g, canonOff, len, importing);
    }

    /** Copies whole rows {@code [r0, r0 + count)} (contiguous in {@code canon}) in or out. */
    static void rows(float[] store, int matOff, int rows, int n, int lanes, int r0, int count, CanonFloats canon,
                     int canonOff, boolean importing) {
        segments(store, matOff, rows, n, lanes, r0, count, 0, canon, canonOff, n, importing);
    }

    /**
     * Copies columns {@code [j0, j0 + len)} of each row {@code r0 + i}, i in {@code [0, count)}, between the matrix and
     * the plain floats {@code canon[canonOff + i·len ..+len)} (the segments follow each other in {@code canon}): what
     * {@link #segment} does row by row, with the rows of one packed block moved together as a blocked transpose
     * ({@link CanonFloats#block}) instead of one strided gather per row, and runs of whole plain rows as one copy.
     */
    static void segments(float[] store, int matOff, int rows, int n, int lanes, int r0, int count, int j0,
                         CanonFloats canon, int canonOff, int len, boolean importing) {
        int g = blockRows(lanes);
        int packedEnd = lanes == 0 ? 0 : rows - rows % g;
        int end = r0 + count;
        int r = r0;
        while (r < end && r < packedEnd) {
            int b = r - r % g;
            int stop = Math.min(end, b + g);
            canon.block(store, matOff + b * n + (r - b) + j0 * g, g, stop - r, len, canonOff + (r - r0) * len,
                    importing);
            r = stop;
        }
        if (r >= end) {
            return;
        }
        if (len == n) { // whole plain rows lie back to back in both layouts
            canon.copy(store, matOff + r * n, canonOff + (r - r0) * len, (end - r) * n, importing);
            return;
        }
        for (; r < end; r++) {
            canon.copy(store, matOff + r * n + j0, canonOff + (r - r0) * len, len, importing);
        }
    }
}
