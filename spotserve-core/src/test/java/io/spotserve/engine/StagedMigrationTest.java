package io.spotserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StagedSlice;
import io.spotserve.plan.DeviceId;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The engine's migrations move every slice through {@link Pipeline#stageSlice} / {@link Pipeline#importStaged} (the
 * SPI that lets remote workers keep staged bytes at the source), release every staged slice whatever happens, and
 * treat a staged slice whose source died before its import as lost: the piece comes from the checkpoint instead and
 * outputs stay token-identical to solo runs.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StagedMigrationTest {
    /** What the probe does at the first import of a slice staged on the first instance into instance "b". */
    enum Fault {
        NONE, TARGET_FAILS, SOURCE_LOST
    }

    private Executor real;

    @BeforeEach
    void setUp() {
        real = EngineFixtures.executor();
    }

    @AfterEach
    void tearDown() {
        real.close();
    }

    private Reconfiguration grow(Probe probe, List<GenerationRequest> requests) {
        return EngineFixtures.growOntoB(probe, requests, id -> probe.source = id);
    }

    @Test
    void everyMovedSliceIsStagedAtItsSourceAndReleased() {
        Probe probe = new Probe(real, Fault.NONE);
        Reconfiguration grow = grow(probe, EngineFixtures.requests(21, 6, 60, false));
        assertTrue(grow.bytesMigrated() > 0, grow.toString());
        assertTrue(probe.fromAToB.get() > 0, "weights went to b as staged slices");
        assertEquals(0, probe.exports.get(), "no migration exported bytes outside the staging SPI");
        probe.assertAllReleased();
    }

    @Test
    void aFailedImportReleasesEveryStagedSliceAndTheEngineRecovers() {
        Probe probe = new Probe(real, Fault.TARGET_FAILS);
        grow(probe, EngineFixtures.requests(22, 6, 60, false));
        assertTrue(probe.fired.get(), "the fault was injected");
        probe.assertAllReleased();
    }

    @Test
    void aSourceLostBeforeItsStagedSliceArrivedIsReadFromTheCheckpoint() {
        Probe probe = new Probe(real, Fault.SOURCE_LOST);
        Reconfiguration grow = grow(probe, EngineFixtures.requests(23, 6, 60, false));
        assertTrue(probe.fired.get(), "the fault was injected");
        assertTrue(grow.bytesLoaded() > 0, "the lost piece came from the checkpoint: " + grow);
        assertTrue(probe.checkpointImports.get() > 0, "inside the migration, not by a cold start after it failed");
        assertEquals(0, grow.plannedBytesReloaded(), "the mapper planned no reload: " + grow);
        probe.assertAllReleased();
    }

    /** An executor around a real one whose pipelines track the staged slices and inject one {@link Fault}. */
    private static final class Probe implements Executor {
        private final Executor real;
        private final Fault fault;
        final AtomicBoolean fired = new AtomicBoolean();
        final AtomicInteger exports = new AtomicInteger();
        final AtomicInteger fromAToB = new AtomicInteger();
        final AtomicInteger checkpointImports = new AtomicInteger();
        private final List<Tracked> staged = new CopyOnWriteArrayList<>();
        /** The instance serving before "b" arrives. */
        volatile String source;

        Probe(Executor real, Fault fault) {
            this.real = real;
            this.fault = fault;
        }

        void assertAllReleased() {
            assertTrue(!staged.isEmpty(), "something was staged");
            for (Tracked t : staged) {
                assertTrue(t.releases.get() >= 1, "never released: " + t.slice());
                assertTrue(t.inner.released(), t.slice().toString());
            }
        }

        @Override
        public String name() {
            return "probe-" + real.name();
        }

        @Override
        public ExecutorOptions options() {
            return real.options();
        }

        @Override
        public Device createDevice(DeviceId id, long capacityBytes) {
            return real.createDevice(id, capacityBytes);
        }

        @Override
        public void destroyDevice(Device device) {
            real.destroyDevice(device);
        }

        @Override
        public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
            return new Probed(real.createPipeline(layout, devices, maxBatch));
        }

        @Override
        public void close() {
        }

        /** A staged slice that counts its releases and remembers where it was staged. */
        private record Tracked(StagedSlice inner, String instance, AtomicInteger releases) implements StagedSlice {
            @Override
            public ContextSlice slice() {
                return inner.slice();
            }

            @Override
            public long bytes() {
                return inner.bytes();
            }

            @Override
            public byte[] data() {
                return inner.data();
            }

            @Override
            public boolean released() {
                return inner.released();
            }

            @Override
            public void release() {
                releases.incrementAndGet();
                inner.release();
            }
        }

        private final class Probed extends ForwardingPipeline {
            Probed(Pipeline p) {
                super(p);
            }

            @Override
            public StagedSlice stageSlice(int stage, int shard, ContextSlice slice) {
                Tracked t = new Tracked(delegate.stageSlice(stage, shard, slice),
                        delegate.device(stage, shard).id().instance(), new AtomicInteger());
                staged.add(t);
                return t;
            }

            @Override
            public ContextSlice importStaged(int stage, int shard, StagedSlice s) {
                if (!(s instanceof Tracked t)) {
                    checkpointImports.incrementAndGet(); // read from the checkpoint during the migration
                    return delegate.importStaged(stage, shard, s);
                }
                DeviceId target = delegate.device(stage, shard).id();
                if (t.instance().equals(source) && target.instance().equals("b")) {
                    fromAToB.incrementAndGet();
                    if (fault != Fault.NONE && fired.compareAndSet(false, true)) {
                        if (fault == Fault.TARGET_FAILS) {
                            throw new IllegalStateException("injected: the import into " + target + " failed");
                        }
                        throw new DeviceLostException(List.of(new DeviceId(source, 0), new DeviceId(source, 1)),
                                "injected: " + source
                                + " died after staging " + t.slice(), null);
                    }
                }
                return delegate.importStaged(stage, shard, t.inner());
            }

            @Override
            public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
                exports.incrementAndGet();
                return delegate.exportSlice(stage, shard, slice);
            }
        }
    }
}
