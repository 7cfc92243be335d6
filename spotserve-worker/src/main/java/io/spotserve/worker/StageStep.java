package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.model.LlamaConfig;
import io.spotserve.worker.proto.Hop;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongFunction;

/**
 * One forward step through the stages a worker hosts ({@code Worker/Forward}, {@code Worker/Steps},
 * {@code Peer/StageForward}): checks the request against the pipeline before anything runs, runs the hosted stages,
 * and either returns the logits (last stage here) or hands the activations to the worker of the next stages and
 * returns its reply, with the bytes and nanoseconds of this worker added. Also answers the warm-up calls a fresh
 * worker makes to itself before it registers. Callers check first that the worker is not fenced.
 */
final class StageStep {
    private final LongFunction<Pipeline> pipelines;
    private final StepStream.Hops hops;
    /** Whether {@code WarmUp} calls are answered: only while the worker warms up, before it registers. */
    private volatile boolean warming;
    private final AtomicLong warmUpServed = new AtomicLong();

    /**
     * @param pipelines the worker's pipeline of an id (throws for an unknown one)
     * @param hops      the step streams to the next stages' workers
     */
    StageStep(LongFunction<Pipeline> pipelines, StepStream.Hops hops) {
        this.pipelines = pipelines;
        this.hops = hops;
    }

    /** Opens ({@code true}) or closes the warm-up window. */
    void warming(boolean on) {
        this.warming = on;
    }

    /** Warm-up calls answered so far. */
    long warmUpServed() {
        return warmUpServed.get();
    }

    /** Runs the hosted stages of one step and, when later stages live elsewhere, hands the activations on. */
    StepReply step(StepRequest r) {
        long received = System.nanoTime();
        Pipeline p = pipelines.apply(r.getPipeline());
        LlamaConfig c = p.config();
        int count = r.getSequencesCount();
        if (count < 1 || r.getTokensCount() != count || r.getPositionsCount() != count) {
            throw new IllegalArgumentException("a step needs as many tokens and positions as sequences (>= 1); got "
                    + count + " sequences, " + r.getTokensCount() + " tokens, " + r.getPositionsCount() + " positions");
        }
        if (count > p.maxBatch()) { // before anything is allocated for the step
            throw new IllegalArgumentException("batch of " + count + " entries outside [1, maxBatch " + p.maxBatch() + "]");
        }
        IndexRange hosted = p.hostedStages();
        if (r.getStage() != hosted.from()) {
            throw new IllegalArgumentException("step enters at stage " + r.getStage() + " but this worker hosts stages "
                    + hosted + " of pipeline " + r.getPipeline());
        }
        int last = p.layout().stages() - 1;
        float[][] logits = new float[count][];
        int previous = -1;
        for (int i : r.getLogitsForList()) {
            if (i <= previous || i >= count) {
                throw new IllegalArgumentException("logits_for must be increasing entry indices in [0, " + count
                        + "); got " + r.getLogitsForList());
            }
            previous = i;
        }
        if (hosted.to() <= last && r.getRouteCount() == 0) {
            throw new IllegalArgumentException("stages after " + (hosted.to() - 1) + " live elsewhere but the step "
                    + "carries no route");
        }
        if (hosted.to() <= last && r.getRoute(0).getFirstStage() != hosted.to()) {
            throw new IllegalArgumentException("the route's next hop starts at stage " + r.getRoute(0).getFirstStage()
                    + ", expected " + hosted.to());
        }
        long[] seqs = new long[count];
        int[] tokens = new int[count];
        int[] positions = new int[count];
        for (int i = 0; i < count; i++) {
            seqs[i] = r.getSequences(i);
            tokens[i] = r.getTokens(i);
            positions[i] = r.getPositions(i);
        }
        float[] hidden = new float[count * c.dim()];
        if (hosted.from() > 0) {
            Wire.floats(r.getHidden(), hidden, 0, hidden.length);
        } else if (!r.getHidden().isEmpty()) {
            throw new IllegalArgumentException("a step entering at stage 0 carries tokens, not activations");
        }
        if (hosted.to() > last) {
            for (int i : r.getLogitsForList()) {
                logits[i] = new float[c.vocabSize()];
            }
        }
        long computeStart = System.nanoTime();
        synchronized (p) {
            for (int s = hosted.from(); s < hosted.to(); s++) {
                p.forwardStage(s, seqs, tokens, positions, count, hidden, logits);
            }
        }
        long compute = System.nanoTime() - computeStart;
        if (hosted.to() > last) {
            ByteString.Output packed = ByteString.newOutput(r.getLogitsForCount() * c.vocabSize() * Float.BYTES);
            for (int i : r.getLogitsForList()) {
                try {
                    Wire.floats(logits[i], c.vocabSize()).writeTo(packed);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }
            return StepReply.newBuilder().setLogits(packed.toByteString()).setComputeNanos(compute)
                    .setHandlerNanos(System.nanoTime() - received).build();
        }
        Hop next = r.getRoute(0);
        ByteString activations = Wire.floats(hidden, hidden.length);
        StepRequest forward = r.toBuilder().setPipeline(next.getPipeline()).setStage(next.getFirstStage())
                .setHidden(activations).clearRoute().addAllRoute(r.getRouteList().subList(1, r.getRouteCount()))
                .build();
        long called = System.nanoTime();
        StepReply downstream = hops.step(r.getPipeline(), next.getAddress(), forward);
        long downstreamNanos = System.nanoTime() - called;
        return downstream.toBuilder().setActivationBytes(downstream.getActivationBytes() + activations.size())
                .setComputeNanos(downstream.getComputeNanos() + compute)
                .setHandlerNanos(downstream.getHandlerNanos() + System.nanoTime() - received - downstreamNanos).build();
    }

    /** Largest activation payload a warm-up call may carry (its real calls carry count x dim floats). */
    static final int WARM_UP_MAX_BYTES = 64 << 10;

    /**
     * Answers one warm-up call the way {@link #step} answers a middle stage's call (checks the request's shape,
     * decodes the activations, encodes floats back), without touching any pipeline or device.
     */
    StepReply warmStep(StepRequest r) {
        if (!warming) {
            throw new StatusRuntimeException(Status.FAILED_PRECONDITION.withDescription(
                    "warm-up calls are answered only while this worker warms up, before it registers"));
        }
        int count = r.getSequencesCount();
        if (count < 1 || r.getTokensCount() != count || r.getPositionsCount() != count) {
            throw new IllegalArgumentException("a warm-up step needs as many tokens and positions as sequences (>= 1)");
        }
        int bytes = r.getHidden().size();
        if (bytes % Float.BYTES != 0 || bytes > WARM_UP_MAX_BYTES) {
            throw new IllegalArgumentException("a warm-up step carries whole floats, at most " + WARM_UP_MAX_BYTES
                    + " bytes; got " + bytes);
        }
        float[] hidden = new float[bytes / Float.BYTES];
        Wire.floats(r.getHidden(), hidden, 0, hidden.length);
        warmUpServed.incrementAndGet();
        return StepReply.newBuilder().setLogits(Wire.floats(hidden, hidden.length)).setActivationBytes(bytes).build();
    }
}
