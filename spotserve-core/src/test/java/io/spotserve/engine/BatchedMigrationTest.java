package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.plan.DeviceId;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The engine with an executor that {@link Executor#batchesTransfers batches transfers}: a new instance's weights
 * arrive from the serving instance in {@link Executor#transferAll} calls of several slices each, outputs stay
 * token-identical to solo runs, and a source that dies in the middle of such a call (after part of it arrived) is
 * absorbed inside the migration: the route's pieces come from the checkpoint.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BatchedMigrationTest {
    private static final InstanceType TWO_GPU = new InstanceType("local.2x", 2, 32L << 20, 1.9, InstanceType.Market.SPOT);

    private Executor real;

    @BeforeEach
    void setUp() {
        real = EngineFixtures.executor();
    }

    @AfterEach
    void tearDown() {
        real.close();
    }

    private Reconfiguration grow(Batching ex, List<GenerationRequest> requests) {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1), Duration.ZERO, 1_000_000);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, TWO_GPU.on(InstanceType.Market.ON_DEMAND, 3.9));
        ex.source = provider.add(TWO_GPU).id();
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(ex).clock(clock).parallelism(1, 2).maxBatch(4).build()) {
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> provider.deliver(
                    new InstanceEvent.Acquired(new Instance("b", TWO_GPU), clock.now())));
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            assertEquals(0, engine.metrics().failed());
            return engine.metrics().reconfigurations().stream().filter(r -> r.reason().contains("acquired b"))
                    .findFirst().orElseThrow(() -> new AssertionError("no growth: " + engine.metrics()
                            .reconfigurations()));
        }
    }

    @Test
    void weightsForANewInstanceArriveInBatches() {
        Batching ex = new Batching(real, true, false);
        Reconfiguration grow = grow(ex, EngineFixtures.requests(31, 6, 60, false));
        assertTrue(grow.bytesMigrated() > 0, grow.toString());
        assertTrue(ex.calls.stream().anyMatch(n -> n > 1), "some transferAll carried several slices: " + ex.calls);
        // the same growth staged slice by slice moves, keeps and loads exactly the same bytes
        Batching staged = new Batching(real, false, false);
        Reconfiguration same = grow(staged, EngineFixtures.requests(31, 6, 60, false));
        assertTrue(staged.calls.isEmpty(), staged.calls.toString());
        assertEquals(same.bytesMigrated(), grow.bytesMigrated(), same + " vs " + grow);
        assertEquals(same.bytesKept(), grow.bytesKept(), same + " vs " + grow);
        assertEquals(same.bytesLoaded(), grow.bytesLoaded(), same + " vs " + grow);
    }

    @Test
    void aSourceLostInTheMiddleOfABatchIsReadFromTheCheckpoint() {
        Batching ex = new Batching(real, true, true);
        Reconfiguration grow = grow(ex, EngineFixtures.requests(32, 6, 60, false));
        assertTrue(ex.fired.get(), "the fault was injected");
        assertTrue(grow.bytesLoaded() > 0, "the route's pieces came from the checkpoint: " + grow);
        assertEquals(0, grow.plannedBytesReloaded(), "the mapper planned no reload: " + grow);
    }

    /**
     * The real executor, batching or not: {@link #transferAll} records its size; with {@code sourceDies}, the first call from
     * the serving instance to "b" imports its first slice and then fails as if the source died.
     */
    private static final class Batching implements Executor {
        private final Executor real;
        private final boolean batches;
        private final boolean sourceDies;
        final AtomicBoolean fired = new AtomicBoolean();
        final List<Integer> calls = new CopyOnWriteArrayList<>();
        volatile String source;

        Batching(Executor real, boolean batches, boolean sourceDies) {
            this.real = real;
            this.batches = batches;
            this.sourceDies = sourceDies;
        }

        @Override
        public boolean batchesTransfers() {
            return batches;
        }

        @Override
        public List<ContextSlice> transferAll(Pipeline from, int fromStage, int fromShard, List<ContextSlice> slices,
                                              Pipeline to, int toStage, int toShard) {
            calls.add(slices.size());
            String a = from.device(fromStage, fromShard).id().instance();
            String b = to.device(toStage, toShard).id().instance();
            if (sourceDies && a.equals(source) && b.equals("b") && slices.size() > 1 && fired.compareAndSet(false, true)) {
                transfer(from, fromStage, fromShard, slices.get(0), to, toStage, toShard);
                throw new DeviceLostException(List.of(new DeviceId(source, 0), new DeviceId(source, 1)),
                        "injected: " + source + " died after sending " + slices.get(0), null);
            }
            return Executor.super.transferAll(from, fromStage, fromShard, slices, to, toStage, toShard);
        }

        @Override
        public String name() {
            return "batching-" + real.name();
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
            return real.createPipeline(layout, devices, maxBatch);
        }

        @Override
        public void close() {
        }
    }
}
