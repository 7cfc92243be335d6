package io.spotserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.plan.DeviceId;
import java.util.List;
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
        return EngineFixtures.growOntoB(ex, requests, id -> ex.source = id);
    }

    @Test
    void weightsForANewInstanceArriveInBatches() {
        Batching ex = new Batching(real, true, false);
        Reconfiguration grow = grow(ex, EngineFixtures.requests(31, 6, 60, false));
        assertTrue(grow.bytesMigrated() > 0, grow.toString());
        assertTrue(ex.calls.stream().anyMatch(n -> n > 1), "some transferAll carried several slices: " + ex.calls);
        // the same growth staged slice by slice moves and loads exactly the same bytes (bytes kept in place are not
        // compared: they include the running requests' KV caches on the pipeline that stays, whose length at the
        // moment of the growth depends on thread timing: a full core run once saw 2,560 B, two positions, apart)
        Batching staged = new Batching(real, false, false);
        Reconfiguration same = grow(staged, EngineFixtures.requests(31, 6, 60, false));
        assertTrue(staged.calls.isEmpty(), staged.calls.toString());
        assertEquals(same.bytesMigrated(), grow.bytesMigrated(), same + " vs " + grow);
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
    private static final class Batching extends ForwardingExecutor {
        private final boolean batches;
        private final boolean sourceDies;
        final AtomicBoolean fired = new AtomicBoolean();
        final List<Integer> calls = new CopyOnWriteArrayList<>();
        volatile String source;

        Batching(Executor real, boolean batches, boolean sourceDies) {
            super(real);
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
            return super.transferAll(from, fromStage, fromShard, slices, to, toStage, toShard);
        }
    }
}
