package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceImport;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Freed layer blocks kept as spares by {@link CpuDevice} and handed, not zeroed, to the next layer of the same length:
 * a pipeline whose layers reuse another model's blocks, imported piece by piece in another layout's pieces (some
 * abandoned half way, some positions half filled for a while), exports exactly the source's bytes and decodes exactly
 * as a pipeline on fresh devices; a block goes to one owner only; spares count as free bytes, never take the device's
 * heap over its capacity, and go with the device.
 */
class CpuLayerSparesTest {
    @TempDir
    static Path dir;

    @Test
    void reusedBlocksCarryNoValuesOfTheirEarlierLayers() throws IOException {
        LlamaConfig u = SliceLayoutPairs.UNEVEN;
        LlamaCheckpoint old = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("old.bin"), u, 31));
        LlamaCheckpoint model = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("new.bin"), u, 29));
        List<ShardLayout[]> pairs = List.of(new ShardLayout[] {ShardLayout.of(u, 3, 1), ShardLayout.of(u, 1, 3)},
                new ShardLayout[] {ShardLayout.of(u, 1, 3), ShardLayout.of(u, 3, 3)},
                new ShardLayout[] {ShardLayout.of(u, 1, 1), ShardLayout.balanced(u, List.of(2, 1), 3)});
        for (boolean packed : new boolean[] {true, false}) {
            try (Executor cpu = SliceLayoutPairs.fp32(packed)) {
                int n = 0;
                for (ShardLayout[] pair : pairs) {
                    check(cpu, old, model, pair[0], pair[1], "c" + n++, new Random(n * 7L + (packed ? 1 : 0)));
                }
            }
        }
    }

    private static void check(Executor cpu, LlamaCheckpoint old, LlamaCheckpoint model, ShardLayout from,
                              ShardLayout to, String name, Random r) {
        String what = from + " -> " + to;
        List<Device> devices = TestPipelines.devices(cpu, to, name, 1L << 30);
        try (Pipeline earlier = cpu.createPipeline(to, devices, 4)) {
            earlier.loadWeights(old); // the blocks the import below reuses hold this model's values
        }
        long spare = 0;
        for (Device d : devices) {
            spare += ((CpuDevice) d).spareBytes();
            assertEquals(0, d.usedBytes(), "spares count as free bytes");
        }
        assertTrue(spare > 0, what);
        try (Pipeline src = TestPipelines.loaded(cpu, model, from, name + "s", 4);
             Pipeline q = cpu.createPipeline(to, devices, 4)) {
            List<Moved> moved = new ArrayList<>();
            boolean abandoned = false;
            for (int s2 = 0; s2 < to.stages(); s2++) {
                for (int m2 = 0; m2 < to.shards(); m2++) {
                    for (ContextSlice need : to.weightSlices(s2, m2)) {
                        for (int s1 = 0; s1 < from.stages(); s1++) {
                            for (int m1 = 0; m1 < from.shards(); m1++) {
                                for (ContextSlice h : from.weightSlices(s1, m1)) {
                                    Optional<ContextSlice> piece = need.intersect(h);
                                    if (piece.isEmpty()) {
                                        continue;
                                    }
                                    byte[] bytes = src.exportSlice(s1, m1, piece.get());
                                    SliceImport in = q.beginImport(s2, m2, piece.get(), bytes.length);
                                    if (in == null) { // held already (norms from several sources)
                                        q.importSlice(s2, m2, bytes);
                                    } else {
                                        if (!abandoned && piece.get() instanceof ContextSlice.LayerWeights) {
                                            // half of it, then abandoned: not held, nothing of it exported
                                            in.put(ByteBuffer.wrap(bytes, 0, bytes.length / 2));
                                            in.close();
                                            final int s = s2;
                                            final int m = m2;
                                            assertThrows(IllegalArgumentException.class,
                                                    () -> q.exportSlice(s, m, piece.get()), what);
                                            abandoned = true;
                                            in = q.beginImport(s2, m2, piece.get(), bytes.length);
                                        }
                                        for (int off = 0; off < bytes.length; ) {
                                            int len = Math.min(bytes.length - off, 1 + r.nextInt(70_000));
                                            in.put(ByteBuffer.wrap(bytes, off, len));
                                            off += len;
                                        }
                                        in.finish();
                                        in.close();
                                    }
                                    moved.add(new Moved(piece.get(), s1, m1, s2, m2));
                                    // what is held so far exports the source's bytes, in half-filled blocks too
                                    Moved last = moved.get(r.nextInt(moved.size()));
                                    assertArrayEquals(src.exportSlice(last.s1, last.m1, last.piece),
                                            q.exportSlice(last.s2, last.m2, last.piece), what + ": " + last);
                                }
                            }
                        }
                    }
                }
            }
            assertTrue(abandoned, what);
            assertTrue(q.isReady(), what);
            long reused = 0;
            for (Device d : devices) {
                reused += ((CpuDevice) d).reusedLayers();
            }
            assertTrue(reused >= to.config().layers(), what + ": layer blocks reused " + reused);
            for (Moved mv : moved) {
                assertArrayEquals(src.exportSlice(mv.s1, mv.m1, mv.piece), q.exportSlice(mv.s2, mv.m2, mv.piece),
                        what + ": " + mv);
            }
            // every float a step reads was written: the same logits as the layout on fresh devices
            try (Pipeline fresh = TestPipelines.loaded(cpu, model, to, name + "f", 4)) {
                for (Pipeline p : List.of(q, fresh)) {
                    p.openSequence(5, 8);
                }
                int token = 1;
                for (int pos = 0; pos < 6; pos++) {
                    float[] want = fresh.decode(new long[] {5}, new int[] {token}, new int[] {pos})[0];
                    float[] got = q.decode(new long[] {5}, new int[] {token}, new int[] {pos})[0];
                    assertArrayEquals(want, got, what + " step " + pos);
                    token = io.spotserve.exec.ReferenceLlama.argmax(want);
                }
            }
        }
        for (Device d : devices) {
            cpu.destroyDevice(d);
            assertEquals(0, ((CpuDevice) d).spareBytes(), "the spares go with the device");
        }
    }

    /** A piece moved from position (s1, m1) of one pipeline to (s2, m2) of another. */
    private record Moved(ContextSlice piece, int s1, int m1, int s2, int m2) {
    }

    @Test
    void aSpareGoesToOneOwnerAndNeverTakesTheHeapOverCapacity() {
        try (CpuExecutor cpu = new CpuExecutor(new ExecutorOptions(1, true))) {
            CpuDevice d = (CpuDevice) cpu.createDevice(new DeviceId("d", 0), 4000); // 1000 floats
            float[] a = d.allocateLayer("a", 300);
            float[] b = d.allocateLayer("b", 300);
            assertEquals(2400, d.usedBytes());
            d.freeLayer(a);
            d.freeLayer(b);
            assertEquals(0, d.usedBytes());
            assertEquals(2400, d.spareBytes());
            a[7] = 42;
            float[] c = d.allocateLayer("c", 300);
            float[] e = d.allocateLayer("e", 300);
            assertSame(a, c, "the oldest spare first");
            assertSame(b, e);
            assertNotSame(c, e);
            assertEquals(42, c[7], "not zeroed again");
            assertEquals(0, d.spareBytes());
            assertEquals(2400, d.usedBytes());
            assertEquals(2, d.reusedLayers());
            assertThrows(IllegalStateException.class, () -> d.freeLayer(new float[300]), "not allocated here");
            assertEquals(0, d.spareBytes());

            d.freeLayer(c);
            d.freeLayer(e);
            float[] kv = d.allocate("kv", 700); // 2800 bytes: one spare must go so that used + spares <= capacity
            assertEquals(2800, d.usedBytes());
            assertEquals(1200, d.spareBytes());
            assertThrows(DeviceMemoryException.class, () -> d.allocateLayer("big", 301));
            assertEquals(1200, d.spareBytes(), "a refused allocation changes nothing");
            assertSame(e, d.allocateLayer("again", 300), "the younger spare stayed");
            d.freeLayer(e);
            assertThrows(IllegalStateException.class, () -> d.freeLayer(e), "freed twice");
            assertEquals(1200, d.spareBytes(), "kept once");
            float[] other = d.allocateLayer("other", 200);
            assertEquals(0, d.spareBytes(), "another length: the layout changed, every spare dropped");
            for (float v : other) {
                assertEquals(0f, v);
            }
            d.freeLayer(other);
            float[] kept = d.allocateLayer("kept", 200);
            assertSame(other, kept);
            kept[3] = 5;
            d.freeLayer(kept);
            d.clearSpareReferences(); // what the collector does when the heap runs short
            float[] fresh = d.allocateLayer("fresh", 200);
            assertNotSame(kept, fresh);
            assertEquals(0f, fresh[3], "a collected spare is replaced by a zeroed block");
            assertEquals(0, d.spareBytes(), "a collected spare's bytes are forgotten");
            d.free(kv);
            d.freeLayer(fresh);
            assertFalse(d.spareBytes() == 0);
            cpu.destroyDevice(d);
            assertEquals(0, d.spareBytes());
        }
    }
}
