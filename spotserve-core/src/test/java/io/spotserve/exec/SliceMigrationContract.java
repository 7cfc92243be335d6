package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Context migration: slices export and import bit-exactly, re-slice between tensor degrees (two M = 2 shards
 * assembled into M = 1 and back), and a running sequence moved to a different (P, M) layout continues with
 * the same greedy tokens.
 */
public abstract class SliceMigrationContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    private static LlamaCheckpoint ckpt;
    private static LlamaConfig c;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        c = ckpt.config();
    }

    /**
     * Moves everything {@code to} needs from {@code from}: for each target position and each slice it needs,
     * the intersection with every slice each source position holds is exported there and imported here.
     *
     * @return bytes moved
     */
    public static long migrate(Pipeline from, Pipeline to, long... sequences) {
        ShardLayout a = from.layout();
        ShardLayout b = to.layout();
        long moved = 0;
        for (long seq : sequences) {
            to.openSequence(seq, to.config().seqLen());
        }
        for (int p2 = 0; p2 < b.stages(); p2++) {
            for (int m2 = 0; m2 < b.shards(); m2++) {
                List<ContextSlice> needed = new ArrayList<>(b.weightSlices(p2, m2));
                for (long seq : sequences) {
                    needed.addAll(b.kvSlices(p2, m2, seq, from.length(seq)));
                }
                for (ContextSlice need : needed) {
                    for (int p1 = 0; p1 < a.stages(); p1++) {
                        for (int m1 = 0; m1 < a.shards(); m1++) {
                            List<ContextSlice> held = new ArrayList<>(a.weightSlices(p1, m1));
                            for (long seq : sequences) {
                                held.addAll(a.kvSlices(p1, m1, seq, from.length(seq)));
                            }
                            for (ContextSlice h : held) {
                                Optional<ContextSlice> common = need.intersect(h);
                                if (common.isPresent()) {
                                    byte[] bytes = from.exportSlice(p1, m1, common.get());
                                    assertEquals(common.get(), to.importSlice(p2, m2, bytes));
                                    moved += bytes.length;
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
    void everyWeightSliceRoundTripsBitExactly() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            for (ShardLayout layout : TestPipelines.layouts(c)) {
                Pipeline src = TestPipelines.loaded(ex, ckpt, layout, "src" + layout, 1);
                Pipeline dst = ex.createPipeline(layout, TestPipelines.devices(ex, layout, "dst" + layout, 1 << 20), 1);
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        for (ContextSlice s : layout.weightSlices(p, m)) {
                            byte[] bytes = src.exportSlice(p, m, s);
                            assertArrayEquals(CheckpointSlices.read(ckpt, s), SliceFormat.decode(c, bytes).data(), 0f);
                            dst.importSlice(p, m, bytes);
                            assertArrayEquals(bytes, dst.exportSlice(p, m, s), layout + " " + s);
                        }
                        assertTrue(dst.hasAllWeights(p, m));
                        assertEquals(src.device(p, m).usedBytes(), dst.device(p, m).usedBytes());
                    }
                }
                src.close();
                dst.close();
            }
        }
    }

    @Test
    void twoHalfShardsAssembleIntoOneAndSplitBack() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            ShardLayout m2 = ShardLayout.of(c, 1, 2);
            ShardLayout m1 = ShardLayout.of(c, 1, 1);
            Pipeline half = TestPipelines.loaded(ex, ckpt, m2, "half", 1);
            Pipeline whole = ex.createPipeline(m1, TestPipelines.devices(ex, m1, "whole", 1 << 21), 1);
            ContextSlice layer3 = new ContextSlice.LayerWeights(3, IndexRange.of(0, 8), IndexRange.of(0, 172));
            // layer 3 alone: two M = 2 slices give the whole layer
            whole.importSlice(0, 0, half.exportSlice(0, 0, m2.weightSlices(0, 0).get(4)));
            assertThrows(IllegalArgumentException.class, () -> whole.exportSlice(0, 0, layer3), "half a layer is not all of it");
            whole.importSlice(0, 0, half.exportSlice(0, 1, m2.weightSlices(0, 1).get(4)));
            assertArrayEquals(CheckpointSlices.read(ckpt, layer3), SliceFormat.decode(c, whole.exportSlice(0, 0, layer3)).data(), 0f);
            assertFalse(whole.isReady());

            migrate(half, whole);
            assertTrue(whole.isReady());
            Pipeline again = ex.createPipeline(m2, TestPipelines.devices(ex, m2, "again", 1 << 20), 1);
            migrate(whole, again);
            assertTrue(again.isReady());
            for (int m = 0; m < 2; m++) {
                for (ContextSlice s : m2.weightSlices(0, m)) {
                    assertArrayEquals(half.exportSlice(0, m, s), again.exportSlice(0, m, s), s.toString());
                }
            }
        }
    }

    @Test
    void runningSequencesMoveToAnotherLayoutAndContinueIdentically() {
        int steps = 120;
        int moveAt = 45;
        int[] expected = new ReferenceLlama(ckpt).greedy(1, steps);
        List<ShardLayout[]> moves = List.of(
                new ShardLayout[] {ShardLayout.of(c, 1, 2), ShardLayout.balanced(c, List.of(3, 2), 1)},
                new ShardLayout[] {ShardLayout.balanced(c, List.of(2, 1, 1, 1), 4), ShardLayout.of(c, 1, 1)},
                new ShardLayout[] {ShardLayout.of(c, 1, 1), ShardLayout.balanced(c, List.of(2, 3), 4)},
                new ShardLayout[] {ShardLayout.balanced(c, List.of(1, 4), 2), ShardLayout.balanced(c, List.of(2, 1, 1, 1), 2)});
        for (boolean vector : new boolean[] {false, true}) {
            try (Executor ex = executor(new ExecutorOptions(2, vector))) {
                for (ShardLayout[] move : moves) {
                    String tag = move[0] + "->" + move[1] + " " + ex.name();
                    Pipeline a = TestPipelines.loaded(ex, ckpt, move[0], "a" + tag, 2);
                    Pipeline b = ex.createPipeline(move[1], TestPipelines.devices(ex, move[1], "b" + tag, 1 << 22), 2);
                    // two sequences at different positions: 10 (greedy from BOS) and 11 (lagging by 7 steps)
                    a.openSequence(10, c.seqLen());
                    a.openSequence(11, c.seqLen());
                    int[] got10 = new int[steps];
                    int[] got11 = new int[steps];
                    int t10 = 1;
                    int t11 = 1;
                    Pipeline cur = a;
                    for (int step = 0; step < steps + 7; step++) {
                        if (step == moveAt) {
                            migrate(a, b, 10, 11);
                            assertTrue(b.isReady(), tag);
                            assertEquals(a.length(10), b.length(10));
                            assertEquals(a.length(11), b.length(11));
                            List<Device> freed = new ArrayList<>();
                            for (int p = 0; p < move[0].stages(); p++) {
                                for (int m = 0; m < move[0].shards(); m++) {
                                    freed.add(a.device(p, m));
                                }
                            }
                            a.close();
                            for (Device d : freed) {
                                assertEquals(0, d.usedBytes(), tag);
                            }
                            cur = b;
                        }
                        int p10 = step;
                        int p11 = step - 7;
                        List<Long> ids = new ArrayList<>();
                        if (p10 < steps) {
                            ids.add(10L);
                        }
                        if (p11 >= 0) {
                            ids.add(11L);
                        }
                        long[] idArr = ids.stream().mapToLong(Long::longValue).toArray();
                        int[] toks = new int[idArr.length];
                        int[] pos = new int[idArr.length];
                        for (int i = 0; i < idArr.length; i++) {
                            toks[i] = idArr[i] == 10 ? t10 : t11;
                            pos[i] = idArr[i] == 10 ? p10 : p11;
                        }
                        float[][] logits = cur.decode(idArr, toks, pos);
                        for (int i = 0; i < idArr.length; i++) {
                            int next = ReferenceLlama.argmax(logits[i]);
                            if (idArr[i] == 10) {
                                got10[p10] = next;
                                t10 = next;
                            } else {
                                got11[p11] = next;
                                t11 = next;
                            }
                        }
                    }
                    assertArrayEquals(expected, got10, tag);
                    assertArrayEquals(expected, got11, tag);
                    b.close();
                }
            }
        }
    }

    /**
     * {@link Executor#transferAll}: every weight slice of a position in one call lands bit-exactly, in order, at a
     * position of another pipeline (for every layout); a slice the source does not hold is refused, and the slices
     * before it in the list were imported.
     */
    @Test
    void transferAllMovesAPositionsSlicesInOrderBitExactly() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            for (ShardLayout layout : TestPipelines.layouts(c)) {
                Pipeline src = TestPipelines.loaded(ex, ckpt, layout, "all-src" + layout, 1);
                Pipeline dst = ex.createPipeline(layout, TestPipelines.devices(ex, layout, "all-dst" + layout, 1 << 20),
                        1);
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        List<ContextSlice> slices = layout.weightSlices(p, m);
                        assertEquals(slices, ex.transferAll(src, p, m, slices, dst, p, m), layout + " (" + p + ", " + m
                                + ")");
                        for (ContextSlice s : slices) {
                            assertArrayEquals(src.exportSlice(p, m, s), dst.exportSlice(p, m, s), layout + " " + s);
                        }
                        assertTrue(dst.hasAllWeights(p, m));
                        assertEquals(src.device(p, m).usedBytes(), dst.device(p, m).usedBytes());
                    }
                }
                src.close();
                dst.close();
            }
            // the second slice is not held by the source: refused, the first one arrived
            ShardLayout two = ShardLayout.split(c, 2, 1);
            Pipeline src = TestPipelines.loaded(ex, ckpt, two, "all-src-refused", 1);
            Pipeline dst = ex.createPipeline(two, TestPipelines.devices(ex, two, "all-dst-refused", 1 << 20), 1);
            ContextSlice first = two.weightSlices(0, 0).get(1);
            ContextSlice notHeld = two.weightSlices(1, 0).get(0);
            assertThrows(IllegalArgumentException.class,
                    () -> ex.transferAll(src, 0, 0, List.of(first, notHeld), dst, 0, 0));
            assertArrayEquals(src.exportSlice(0, 0, first), dst.exportSlice(0, 0, first), "the slice before the refusal");
            src.close();
            dst.close();
        }
    }

    @Test
    void badImportsAreRejectedAndChangeNothing() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            ShardLayout m2 = ShardLayout.of(c, 1, 2);
            Pipeline src = TestPipelines.loaded(ex, ckpt, ShardLayout.of(c, 1, 1), "src", 1);
            Pipeline dst = ex.createPipeline(m2, TestPipelines.devices(ex, m2, "dst", 1 << 20), 1);
            byte[] wholeLayer = src.exportSlice(0, 0, ShardLayout.of(c, 1, 1).weightSlices(0, 0).get(1));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dst.importSlice(0, 0, wholeLayer));
            assertTrue(e.getMessage().contains("does not own LayerWeights[layer=0, heads=[0,8), hidden=[0,172)]"), e.getMessage());
            assertEquals(0, dst.device(0, 0).usedBytes());
            // an empty piece outside the shard's vocabulary rows is not "owned" either (it used to index out of bounds)
            byte[] emptyOutside = src.exportSlice(0, 0, new ContextSlice.Embedding(IndexRange.of(400, 400)));
            e = assertThrows(IllegalArgumentException.class, () -> dst.importSlice(0, 0, emptyOutside));
            assertTrue(e.getMessage().contains("does not own Embedding"), e.getMessage());
            assertEquals(0, dst.device(0, 0).usedBytes());

            byte[] corrupt = wholeLayer.clone();
            corrupt[0] ^= 1;
            e = assertThrows(IllegalArgumentException.class, () -> dst.importSlice(0, 0, corrupt));
            assertTrue(e.getMessage().contains("slice magic"), e.getMessage());
            byte[] truncated = Arrays.copyOf(wholeLayer, wholeLayer.length - 4);
            e = assertThrows(IllegalArgumentException.class, () -> dst.importSlice(0, 0, truncated));
            assertTrue(e.getMessage().contains("declares"), e.getMessage());
            LlamaConfig other = new LlamaConfig(64, 172, 5, 8, 8, 512, 512, true);
            e = assertThrows(IllegalArgumentException.class, () -> SliceFormat.decode(other, wholeLayer));
            assertTrue(e.getMessage().contains("expected [64, 172, 5, 8, 8, 512]"), e.getMessage());

            src.openSequence(3, 8);
            byte[] kv = src.exportSlice(0, 0, new ContextSlice.KvCache(3, 0, IndexRange.of(0, 2), 0));
            e = assertThrows(IllegalArgumentException.class, () -> dst.importSlice(0, 0, kv));
            assertTrue(e.getMessage().contains("sequence 3 is not open here"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> src.exportSlice(0, 0, new ContextSlice.KvCache(3, 0, IndexRange.of(0, 2), 1)));
            assertTrue(e.getMessage().contains("filled length 0"), e.getMessage());
        }
    }
}
