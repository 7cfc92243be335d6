package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.spotserve.exec.BatchDecodeContract;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceMigrationContract;
import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;

/**
 * The executor contract suites of spotserve-core on the remote executor, against two worker JVMs: slice migration
 * in every build; greedy stories260K on every layout and batched decode are tagged slow (the build's surefire
 * configuration excludes the slow group; drop the tags to run them: all 10 pass). The suites name devices freely;
 * {@link Contracted} puts every device of one name prefix on one worker (so each tensor group sits in one process)
 * and alternates prefixes between the two workers, so migrations between pipelines cross processes. The workers run
 * scalar kernels (the suites' scalar/vector choice cannot reach another process).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RemoteExecutorContractTest {
    private static final String TOKEN = "contract-token-0123456789abcdef";
    private static WorkerJvms jvms;
    private static RemoteInstanceProvider controller;

    @BeforeAll
    static void startWorkers() throws Exception {
        jvms = new WorkerJvms("contract");
        controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN)).build();
        String token = jvms.tokenFile("token", TOKEN).toString();
        for (int i = 0; i < 2; i++) {
            // scalar kernels (run.c's summation order), as the suites' in-process executors with vector = false
            jvms.start(List.of("-D" + ExecutorOptions.VECTOR_PROPERTY + "=false"), "worker" + i, "--controller", controller.address(), "--devices", "256", "--device-memory", "1g",
                    "--token-file", token);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (controller.liveWorkers().size() < 2) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("workers did not register: " + jvms.log("worker0") + jvms.log("worker1"));
            }
            Thread.sleep(50);
        }
    }

    @AfterAll
    static void stopWorkers() {
        if (controller != null) {
            controller.close();
        }
        if (jvms != null) {
            jvms.close();
        }
    }

    /**
     * The remote executor as the suites use an executor: devices by any name, all freed on close (the suites let
     * the executor's close free what they made).
     */
    static final class Contracted implements Executor {
        private final RemoteExecutor remote = controller.executor();
        private final Map<String, Integer> workerOfPrefix = new HashMap<>();
        private final Map<String, Integer> nextGpu = new HashMap<>();
        private final List<Device> devices = new ArrayList<>();
        private final List<Pipeline> pipelines = new ArrayList<>();
        private final List<String> workers = controller.liveWorkers();

        @Override
        public String name() {
            return remote.name();
        }

        @Override
        public ExecutorOptions options() {
            return remote.options();
        }

        @Override
        public Device createDevice(DeviceId id, long capacityBytes) {
            int w = workerOfPrefix.computeIfAbsent(id.instance(), k -> workerOfPrefix.size() % 2);
            String worker = workers.get(w);
            int gpu = nextGpu.merge(worker, 1, Integer::sum) - 1;
            Device d = remote.createDevice(new DeviceId(worker, gpu), Math.min(capacityBytes, 1L << 30));
            devices.add(d);
            return d;
        }

        @Override
        public void destroyDevice(Device device) {
            remote.destroyDevice(device);
            devices.remove(device);
        }

        @Override
        public Pipeline createPipeline(ShardLayout layout, List<? extends Device> ds, int maxBatch) {
            Pipeline p = remote.createPipeline(layout, ds, maxBatch);
            pipelines.add(p);
            return p;
        }

        @Override
        public void close() {
            for (Pipeline p : pipelines) {
                p.close();
            }
            for (Device d : devices) {
                assertEquals(0, d.usedBytes(), d + " freed by its pipelines");
                remote.destroyDevice(d);
            }
            nextGpu.clear(); // every device of this executor is gone: the workers' slots are free again
        }
    }

    /** 18 layouts x 256 steps over the wire: tagged slow; WorkerClusterTest covers greedy across two workers. */
    @Nested
    @Tag("slow")
    class Greedy extends StoriesGreedyContract {
        @Override
        protected Executor executor(ExecutorOptions options) {
            return new Contracted();
        }
    }

    /** Tagged slow to keep the module's default test time near a minute; WorkerClusterTest batches a prefill. */
    @Nested
    @Tag("slow")
    class Batches extends BatchDecodeContract {
        @Override
        protected Executor executor(ExecutorOptions options) {
            return new Contracted();
        }
    }

    @Nested
    class Migration extends SliceMigrationContract {
        @Override
        protected Executor executor(ExecutorOptions options) {
            return new Contracted();
        }
    }
}
