package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceImport;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Slices exported and imported piece by piece ({@link Pipeline#exportPart}, {@link Pipeline#beginImport}), the path the
 * bulk socket streams slices through: for every weight and KV slice of every position of stories260K at every P×M
 * layout and of a random GQA shape, packed and plain rows, pieces of random (odd) sizes and offsets put together equal
 * {@link Pipeline#exportSlice}'s bytes; every weight piece another layout needs, imported in odd-sized pieces, leaves the
 * target exporting the source's bytes; malformed pieces are refused, and an abandoned import leaves nothing behind.
 */
class CpuSlicePartsTest {
    private static final long SEQ = 21;
    private static final AtomicInteger NAMES = new AtomicInteger();

    @TempDir
    static Path dir;

    private static LlamaCheckpoint stories;
    private static LlamaCheckpoint random;

    @BeforeAll
    static void load() throws IOException {
        stories = LlamaCheckpoint.load(SharedData.stories260K());
        LlamaConfig rc = SliceLayoutPairs.UNEVEN;
        random = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("random.bin"), rc, 29));
    }

    @Test
    void storiesEveryLayoutPackedAndPlain() {
        SliceLayoutPairs.everyLayout(stories, CpuSlicePartsTest::check);
    }

    @Test
    void randomShapeSeveralLayouts() {
        SliceLayoutPairs.unevenLayouts(random, CpuSlicePartsTest::check);
    }

    private static void check(Executor cpu, ModelWeights model, ShardLayout from, ShardLayout to) {
        try (Pipeline p = TestPipelines.loaded(cpu, model, from, "p" + NAMES.incrementAndGet(), 8)) {
            p.openSequence(SEQ, 16);
            p.prefill(SEQ, new int[] {1, 7, 33, 5, 9, 2, 8}, 0);
            Random r = new Random(from.hashCode() * 31L + to.hashCode());
            for (int s = 0; s < from.stages(); s++) {
                for (int m = 0; m < from.shards(); m++) {
                    List<ContextSlice> held = new ArrayList<>(from.weightSlices(s, m));
                    held.addAll(from.kvSlices(s, m, SEQ, p.length(SEQ)));
                    for (ContextSlice slice : held) {
                        byte[] want = p.exportSlice(s, m, slice);
                        String what = from + " (" + s + ", " + m + ") " + slice;
                        assertEquals(want.length, p.exportLength(s, m, slice), what);
                        assertArrayEquals(want, inPieces(p, s, m, slice, want.length, r), what);
                        // one range at an odd offset, into the middle of a larger buffer
                        int off = r.nextInt(want.length);
                        int len = r.nextInt(want.length - off) + 1;
                        ByteBuffer dst = r.nextBoolean() ? ByteBuffer.allocate(len + 10) : ByteBuffer.allocateDirect(len + 10);
                        dst.position(5).limit(5 + len);
                        p.exportPart(s, m, slice, off, dst);
                        assertEquals(5 + len, dst.position(), what);
                        byte[] got = new byte[len];
                        dst.get(5, got);
                        assertArrayEquals(Arrays.copyOfRange(want, off, off + len), got, what + " [" + off + ", +" + len + ")");
                    }
                }
            }
            try (Pipeline q = cpu.createPipeline(to, TestPipelines.devices(cpu, to, "q" + NAMES.incrementAndGet(), 1L << 30), 8)) {
                q.openSequence(SEQ, 16);
                int streamed = 0;
                List<Moved> moved = new ArrayList<>();
                for (int s2 = 0; s2 < to.stages(); s2++) {
                    for (int m2 = 0; m2 < to.shards(); m2++) {
                        List<ContextSlice> needed = new ArrayList<>(to.weightSlices(s2, m2));
                        needed.addAll(to.kvSlices(s2, m2, SEQ, p.length(SEQ)));
                        for (ContextSlice need : needed) {
                            for (int s1 = 0; s1 < from.stages(); s1++) {
                                for (int m1 = 0; m1 < from.shards(); m1++) {
                                    List<ContextSlice> held = new ArrayList<>(from.weightSlices(s1, m1));
                                    held.addAll(from.kvSlices(s1, m1, SEQ, p.length(SEQ)));
                                    for (ContextSlice h : held) {
                                        Optional<ContextSlice> piece = need.intersect(h);
                                        if (piece.isEmpty()) {
                                            continue;
                                        }
                                        byte[] bytes = p.exportSlice(s1, m1, piece.get());
                                        SliceImport in = q.beginImport(s2, m2, piece.get(), bytes.length);
                                        boolean again = false; // replicated weights (norms) arrive from several
                                        for (Moved mv : moved) {
                                            again |= mv.piece.equals(piece.get()) && mv.s2 == s2 && mv.m2 == m2;
                                        }
                                        if (again) {
                                            assertNull(in, "slices already held import whole");
                                            q.importSlice(s2, m2, bytes);
                                        } else {
                                            assertNotNull(in, piece.get().toString());
                                            putInPieces(in, bytes, r);
                                            assertEquals(piece.get(), in.finish());
                                            in.close();
                                            streamed++;
                                        }
                                        moved.add(new Moved(piece.get(), s1, m1, s2, m2));
                                    }
                                }
                            }
                        }
                    }
                }
                assertTrue(streamed > 0);
                assertTrue(q.isReady(), to.toString());
                assertEquals(p.length(SEQ), q.length(SEQ), "KV slices imported in pieces extend the sequence");
                for (Moved mv : moved) {
                    assertArrayEquals(p.exportSlice(mv.s1, mv.m1, mv.piece), q.exportSlice(mv.s2, mv.m2, mv.piece),
                            from + " -> " + to + ": " + mv);
                }
            }
        }
    }

    /** A piece moved from position (s1, m1) of one pipeline to (s2, m2) of another. */
    private record Moved(ContextSlice piece, int s1, int m1, int s2, int m2) {
    }

    /** A random piece size: often a few bytes (cutting floats and the header), sometimes large. */
    private static int pieceSize(Random r, int left) {
        int n = switch (r.nextInt(4)) {
            case 0 -> 1 + r.nextInt(7);
            case 1 -> 1 + r.nextInt(300);
            case 2 -> 4 * (1 + r.nextInt(2000));
            default -> 1 + r.nextInt(40_000);
        };
        return Math.min(n, left);
    }

    /** The slice's encoding exported in consecutive pieces of random sizes, into heap and direct buffers. */
    private static byte[] inPieces(Pipeline p, int s, int m, ContextSlice slice, int length, Random r) {
        byte[] out = new byte[length];
        for (int off = 0; off < length; ) {
            int n = pieceSize(r, length - off);
            ByteBuffer dst = r.nextBoolean() ? ByteBuffer.allocate(n) : ByteBuffer.allocateDirect(n);
            fill(dst, r);
            p.exportPart(s, m, slice, off, dst);
            assertFalse(dst.hasRemaining());
            dst.get(0, out, off, n);
            off += n;
        }
        return out;
    }

    /** Puts {@code bytes} into {@code in} in consecutive pieces of random sizes, from heap and direct buffers. */
    private static void putInPieces(SliceImport in, byte[] bytes, Random r) {
        for (int off = 0; off < bytes.length; ) {
            int n = pieceSize(r, bytes.length - off);
            ByteBuffer b = r.nextBoolean() ? ByteBuffer.allocate(n + 3) : ByteBuffer.allocateDirect(n + 3);
            b.position(2).limit(2 + n);
            b.put(2, bytes, off, n);
            in.put(b);
            assertEquals(2 + n, b.position());
            off += n;
            assertEquals(off, in.received());
        }
    }

    private static void fill(ByteBuffer b, Random r) {
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) r.nextInt());
        }
    }

    @Test
    void malformedPiecesAreRefusedAndAbandonedImportsLeaveNothing() {
        LlamaConfig c = stories.config();
        ShardLayout layout = ShardLayout.balanced(c, List.of(3, 2), 1);
        try (Executor cpu = SliceLayoutPairs.fp32(true);
             Pipeline p = TestPipelines.loaded(cpu, stories, layout, "p", 4);
             Pipeline q = cpu.createPipeline(layout, TestPipelines.devices(cpu, layout, "q", 1L << 30), 4)) {
            List<ContextSlice> layers = layout.weightSlices(0, 0).stream()
                    .filter(s -> s instanceof ContextSlice.LayerWeights).toList();
            ContextSlice layer0 = layers.get(0);
            ContextSlice layer1 = layers.get(1);
            byte[] good = p.exportSlice(0, 0, layer0);
            long used = q.device(0, 0).usedBytes();

            // not offered: a wrong length, a position that does not own it; exports out of range
            assertNull(q.beginImport(0, 0, layer0, good.length - 1));
            assertThrows(IllegalArgumentException.class, () -> q.beginImport(1, 0, layer0, good.length));
            assertEquals(used, q.device(0, 0).usedBytes());
            assertThrows(IllegalArgumentException.class, () -> p.exportPart(0, 0, layer0, good.length - 3,
                    ByteBuffer.allocate(4)));
            assertThrows(IllegalArgumentException.class, () -> p.exportPart(0, 0, layer0, -1, ByteBuffer.allocate(4)));
            assertThrows(IllegalArgumentException.class, () -> q.exportLength(0, 0, layer0), "not held");

            // a header of another slice: refused, nothing of it imported; abandoned: the storage is freed again
            SliceImport in = q.beginImport(0, 0, layer0, good.length);
            assertTrue(q.device(0, 0).usedBytes() > used, "storage allocated at the start");
            byte[] other = p.exportSlice(0, 0, layer1);
            assertThrows(IllegalArgumentException.class, () -> in.put(ByteBuffer.wrap(other, 0, 100)));
            assertEquals(0, in.received());
            in.put(ByteBuffer.wrap(good, 0, 1001));
            assertThrows(IllegalArgumentException.class, () -> in.put(ByteBuffer.wrap(new byte[good.length])),
                    "past the end");
            assertThrows(IllegalStateException.class, in::finish, "bytes missing");
            in.close();
            assertThrows(IllegalStateException.class, () -> in.put(ByteBuffer.wrap(good, 1001, 4)));
            assertEquals(used, q.device(0, 0).usedBytes(), "abandoned: its storage freed");
            assertFalse(q.hasAllWeights(0, 0));
            assertThrows(IllegalArgumentException.class, () -> q.exportSlice(0, 0, layer0));

            // abandoned after another import began: the storage stays, the slice is not marked present
            SliceImport first = q.beginImport(0, 0, layer0, good.length);
            first.put(ByteBuffer.wrap(good, 0, 5000));
            q.importSlice(0, 0, other);
            first.close();
            assertThrows(IllegalArgumentException.class, () -> q.exportSlice(0, 0, layer0), "not marked present");
            assertArrayEquals(other, q.exportSlice(0, 0, layer1));
            SliceImport again = q.beginImport(0, 0, layer0, good.length);
            again.put(ByteBuffer.wrap(good));
            again.finish();
            assertArrayEquals(good, q.exportSlice(0, 0, layer0));
            assertNull(q.beginImport(0, 0, layer0, good.length), "already held: imported whole");
        }
    }

    /**
     * A KV slice's import checks its sequence at every piece: closed midway, the next piece and the finish fail and say
     * so; an import abandoned halfway leaves the sequence's filled length as it was, and a retry completes it.
     */
    @Test
    void kvImportsNeedTheirSequenceToStayOpenAndExtendItOnlyWhenFinished() {
        LlamaConfig c = stories.config();
        ShardLayout layout = ShardLayout.of(c, 1, 1);
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, true));
             Pipeline p = TestPipelines.loaded(cpu, stories, layout, "p" + NAMES.incrementAndGet(), 4);
             Pipeline q = TestPipelines.loaded(cpu, stories, layout, "q" + NAMES.incrementAndGet(), 4)) {
            p.openSequence(SEQ, 8);
            p.prefill(SEQ, new int[] {1, 2, 3, 4, 5}, 0);
            ContextSlice kv = layout.kvSlices(0, 0, SEQ, 5).get(1);
            byte[] bytes = p.exportSlice(0, 0, kv);
            q.openSequence(SEQ, 8);
            SliceImport half = q.beginImport(0, 0, kv, bytes.length);
            assertNotNull(half);
            half.put(ByteBuffer.wrap(bytes, 0, bytes.length / 2));
            half.close(); // abandoned
            assertEquals(0, q.length(SEQ), "an abandoned KV import does not extend the sequence");
            try (SliceImport retry = q.beginImport(0, 0, kv, bytes.length)) {
                putInPieces(retry, bytes, new Random(5));
                assertEquals(kv, retry.finish());
            }
            assertEquals(5, q.length(SEQ));
            assertArrayEquals(bytes, q.exportSlice(0, 0, kv));

            ContextSlice other = layout.kvSlices(0, 0, SEQ, 5).get(0);
            byte[] otherBytes = p.exportSlice(0, 0, other);
            SliceImport orphan = q.beginImport(0, 0, other, otherBytes.length);
            orphan.put(ByteBuffer.wrap(otherBytes, 0, 100));
            q.closeSequence(SEQ);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> orphan.put(ByteBuffer.wrap(otherBytes, 100, 100)));
            assertTrue(e.getMessage().contains("sequence " + SEQ + " was closed"), e.getMessage());
            q.openSequence(SEQ, 4); // the same id again, another cache: still not the import's sequence
            assertThrows(IllegalStateException.class, () -> orphan.put(ByteBuffer.wrap(otherBytes, 100, 100)));
            orphan.close();
            assertThrows(IllegalArgumentException.class, () -> q.beginImport(0, 0, kv, bytes.length),
                    "a KV slice longer than its sequence's capacity here is refused");
        }
    }

    @Test
    void q8WeightsStayWholeAndKvGoesInPieces() throws IOException {
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), stories.config().vocabSize());
        Path qp = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(qp, stories, tok, TensorType.Q8_0);
        GgufModel q8 = GgufModel.load(qp);
        LlamaConfig c = q8.config();
        ShardLayout layout = ShardLayout.of(c, 1, 1);
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, true).withWeights(WeightPrecision.Q8_0));
             Pipeline p = TestPipelines.loaded(cpu, q8.weights(), layout, "p", 4);
             Pipeline q = cpu.createPipeline(layout, TestPipelines.devices(cpu, layout, "q", 1L << 30), 4)) {
            ContextSlice layer0 = layout.weightSlices(0, 0).stream()
                    .filter(s -> s instanceof ContextSlice.LayerWeights).findFirst().orElseThrow();
            assertEquals(-1, p.exportLength(0, 0, layer0));
            assertThrows(UnsupportedOperationException.class, () -> p.exportPart(0, 0, layer0, 0, ByteBuffer.allocate(4)));
            assertNull(q.beginImport(0, 0, layer0, SliceFormat.encodedLength(c, layer0)));
            p.openSequence(SEQ, 8);
            p.prefill(SEQ, new int[] {1, 2, 3}, 0);
            ContextSlice kv = layout.kvSlices(0, 0, SEQ, 3).get(0);
            byte[] kvBytes = p.exportSlice(0, 0, kv);
            assertEquals(kvBytes.length, p.exportLength(0, 0, kv), "fp32 KV of a Q8_0 pipeline exports in pieces");
            assertArrayEquals(kvBytes, inPieces(p, 0, 0, kv, kvBytes.length, new Random(3)));
            q.openSequence(SEQ, 8);
            try (SliceImport in = q.beginImport(0, 0, kv, kvBytes.length)) {
                assertNotNull(in, "fp32 KV of a Q8_0 pipeline imports in pieces");
                putInPieces(in, kvBytes, new Random(4));
                assertEquals(kv, in.finish());
            }
            assertEquals(3, q.length(SEQ));
            assertArrayEquals(kvBytes, q.exportSlice(0, 0, kv));
        }
    }
}
