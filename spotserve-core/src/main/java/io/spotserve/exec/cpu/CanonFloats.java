package io.spotserve.exec.cpu;

import java.nio.FloatBuffer;

/**
 * The canonical floats of a slice ({@link io.spotserve.exec.ContextSlice} javadoc) that a position copies its storage
 * to or from: a float array (checkpoint loads, the array path of export and import), or a float view of the
 * SliceFormat bytes that travel (export into, import from a caller's byte buffer, with no float copy of the slice).
 * Copies address the canonical floats by absolute index. Not thread-safe: one transfer at a time uses one instance.
 */
final class CanonFloats {
    private final float[] array;
    private final FloatBuffer buffer;
    /** The window of canonical floats a buffer holds: float {@code lo + i} at index i, up to {@code hi} (exclusive). */
    private final int lo;
    private final int hi;
    /** Where a strided segment of a buffer is gathered before one bulk copy (a row, so it stays in cache). */
    private float[] row = new float[0];

    private CanonFloats(float[] array, FloatBuffer buffer, int lo, int hi) {
        this.array = array;
        this.buffer = buffer;
        this.lo = lo;
        this.hi = hi;
    }

    static CanonFloats of(float[] array) {
        return new CanonFloats(array, null, 0, Integer.MAX_VALUE);
    }

    static CanonFloats of(FloatBuffer buffer) {
        return new CanonFloats(null, buffer, 0, Integer.MAX_VALUE);
    }

    /**
     * A window of the canonical floats: {@code buffer} holds floats {@code [from, from + buffer.limit())} (float
     * {@code from + i} at index i); copies touch only the part of each run inside the window, so walking a slice's whole
     * layout with it copies exactly that range (a piece of a slice exported or imported on its own).
     */
    static CanonFloats window(FloatBuffer buffer, int from) {
        if (from < 0) {
            throw new IllegalArgumentException("a window of canonical floats starts at " + from);
        }
        return new CanonFloats(null, buffer, from, Math.addExact(from, buffer.limit()));
    }

    /**
     * The first of {@code count} runs of {@code n} canonical floats each, from float {@code o} on, that reaches into the
     * window (0 when this is not a window): callers walk only the runs a piece of a slice touches.
     */
    int firstRun(int o, int n, int count) {
        if (lo <= o || n <= 0) {
            return 0;
        }
        return (int) Math.min(count, ((long) lo - o) / n);
    }

    /** One past the last of those runs that reaches into the window ({@code count} when this is not a window). */
    int endRun(int o, int n, int count) {
        if (hi == Integer.MAX_VALUE || n <= 0) {
            return count;
        }
        return (int) Math.max(0, Math.min(count, ((long) hi - o + n - 1) / n));
    }

    /** Copies {@code store[storeOff ..+len)} to canonical floats {@code [canonOff ..+len)}, or back when importing. */
    void copy(float[] store, int storeOff, int canonOff, int len, boolean importing) {
        if (lo > 0 || hi != Integer.MAX_VALUE) { // a window: only the part of the run inside it, at its index
            int a = Math.max(canonOff, lo);
            int b = Math.min(canonOff + len, hi);
            if (a >= b) {
                return;
            }
            storeOff += a - canonOff;
            canonOff = a - lo;
            len = b - a;
        }
        if (array != null) {
            if (importing) {
                System.arraycopy(array, canonOff, store, storeOff, len);
            } else {
                System.arraycopy(store, storeOff, array, canonOff, len);
            }
        } else if (importing) {
            buffer.get(canonOff, store, storeOff, len);
        } else {
            buffer.put(canonOff, store, storeOff, len);
        }
    }

    /**
     * Copies {@code store[at + k·stride]} to canonical float {@code canonOff + k} for k in [0, len), or back when
     * importing. A buffer's floats go through one row-sized array and one bulk copy: the strided loop then runs on
     * arrays only, whatever kind of buffer (heap, direct) this JVM has seen.
     */
    void strided(float[] store, int at, int stride, int canonOff, int len, boolean importing) {
        if (lo > 0 || hi != Integer.MAX_VALUE) { // a window: only the part of the run inside it, at its index
            int from = Math.max(canonOff, lo);
            int to = Math.min(canonOff + len, hi);
            if (from >= to) {
                return;
            }
            at += (from - canonOff) * stride;
            canonOff = from - lo;
            len = to - from;
        }
        float[] a = array;
        int o = canonOff;
        if (a == null) {
            if (row.length < len) {
                row = new float[len];
            }
            a = row;
            o = 0;
            if (importing) {
                buffer.get(canonOff, a, 0, len);
            }
        }
        if (importing) {
            for (int k = 0; k < len; k++, at += stride) {
                store[at] = a[o + k];
            }
        } else {
            for (int k = 0; k < len; k++, at += stride) {
                a[o + k] = store[at];
            }
            if (array == null) {
                buffer.put(canonOff, a, 0, len);
            }
        }
    }

