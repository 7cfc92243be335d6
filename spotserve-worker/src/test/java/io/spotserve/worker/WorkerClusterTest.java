package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.testing.SharedData;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A controller in this JVM and two real worker JVMs on 127.0.0.1: pipelines whose stages sit in different
 * worker processes decode stories260K exactly like the in-process CPU executor, slices move worker to worker,
 * and the counted wire bytes equal what the layout predicts.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class WorkerClusterTest {
    static final String TOKEN = "test-token-0123456789abcdef";
    private static WorkerJvms jvms;
    private static RemoteInstanceProvider controller;
    private static final BlockingQueue<InstanceEvent> events = new LinkedBlockingQueue<>();
    private static final List<String> workers = new ArrayList<>();
    private static LlamaCheckpoint ckpt;
    private static int[] reference;

    @BeforeAll
    static void startCluster() throws Exception {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        jvms = new WorkerJvms("cluster");
        controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN)).build();
        controller.start(events::add);
        String token = jvms.tokenFile("token", TOKEN).toString();
        for (int i = 0; i < 2; i++) {
            jvms.start("worker" + i, "--controller", controller.address(), "--devices", "2", "--device-memory", "64m",
                    "--token-file", token, "--label", "w" + i);
        }
        for (int i = 0; i < 2; i++) {
            InstanceEvent e = events.poll(60, TimeUnit.SECONDS);
            assertInstanceOf(InstanceEvent.Acquired.class, e, "a worker registered: " + jvms.log("worker" + i));
            workers.add(e.instanceId());
        }
        workers.sort(null);
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, true))) {
            reference = TestPipelines.greedy(TestPipelines.loaded(cpu, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "ref", 1),
                    1, 1, 96);
        }
    }

    @AfterAll
    static void stopCluster() {
        if (controller != null) {
            controller.close();
        }
        if (jvms != null) {
            jvms.close();
        }
    }

    private static final long DEVICE = 16L << 20;

    /** Devices for a P-stage layout: stage p on worker (p + offset) % 2, its M shards on that worker's gpus. */
    private static List<Device> place(ShardLayout layout, int offset, int firstGpu) {
        RemoteExecutor ex = controller.executor();
        List<Device> out = new ArrayList<>();
        for (int p = 0; p < layout.stages(); p++) {
            for (int m = 0; m < layout.shards(); m++) {
                out.add(ex.createDevice(new DeviceId(workers.get((p + offset) % 2), firstGpu + m), DEVICE));
            }
        }
        return out;
    }

    private static void destroy(List<Device> devices) {
        for (Device d : devices) {
            controller.executor().destroyDevice(d);
        }
    }

    @Test
    void twoStagesOnTwoWorkerProcessesDecodeLikeTheInProcessExecutor() {
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
        List<Device> devices = place(layout, 0, 0);
        RemoteExecutor ex = controller.executor();
        long before = ex.activationBytes();
        Pipeline p = ex.createPipeline(layout, devices, 4);
        try {
            p.loadWeights(ckpt); // each worker reads the checkpoint file itself
            assertTrue(p.isReady());
            assertEquals(layout.weightBytes(0, 0), devices.get(0).usedBytes());
            assertEquals(layout.weightBytes(1, 0), devices.get(1).usedBytes());
            int steps = reference.length;
            assertArrayEquals(reference, TestPipelines.greedy(p, 5, 1, steps));
            assertArrayEquals(StoriesGreedyContract.FIRST_40, Arrays.copyOf(reference, 40));
            // one residual stream (dim floats) crossed from worker 0 to worker 1 per decoded token
            assertEquals((long) steps * ckpt.config().dim() * Float.BYTES, ex.activationBytes() - before);
        } finally {
            p.close();
            destroy(devices);
        }
    }

    @Test
    void tensorShardsInsideEachWorkerAndABatchedPrefill() {
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 2);
        List<Device> devices = place(layout, 1, 0);
        Pipeline p = controller.executor().createPipeline(layout, devices, 8);
        try {
            p.loadWeights(ckpt);
            p.openSequence(11, 64);
            int[] prompt = Arrays.copyOf(reference, 20);
            int[] withBos = new int[21];
            withBos[0] = 1;
            System.arraycopy(prompt, 0, withBos, 1, 20);
            float[] last = p.prefill(11, withBos, 0); // 21 entries in chunks of 8 through both workers
            assertEquals(21, p.length(11));
            assertEquals(reference[20], io.spotserve.exec.ReferenceLlama.argmax(last));
        } finally {
            p.close();
            destroy(devices);
        }
    }

    @Test
    void slicesMoveWorkerToWorkerAndDecodingContinuesOnTheNewPipeline() {
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
        RemoteExecutor ex = controller.executor();
        List<Device> oldDevices = place(layout, 0, 0);
        List<Device> newDevices = place(layout, 1, 1); // the stages swap workers
        Pipeline from = ex.createPipeline(layout, oldDevices, 1);
        Pipeline to = ex.createPipeline(layout, newDevices, 1);
        try {
            from.loadWeights(ckpt);
            long seq = 21;
            int cut = 30;
            from.openSequence(seq, 64);
            int token = 1;
            for (int pos = 0; pos < cut; pos++) {
                token = io.spotserve.exec.ReferenceLlama.argmax(from.decode(new long[] {seq}, new int[] {token},
                        new int[] {pos})[0]);
                assertEquals(reference[pos], token);
            }
            to.openSequence(seq, 64);
            long before = ex.sliceBytes();
            long predicted = 0;
            for (int st = 0; st < layout.stages(); st++) {
                List<ContextSlice> moving = new ArrayList<>(layout.weightSlices(st, 0));
                moving.addAll(layout.kvSlices(st, 0, seq, cut));
                for (ContextSlice s : moving) {
                    assertEquals(s, ex.transfer(from, st, 0, s, to, st, 0));
                    predicted += SliceFormat.HEADER_BYTES + s.bytes(ckpt.config());
                }
            }
            assertEquals(predicted, ex.sliceBytes() - before, "every moved slice crossed the wire once, as predicted");
            assertTrue(to.isReady());
            assertEquals(cut, to.length(seq));
            from.close();
            for (int pos = cut; pos < 60; pos++) {
                token = io.spotserve.exec.ReferenceLlama.argmax(to.decode(new long[] {seq}, new int[] {token},
                        new int[] {pos})[0]);
                assertEquals(reference[pos], token, "position " + pos + " after migration");
            }
            // an export to the controller and an import from it give the same bytes back
            ContextSlice norm = new ContextSlice.FinalNorm();
            byte[] exported = to.exportSlice(1, 0, norm);
            to.releaseSlice(1, 0, norm);
            assertFalse(to.hasAllWeights(1, 0));
            assertEquals(norm, to.importSlice(1, 0, exported));
            assertTrue(to.hasAllWeights(1, 0));
        } finally {
            from.close();
            to.close();
            destroy(oldDevices);
            destroy(newDevices);
        }
    }

    @Test
    void weightsAreStreamedFromTheControllerWhenTheWorkersCannotReadTheCheckpoint() throws Exception {
        java.nio.file.Path copy = java.nio.file.Path.of("target", "worker-logs", "cluster", "controller-only.bin");
        java.nio.file.Files.copy(SharedData.stories260K(), copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        LlamaCheckpoint mine = LlamaCheckpoint.load(copy); // mapped: stays readable here after the file is gone
        java.nio.file.Files.delete(copy);
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
        RemoteExecutor ex = controller.executor();
        List<Device> devices = place(layout, 0, 0);
        Pipeline p = ex.createPipeline(layout, devices, 1);
        try {
            long before = ex.sliceBytes();
            p.loadWeights(mine);
            long predicted = 0;
            for (int st = 0; st < layout.stages(); st++) {
                for (ContextSlice s : layout.weightSlices(st, 0)) {
                    predicted += SliceFormat.HEADER_BYTES + s.bytes(ckpt.config());
                }
            }
            assertEquals(predicted, ex.sliceBytes() - before, "every weight slice was streamed once");
            assertTrue(p.isReady());
            p.openSequence(2, 32);
            int token = 1;
            for (int pos = 0; pos < 20; pos++) {
                token = io.spotserve.exec.ReferenceLlama.argmax(p.decode(new long[] {2}, new int[] {token},
                        new int[] {pos})[0]);
                assertEquals(reference[pos], token);
            }
        } finally {
            p.close();
            destroy(devices);
        }
    }

    @Test
    void malformedMessagesAreRefusedAndChangeNothing() throws Exception {
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
        RemoteExecutor ex = controller.executor();
        List<Device> devices = place(layout, 0, 0);
        Pipeline p = ex.createPipeline(layout, devices, 2);
        try {
            p.loadWeights(ckpt);
            ContextSlice norm = new ContextSlice.FinalNorm();
            byte[] good = p.exportSlice(1, 0, norm);
            p.releaseSlice(1, 0, norm);
            long used = devices.get(1).usedBytes();
            RemotePipeline rp = (RemotePipeline) p;
            RemoteInstanceProvider.WorkerLink w = rp.segmentOf(1).worker();
            PositionRef target = rp.segmentOf(1).position(1, 0);
            // a chunk whose checksum does not match its payload
            List<SliceChunk> chunks = new ArrayList<>(Wire.chunks(good, target));
            SliceChunk bad = chunks.get(0).toBuilder().setCrc32C(chunks.get(0).getCrc32C() ^ 1).build();
            IllegalArgumentException crc = assertThrows(IllegalArgumentException.class, () -> ex.push(w, List.of(bad)));
            assertTrue(crc.getMessage().contains("CRC32C"), crc.getMessage());
            // a stream that ends early
            SliceChunk truncated = chunks.get(0).toBuilder().setTotalBytes(good.length + 8).build();
            assertThrows(IllegalArgumentException.class, () -> ex.push(w, List.of(truncated)));
            // a slice the position does not own (stage 0's embedding sent to stage 1)
            byte[] foreign = p.exportSlice(0, 0, layout.weightSlices(0, 0).get(0));
            assertThrows(IllegalArgumentException.class, () -> p.importSlice(1, 0, foreign));
            // garbage bytes never leave the controller
            assertThrows(IllegalArgumentException.class, () -> p.importSlice(1, 0, new byte[100]));
            assertEquals(used, devices.get(1).usedBytes(), "nothing was allocated by a refused message");
            assertFalse(p.hasAllWeights(1, 0));
            // a step with a wrong token or an unopened sequence
            assertThrows(IllegalArgumentException.class, () -> p.decode(new long[] {99}, new int[] {1}, new int[] {0}));
            p.importSlice(1, 0, good);
            p.openSequence(3, 4);
            assertThrows(IllegalArgumentException.class, () -> p.decode(new long[] {3}, new int[] {100000}, new int[] {0}));
            assertEquals(0, p.length(3));
            assertEquals(reference[0], io.spotserve.exec.ReferenceLlama.argmax(
                    p.decode(new long[] {3}, new int[] {1}, new int[] {0})[0]), "the pipeline still works");
        } finally {
            p.close();
            destroy(devices);
        }
    }

    @Test
    void aCallerWithoutTheTokenGetsNothing() throws Exception {
        RemoteInstanceProvider.WorkerLink w = controller.live(workers.get(0));
        for (io.grpc.CallCredentials creds : new io.grpc.CallCredentials[] {null, new BadToken()}) {
            io.grpc.ChannelCredentials cc = creds == null ? InsecureChannelCredentials.create()
                    : io.grpc.CompositeChannelCredentials.create(InsecureChannelCredentials.create(), creds);
            ManagedChannel toWorker = Grpc.newChannelBuilder(w.address, cc).build();
            ManagedChannel toController = Grpc.newChannelBuilder(controller.address(), cc).build();
            try {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> WorkerGrpc
                        .newBlockingStub(toWorker).withDeadlineAfter(5, TimeUnit.SECONDS)
                        .closePipeline(io.spotserve.worker.proto.PipelineRef.newBuilder().setPipeline(1).build()));
                assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
                StatusRuntimeException e2 = assertThrows(StatusRuntimeException.class, () -> io.spotserve.worker.proto
                        .PeerGrpc.newBlockingStub(toWorker).withDeadlineAfter(5, TimeUnit.SECONDS)
                        .stageForward(io.spotserve.worker.proto.StepRequest.getDefaultInstance()));
                assertEquals(Status.Code.UNAUTHENTICATED, e2.getStatus().getCode());
                StatusRuntimeException e3 = assertThrows(StatusRuntimeException.class, () -> io.spotserve.worker.proto
                        .ControllerGrpc.newBlockingStub(toController).withDeadlineAfter(5, TimeUnit.SECONDS)
                        .heartbeat(io.spotserve.worker.proto.HeartbeatRequest.newBuilder().setInstanceId(w.id)
                                .setEpoch(w.epoch).build()));
                assertEquals(Status.Code.UNAUTHENTICATED, e3.getStatus().getCode());
            } finally {
                toWorker.shutdownNow();
                toController.shutdownNow();
            }
        }
        assertTrue(events.stream().noneMatch(e -> e instanceof InstanceEvent.Terminated),
                "the refused calls did not disturb the workers");
        assertEquals(2, controller.liveWorkers().size());
    }

    /** Sends a token of the right shape but the wrong value. */
    private static final class BadToken extends io.grpc.CallCredentials {
        @Override
        public void applyRequestMetadata(RequestInfo info, java.util.concurrent.Executor e, MetadataApplier applier) {
            io.grpc.Metadata m = new io.grpc.Metadata();
            m.put(WireSecurity.AUTHORIZATION, "Bearer test-token-0123456789abcdeX");
            applier.apply(m);
        }
    }
}
