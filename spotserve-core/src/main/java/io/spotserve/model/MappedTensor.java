package io.spotserve.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * One stored 2-D (or 1-D) tensor, memory-mapped read-only: {@code rows × cols} elements of a {@link TensorType},
 * row-major. A tensor larger than one mapping (2 GiB) is mapped as several buffers of whole rows, so files and
 * tensors of any size work on JDK 17 without reading them onto the heap.
 *
 * <p>Given the file's {@link FileReads}, reads go through positional file reads (whole rows, several at a time)
 * instead of the mapping, so loading the weights into an executor leaves no file pages resident in the process;
 * the values are the same (the same bytes, decoded by the same {@link TensorType#decode}).
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
    /** Positional reads of the file (null: read through the mapping), and the tensor's first byte in the file. */
    private final FileReads reads;
    private final long offset;

    private MappedTensor(String name, TensorType type, long rows, int cols, ByteBuffer[] chunks, long rowsPerChunk,
                         FileReads reads, long offset) {
        this.name = name;
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = type.rowBytes(cols);
        this.chunks = chunks;
        this.rowsPerChunk = rowsPerChunk;
        this.reads = reads;
        this.offset = offset;
    }

    /** Bytes of a tensor of this type and shape. */
    static long bytes(TensorType type, long rows, int cols) {
        return Math.multiplyExact(rows, type.rowBytes(cols));
    }

    /** Maps the tensor's bytes at {@code offset} of {@code channel} (the caller checked they lie inside the file). */
    static MappedTensor map(FileChannel channel, String name, TensorType type, long rows, int cols, long offset)
            throws IOException {
        return map(channel, name, type, rows, cols, offset, CHUNK_BYTES, null);
    }

    /** As {@link #map(FileChannel, String, TensorType, long, int, long)}, reading through {@code reads}. */
    static MappedTensor map(FileChannel channel, String name, TensorType type, long rows, int cols, long offset,
                            FileReads reads) throws IOException {
        return map(channel, name, type, rows, cols, offset, CHUNK_BYTES, reads);
    }

    /** As {@link #map(FileChannel, String, TensorType, long, int, long)} with mappings of at most {@code chunkBytes}. */
    static MappedTensor map(FileChannel channel, String name, TensorType type, long rows, int cols, long offset,
                            long chunkBytes, FileReads reads) throws IOException {
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
        return new MappedTensor(name, type, rows, cols, chunks, perChunk, reads, offset);
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
        if (reads == null) {
            ByteBuffer chunk = chunks[(int) (row / rowsPerChunk)];
            type.decode(chunk, (int) ((row % rowsPerChunk) * rowBytes), col, dst, off, len);
            return;
        }
        int bs = type.blockSize;
        int perRead = FileReads.CHUNK_BYTES / type.blockBytes * bs; // elements of whole blocks per read
        while (len > 0) {
            int b0 = col / bs;
            int n = Math.min(len, perRead - (col - b0 * bs));
            int b1 = (col + n + bs - 1) / bs;
            ByteBuffer buf = reads.read(offset + row * rowBytes + (long) b0 * type.blockBytes, (b1 - b0) * type.blockBytes);
            type.decode(buf, 0, col - b0 * bs, dst, off, n);
            col += n;
            off += n;
            len -= n;
        }
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
            if (reads != null && col == 0 && len >= cols && rowBytes <= FileReads.CHUNK_BYTES) {
                // whole rows: as many as one read holds
                int k = (int) Math.min(Math.min(len / cols, FileReads.CHUNK_BYTES / rowBytes), rows - row);
                ByteBuffer buf = reads.read(this.offset + row * rowBytes, (int) (k * rowBytes));
                for (int i = 0; i < k; i++) {
                    type.decode(buf, (int) (i * rowBytes), 0, dst, off + i * cols, cols);
                }
                offset += (long) k * cols;
                off += k * cols;
                len -= k * cols;
                continue;
            }
            int n = Math.min(len, cols - col);
            readRow(row, col, dst, off, n);
            offset += n;
            off += n;
            len -= n;
        }
    }
}
