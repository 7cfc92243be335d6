package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tensor larger than one mapping is mapped as several buffers of whole rows (how tensors over 2 GiB load on
 * JDK 17); reads across mapping boundaries return the same elements as one mapping. Shown with small chunks.
 */
class MappedTensorTest {
    @TempDir
    Path dir;

    @Test
    void readsAcrossChunkBoundariesEqualOneMapping() throws Exception {
        int rows = 37;
        int cols = 64;
        Random r = new Random(4);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        for (TensorType type : TensorType.values()) {
            Path f = dir.resolve(type + ".bin");
            ByteBuffer buf = ByteBuffer.allocate((int) MappedTensor.bytes(type, rows, cols) + 13)
                    .order(ByteOrder.LITTLE_ENDIAN);
            buf.position(13); // an unaligned start, as in a file with a header
            for (int row = 0; row < rows; row++) {
                type.encode(w, row * cols, cols, buf);
            }
            Files.write(f, buf.array());
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                MappedTensor one = MappedTensor.map(ch, "t", type, rows, cols, 13);
                MappedTensor many = MappedTensor.map(ch, "t", type, rows, cols, 13, type.rowBytes(cols) * 5, null);
                assertEquals(1, one.mappings());
                assertEquals(8, many.mappings()); // 37 rows in chunks of 5
                float[] a = new float[rows * cols - 70];
                float[] b = new float[a.length];
                one.read(35, a, 0, a.length);
                many.read(35, b, 0, b.length);
                assertArrayEquals(a, b, type.toString());
            }
        }
    }

    /**
     * Reads through {@link FileReads} (how executors load, no file pages left resident) equal reads through the
     * mapping for every type: whole rows several per read, a range starting mid-row, a column range of one row, and
     * rows wider than one read chunk (70,016 columns: 280 KB as F32), whose column ranges are read block-aligned.
     */
    @Test
    void positionalReadsEqualMappedReads() throws Exception {
        Random r = new Random(5);
        for (int cols : new int[] {64, 70_016}) {
            int rows = cols == 64 ? 37 : 3;
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) r.nextGaussian();
            }
            for (TensorType type : TensorType.values()) {
                Path f = dir.resolve(type + "-" + cols + ".bin");
                ByteBuffer buf = ByteBuffer.allocate((int) MappedTensor.bytes(type, rows, cols) + 13)
                        .order(ByteOrder.LITTLE_ENDIAN);
                buf.position(13);
                for (int row = 0; row < rows; row++) {
                    type.encode(w, row * cols, cols, buf);
                }
                Files.write(f, buf.array());
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                    MappedTensor mapped = MappedTensor.map(ch, "t", type, rows, cols, 13);
                    MappedTensor read = MappedTensor.map(ch, "t", type, rows, cols, 13, new FileReads(f));
                    String what = type + " cols " + cols;
                    float[] a = new float[rows * cols];
                    float[] b = new float[a.length];
                    mapped.read(0, a, 0, a.length);
                    read.read(0, b, 0, b.length);
                    assertArrayEquals(a, b, what + " whole tensor");
                    int from = cols + 5;
                    a = new float[rows * cols - from - 3];
                    b = new float[a.length];
                    mapped.read(from, a, 0, a.length);
                    read.read(from, b, 0, b.length);
                    assertArrayEquals(a, b, what + " from mid-row");
                    a = new float[cols - 40];
                    b = new float[a.length];
                    mapped.readRow(rows - 1, 7, a, 0, a.length);
                    read.readRow(rows - 1, 7, b, 0, b.length);
                    assertArrayEquals(a, b, what + " columns of one row");
                }
            }
        }
    }
}
