package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.WeightSource;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * The timing executor charges the devices exactly what the layout's byte model and the CPU executor allocate,
 * rejects what the CPU executor rejects (capacity, payloads, forward inputs) with the same exceptions and leaves
 * nothing half changed, and its forward step points greedy sampling at {@link TimingExecutor#SPIKE_TOKEN}.
 */
class TimingExecutorTest {
    private static final long BIG = 1L << 60;
    private static final int[] SHARDS = {1, 2, 4};

    /** Imports every weight slice of every position from {@code source}. */
    private static void importAll(Pipeline p, WeightSource source) {
        ShardLayout l = p.layout();
        for (int s = 0; s < l.stages(); s++) {
            for (int m = 0; m < l.shards(); m++) {
                for (ContextSlice w : l.weightSlices(s, m)) {
                    assertEquals(w, p.importSlice(s, m, source.encode(w)));
                }
            }
        }
    }

    private static long[] used(Pipeline p) {
        return used(devicesOf(p));
    }

    private static List<Device> devicesOf(Pipeline p) {
        ShardLayout l = p.layout();
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < l.stages() * l.shards(); i++) {
            out.add(p.device(i / l.shards(), i % l.shards()));
        }
        return out;
    }

    private static long[] used(List<Device> devices) {
        return devices.stream().mapToLong(Device::usedBytes).toArray();
    }

    @Test
    void weightAndKvBytesPerPositionFollowTheLayoutsByteModel() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        assertTrue(ckpt.config().sharedClassifier(), "stories260K shares its classifier: the aliased case is covered");
        try (TimingExecutor ex = new TimingExecutor()) {
            for (LlamaConfig c : List.of(ckpt.config(), TestModels.OPT_6_7B, TestModels.LLAMA_30B)) {
                WeightSource source = TimingExecutor.weights(c);
                assertEquals(c, source.config());
                for (int stages = 1; stages <= 4; stages++) {
                    for (int shards : SHARDS) {
                        ShardLayout l = TestModels.layout(c, stages, shards);
                        List<Device> devs = TestModels.devices(ex, l, "w" + c.dim() + l, BIG);
                        Pipeline p = ex.createPipeline(l, devs, 8);
                        assertFalse(p.isReady());
                        importAll(p, source);
                        assertTrue(p.isReady(), l.toString());
                        long total = 0;
                        for (int s = 0; s < stages; s++) {
                            for (int m = 0; m < shards; m++) {
                                assertEquals(l.weightBytes(s, m), p.device(s, m).usedBytes(), l + " (" + s + "," + m + ")");
                                total += l.weightBytes(s, m);
                            }
                        }
                        if (stages == 1 && shards == 1) {
                            assertEquals(c.parameterCount() * Float.BYTES, total, "whole model once");
                        }
                        long[] before = used(p);
                        int capacity = Math.min(c.seqLen(), 300);
                        p.openSequence(5, capacity);
                        long[] after = used(p);
                        for (int i = 0; i < after.length; i++) {
                            assertEquals((long) capacity * l.kvBytesPerPosition(i / shards, i % shards),
                                    after[i] - before[i], l + " KV of position " + i);
                        }
                        if (stages == 1 && shards == 1) {
                            assertEquals(capacity * c.kvBytesPerPosition(), after[0] - before[0]);
                        }
                        p.closeSequence(5);
                        assertArrayEquals(before, used(p));
                        p.close();
                        for (Device d : devs) {
                            assertEquals(0, d.usedBytes());
                            ex.destroyDevice(d);
                        }
                    }
                }
            }
        }
    }

    @Test
    void cpuAndTimingExecutorsChargeTheSameBytesForStories260K() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        LlamaConfig c = ckpt.config();
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, false)); TimingExecutor tim = new TimingExecutor()) {
            for (int stages = 1; stages <= 4; stages++) {
                for (int shards : SHARDS) {
                    ShardLayout l = TestModels.layout(c, stages, shards);
                    // all positions on one device too: shared arenas add up the same way
                    for (boolean oneDevice : new boolean[] {false, true}) {
                        String tag = l + (oneDevice ? "one" : "many");
                        Pipeline a = cpu.createPipeline(l, devices(cpu, l, tag, oneDevice), 4);
                        Pipeline b = tim.createPipeline(l, devices(tim, l, tag, oneDevice), 4);
                        Pipeline b2 = tim.createPipeline(l, devices(tim, l, tag + "2", oneDevice), 4);
                        a.loadWeights(ckpt);
                        importAll(b, TimingExecutor.weights(c));
                        b2.loadWeights(ckpt);
                        assertArrayEquals(used(a), used(b), tag);
                        assertArrayEquals(used(a), used(b2), tag);
                        assertTrue(b2.isReady());
                        int[] caps = {1, 17, c.seqLen()};
                        for (int i = 0; i < caps.length; i++) {
                            a.openSequence(i, caps[i]);
                            b.openSequence(i, caps[i]);
                            assertArrayEquals(used(a), used(b), tag + " after opening " + i);
                        }
                        // releasing units (embedding / classifier aliasing on P = 1) frees the same bytes
                        for (int s = 0; s < l.stages(); s++) {
                            for (int m = 0; m < l.shards(); m++) {
                                List<ContextSlice> units = l.weightSlices(s, m);
                                for (ContextSlice u : List.of(units.get(0), units.get(units.size() - 1))) {
                                    a.releaseSlice(s, m, u);
                                    b.releaseSlice(s, m, u);
                                    assertArrayEquals(used(a), used(b), tag + " after releasing " + u);
                                    assertEquals(a.hasAllWeights(s, m), b.hasAllWeights(s, m));
                                }
                            }
                        }
                        a.closeSequence(1);
                        b.closeSequence(1);
                        assertArrayEquals(used(a), used(b));
                        List<Device> da = devicesOf(a);
                        List<Device> db = devicesOf(b);
                        List<Device> db2 = devicesOf(b2);
                        a.close();
                        b.close();
                        b2.close();
                        for (List<Device> ds : List.of(da, db, db2)) {
                            for (long u : used(ds)) {
                                assertEquals(0, u, tag + ": close frees everything");
                            }
                        }
                    }
                }
            }
        }
    }

    private static List<Device> devices(Executor ex, ShardLayout l, String tag, boolean oneDevice) {
        if (!oneDevice) {
            return TestModels.devices(ex, l, tag, BIG);
        }
        Device d = ex.createDevice(new DeviceId(tag, 0), BIG);
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < l.stages() * l.shards(); i++) {
            out.add(d);
        }
        return out;
    }

    @Test
    void tooSmallDevicesThrowLikeTheCpuExecutorAndAllocateNothing() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        LlamaConfig c = ckpt.config();
        ShardLayout l = TestModels.layout(c, 2, 2);
        long weights = l.weightBytes(0, 0);
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, false)); TimingExecutor tim = new TimingExecutor()) {
            // weights: a device one byte short of position (0, 0)'s weights
            for (boolean load : new boolean[] {true, false}) {
                List<Supplier<RuntimeException>> attempts = new ArrayList<>();
                Pipeline[] ps = new Pipeline[2];
                Executor[] exs = {cpu, tim};
                for (int e = 0; e < 2; e++) {
                    List<Device> devs = TestModels.devices(exs[e], l, "small" + load, BIG);
                    devs.set(0, exs[e].createDevice(new DeviceId("tiny" + load, 0), weights - 1));
                    ps[e] = exs[e].createPipeline(l, devs, 2);
                }
                DeviceMemoryException[] errs = new DeviceMemoryException[2];
                for (int e = 0; e < 2; e++) {
                    Pipeline p = ps[e];
                    if (load) {
                        errs[e] = assertThrows(DeviceMemoryException.class, () -> p.loadWeights(ckpt));
                    } else {
                        WeightSource src = e == 0 ? WeightSource.of(ckpt) : TimingExecutor.weights(c);
                        for (ContextSlice w : l.weightSlices(0, 0).subList(0, l.weightSlices(0, 0).size() - 1)) {
                            p.importSlice(0, 0, src.encode(w));
                        }
                        ContextSlice lastLayer = l.weightSlices(0, 0).get(l.weightSlices(0, 0).size() - 1);
                        long before = p.device(0, 0).usedBytes();
                        errs[e] = assertThrows(DeviceMemoryException.class, () -> p.importSlice(0, 0, src.encode(lastLayer)));
                        assertEquals(before, p.device(0, 0).usedBytes());
                        assertFalse(p.hasAllWeights(0, 0));
                        assertThrows(IllegalArgumentException.class, () -> p.exportSlice(0, 0, lastLayer), "not held");
                    }
                }
                assertEquals(errs[0].getMessage(), errs[1].getMessage());
                assertEquals(errs[0].device(), new DeviceId("tiny" + load, 0));
                assertEquals(errs[0].requested(), errs[1].requested());
                assertEquals(errs[0].used(), errs[1].used());
                assertEquals(errs[0].capacity(), errs[1].capacity());
                if (load) {
                    assertArrayEquals(used(ps[0]), used(ps[1]));
                    for (long u : used(ps[1])) {
                        assertEquals(0, u, "a failed load allocates nothing");
                    }
                }
                ps[0].close();
                ps[1].close();
            }

            // KV: the last position's device has room for 100 positions of the P=2,M=2 layout's KV, not 101
            long kv = l.kvBytesPerPosition(1, 1);
            Pipeline[] ps = new Pipeline[2];
            Executor[] exs = {cpu, tim};
            for (int e = 0; e < 2; e++) {
                List<Device> devs = TestModels.devices(exs[e], l, "kv", BIG);
                devs.set(3, exs[e].createDevice(new DeviceId("kvtiny", 0), l.weightBytes(1, 1) + 100 * kv));
                ps[e] = exs[e].createPipeline(l, devs, 2);
            }
            ps[0].loadWeights(ckpt);
            importAll(ps[1], TimingExecutor.weights(c));
            DeviceMemoryException[] errs = new DeviceMemoryException[2];
            for (int e = 0; e < 2; e++) {
                Pipeline p = ps[e];
                long[] before = used(p);
                errs[e] = assertThrows(DeviceMemoryException.class, () -> p.openSequence(9, 101));
                assertArrayEquals(before, used(p), "no device keeps a partial reservation");
                assertTrue(p.sequences().isEmpty());
                p.openSequence(9, 100);
                assertEquals(0, p.device(1, 1).freeBytes());
            }
            assertEquals(errs[0].getMessage(), errs[1].getMessage());
            assertEquals(errs[0].requested(), errs[1].requested());
            assertArrayEquals(used(ps[0]), used(ps[1]));
        }
    }

    @Test
    void malformedOrForeignPayloadsAreRejectedAndChangeNothing() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        LlamaConfig c = ckpt.config();
        ShardLayout l = TestModels.layout(c, 1, 2);
        try (TimingExecutor tim = new TimingExecutor()) {
            Pipeline p = tim.createPipeline(l, TestModels.devices(tim, l, "bad", BIG), 2);
            ContextSlice layer0 = l.weightSlices(0, 0).get(1);
            byte[] good = TimingExecutor.weights(c).encode(layer0);
            assertTrue(good.length <= 100, "a descriptor, not floats: " + good.length + " bytes");

            List<byte[]> bad = new ArrayList<>();
            List<String> why = new ArrayList<>();
            bad.add(new byte[0]);
            why.add("expected a 76-byte timing descriptor");
            bad.add(Arrays.copyOf(good, good.length - 1));
            why.add("75 bytes long, expected 76");
            byte[] magic = good.clone();
            magic[0] ^= 1;
            bad.add(magic);
            why.add("magic");
            bad.add(withInt(good, 4, 2));
            why.add("version 2, expected 1");
            bad.add(TimingExecutor.weights(TestModels.OPT_6_7B).encode(new ContextSlice.FinalNorm()));
            why.add("model shape");
            bad.add(withInt(good, 40, 9));
            why.add("kind 9 unknown");
            bad.add(withInt(good, 44, 7));
            why.add("layer 7 outside [0, 5)");
            bad.add(withInt(good, 48, 5)); // heads [5, 4)
            why.add("index range [5, 4) is invalid");
            bad.add(withInt(good, 52, 6)); // heads [0, 6) do not belong to shard 0's [0, 4)
            why.add("does not own LayerWeights[layer=0, heads=[0,6)");
            bad.add(TimingExecutor.weights(c).encode(new ContextSlice.Embedding(l.vocab(1))));
            why.add("does not own Embedding");
            bad.add(SliceDescriptor.encode(c, new ContextSlice.KvCache(3, 0, IndexRange.of(0, 2), 4)));
            why.add("(sequence 3 is not open here)");
            byte[] floats = SliceFormat.encode(c, layer0, CheckpointSlices.read(ckpt, layer0));
            bad.add(Arrays.copyOf(floats, floats.length - 4));
            why.add("declares");
            for (int i = 0; i < bad.size(); i++) {
                byte[] b = bad.get(i);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.importSlice(0, 0, b),
                        why.get(i));
                assertTrue(e.getMessage().contains(why.get(i)), why.get(i) + " not in: " + e.getMessage());
                assertEquals(0, p.device(0, 0).usedBytes());
                assertEquals(0, p.device(0, 1).usedBytes());
            }
            // an empty range outside the position is not owned (WeightCoverage checks the bounds of empty ranges too)
            for (ContextSlice empty : List.of(new ContextSlice.Embedding(IndexRange.of(400, 400)),
                    new ContextSlice.LayerWeights(0, IndexRange.of(6, 6), IndexRange.of(0, 10)))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> p.importSlice(0, 0, TimingExecutor.weights(c).encode(empty)));
                assertTrue(e.getMessage().contains("does not own"), e.getMessage());
                assertEquals(0, p.device(0, 0).usedBytes());
            }
            // the float format of the other executors is read by its header
            assertEquals(layer0, p.importSlice(0, 0, floats));
            assertEquals(layer0.bytes(c), p.device(0, 0).usedBytes(), "one layer unit charged");
            assertArrayEquals(good, p.exportSlice(0, 0, layer0));
            assertThrows(IllegalArgumentException.class, () -> p.exportSlice(0, 1, layer0), "shard 1 holds nothing");
            assertThrows(IllegalArgumentException.class,
                    () -> TimingExecutor.weights(c).encode(new ContextSlice.KvCache(1, 0, IndexRange.of(0, 1), 1)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TimingExecutor.weights(c).encode(new ContextSlice.Classifier(IndexRange.of(0, 513))));
            assertTrue(e.getMessage().contains("classifier vocab rows [0,513) exceed the model's 512"), e.getMessage());
            IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> {
                try (TimingExecutor other = new TimingExecutor()) {
                    ShardLayout ol = ShardLayout.of(TestModels.OPT_6_7B, 1, 1);
                    other.createPipeline(ol, TestModels.devices(other, ol, "opt", BIG), 1).loadWeights(ckpt);
                }
            });
            assertTrue(wrong.getMessage().contains("differs from the pipeline's"), wrong.getMessage());
            p.close();
        }
    }

    private static byte[] withInt(byte[] bytes, int offset, int value) {
        byte[] out = bytes.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(offset, value);
        return out;
    }

    /** The same bad forward inputs make the CPU and the timing pipeline throw the same exception and message. */
    @Test
    void forwardRejectsWhatTheCpuPipelineRejects() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        LlamaConfig c = ckpt.config();
        ShardLayout l = TestModels.layout(c, 2, 2);
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, false)); TimingExecutor tim = new TimingExecutor()) {
            Pipeline a = cpu.createPipeline(l, TestModels.devices(cpu, l, "f", BIG), 4);
            Pipeline b = tim.createPipeline(l, TestModels.devices(tim, l, "f", BIG), 4);
            for (Pipeline p : List.of(a, b)) {
                p.openSequence(1, 8);
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> p.forward(new long[] {1}, new int[] {1}, new int[] {0}, 1, new float[1][]));
                assertTrue(e.getMessage().contains("lacks weights"), e.getMessage());
            }
            a.loadWeights(ckpt);
            importAll(b, TimingExecutor.weights(c));
            for (Pipeline p : List.of(a, b)) {
                p.openSequence(2, 8);
                p.forward(new long[] {1, 1, 1, 2}, new int[] {1, 5, 6, 1}, new int[] {0, 1, 2, 0}, 4, new float[4][]);
            }
            float[] row = new float[c.vocabSize()];
            int v = c.vocabSize();
            Object[][] cases = {
                // sequences, tokens, positions, count, logits
                {new long[] {1}, new int[] {1}, new int[] {3}, 0, new float[1][]},
                {new long[] {1}, new int[] {1}, new int[] {3}, 5, new float[5][]},
                {new long[] {1}, new int[] {1, 1}, new int[] {3, 4}, 2, new float[2][]},
                {new long[] {7}, new int[] {1}, new int[] {0}, 1, new float[1][]},
                {new long[] {1}, new int[] {v}, new int[] {3}, 1, new float[1][]},
                {new long[] {1}, new int[] {-1}, new int[] {3}, 1, new float[1][]},
                {new long[] {1}, new int[] {1}, new int[] {4}, 1, new float[1][]},
                {new long[] {1}, new int[] {1}, new int[] {-1}, 1, new float[1][]},
                {new long[] {1, 2, 1}, new int[] {1, 1, 1}, new int[] {3, 1, 5}, 3, new float[3][]},
                {new long[] {2, 2, 2, 2}, new int[] {1, 1, 1, 1}, new int[] {1, 2, 3, 5}, 4, new float[4][]},
                {new long[] {2}, new int[] {1}, new int[] {1}, 1, new float[][] {new float[v - 1]}},
                {new long[] {1, 2}, new int[] {1, 1}, new int[] {3, 1}, 2, new float[][] {row, new float[v + 1]}},
            };
            for (Object[] k : cases) {
                String[] msgs = new String[2];
                Pipeline[] ps = {a, b};
                for (int i = 0; i < 2; i++) {
                    Pipeline p = ps[i];
                    msgs[i] = assertThrows(IllegalArgumentException.class, () -> p.forward((long[]) k[0], (int[]) k[1],
                            (int[]) k[2], (int) k[3], (float[][]) k[4]), Arrays.deepToString(k)).getMessage();
                    assertEquals(3, p.length(1), "nothing computed");
                    assertEquals(1, p.length(2));
                }
                assertEquals(msgs[0], msgs[1]);
            }
            // capacity 8 of sequence 2: positions 1..7 fit in one block, 8 does not
            for (Pipeline p : List.of(a, b)) {
                assertThrows(IllegalArgumentException.class, () -> p.prefill(2, new int[] {1, 2, 3, 4, 5, 6, 7, 8}, 1));
            }
            float[] last = b.prefill(2, new int[] {1, 2, 3, 4, 5, 6, 7}, 1);
            assertEquals(8, b.length(2));
            assertEquals(TimingExecutor.SPIKE_TOKEN, argmax(last));
            assertEquals(1f, last[TimingExecutor.SPIKE_TOKEN]);
            assertEquals(1f, sum(last), "only the spike is written");
            // reused rows (holding only earlier spikes) keep pointing at the spike
            float[][] rows = {row, null};
            b.forward(new long[] {1, 1}, new int[] {3, 3}, new int[] {3, 4}, 2, rows);
            b.forward(new long[] {1}, new int[] {3}, new int[] {5}, 1, rows);
            assertEquals(TimingExecutor.SPIKE_TOKEN, argmax(row));
            assertEquals(1f, sum(row));
            assertEquals(6, b.length(1));
            a.close();
            b.close();
            assertThrows(IllegalStateException.class, () -> b.forward(new long[] {1}, new int[] {1}, new int[] {0}, 1,
                    new float[1][]));
            assertThrows(IllegalStateException.class, () -> b.device(0, 0));
        }
    }

    private static int argmax(float[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) {
            if (a[i] > a[best]) {
                best = i;
            }
        }
        return best;
    }

    private static float sum(float[] a) {
        float s = 0;
        for (float f : a) {
            s += f;
        }
        return s;
    }

    @Test
    void executorBasics() {
        try (TimingExecutor ex = new TimingExecutor()) {
            assertEquals("timing", ex.name());
            assertEquals(1, ex.options().threads());
            ShardLayout l = ShardLayout.of(TestModels.OPT_6_7B, 4, 1);
            List<Device> devs = TestModels.devices(ex, l, "basic", 16L << 30);
            Pipeline p = ex.createPipeline(l, devs, 64);
            importAll(p, TimingExecutor.weights(TestModels.OPT_6_7B));
            IllegalStateException busy = assertThrows(IllegalStateException.class, () -> ex.destroyDevice(devs.get(0)));
            assertTrue(busy.getMessage().contains("still holds"), busy.getMessage());
            p.close();
            ex.destroyDevice(devs.get(0));
            assertThrows(IllegalArgumentException.class, () -> ex.createDevice(devs.get(1).id(), 1));
        }
        assertThrows(IllegalArgumentException.class, () -> {
            try (TimingExecutor ex = new TimingExecutor()) {
                LlamaConfig tiny = new LlamaConfig(8, 8, 1, 1, 1, 3, 4, true);
                ShardLayout l = ShardLayout.of(tiny, 1, 1);
                ex.createPipeline(l, TestModels.devices(ex, l, "tiny", 1 << 20), 1);
            }
        }, "vocab without token 3");
    }
}