    /**
     * Whether {@link #transpose} uses {@link VectorTranspose} (the Vector API module is present and the class links):
     * its squares move the same floats as {@link #scalarSquares}, about twice as fast.
     */
    static final boolean VECTOR = vectorTranspose();

    private static boolean vectorTranspose() {
        if (!Kernels.vectorModulePresent()) {
            return false;
        }
        try {
            Class.forName("io.spotserve.exec.cpu.VectorTranspose");
            return true;
        } catch (ReflectiveOperationException | LinkageError e) {
            return false;
        }
    }

    /**
     * Columns of canonical floats a blocked transpose moves between a buffer and {@link #TILE} at a time: whole rows of
     * the models here (25M model, 1 MiB pieces: 512 columns exported in 14-15 ms per 95 MB against 19-20 ms with 128,
     * fewer and longer bulk copies).
     */
    private static final int TILE_COLUMNS = 2048;
    /**
     * Floats past each row of {@link #TILE}: its rows are {@code TILE_COLUMNS + TILE_PAD} floats apart, not a power of
     * two, so the rows of one transposed square fall in different L1 sets (a power-of-two stride maps them to a few).
     */
    private static final int TILE_PAD = 4;
    /** Columns of the squares {@link #transpose} moves for 4 rows before it goes on to the next 4 rows. */
    private static final int T = TILE_COLUMNS;
    /**
     * Where a buffer's part of a blocked transpose is staged, one per thread: a window is made per piece of a slice, so
     * a tile per instance would allocate up to 0.5 MiB per 1 MiB piece. {@code count × (TILE_COLUMNS + TILE_PAD)}
     * floats at most (≤ 0.5 MiB for 64-row blocks), kept by every thread that transposed a buffer.
     */
    private static final ThreadLocal<float[][]> TILE = ThreadLocal.withInitial(() -> new float[][] {new float[0]});

    /**
     * Copies {@code count} runs of {@code len} canonical floats, run i from {@code canonOff + i·len}, with float k of
     * run i at {@code store[at + i + k·g]} (rows of a {@link PackedRows} block: {@code g} apart, the rows next to each
     * other), or back when importing: the same copies as {@code count} calls of {@link #strided}, done as a blocked
     * transpose (4 × 4 squares, through a row-padded {@link #TILE} for a buffer) rather than one strided walk per run. In a
     * window, runs cut by its edges go through {@link #strided}.
     */
    void block(float[] store, int at, int g, int count, int len, int canonOff, boolean importing) {
        if (count <= 0 || len <= 0) {
            return;
        }
        int i0 = 0;
        int i1 = count;
        int base = canonOff;
        if (lo > 0 || hi != Integer.MAX_VALUE) {
            long a = Math.max(canonOff, lo);
            long b = Math.min((long) canonOff + (long) count * len, hi);
            if (a >= b) {
                return;
            }
            int first = (int) ((a - canonOff) / len);               // first run touched
            int last = (int) ((b - canonOff + len - 1) / len);      // one past the last run touched
            i0 = (int) ((a - canonOff + len - 1) / len);            // first run wholly inside
            i1 = (int) ((b - canonOff) / len);                      // one past the last run wholly inside
            if (i0 >= i1) {
                i0 = last;
                i1 = last;
            }
            for (int i = first; i < Math.min(i0, last); i++) {
                strided(store, at + i, g, canonOff + i * len, len, importing);
            }
            for (int i = Math.max(i1, first); i < last; i++) {
                strided(store, at + i, g, canonOff + i * len, len, importing);
            }
            if (i0 >= i1) {
                return;
            }
            base = canonOff - lo;
        }
        int n = i1 - i0;
        if (array != null) {
            transpose(store, at + i0, g, n, len, array, base + i0 * len, len, importing);
            return;
        }
        int cols = Math.min(TILE_COLUMNS, len);
        int ts = cols + TILE_PAD;
        float[][] held = TILE.get();
        if (held[0].length < n * ts) {
            held[0] = new float[n * ts];
        }
        float[] t = held[0];
        for (int j = 0; j < len; j += cols) {
            int w = Math.min(cols, len - j);
            int c = base + i0 * len + j;
            if (importing) {
                for (int i = 0; i < n; i++) {
                    buffer.get(c + i * len, t, i * ts, w);
                }
                transpose(store, at + i0 + j * g, g, n, w, t, 0, ts, true);
            } else {
                transpose(store, at + i0 + j * g, g, n, w, t, 0, ts, false);
                for (int i = 0; i < n; i++) {
                    buffer.put(c + i * len, t, i * ts, w);
                }
            }
        }
    }

