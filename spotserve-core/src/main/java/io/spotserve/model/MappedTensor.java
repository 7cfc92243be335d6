package io.spotserve.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * One stored 2-D (or 1-D) tensor, memory-mapped read-only: {@code rows × cols} elements of a {@link TensorType},
 * row-major. A tensor larger than one mapping (2 GiB) is mapped as several buffers of whole rows, so files and
 * tensors of any size work on JDK 17 without reading them onto the heap.
 */
final class MappedTensor {
    /** Largest single mapping we create (whole rows up to this many bytes). */
    static final long CHUNK_BYTES = 1L << 30;

    final String name;
    final TensorType type;
    final long rows;
    final int cols;
    final long rowBytes;
    private final long rowsPerChunk;
    private final ByteBuffer[] chunks;

    private MappedTensor(String name, TensorType type, long rows, int cols, ByteBuffer[] chunks, long rowsPerChunk) {
        this.name = name;
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = type.rowBytes(cols);
        this.chunks = chunks;
        this.rowsPerChunk = rowsPerChunk;
    }

    /** Bytes of a tensor of this type and shape. */
    static long bytes(TensorType type, long rows, int cols) {
        return Math.multiplyExact(rows, type.rowBytes(cols));
    }

    /** Maps the tensor's bytes at {@code offset} of {@code channel} (the caller checked they lie inside the file). */
    static MappedTensor map(FileChannel channel, String name, TensorType type, long rows, int cols, long offset)
            throws IOException {
        return map(channel, name, type, rows, cols, offset, CHUNK_BYTES);
    }

    /** As {@link #map(FileChannel, String, TensorType, long, int, long)} with mappings of at most {@code chunkBytes}. */
    static MappedTensor map(FileChannel channel, String name, TensorType type, long rows, int cols, long offset,
                            long chunkBytes) throws IOException {
        long rowBytes = type.rowBytes(cols);
        long perChunk = Math.max(1, chunkBytes / Math.max(1, rowBytes));
        int n = (int) Math.max(1, (rows + perChunk - 1) / perChunk);
        ByteBuffer[] chunks = new ByteBuffer[n];
        for (int i = 0; i < n; i++) {
            long r0 = i * perChunk;
            long r1 = Math.min(rows, r0 + perChunk);
            chunks[i] = channel.map(FileChannel.MapMode.READ_ONLY, offset + r0 * rowBytes, (r1 - r0) * rowBytes)
                    .order(ByteOrder.LITTLE_ENDIAN);
        }
        return new MappedTensor(name, type, rows, cols, chunks, perChunk);
    }

    /** Number of separate mappings. */
    int mappings() {
        return chunks.length;
    }

    long elements() {
        return rows * cols;
    }

    /** Decodes {@code len} elements of row {@code row} from column {@code col} into {@code dst[off..]}. */
    void readRow(long row, int col, float[] dst, int off, int len) {
        if (row < 0 || row >= rows || col < 0 || col + len > cols) {
            throw new IndexOutOfBoundsException(name + ": row " + row + " columns [" + col + ", " + (col + len)
                    + ") outside " + rows + " x " + cols);
        }
        ByteBuffer chunk = chunks[(int) (row / rowsPerChunk)];
        type.decode(chunk, (int) ((row % rowsPerChunk) * rowBytes), col, dst, off, len);
    }

    /** Decodes elements {@code [offset, offset + len)} in row-major order, across rows. */
    void read(long offset, float[] dst, int off, int len) {
        if (offset < 0 || offset + len > elements()) {
            throw new IndexOutOfBoundsException(name + ": elements [" + offset + ", " + (offset + len) + ") outside [0, "
                    + elements() + ")");
        }
        while (len > 0) {
            long row = offset / cols;
            int col = (int) (offset % cols);
            int n = Math.min(len, cols - col);
            readRow(row, col, dst, off, n);
            offset += n;
            off += n;
            len -= n;
        }
    }
}
