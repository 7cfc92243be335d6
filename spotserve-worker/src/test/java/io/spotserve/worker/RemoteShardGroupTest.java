package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.PartialsMessage;
import io.spotserve.worker.proto.PeerGrpc;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Tensor groups split over worker processes (in-JVM workers, one device each): every stage's M = 2 shards on two
 * workers that exchange their partials peer to peer at each reduce point must give the one-process pipeline's logits
 * bit for bit over a prefill and 20+ mixed decode steps (greedy stories260K ids as run.c), with the partial bytes
 * on the wire as predicted; a group member that dies fails the step with {@link DeviceLostException} at once; a
 * partials message from a caller without the token, or one that fits no member, is refused.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RemoteShardGroupTest {
    private static final WireSecurity TOKEN = WireSecurity.token("group-token-0123456789abcdef");
    private static final int MAX_BATCH = 6;
    private static final int[] PROMPT = {1, 403, 407, 261};

    private static WorkerProcess worker(RemoteInstanceProvider controller) throws Exception {
        return worker(controller, true);
    }

    /** A worker of two devices; {@code sockets} false: no step socket, so peers send it partials over gRPC streams. */
    private static WorkerProcess worker(RemoteInstanceProvider controller, boolean sockets) throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(2).deviceMemory(64L << 20)
                .security(TOKEN).warmUp(0).bulkTransfer(sockets).executor(new CpuExecutor(new ExecutorOptions(1, true)))
                .build().start();
    }

    /**
     * A pipeline of {@code layout} whose position (p, m) sits on worker {@code ws[p * M + m]}, on its next free device.
     */
    private static Pipeline remote(RemoteExecutor ex, ShardLayout layout, List<WorkerProcess> ws) {
        List<Device> ds = new ArrayList<>();
        java.util.Map<WorkerProcess, Integer> used = new java.util.HashMap<>();
        for (WorkerProcess w : ws) {
            int gpu = used.merge(w, 1, Integer::sum) - 1;
            ds.add(ex.createDevice(new DeviceId(w.instanceId(), gpu), 16L << 20));
        }
        return ex.createPipeline(layout, ds, MAX_BATCH);
    }


    @Test
    void p1m2AndP2m2WithEachGroupOnTwoWorkersMatchOneProcessBitForBit() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w0 = worker(controller);
             WorkerProcess w1 = worker(controller);
             WorkerProcess w2 = worker(controller);
             WorkerProcess w3 = worker(controller);
             Executor cpu = new CpuExecutor(new ExecutorOptions(1, true))) {
            RemoteExecutor ex = controller.executor();
            // P1M2 and P2M2 with each position on its own worker; P1M4 with shards 0, 2 on w0 and 1, 3 on w1 (two
            // members per worker, four in the group); P2M2 with stage 0 split and stage 1 whole on one worker (member 1
            // hands nothing on), and the reverse (one worker fans out to both members)
            ShardLayout p2m2 = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 2);
            List<ShardLayout> layouts = List.of(ShardLayout.of(ckpt.config(), 1, 2), p2m2,
                    ShardLayout.of(ckpt.config(), 1, 4), p2m2, p2m2);
            List<List<WorkerProcess>> placements = List.of(List.of(w0, w1), List.of(w0, w1, w2, w3),
                    List.of(w0, w1, w0, w1), List.of(w0, w1, w2, w2), List.of(w2, w2, w0, w1));
            for (int run = 0; run < layouts.size(); run++) {
                ShardLayout layout = layouts.get(run);
                List<WorkerProcess> ws = placements.get(run);
                Pipeline whole = TestPipelines.loaded(cpu, ckpt, layout, "whole" + run, MAX_BATCH);
                Pipeline split = remote(ex, layout, ws);
                split.loadWeights(ckpt);
                assertTrue(split.isReady(), layout + ": every member loaded its shards' weights");
                parity(ex, layout, whole, split, ws, true);
                split.close();
                whole.close();
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        ex.destroyDevice(split.device(p, m));
                    }
                }
            }
        }
    }

    /**
     * Step 0: sequence 1's 4-token prompt (logits for its last entry) beside sequence 2's first token; then 21 steps
     * decoding both greedily from the remote logits, each compared with the whole pipeline's.
     */
    private static void parity(RemoteExecutor ex, ShardLayout layout, Pipeline whole, Pipeline split,
                               List<WorkerProcess> ws, boolean sockets) {
        int dim = layout.config().dim();
        int vocab = layout.config().vocabSize();
        // per stage: its members (runs of consecutive shards on one worker) and reduce points
        int m = layout.shards();
        int[] members = new int[layout.stages()];
        int[] points = new int[layout.stages()];
        for (int p = 0; p < layout.stages(); p++) {
            members[p] = 1;
            for (int sh = 1; sh < m; sh++) {
                members[p] += ws.get(p * m + sh) != ws.get(p * m + sh - 1) ? 1 : 0;
            }
            points[p] = (p == 0 ? 1 : 0) + 2 * layout.layers(p).length();
        }
        for (Pipeline p : List.of(whole, split)) {
            p.openSequence(1, 64);
            p.openSequence(2, 64);
        }
        List<Integer> seq2 = new ArrayList<>();
        int next1 = -1;
        int next2 = -1;
        for (int step = 0; step < 22; step++) {
            long[] seqs;
            int[] tokens;
            int[] positions;
            boolean[] wanted;
            if (step == 0) {
                seqs = new long[] {1, 1, 1, 1, 2};
                tokens = new int[] {PROMPT[0], PROMPT[1], PROMPT[2], PROMPT[3], 1};
                positions = new int[] {0, 1, 2, 3, 0};
                wanted = new boolean[] {false, false, false, true, true};
            } else {
                seqs = new long[] {1, 2};
                tokens = new int[] {next1, next2};
                positions = new int[] {PROMPT.length - 1 + step, step};
                wanted = new boolean[] {true, true};
            }
            int count = seqs.length;
            float[][] expected = new float[count][];
            float[][] actual = new float[count][];
            for (int b = 0; b < count; b++) {
                if (wanted[b]) {
                    expected[b] = new float[vocab];
                    actual[b] = new float[vocab];
                }
            }
            long reduce = ex.reduceBytes();
            long activations = ex.activationBytes();
            long[] sends = sends(ws);
            whole.forward(seqs, tokens, positions, count, expected);
            split.forward(seqs, tokens, positions, count, actual);
            for (int b = 0; b < count; b++) {
                if (expected[b] != null && !Arrays.equals(expected[b], actual[b])) {
                    fail(layout + ", step " + step + ", entry " + b + ": logits differ first at column "
                            + Arrays.mismatch(expected[b], actual[b]));
                }
            }
            // at each point of a stage split into G members (M / G shards each here), each member sends its shards'
            // partials (count x dim floats each) to the G - 1 others: (G - 1) x M partials per point; a stage's hidden
            // state goes to each member of the next stage once
            long floats = (long) count * dim * Float.BYTES;
            long expectReduce = 0;
            long expectActivations = 0;
            for (int p = 0; p < layout.stages(); p++) {
                expectReduce += members[p] == 1 ? 0 : (long) (members[p] - 1) * m * points[p] * floats;
                boolean newSegment = p > 0 && !ws.subList(p * m, p * m + m).equals(ws.subList(p * m - m, p * m));
                expectActivations += newSegment ? members[p] * floats : 0;
            }
            assertEquals(expectReduce, ex.reduceBytes() - reduce, layout + " step " + step);
            assertEquals(expectActivations, ex.activationBytes() - activations, layout + " step " + step);
            // one message per ordered member pair and point, each on the path the receiving worker offers: raw frames
            // on its step socket, else the gRPC stream
            long messages = 0;
            for (int p = 0; p < layout.stages(); p++) {
                messages += (long) members[p] * (members[p] - 1) * points[p];
            }
            long[] now = sends(ws);
            assertEquals(sockets ? messages : 0, now[0] - sends[0], layout + " step " + step + ": frames on sockets");
            assertEquals(sockets ? 0 : messages, now[1] - sends[1], layout + " step " + step + ": gRPC messages");
            next1 = ReferenceLlama.argmax(actual[count - 2]);
            next2 = ReferenceLlama.argmax(actual[count - 1]);
            seq2.add(next2);
        }
        int[] got = seq2.stream().mapToInt(Integer::intValue).toArray();
        assertArrayEquals(Arrays.copyOf(StoriesGreedyContract.FIRST_40, got.length), got, layout + ": greedy ids");
        assertEquals(PROMPT.length + 21, split.length(1));
        // every position is reached at its member: its weight and KV slices equal the whole pipeline's, byte for byte
        for (int p = 0; p < layout.stages(); p++) {
            for (int sh = 0; sh < m; sh++) {
                List<io.spotserve.exec.ContextSlice> slices = new ArrayList<>(layout.weightSlices(p, sh));
                slices.addAll(layout.kvSlices(p, sh, 1, split.length(1)));
                for (io.spotserve.exec.ContextSlice slice : slices) {
                    assertArrayEquals(whole.exportSlice(p, sh, slice), split.exportSlice(p, sh, slice),
                            layout + " (" + p + ", " + sh + ") " + slice);
                }
            }
        }
    }

    /** {over step sockets, over gRPC streams} partials messages sent by the distinct workers of {@code ws}. */
    private static long[] sends(List<WorkerProcess> ws) {
        long[] total = new long[2];
        for (WorkerProcess w : new java.util.LinkedHashSet<>(ws)) {
            long[] s = w.partialsSends();
            total[0] += s[0];
            total[1] += s[1];
        }
        return total;
    }

    /** Workers without step sockets (raw sockets off, as under mTLS): the members exchange over gRPC streams. */
    @Test
    void withoutStepSocketsThePartialsTakeTheGrpcStreamBitForBit() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 2);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w0 = worker(controller, false);
             WorkerProcess w1 = worker(controller, false);
             Executor cpu = new CpuExecutor(new ExecutorOptions(1, true))) {
            RemoteExecutor ex = controller.executor();
            List<WorkerProcess> ws = List.of(w0, w1);
            Pipeline whole = TestPipelines.loaded(cpu, ckpt, layout, "whole", MAX_BATCH);
            Pipeline split = remote(ex, layout, ws);
            split.loadWeights(ckpt);
            parity(ex, layout, whole, split, ws, false);
            split.close();
            whole.close();
        }
    }

    @Test
    void aDeadGroupMemberFailsTheStepAtOnceAndPartialsAreAuthenticatedAndChecked() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 2);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels strangers = new Channels(WireSecurity.token("wrong-token-0123456789abcdef"),
                     Wire.DEFAULT_MAX_MESSAGE_BYTES);
             Channels friends = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES);
             WorkerProcess w0 = worker(controller)) {
            WorkerProcess w1 = worker(controller);
            RemoteExecutor ex = controller.executor();
            Pipeline split = remote(ex, layout, List.of(w0, w1));
            split.loadWeights(ckpt);
            split.openSequence(7, 16);
            float[][] logits = {new float[512]};
            split.forward(new long[] {7}, new int[] {1}, new int[] {0}, 1, logits);
            assertEquals(StoriesGreedyContract.FIRST_40[0], ReferenceLlama.argmax(logits[0]));

            // the member pipeline ids are the controller's: w0 hosts shard 0 as the first segment
            long member0 = ((RemotePipeline) split).segmentOf(0, 0).id();
            PartialsMessage good = PartialsMessage.newBuilder().setPipeline(member0).setStepId(99).setStage(0)
                    .setLayer(-1).setKind(0).setFirstShard(1).setEndShard(2).setN(64)
                    .setFloats(ByteString.copyFrom(new byte[64 * Float.BYTES])).build();
            StatusRuntimeException denied = assertThrows(StatusRuntimeException.class, () -> PeerGrpc
                    .newBlockingStub(strangers.to(w0.address())).partials(good));
            assertEquals(Status.Code.UNAUTHENTICATED, denied.getStatus().getCode());
            // the same on the stream the members use: refused before any message is read
            java.util.concurrent.CompletableFuture<Throwable> streamDenied = new java.util.concurrent.CompletableFuture<>();
            io.grpc.stub.StreamObserver<PartialsMessage> stream = PeerGrpc.newStub(strangers.to(w0.address()))
                    .partialsStream(new io.grpc.stub.StreamObserver<>() {
                        @Override
                        public void onNext(io.spotserve.worker.proto.Ack a) {
                            streamDenied.complete(null);
                        }

                        @Override
                        public void onError(Throwable t) {
                            streamDenied.complete(t);
                        }

                        @Override
                        public void onCompleted() {
                            streamDenied.complete(null);
                        }
                    });
            stream.onNext(good);
            stream.onCompleted();
            assertEquals(Status.Code.UNAUTHENTICATED, Status.fromThrowable(streamDenied.get(5, TimeUnit.SECONDS))
                    .getCode());
            for (PartialsMessage bad : List.of(good.toBuilder().setFirstShard(0).setEndShard(1).build(), // its own
                    good.toBuilder().setN(64 * MAX_BATCH + 1).build(), // larger than a step
                    good.toBuilder().setFloats(ByteString.copyFrom(new byte[63 * Float.BYTES])).build(),
                    good.toBuilder().setKind(3).build(),
                    good.toBuilder().setPipeline(member0 + 100).build())) {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> PeerGrpc
                        .newBlockingStub(friends.to(w0.address())).partials(bad));
                assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().getDescription());
            }
            // the refusals left nothing behind: the next step still matches the greedy ids
            split.forward(new long[] {7}, new int[] {FIRST(0)}, new int[] {1}, 1, logits);
            assertEquals(StoriesGreedyContract.FIRST_40[1], ReferenceLlama.argmax(logits[0]));

            w1.close(); // the group's other member dies
            long t0 = System.nanoTime();
            Throwable lost = assertThrows(RuntimeException.class, () -> split.forward(new long[] {7},
                    new int[] {FIRST(1)}, new int[] {2}, 1, logits));
            double s = (System.nanoTime() - t0) / 1e9;
            assertInstanceOf(DeviceLostException.class, lost, String.valueOf(lost));
            assertTrue(s < 2.0, "the step failed after " + s + " s");
            split.close();
        }
    }

    /**
     * Worker JVMs: a group member that hangs (SIGSTOP) while its peer waits for its partials fails the step with
     * {@link DeviceLostException} within the lease (2 s), naming it; the surviving member is not left blocked (it serves
     * a pipeline of its own at once).
     */
    @Test
    void aHungGroupMemberFailsTheStepWithinTheLeaseAndTheOtherMemberIsFreed() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        String token = "group-jvm-token-0123456789abcdef";
        java.util.concurrent.BlockingQueue<io.spotserve.instance.InstanceEvent> events =
                new java.util.concurrent.LinkedBlockingQueue<>();
        try (WorkerJvms jvms = new WorkerJvms("shard-group");
             RemoteInstanceProvider controller = RemoteInstanceProvider.builder()
                     .security(WireSecurity.token(token)).build()) {
            controller.start(events::add);
            String file = jvms.tokenFile("token", token).toString();
            List<Process> procs = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                procs.add(jvms.start("member" + i, "--controller", controller.address(), "--devices", "1",
                        "--device-memory", "16m", "--token-file", file, "--label", "m" + i));
                io.spotserve.instance.InstanceEvent e = events.poll(60, TimeUnit.SECONDS);
                ids.add(assertInstanceOf(io.spotserve.instance.InstanceEvent.Acquired.class, e, String.valueOf(e))
                        .instanceId());
            }
            try {
                RemoteExecutor ex = controller.executor();
                ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 2);
                Device d0 = ex.createDevice(new DeviceId(ids.get(0), 0), 8L << 20);
                Pipeline split = ex.createPipeline(layout, List.of(d0, ex.createDevice(new DeviceId(ids.get(1), 0),
                        8L << 20)), 1);
                split.loadWeights(ckpt);
                split.openSequence(1, 32);
                int token0 = 1;
                for (int pos = 0; pos < 3; pos++) {
                    token0 = ReferenceLlama.argmax(split.decode(new long[] {1}, new int[] {token0},
                            new int[] {pos})[0]);
                    assertEquals(FIRST(pos), token0);
                }
                signal(procs.get(1), "STOP");
                long stopped = System.nanoTime();
                int last = token0;
                DeviceLostException lost = assertThrows(DeviceLostException.class,
                        () -> split.decode(new long[] {1}, new int[] {last}, new int[] {3}));
                double s = (System.nanoTime() - stopped) / 1e9;
                assertTrue(s < 3.5, "the step failed " + s + " s after the member hung (lease 2 s)");
                assertTrue(lost.devices().contains(new DeviceId(ids.get(1), 0)), lost.getMessage());
                assertTrue(!lost.devices().contains(new DeviceId(ids.get(0), 0)), "only the hung member is lost: "
                        + lost.devices());
                // the surviving member's step ended too: a call that waits for its pipeline's step answers at once
                long q0 = System.nanoTime();
                assertTrue(split.hasAllWeights(0, 0));
                double queryS = (System.nanoTime() - q0) / 1e9;
                assertTrue(queryS < 2.0, "the survivor's member answered after " + queryS + " s: its step still waits");
                long c0 = System.nanoTime();
                split.close();
                double closeS = (System.nanoTime() - c0) / 1e9;
                assertTrue(closeS < 2.0, "closing the survivor's member took " + closeS + " s: its step still waits");
                // and it serves a whole group of its own right away
                Pipeline alone = ex.createPipeline(ShardLayout.of(ckpt.config(), 1, 1), List.of(d0), 1);
                alone.loadWeights(ckpt);
                alone.openSequence(2, 8);
                long t0 = System.nanoTime();
                assertEquals(FIRST(0), ReferenceLlama.argmax(alone.decode(new long[] {2}, new int[] {1},
                        new int[] {0})[0]));
                assertTrue((System.nanoTime() - t0) / 1e9 < 2.0, "the survivor answered at once");
                alone.close();
                System.out.printf("hung group member: step failed after %.2f s, survivor's pipeline closed in %.3f s%n",
                        s, closeS);
            } finally {
                for (Process p : procs) {
                    p.destroyForcibly();
                }
            }
        }
    }

    private static void signal(Process p, String sig) throws Exception {
        Process k = new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).start();
        assertTrue(k.waitFor(5, TimeUnit.SECONDS) && k.exitValue() == 0, "kill -" + sig);
    }

    private static int FIRST(int i) {
        return StoriesGreedyContract.FIRST_40[i];
    }
}