    /**
     * {@code d[dOff + i·dStride + k] = s[sOff + i + k·g]} for i in [0, rows), k in [0, cols) (export), or the
     * reverse assignment (import): 4 × 4 squares held in registers (four reads of 4 consecutive floats, four writes of
     * 4 consecutive floats), T columns of every row at a time; the edges one float at a time.
     */
    static void transpose(float[] s, int sOff, int g, int rows, int cols, float[] d, int dOff, int dStride,
                          boolean importing) {
        int rows4 = rows & ~3;
        int cols4 = cols & ~3;
        if (VECTOR) {
            VectorTranspose.squares(s, sOff, g, rows4, cols4, d, dOff, dStride, importing, T);
        } else {
            scalarSquares(s, sOff, g, rows4, cols4, d, dOff, dStride, importing);
        }
        for (int i = 0; i < rows; i++) { // the edges: rows past rows4 (all columns), columns past cols4 (rows4 rows)
            for (int k = i < rows4 ? cols4 : 0; k < cols; k++) {
                if (importing) {
                    s[sOff + i + k * g] = d[dOff + i * dStride + k];
                } else {
                    d[dOff + i * dStride + k] = s[sOff + i + k * g];
                }
            }
        }
    }

    /** The squares of {@link #transpose} without the Vector API (rows4, cols4 multiples of 4). */
    static void scalarSquares(float[] s, int sOff, int g, int rows4, int cols4, float[] d, int dOff, int dStride,
                              boolean importing) {
        for (int k0 = 0; k0 < cols4; k0 += T) {
            int k1 = Math.min(cols4, k0 + T);
            for (int i = 0; i < rows4; i += 4) {
                for (int k = k0; k < k1; k += 4) {
                    if (importing) {
                        square(d, dOff + i * dStride + k, dStride, s, sOff + i + k * g, g);
                    } else {
                        square(s, sOff + i + k * g, g, d, dOff + i * dStride + k, dStride);
                    }
                }
            }
        }
    }

    /** {@code b[bo + c·bs + r] = a[ao + r·as + c]} for r, c in [0, 4): a 4 × 4 square moved through locals. */
    private static void square(float[] a, int ao, int as, float[] b, int bo, int bs) {
        float a00 = a[ao];
        float a01 = a[ao + 1];
        float a02 = a[ao + 2];
        float a03 = a[ao + 3];
        ao += as;
        float a10 = a[ao];
        float a11 = a[ao + 1];
        float a12 = a[ao + 2];
        float a13 = a[ao + 3];
        ao += as;
        float a20 = a[ao];
        float a21 = a[ao + 1];
        float a22 = a[ao + 2];
        float a23 = a[ao + 3];
        ao += as;
        float a30 = a[ao];
        float a31 = a[ao + 1];
        float a32 = a[ao + 2];
        float a33 = a[ao + 3];
        b[bo] = a00;
        b[bo + 1] = a10;
        b[bo + 2] = a20;
        b[bo + 3] = a30;
        bo += bs;
        b[bo] = a01;
        b[bo + 1] = a11;
        b[bo + 2] = a21;
        b[bo + 3] = a31;
        bo += bs;
        b[bo] = a02;
        b[bo + 1] = a12;
        b[bo + 2] = a22;
        b[bo + 3] = a32;
        bo += bs;
        b[bo] = a03;
        b[bo + 1] = a13;
        b[bo + 2] = a23;
        b[bo + 3] = a33;
    }

    /**
     * The canonical floats as an array, for the Q8_0 block paths (they quantize from and dequantize into arrays).
     *
     * @throws IllegalStateException for a buffer: Q8_0 storage is never given one (its pipeline takes the array path)
     */
    float[] array() {
        if (array == null) {
            throw new IllegalStateException("Q8_0 storage copies canonical floats through an array, not a buffer");
        }
        return array;
    }
}
