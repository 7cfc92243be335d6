package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProfiler;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.ParallelConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An executor whose tensor groups cannot span instances (as the remote executor's: a group reduces inside one worker)
 * gets only layouts whose M shards of a stage sit on one instance: the fixed layout falls back to a smaller M when
 * the instances' device counts do not hold whole groups, and the engine's Algorithm 1 searches only tensor degrees
 * that divide an instance's GPUs. The stand-in executor refuses a spanning pipeline exactly as the remote one does.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TensorGroupPlacementTest {
    private static final InstanceType TWO_GPUS = new InstanceType("local.2x", 2, 32L << 20, 1.9,
            InstanceType.Market.SPOT);
    private static Executor cpu;

    @BeforeAll
    static void start() {
        cpu = EngineFixtures.executor();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** The CPU executor, but a stage's shards on two instances are refused (and recorded) like a remote executor's. */
    static final class InstanceBound implements Executor {
        final Executor real;
        final List<String> refused = new CopyOnWriteArrayList<>();
        final List<ShardLayout> built = new CopyOnWriteArrayList<>();

        InstanceBound(Executor real) {
            this.real = real;
        }

        @Override
        public boolean tensorGroupsSpanInstances() {
            return false;
        }

        @Override
        public String name() {
            return "instance-bound " + real.name();
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
            for (int p = 0; p < layout.stages(); p++) {
                Set<String> instances = new HashSet<>();
                for (int m = 0; m < layout.shards(); m++) {
                    instances.add(devices.get(p * layout.shards() + m).id().instance());
                }
                if (instances.size() > 1) {
                    String why = "stage " + p + " of " + layout + " spans instances " + instances;
                    refused.add(why);
                    throw new IllegalArgumentException(why + "; the M shards of a stage must sit in one instance");
                }
            }
            built.add(layout);
            return real.createPipeline(layout, devices, maxBatch);
        }

        @Override
        public void close() {
            // the shared CPU executor is closed by the test class
        }
    }

    private static void serve(ServingEngine.Builder b, LocalInstanceProvider provider, InstanceBound ex, long seed)
            throws Exception {
        List<GenerationRequest> requests = EngineFixtures.requests(seed, 6, 12, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = b.model(CHECKPOINT, TOKENIZER).instances(provider).executor(ex).maxBatch(4)
                .build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            for (int i = 0; i < requests.size(); i++) {
                // bounded: join() would ignore the test's timeout if the engine never deploys a pipeline
                Completion c = futures.get(i).get(30, TimeUnit.SECONDS);
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), c.tokens(), "request " + i);
            }
        }
    }

    @Test
    void aFixedLayoutWhoseGroupsWouldSpanTwoInstancesFallsBackToGroupsInsideEachInstance() throws Exception {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(TWO_GPUS);
        provider.add(TWO_GPUS);
        InstanceBound ex = new InstanceBound(cpu);
        // P1M4 needs the 4 GPUs of both instances in one group; P1M2 fits each instance whole
        serve(ServingEngine.builder().clock(clock).parallelism(1, 4), provider, ex, 41);
        assertEquals(List.of(), ex.refused, "no pipeline asked for a group across instances");
        assertFalse(ex.built.isEmpty());
        for (ShardLayout l : ex.built) {
            assertTrue(l.shards() <= 2, l.toString());
        }
    }

    @Test
    void theEnginesAlgorithm1SearchesOnlyTensorDegreesThatDivideAnInstancesGpus() throws Exception {
        LatencyProfile p = ExecutorProfiler.builder(cpu).promptTokens(16).warmup(0).repeats(1).decodeSteps(2)
                .maxBatch(4).build().profile("stories260K", CHECKPOINT);
        // one GPU per instance: every M > 1 would need a group across instances
        InstanceType oneGpu = new InstanceType("local.1x", 1, 32L << 20, 1.9, InstanceType.Market.SPOT);
        Hardware hw = new Hardware("local.1x", 1, oneGpu.memoryPerGpuBytes(), 10.0, 0.0, 1.9, 3.9);
        CostModel costModel = CostModel.of(p, "stories260K", CHECKPOINT.config(), hw);
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        for (int i = 0; i < 4; i++) {
            provider.add(oneGpu);
        }
        InstanceBound ex = new InstanceBound(cpu);
        ServingEngine.Builder b = ServingEngine.builder().clock(clock).planning(costModel).parallelism(1, 2);
        serve(b, provider, ex, 43);
        assertEquals(List.of(), ex.refused);
        for (ShardLayout l : ex.built) {
            assertEquals(1, l.shards(), l.toString());
        }
        // and the optimizer the engine builds itself is capped: Algorithm 1 on these 4 instances never proposes M > 1
        ConfigPlanner planner = new ConfigPlanner(ServingEngine.builder().planning(costModel).maxBatch(4),
                CHECKPOINT.config(), List.of(ShardLayout.split(CHECKPOINT.config(), 1, 1)), () -> 4.0, false);
        for (double rate : new double[] {0.1, 1, 10, 100, 1000}) {
            io.spotserve.plan.Decision d = planner.fleetOptimizer().decide(4, 0, rate);
            assertFalse(d.choice().isEmpty(), rate + " req/s: some configuration fits");
            assertEquals(1, d.config().tensorShards(), rate + " req/s: " + d.config());
        }
    }
}
