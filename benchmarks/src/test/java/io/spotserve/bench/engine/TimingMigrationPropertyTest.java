package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Seeded property test of context migration through the timing executor, with the CPU executor on the real
 * stories260K model as the oracle: both run the same operations (load, prefill, random export / import probes, then
 * a random old layout → random new layout move of every weight and KV piece with {@link ContextSlice#intersect},
 * releasing the old units as the engine's ContextMigration does) and must agree on every accept / reject decision
 * (with the same message), every device's bytes, readiness and sequence lengths.
 */
class TimingMigrationPropertyTest {
    private static final long BIG = 1L << 40;
    private static final int TRIALS = 40;

    /** The same pipeline on both executors; every operation is applied to both and compared. */
    private static final class Twin {
        final Pipeline cpu;
        final Pipeline tim;
        final List<Device> cpuDevices;
        final List<Device> timDevices;

        Twin(Pipeline cpu, Pipeline tim, List<Device> cpuDevices, List<Device> timDevices) {
            this.cpu = cpu;
            this.tim = tim;
            this.cpuDevices = cpuDevices;
            this.timDevices = timDevices;
        }

        /** Runs {@code op} on both; both must succeed or both throw IllegalArgumentException with one message. */
        String both(Function<Pipeline, Object> op, String what) {
            String a = outcome(cpu, op);
            String b = outcome(tim, op);
            assertEquals(a, b, what);
            return a;
        }

        void assertSame(String what) {
            assertArrayEquals(used(cpuDevices), used(timDevices), what + ": device bytes");
            ShardLayout l = cpu.layout();
            for (int s = 0; s < l.stages(); s++) {
                for (int m = 0; m < l.shards(); m++) {
                    assertEquals(cpu.hasAllWeights(s, m), tim.hasAllWeights(s, m), what + ": weights of " + s + "," + m);
                }
            }
            assertEquals(cpu.sequences(), tim.sequences(), what);
            for (long seq : cpu.sequences()) {
                assertEquals(cpu.length(seq), tim.length(seq), what + ": length of " + seq);
            }
        }
    }

    private static String outcome(Pipeline p, Function<Pipeline, Object> op) {
        try {
            op.apply(p);
            return "ok";
        } catch (IllegalArgumentException e) {
            return "IAE " + e.getMessage();
        }
    }

    private static long[] used(List<Device> devices) {
        return devices.stream().mapToLong(Device::usedBytes).toArray();
    }

    @Test
    void randomLayoutChangesMoveEverythingAndAgreeWithTheCpuExecutor() {
        LlamaCheckpoint ckpt = TestModels.stories260K();
        LlamaConfig c = ckpt.config();
        WeightSource floats = WeightSource.of(ckpt);
        WeightSource descriptors = TimingExecutor.weights(c);
        Random rnd = new Random(0x5107_5e7eL);
        int[] outcomes = new int[2]; // probes accepted, rejected
        try (Executor cpuEx = new CpuExecutor(new ExecutorOptions(1, false)); TimingExecutor timEx = new TimingExecutor()) {
            for (int trial = 0; trial < TRIALS; trial++) {
                String tag = "trial " + trial;
                ShardLayout a = randomLayout(rnd, c);
                ShardLayout b = randomLayout(rnd, c);
                tag += " " + a + " -> " + b;
                // device pools: the new pipeline shares the old one's devices in half the trials
                List<DeviceId> oldIds = ids("old" + trial, 1 + rnd.nextInt(a.stages() * a.shards()));
                List<DeviceId> newIds = new ArrayList<>(ids("new" + trial, 1 + rnd.nextInt(b.stages() * b.shards())));
                boolean shared = rnd.nextBoolean();
                if (shared) {
                    newIds.addAll(oldIds);
                }
                List<Device> cpuOldPool = create(cpuEx, oldIds);
                List<Device> timOldPool = create(timEx, oldIds);
                List<Device> cpuNewPool = new ArrayList<>(create(cpuEx, newIds.subList(0, newIds.size() - (shared ? oldIds.size() : 0))));
                List<Device> timNewPool = new ArrayList<>(create(timEx, newIds.subList(0, cpuNewPool.size())));
                if (shared) {
                    cpuNewPool.addAll(cpuOldPool);
                    timNewPool.addAll(timOldPool);
                }
                Twin old = twin(cpuEx, timEx, a, cpuOldPool, timOldPool, rnd);
                Twin neu = twin(cpuEx, timEx, b, cpuNewPool, timNewPool, rnd);
                List<Device> cpuAll = new ArrayList<>(cpuOldPool);
                List<Device> timAll = new ArrayList<>(timOldPool);
                if (!shared) {
                    cpuAll.addAll(cpuNewPool);
                    timAll.addAll(timNewPool);
                }
                Twin all = new Twin(old.cpu, old.tim, cpuAll, timAll);

                // cold start: the CPU pipeline loads the checkpoint; the timing one loads it or imports descriptors
                old.cpu.loadWeights(ckpt);
                if (rnd.nextBoolean()) {
                    old.tim.loadWeights(ckpt);
                } else {
                    importAll(old.tim, descriptors);
                }
                old.assertSame(tag + " loaded");

                // sequences prefilled to random lengths (0 = opened, nothing computed)
                int nseq = 1 + rnd.nextInt(3);
                long[] seqs = new long[nseq];
                int[] caps = new int[nseq];
                for (int i = 0; i < nseq; i++) {
                    seqs[i] = 100 + i;
                    caps[i] = 4 + rnd.nextInt(40);
                    int len = rnd.nextInt(caps[i]);
                    int[] tokens = rnd.ints(len, 0, c.vocabSize()).toArray();
                    long seq = seqs[i];
                    int cap = caps[i];
                    old.both(p -> {
                        p.openSequence(seq, cap);
                        return len > 0 ? p.prefill(seq, tokens, 0) : null;
                    }, tag);
                }
                old.assertSame(tag + " prefilled");

                // export probes on the old pipeline: which slices each position holds
                for (int k = 0; k < 40; k++) {
                    ContextSlice s = randomSlice(rnd, c, seqs);
                    int st = rnd.nextInt(a.stages());
                    int sh = rnd.nextInt(a.shards());
                    String o = old.both(p -> p.exportSlice(st, sh, s), tag + " export " + s + " at " + st + "," + sh);
                    outcomes[o.equals("ok") ? 0 : 1]++;
                    if (o.equals("ok")) {
                        assertEquals(s, SliceFormat.peek(c, old.cpu.exportSlice(st, sh, s)));
                        assertEquals(s, SliceDescriptor.decode(c, old.tim.exportSlice(st, sh, s)));
                    }
                }

                // import probes of weight slices on the new pipeline: which slices each position owns
                for (int k = 0; k < 20; k++) {
                    ContextSlice s = randomSlice(rnd, c, new long[0]);
                    if (s instanceof ContextSlice.KvCache) {
                        continue;
                    }
                    int st = rnd.nextInt(b.stages());
                    int sh = rnd.nextInt(b.shards());
                    String o1 = outcome(neu.cpu, p -> p.importSlice(st, sh, floats.encode(s)));
                    String o2 = outcome(neu.tim, p -> p.importSlice(st, sh, descriptors.encode(s)));
                    assertEquals(o1, o2, tag + " import " + s + " at " + st + "," + sh);
                    outcomes[o1.equals("ok") ? 0 : 1]++;
                    all.assertSame(tag + " after import probe");
                    neu.assertSame(tag + " after import probe");
                }

                // the move: every piece a new position needs, from every old position holding part of it
                List<Staged> staged = new ArrayList<>();
                int[] lengths = new int[nseq];
                for (int i = 0; i < nseq; i++) {
                    lengths[i] = old.cpu.length(seqs[i]);
                }
                for (int s2 = 0; s2 < b.stages(); s2++) {
                    for (int m2 = 0; m2 < b.shards(); m2++) {
                        List<ContextSlice> need = new ArrayList<>(b.weightSlices(s2, m2));
                        for (int i = 0; i < nseq; i++) {
                            need.addAll(b.kvSlices(s2, m2, seqs[i], lengths[i]));
                        }
                        for (ContextSlice n : need) {
                            for (int s1 = 0; s1 < a.stages(); s1++) {
                                for (int m1 = 0; m1 < a.shards(); m1++) {
                                    List<ContextSlice> have = new ArrayList<>(a.weightSlices(s1, m1));
                                    for (int i = 0; i < nseq; i++) {
                                        have.addAll(a.kvSlices(s1, m1, seqs[i], lengths[i]));
                                    }
                                    for (ContextSlice h : have) {
                                        Optional<ContextSlice> piece = h.intersect(n);
                                        if (piece.isPresent()) {
                                            staged.add(new Staged(s2, m2, piece.get(),
                                                    old.cpu.exportSlice(s1, m1, piece.get()),
                                                    old.tim.exportSlice(s1, m1, piece.get())));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                // old units go first (no device holds a unit twice), then the old sequences
                for (int s1 = 0; s1 < a.stages(); s1++) {
                    for (int m1 = 0; m1 < a.shards(); m1++) {
                        for (ContextSlice u : a.weightSlices(s1, m1)) {
                            int fs = s1;
                            int fm = m1;
                            assertEquals("ok", old.both(p -> {
                                p.releaseSlice(fs, fm, u);
                                return null;
                            }, tag));
                            all.assertSame(tag + " released " + u);
                        }
                    }
                }
                for (long seq : seqs) {
                    old.both(p -> {
                        p.closeSequence(seq);
                        return null;
                    }, tag);
                }
                if (!shared) {
                    for (long u : used(old.timDevices)) {
                        assertEquals(0, u, tag + ": old devices empty once units are released and sequences closed");
                    }
                }
                for (int i = 0; i < nseq; i++) {
                    long seq = seqs[i];
                    int cap = caps[i];
                    neu.both(p -> {
                        p.openSequence(seq, cap);
                        return null;
                    }, tag);
                }
                for (Staged st : staged) {
                    assertEquals(st.piece, neu.cpu.importSlice(st.stage, st.shard, st.cpu));
                    assertEquals(st.piece, neu.tim.importSlice(st.stage, st.shard, st.tim));
                }
                assertTrue(neu.cpu.isReady(), tag);
                assertTrue(neu.tim.isReady(), tag);
                neu.assertSame(tag + " moved");
                all.assertSame(tag + " moved");
                for (int i = 0; i < nseq; i++) {
                    assertEquals(lengths[i], neu.tim.length(seqs[i]), tag);
                }

                // one decode step of every sequence that has room
                List<Integer> live = new ArrayList<>();
                for (int i = 0; i < nseq; i++) {
                    if (lengths[i] < caps[i] && live.size() < neu.cpu.maxBatch()) {
                        live.add(i);
                    }
                }
                if (!live.isEmpty()) {
                    long[] ids = live.stream().mapToLong(i -> seqs[i]).toArray();
                    int[] toks = live.stream().mapToInt(i -> 1 + i).toArray();
                    int[] pos = live.stream().mapToInt(i -> lengths[i]).toArray();
                    assertEquals("ok", neu.both(p -> p.decode(ids, toks, pos), tag));
                    neu.assertSame(tag + " decoded");
                }

                // KV import probes on the new pipeline: ownership, capacity and the filled length they extend
                for (int k = 0; k < 20; k++) {
                    ContextSlice s = randomSlice(rnd, c, seqs);
                    if (!(s instanceof ContextSlice.KvCache kv)) {
                        continue;
                    }
                    int st = rnd.nextInt(b.stages());
                    int sh = rnd.nextInt(b.shards());
                    String o1 = outcome(neu.cpu, p -> p.importSlice(st, sh,
                            SliceFormat.encode(c, kv, new float[Math.toIntExact(kv.floats(c))])));
                    String o2 = outcome(neu.tim, p -> p.importSlice(st, sh, SliceDescriptor.encode(c, kv)));
                    assertEquals(o1, o2, tag + " import " + s + " at " + st + "," + sh);
                    outcomes[o1.equals("ok") ? 0 : 1]++;
                    neu.assertSame(tag + " after KV probe");
                }

                List<Device> newOnly = neu.timDevices;
                old.cpu.close();
                old.tim.close();
                neu.cpu.close();
                neu.tim.close();
                for (long u : used(timAll)) {
                    assertEquals(0, u, tag + ": closed pipelines hold nothing");
                }
                for (long u : used(newOnly)) {
                    assertEquals(0, u, tag);
                }
            }
        }
        assertTrue(outcomes[0] > 100 && outcomes[1] > 100, "probes both accepted and rejected: " + outcomes[0]
                + " / " + outcomes[1]);
    }

    private record Staged(int stage, int shard, ContextSlice piece, byte[] cpu, byte[] tim) {
    }

    private static void importAll(Pipeline p, WeightSource source) {
        ShardLayout l = p.layout();
        for (int s = 0; s < l.stages(); s++) {
            for (int m = 0; m < l.shards(); m++) {
                for (ContextSlice w : l.weightSlices(s, m)) {
                    p.importSlice(s, m, source.encode(w));
                }
            }
        }
    }

    private static List<DeviceId> ids(String instance, int n) {
        List<DeviceId> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new DeviceId(instance, i));
        }
        return out;
    }

    private static List<Device> create(Executor ex, List<DeviceId> ids) {
        List<Device> out = new ArrayList<>();
        for (DeviceId id : ids) {
            out.add(ex.createDevice(id, BIG));
        }
        return out;
    }

    /** A pipeline of {@code layout} on both executors, positions placed at random (the same way) on {@code pool}. */
    private static Twin twin(Executor cpuEx, Executor timEx, ShardLayout layout, List<Device> cpuPool,
                             List<Device> timPool, Random rnd) {
        List<Device> cpuDevs = new ArrayList<>();
        List<Device> timDevs = new ArrayList<>();
        for (int i = 0; i < layout.stages() * layout.shards(); i++) {
            int d = rnd.nextInt(cpuPool.size());
            cpuDevs.add(cpuPool.get(d));
            timDevs.add(timPool.get(d));
        }
        int maxBatch = 1 + rnd.nextInt(8);
        return new Twin(cpuEx.createPipeline(layout, cpuDevs, maxBatch), timEx.createPipeline(layout, timDevs, maxBatch),
                cpuPool, timPool);
    }

    /** P in 1..5 with a random split of the 5 layers, M in {1, 2, 4}. */
    private static ShardLayout randomLayout(Random rnd, LlamaConfig c) {
        int stages = 1 + rnd.nextInt(c.layers());
        List<Integer> counts = new ArrayList<>();
        int left = c.layers();
        for (int s = 0; s < stages; s++) {
            int rest = stages - s - 1;
            int n = s == stages - 1 ? left : 1 + rnd.nextInt(left - rest);
            counts.add(n);
            left -= n;
        }
        return ShardLayout.balanced(c, counts, new int[] {1, 2, 4}[rnd.nextInt(3)]);
    }

    /** A random slice, its bounds often on shard boundaries (so that it is owned or held), sometimes invalid. */
    private static ContextSlice randomSlice(Random rnd, LlamaConfig c, long[] seqs) {
        return switch (rnd.nextInt(5)) {
            case 0 -> new ContextSlice.Embedding(range(rnd, c.vocabSize(), 1));
            case 1 -> new ContextSlice.Classifier(range(rnd, c.vocabSize(), 1));
            case 2 -> new ContextSlice.FinalNorm();
            case 3 -> new ContextSlice.LayerWeights(rnd.nextInt(8) == 0 ? c.layers() : rnd.nextInt(c.layers()),
                    range(rnd, c.heads(), rnd.nextInt(6) == 0 ? 1 : c.kvGroupSize()), range(rnd, c.hiddenDim(), 1));
            default -> new ContextSlice.KvCache(seqs.length == 0 || rnd.nextInt(6) == 0 ? 999 : seqs[rnd.nextInt(seqs.length)],
                    rnd.nextInt(c.layers()), range(rnd, c.kvHeads(), 1), rnd.nextInt(48));
        };
    }

    /**
     * A non-empty [from, to) within [0, units] (one {@code align} beyond now and then: invalid), on quarter boundaries
     * most of the time, on multiples of {@code align} else. Empty ranges are left out: an empty range outside the
     * position makes the CPU executor's WeightCoverage.mark index out of bounds (see TimingExecutorTest).
     */
    private static IndexRange range(Random rnd, int units, int align) {
        int a;
        int b;
        if (rnd.nextInt(4) != 0) {
            a = rnd.nextInt(4) * units / 4;
            b = a + (1 + rnd.nextInt(4)) * units / 4;
        } else {
            a = rnd.nextInt(units / align) * align;
            b = a + (1 + rnd.nextInt(units / align + 1)) * align;
        }
        return new IndexRange(a, Math.min(b, units + (rnd.nextInt(10) == 0 ? align : 0)));
    }
}
