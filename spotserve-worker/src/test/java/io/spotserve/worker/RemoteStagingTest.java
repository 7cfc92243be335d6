package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StagedSlice;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelSource;
import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.StagingState;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The staging SPI over in-process workers: a staged slice waits in its source worker's staging area (not at the
 * controller), outlives its source pipeline, goes to the target worker directly over the bulk socket or the gRPC
 * fallback (or stays inside a worker without any network), is released exactly once, is bounded by the worker's
 * staging memory, and fails its import with {@link DeviceLostException} once its worker is dead.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RemoteStagingTest {
    private static final WireSecurity TOKEN = WireSecurity.token("staging-token-0123456789abcdef");

    private static WorkerProcess worker(RemoteInstanceProvider controller, boolean bulk, long staging)
            throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(6).deviceMemory(64L << 20)
                .security(TOKEN).bulkTransfer(bulk).stagingMemory(staging).warmUp(0)
                .executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start();
    }

    private static Pipeline pipeline(RemoteExecutor ex, WorkerProcess w, int gpu, ShardLayout layout) {
        return ex.createPipeline(layout, List.of(ex.createDevice(new DeviceId(w.instanceId(), gpu), 16L << 20)), 1);
    }

    private static StagingState staging(RemoteExecutor ex, WorkerProcess w) {
        return ex.stagingUsage(w.instanceId());
    }

    @Test
    void stagedSlicesGoWorkerToWorkerOrStayInsideAWorkerAndAreReleasedOnce() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w0 = worker(controller, true, 64L << 20);
             WorkerProcess w1 = worker(controller, true, 64L << 20);
             WorkerProcess w2 = worker(controller, false, 64L << 20)) {
            RemoteExecutor ex = controller.executor();
            Pipeline src = pipeline(ex, w0, 0, layout);
            src.loadWeights(ckpt);
            List<ContextSlice> slices = layout.weightSlices(0, 0);
            for (WorkerProcess target : List.of(w1, w2, w0)) { // bulk socket, gRPC fallback, the same worker
                Pipeline dst = pipeline(ex, target, 1, layout);
                for (ContextSlice s : slices) {
                    byte[] expected = src.exportSlice(0, 0, s);
                    long peer = ex.peerSliceBytes();
                    long relayed = ex.relayedSliceBytes();
                    StagedSlice staged = src.stageSlice(0, 0, s);
                    assertEquals(expected.length, staged.bytes());
                    assertEquals(expected.length, staging(ex, w0).getBytes(), "staged on the source worker");
                    assertEquals(1, ex.stagedSlices());
                    assertEquals(s, dst.importStaged(0, 0, staged));
                    assertEquals(0, staging(ex, w0).getSlices(), "the send used the staged slice up");
                    staged.release();
                    staged.release();
                    assertEquals(0, ex.stagedSlices(), "released once");
                    assertEquals(target == w0 ? 0 : expected.length, ex.peerSliceBytes() - peer, s.toString());
                    assertEquals(0, ex.relayedSliceBytes() - relayed, "nothing through the controller");
                    assertArrayEquals(expected, dst.exportSlice(0, 0, s), s + " arrived bit for bit");
                    assertThrows(IllegalStateException.class, () -> dst.importStaged(0, 0, staged));
                }
                assertTrue(dst.isReady());
                dst.close();
            }

            // a staged slice outlives its pipeline; one nobody imports is freed on release
            Pipeline gone = pipeline(ex, w0, 2, layout);
            gone.loadWeights(ckpt);
            ContextSlice norm = new ContextSlice.FinalNorm();
            byte[] expected = gone.exportSlice(0, 0, norm);
            StagedSlice kept = gone.stageSlice(0, 0, norm);
            StagedSlice dropped = gone.stageSlice(0, 0, slices.get(0));
            gone.close();
            assertEquals(2, staging(ex, w0).getSlices());
            src.releaseSlice(0, 0, norm);
            assertEquals(norm, src.importStaged(0, 0, kept), "back into a position of another pipeline");
            assertArrayEquals(expected, src.exportSlice(0, 0, norm));
            kept.release();
            byte[] first = src.exportSlice(0, 0, slices.get(0));
            long relayed = ex.relayedSliceBytes();
            assertArrayEquals(first, dropped.data(), "fetched to the controller");
            assertEquals(dropped.bytes(), ex.relayedSliceBytes() - relayed, "a fetch is counted as relayed");
            dropped.release();
            assertEquals(0, staging(ex, w0).getSlices());
            assertEquals(0, ex.stagedSlices());
            assertThrows(IllegalStateException.class, dropped::data);
            src.close();
        }
    }

    @Test
    void aCheckpointPieceIsReadByTheTargetWorkerWhenItCanReadTheFileElseStreamed() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        java.nio.file.Path dir = java.nio.file.Path.of("target", "worker-logs", "staging");
        java.nio.file.Files.createDirectories(dir);
        java.nio.file.Path copy = dir.resolve("controller-only.bin");
        java.nio.file.Files.copy(SharedData.stories260K(), copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        LlamaCheckpoint mine = LlamaCheckpoint.load(copy); // mapped: stays readable here after the file is gone
        java.nio.file.Files.delete(copy);
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w = worker(controller, true, 64L << 20)) {
            RemoteExecutor ex = controller.executor();
            Pipeline reference = pipeline(ex, w, 0, layout);
            reference.loadWeights(ckpt);
            for (LlamaCheckpoint source : List.of(ckpt, mine)) {
                Pipeline p = pipeline(ex, w, source == ckpt ? 1 : 2, layout);
                for (ContextSlice s : layout.weightSlices(0, 0)) {
                    long relayed = ex.relayedSliceBytes();
                    StagedSlice staged = StagedSlice.fromCheckpoint(source, s);
                    assertEquals(s, p.importStaged(0, 0, staged));
                    long expected = source == ckpt ? 0 : staged.bytes();
                    assertEquals(expected, ex.relayedSliceBytes() - relayed, source == ckpt
                            ? "the worker read the file itself" : "the worker cannot read it: streamed");
                    staged.release();
                }
                assertTrue(p.isReady());
                for (ContextSlice s : layout.weightSlices(0, 0)) {
                    assertArrayEquals(reference.exportSlice(0, 0, s), p.exportSlice(0, 0, s), s.toString());
                }
                p.close();
            }
            reference.close();
        }
    }

    /**
     * A GGUF file and a Hugging Face folder are opened by the worker itself, like llama2.c files: whole-pipeline loads
     * and checkpoint pieces of a migration cross no byte through the controller, and hold the same weights as the
     * same model streamed from the controller (a {@link ModelWeights} without a path).
     */
    @Test
    void aGgufFileAndAHuggingFaceFolderAreOpenedByTheWorkerItself() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        io.spotserve.model.Tokenizer tok = io.spotserve.model.Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        java.nio.file.Path dir = java.nio.file.Path.of("target", "worker-logs", "formats");
        java.nio.file.Files.createDirectories(dir);
        java.nio.file.Path gguf = dir.resolve("stories260K-f16.gguf");
        io.spotserve.model.GgufWriter.write(gguf, ckpt, tok, io.spotserve.model.TensorType.F16);
        java.nio.file.Path hf = dir.resolve("stories260K-hf");
        io.spotserve.model.HfWriter.write(hf, ckpt, io.spotserve.model.TensorType.BF16, 2, null);
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w = worker(controller, true, 64L << 20)) {
            RemoteExecutor ex = controller.executor();
            int gpu = 0;
            for (java.nio.file.Path path : List.of(gguf, hf)) {
                ModelSource source = ModelSource.open(path);
                ModelWeights pathless = new ModelWeights() { // the same weights, but no worker can open them
                    public io.spotserve.model.LlamaConfig config() {
                        return source.config();
                    }

                    public String description() {
                        return "in memory";
                    }

                    public void read(LlamaCheckpoint.Tensor t, int layer, long offset, float[] dst, int dstOff, int len) {
                        source.read(t, layer, offset, dst, dstOff, len);
                    }
                };
                Pipeline streamed = pipeline(ex, w, gpu++, layout);
                long relayed = ex.relayedSliceBytes();
                streamed.loadWeights(pathless);
                assertTrue(ex.relayedSliceBytes() > relayed, "weights without a path are streamed");

                Pipeline opened = pipeline(ex, w, gpu++, layout);
                relayed = ex.relayedSliceBytes();
                opened.loadWeights(source);
                assertEquals(relayed, ex.relayedSliceBytes(), path + ": the worker opened it itself");

                Pipeline pieces = pipeline(ex, w, gpu++, layout);
                for (ContextSlice s : layout.weightSlices(0, 0)) {
                    StagedSlice staged = StagedSlice.fromCheckpoint(source, s);
                    assertEquals(s, pieces.importStaged(0, 0, staged));
                    staged.release();
                }
                assertEquals(relayed, ex.relayedSliceBytes(), path + ": pieces read by the worker too");
                assertTrue(opened.isReady() && pieces.isReady());
                for (ContextSlice s : layout.weightSlices(0, 0)) {
                    byte[] expected = streamed.exportSlice(0, 0, s);
                    assertArrayEquals(expected, opened.exportSlice(0, 0, s), path + " " + s);
                    assertArrayEquals(expected, pieces.exportSlice(0, 0, s), path + " " + s);
                }
                streamed.close();
                opened.close();
                pieces.close();
            }
        }
    }

    @Test
    void theStagingMemoryBoundsWhatAWorkerHoldsAndADeadSourceFailsTheImportAsLost() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        ContextSlice embedding = layout.weightSlices(0, 0).get(0);
        long size = embedding.bytes(ckpt.config());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess small = worker(controller, true, size + 1000);
             WorkerProcess target = worker(controller, true, 64L << 20)) {
            RemoteExecutor ex = controller.executor();
            Pipeline src = pipeline(ex, small, 0, layout);
            src.loadWeights(ckpt);
            StagedSlice first = src.stageSlice(0, 0, embedding);
            IllegalStateException full = assertThrows(IllegalStateException.class,
                    () -> src.stageSlice(0, 0, embedding));
            assertTrue(full.getMessage().contains("staging area full"), full.getMessage());
            assertEquals(1, staging(ex, small).getSlices(), "the refused stage left nothing");
            assertEquals(1, ex.stagedSlices());

            Pipeline dst = pipeline(ex, target, 0, layout);
            small.close(); // the source worker's process is gone
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (controller.liveWorkers().contains(small.instanceId())) {
                assertTrue(System.nanoTime() < deadline, "the controller noticed the dead worker");
                Thread.sleep(10);
            }
            DeviceLostException lost = assertThrows(DeviceLostException.class, () -> dst.importStaged(0, 0, first));
            assertTrue(lost.devices().contains(new DeviceId(small.instanceId(), 0)), lost.devices().toString());
            assertFalse(lost.devices().contains(new DeviceId(target.instanceId(), 0)), "the target is fine");
            first.release();
            assertEquals(0, ex.stagedSlices());
            assertFalse(dst.hasAllWeights(0, 0));
            dst.close();
        }
    }
}
