package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.model.LlamaConfig;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SliceChunk;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/** Chunking of slice streams (≤ 4 MiB, CRC32C) and the wire forms of slices and floats. */
class WireTest {
    private static final PositionRef TARGET = PositionRef.newBuilder().setPipeline(7).setStage(1).setShard(0).build();

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    @Test
    void slicesAreCutIntoChecksummedChunksOfAtMost4MiBAndReassembleExactly() {
        int mib4 = 4 << 20;
        for (int n : new int[] {100, mib4 - 1, mib4, mib4 + 1, 2 * mib4 + 123}) {
            byte[] bytes = random(n);
            List<SliceChunk> chunks = Wire.chunks(bytes, TARGET);
            assertEquals((n + mib4 - 1) / mib4, chunks.size(), n + " bytes");
            Wire.Assembly a = new Wire.Assembly();
            long offset = 0;
            for (SliceChunk c : chunks) {
                assertTrue(c.getPayload().size() <= mib4);
                assertEquals(offset, c.getOffset());
                assertEquals(n, c.getTotalBytes());
                CRC32C crc = new CRC32C();
                crc.update(c.getPayload().toByteArray());
                assertEquals((int) crc.getValue(), c.getCrc32C(), "an independent CRC32C of the payload");
                assertFalse(a.complete());
                a.add(c);
                offset += c.getPayload().size();
            }
            assertTrue(a.complete());
            assertArrayEquals(bytes, a.bytes());
            assertEquals(TARGET, a.target());
            assertTrue(chunks.get(0).hasTarget());
            assertTrue(chunks.size() == 1 || !chunks.get(1).hasTarget());
        }
    }

    @Test
    void outOfOrderCorruptOversizedOrUnannouncedStreamsAreRefused() {
        byte[] bytes = random((4 << 20) + 500);
        List<SliceChunk> chunks = Wire.chunks(bytes, TARGET);
        Wire.Assembly skipped = new Wire.Assembly();
        skipped.add(chunks.get(0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> skipped.add(chunks.get(1).toBuilder().setOffset(0).build()));
        assertTrue(e.getMessage().contains("in order"), e.getMessage());

        Wire.Assembly bent = new Wire.Assembly();
        byte[] flipped = chunks.get(0).getPayload().toByteArray();
        flipped[10] ^= 0x20; // one bit flipped in transit
        e = assertThrows(IllegalArgumentException.class, () -> bent.add(chunks.get(0).toBuilder()
                .setPayload(ByteString.copyFrom(flipped)).build()));
        assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> new Wire.Assembly().add(chunks.get(1)));
        assertTrue(e.getMessage().contains("must name its target"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Wire.Assembly().add(chunks.get(0).toBuilder()
                .setTotalBytes(Wire.MAX_SLICE_BYTES + 1).build()));
        assertTrue(e.getMessage().contains("announces"), e.getMessage());

        Wire.Assembly shortStream = new Wire.Assembly();
        shortStream.add(chunks.get(0));
        e = assertThrows(IllegalArgumentException.class, shortStream::bytes);
        assertTrue(e.getMessage().contains("ended after"), e.getMessage());
        Wire.Assembly overlong = new Wire.Assembly();
        overlong.add(chunks.get(0));
        SliceChunk big = chunks.get(1).toBuilder().setPayload(ByteString.copyFrom(new byte[1000])).build();
        assertThrows(IllegalArgumentException.class, () -> overlong.add(big));
    }

    @Test
    void sliceHeadersAndFloatsRoundTrip() {
        LlamaConfig c = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true);
        for (ContextSlice s : List.of(new ContextSlice.Embedding(IndexRange.of(0, 256)), new ContextSlice.FinalNorm(),
                new ContextSlice.LayerWeights(3, IndexRange.of(4, 8), IndexRange.of(86, 172)),
                new ContextSlice.KvCache(42L << 33, 2, IndexRange.of(0, 2), 17))) {
            assertEquals(s, Wire.slice(Wire.sliceHeader(s), c));
        }
        assertThrows(IllegalArgumentException.class, () -> Wire.slice(ByteString.copyFrom(new byte[3]), c));
        float[] f = {1.5f, -0f, Float.MIN_VALUE, Float.NaN, 3e38f};
        float[] back = new float[f.length];
        Wire.floats(Wire.floats(f, f.length), back, 0, f.length);
        assertArrayEquals(f, back);
        assertThrows(IllegalArgumentException.class, () -> Wire.floats(ByteString.copyFrom(new byte[7]), back, 0, 2));
    }
}
