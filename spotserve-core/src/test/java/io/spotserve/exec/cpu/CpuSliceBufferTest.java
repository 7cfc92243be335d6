package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
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
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Export into and import from a caller's byte buffer ({@link Pipeline#exportSlice(int, int, ContextSlice, ByteBuffer)},
 * {@link Pipeline#importSlice(int, int, ByteBuffer)}), the path the bulk socket uses: the buffer holds exactly
 * {@link Pipeline#exportSlice}'s bytes for every weight and KV slice of every position, in packed and plain rows, fp32
 * and Q8_0 pipelines, stories260K and a random shape; pieces cut by another layout migrated through buffers leave the
 * target with the same bytes as the array path; malformed buffers are refused with nothing changed.
 */
class CpuSliceBufferTest {
    private static final long SEQ_A = 11;
    private static final long SEQ_B = 12;
    /** Device names are unique per executor. */
    private static final AtomicInteger NAMES = new AtomicInteger();

    @TempDir
    static Path dir;

    private static LlamaCheckpoint stories;
    private static LlamaCheckpoint random;
    private static GgufModel storiesQ8;

    @BeforeAll
    static void load() throws IOException {
        stories = LlamaCheckpoint.load(SharedData.stories260K());
        LlamaConfig rc = SliceLayoutPairs.UNEVEN;
        random = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("random.bin"), rc, 23));
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), stories.config().vocabSize());
        Path q = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(q, stories, tok, TensorType.Q8_0);
        storiesQ8 = GgufModel.load(q);
    }

    @Test
    void storiesEveryLayoutPackedAndPlain() {
        SliceLayoutPairs.everyLayout(stories, CpuSliceBufferTest::check);
    }

    @Test
    void randomShapeSeveralLayouts() {
        SliceLayoutPairs.unevenLayouts(random, CpuSliceBufferTest::check);
    }

    @Test
    void q8PipelinesKeepTheirBlocksAndMoveKvThroughTheBuffer() {
        LlamaConfig c = storiesQ8.config();
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, true).withWeights(WeightPrecision.Q8_0))) {
            check(cpu, storiesQ8.weights(), ShardLayout.of(c, 1, 1), ShardLayout.of(c, 1, 2));
            check(cpu, storiesQ8.weights(), ShardLayout.balanced(c, List.of(3, 2), 2), ShardLayout.of(c, 1, 1));
        }
    }

    /**
     * Exports every slice of every position of a loaded {@code from} (with two sequences' KV) into buffers and
     * compares with the array export; then moves everything a {@code to} layout needs through buffers into a fresh
     * pipeline, whose every imported piece must then export (by the array path) the source's bytes of it.
     */
    private static void check(Executor cpu, ModelWeights model, ShardLayout from, ShardLayout to) {
        try (Pipeline p = TestPipelines.loaded(cpu, model, from, "p" + NAMES.incrementAndGet(), 8)) {
            p.openSequence(SEQ_A, 16);
            p.openSequence(SEQ_B, 32);
            p.prefill(SEQ_A, new int[] {1, 7, 33, 5, 9}, 0);
            p.prefill(SEQ_B, new int[] {1, 30, 2, 40, 41, 42, 43, 44, 45}, 0);
            Random r = new Random(from.hashCode());
            ByteBuffer heap = ByteBuffer.allocate(64);
            ByteBuffer direct = ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN);
            for (int s = 0; s < from.stages(); s++) {
                for (int m = 0; m < from.shards(); m++) {
                    for (ContextSlice slice : held(p, s, m)) {
                        byte[] want = p.exportSlice(s, m, slice);
                        boolean useDirect = r.nextBoolean();
                        ByteBuffer reuse = useDirect ? direct : heap;
                        fill(reuse, r);
                        ByteBuffer got = p.exportSlice(s, m, slice, reuse);
                        String what = from + " (" + s + ", " + m + ") " + slice;
                        assertEquals(0, got.position(), what);
                        assertEquals(want.length, got.limit(), what);
                        assertEquals(useDirect, got.isDirect(), what);
                        if (reuse.capacity() >= want.length) {
                            assertSame(reuse, got, what);
                        }
                        assertArrayEquals(want, bytes(got), what);
                        if (useDirect) {
                            direct = got;
                        } else {
                            heap = got;
                        }
                    }
                }
            }
            try (Pipeline q = empty(cpu, to, "q" + NAMES.incrementAndGet())) {
                List<Moved> moved = moveAll(p, q);
                assertTrue(q.isReady(), to.toString());
                assertEquals(p.length(SEQ_A), q.length(SEQ_A));
                assertEquals(p.length(SEQ_B), q.length(SEQ_B));
                // checked once all are in (a later import never overwrote an earlier one), by the array export
                for (Moved m : moved) {
                    assertArrayEquals(p.exportSlice(m.s1, m.m1, m.piece), q.exportSlice(m.s2, m.m2, m.piece),
                            from + " -> " + to + ": " + m);
                }
            }
        }
    }

    /** A piece moved from position (s1, m1) of one pipeline to (s2, m2) of another. */
    private record Moved(ContextSlice piece, int s1, int m1, int s2, int m2) {
    }

    private static Pipeline empty(Executor cpu, ShardLayout layout, String name) {
        Pipeline q = cpu.createPipeline(layout, TestPipelines.devices(cpu, layout, name, 1L << 30), 8);
        q.openSequence(SEQ_A, 16);
        q.openSequence(SEQ_B, 32);
        return q;
    }

    /** The weight slices and the filled KV slices of both sequences at position (s, m). */
    private static List<ContextSlice> held(Pipeline p, int s, int m) {
        List<ContextSlice> out = new ArrayList<>(p.layout().weightSlices(s, m));
        out.addAll(p.layout().kvSlices(s, m, SEQ_A, p.length(SEQ_A)));
        out.addAll(p.layout().kvSlices(s, m, SEQ_B, p.length(SEQ_B)));
        return out;
    }

    /**
     * Every piece {@code to} needs, cut from what {@code from}'s positions hold, exported there into one reused direct
     * buffer and imported here from it.
     */
    private static List<Moved> moveAll(Pipeline from, Pipeline to) {
        List<Moved> moved = new ArrayList<>();
        ByteBuffer reuse = ByteBuffer.allocateDirect(1 << 16);
        for (int s2 = 0; s2 < to.layout().stages(); s2++) {
            for (int m2 = 0; m2 < to.layout().shards(); m2++) {
                List<ContextSlice> needed = new ArrayList<>(to.layout().weightSlices(s2, m2));
                needed.addAll(to.layout().kvSlices(s2, m2, SEQ_A, from.length(SEQ_A)));
                needed.addAll(to.layout().kvSlices(s2, m2, SEQ_B, from.length(SEQ_B)));
                for (ContextSlice need : needed) {
                    for (int s1 = 0; s1 < from.layout().stages(); s1++) {
                        for (int m1 = 0; m1 < from.layout().shards(); m1++) {
                            for (ContextSlice h : held(from, s1, m1)) {
                                Optional<ContextSlice> piece = need.intersect(h);
                                if (piece.isPresent()) {
                                    reuse = from.exportSlice(s1, m1, piece.get(), reuse);
                                    assertEquals(piece.get(), to.importSlice(s2, m2, reuse));
                                    assertEquals(0, reuse.position()); // the import leaves the buffer as it was
                                    moved.add(new Moved(piece.get(), s1, m1, s2, m2));
                                }
                            }
                        }
                    }
                }
            }
        }
        return moved;
    }

    @Test
    void malformedBuffersAreRefusedWithNothingChanged() {
        LlamaConfig c = stories.config();
        ShardLayout layout = ShardLayout.balanced(c, List.of(3, 2), 1);
        try (Executor cpu = SliceLayoutPairs.fp32(true);
             Pipeline p = TestPipelines.loaded(cpu, stories, layout, "p", 4);
             Pipeline q = empty(cpu, layout, "q")) {
            ContextSlice layer0 = layout.weightSlices(0, 0).stream()
                    .filter(s -> s instanceof ContextSlice.LayerWeights).findFirst().orElseThrow();
            byte[] good = p.exportSlice(0, 0, layer0);
            long used = q.device(0, 0).usedBytes();

            // the bytes placed at an offset of a larger buffer: position and limit say where they are
            ByteBuffer framed = ByteBuffer.allocate(good.length + 20);
            framed.position(7).put(good).position(7).limit(7 + good.length);

            ByteBuffer badMagic = ByteBuffer.allocate(framed.capacity());
            badMagic.put(framed.duplicate()).position(7).limit(7 + good.length);
            badMagic.put(7, (byte) (good[0] ^ 1));
            ByteBuffer shortOne = framed.duplicate().limit(framed.limit() - 1);
            ByteBuffer longOne = framed.duplicate().limit(framed.limit() + 1);
            ByteBuffer shapeOff = ByteBuffer.allocate(good.length);
            shapeOff.put(good).flip();
            shapeOff.order(ByteOrder.LITTLE_ENDIAN).putInt(8, c.dim() + 1);
            for (ByteBuffer bad : List.of(badMagic, shortOne, longOne, shapeOff)) {
                int pos = bad.position();
                int lim = bad.limit();
                assertThrows(IllegalArgumentException.class, () -> q.importSlice(0, 0, bad));
                assertEquals(pos, bad.position());
                assertEquals(lim, bad.limit());
            }
            // a slice of stage 0 offered to stage 1
            assertThrows(IllegalArgumentException.class, () -> q.importSlice(1, 0, framed));
            assertEquals(used, q.device(0, 0).usedBytes(), "nothing allocated by a refused import");
            assertFalse(q.hasAllWeights(0, 0));
            assertThrows(IllegalArgumentException.class, () -> q.exportSlice(0, 0, layer0, ByteBuffer.allocate(8)),
                    "nothing to export before the import");

            // KV for a sequence not open at the target, or past its capacity: refused
            p.openSequence(SEQ_A, 64);
            p.prefill(SEQ_A, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 0);
            ContextSlice kv = layout.kvSlices(0, 0, SEQ_A, 20).get(0);
            ByteBuffer kvBytes = p.exportSlice(0, 0, kv, (ByteBuffer) null);
            assertThrows(IllegalArgumentException.class, () -> q.importSlice(0, 0, kvBytes), "capacity 16 < 20");
            assertEquals(0, q.length(SEQ_A));

            // the good bytes at their offset import, and export again as the same bytes; the buffer is untouched
            assertEquals(layer0, q.importSlice(0, 0, framed));
            assertEquals(7, framed.position());
            assertEquals(7 + good.length, framed.limit());
            assertArrayEquals(good, q.exportSlice(0, 0, layer0));
            assertArrayEquals(good, bytes(q.exportSlice(0, 0, layer0, ByteBuffer.allocateDirect(good.length))));

            // an export of a slice the position does not hold (sequence not open, another stage's layer): refused
            assertThrows(IllegalArgumentException.class, () -> q.exportSlice(1, 0, layer0, (ByteBuffer) null));
        }
    }

    private static void fill(ByteBuffer b, Random r) {
        ByteBuffer all = b.duplicate().clear();
        for (int i = 0; i < all.capacity(); i++) {
            all.put(i, (byte) r.nextInt());
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
