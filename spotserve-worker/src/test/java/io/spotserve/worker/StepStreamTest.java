package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The step stream on a real worker: its steps give the unary call's logits, a refused step answers on the stream and
 * leaves it usable, and a stream whose worker is gone fails and stays broken.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StepStreamTest {
    private static final WireSecurity TOKEN = WireSecurity.token("steps-token-0123456789abcdef");

    @Test
    void stepsOnTheStreamMatchUnaryCallsAndARefusalKeepsItOpen() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build()) {
            WorkerProcess w = WorkerProcess.builder().controller(controller.address()).devices(1)
                    .deviceMemory(64L << 20).security(TOKEN).executor(new CpuExecutor(new ExecutorOptions(1, false)))
                    .build().start();
            RemoteExecutor ex = controller.executor();
            Pipeline p = ex.createPipeline(ShardLayout.of(ckpt.config(), 1, 1),
                    List.of(ex.createDevice(new DeviceId(w.instanceId(), 0), 64L << 20)), 1);
            p.loadWeights(ckpt);
            p.openSequence(1, 16);
            p.openSequence(2, 16);
            long id = ((RemotePipeline) p).segmentOf(0).id();
            Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES);
            StepStream stream = new StepStream(channels.to(w.address()));
            // the same step (token 1 at position 0) on the stream and as the pipeline's own call
            StepRequest step = StepRequest.newBuilder().setPipeline(id).addSequences(1).addTokens(1).addPositions(0)
                    .addLogitsFor(0).build();
            StepReply viaStream = stream.tryStep(step, 10);
            float[] streamed = new float[ckpt.config().vocabSize()];
            Wire.floats(viaStream.getLogits(), streamed, 0, streamed.length);
            long stepsBefore = ex.steps();
            float[] called = p.decode(new long[] {2}, new int[] {1}, new int[] {0})[0];
            assertArrayEquals(called, streamed);
            // the worker says how long its forward pass and its handler took: both within the step's wall time
            assertTrue(viaStream.getComputeNanos() > 0 && viaStream.getHandlerNanos() >= viaStream.getComputeNanos(),
                    viaStream.getComputeNanos() + " / " + viaStream.getHandlerNanos());
            assertEquals(stepsBefore + 1, ex.steps());
            assertTrue(ex.stepComputeNanos() > 0 && ex.stepHandlerNanos() >= ex.stepComputeNanos());

            // a refused step answers with its status; the stream stays open for the next one
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stream.tryStep(
                    step.toBuilder().setPipeline(id + 1000).build(), 10));
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("does not exist"), e.getStatus().getDescription());
            assertFalse(stream.broken());
            StepReply next = stream.tryStep(step.toBuilder().setPositions(0, 1).build(), 10);
            assertEquals(viaStream.getLogits().size(), next.getLogits().size());

            // the worker goes away: the stream fails and stays broken
            w.close();
            StatusRuntimeException gone = assertThrows(StatusRuntimeException.class, () -> stream.tryStep(step, 10));
            assertTrue(gone.getStatus().getCode() == Status.Code.UNAVAILABLE
                    || gone.getStatus().getCode() == Status.Code.CANCELLED, gone.getStatus().toString());
            assertTrue(stream.broken());
            assertThrows(StatusRuntimeException.class, () -> stream.tryStep(step, 10));
            channels.close();
        }
    }
}
