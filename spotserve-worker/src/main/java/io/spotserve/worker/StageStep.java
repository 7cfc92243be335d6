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
import com.google.common.util.concurrent.ListenableFuture;
import io.spotserve.exec.TensorReducer;
import io.spotserve.worker.proto.LogitPart;
import io.spotserve.worker.proto.PeerGrpc;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
    private final GroupExchange groups;
    private final java.util.function.Function<String, io.grpc.ManagedChannel> peers;
    /** The logits this worker's last stages keep for the controller's collect. */
    private final LogitsOutbox outbox;
    /** Whether {@code WarmUp} calls are answered: only while the worker warms up, before it registers. */
    private volatile boolean warming;
    private final AtomicLong warmUpServed = new AtomicLong();

    /**
     * @param pipelines the worker's pipeline of an id (throws for an unknown one)
     * @param hops      the step streams to the next stages' workers
     */
    StageStep(LongFunction<Pipeline> pipelines, StepStream.Hops hops, GroupExchange groups,
              java.util.function.Function<String, io.grpc.ManagedChannel> peers, LogitsOutbox outbox) {
        this.pipelines = pipelines;
        this.hops = hops;
        this.groups = groups;
        this.peers = peers;
        this.outbox = outbox;
    }

    /** How long a collect waits for its step's logits (the controller's step timeout). */
    static final long COLLECT_TIMEOUT_MS = 60_000;

    /**
     * Answers a collect ({@code StepRequest.collect}, step socket only): waits for the logits the last stage of the
     * pipeline kept for the step and returns them.
     */
    StepReply collect(StepRequest r) {
        Pipeline p = pipelines.apply(r.getPipeline());
        if (p.hostedStages().to() != p.layout().stages() || p.hostedShards().length() != p.layout().shards()) {
            throw new IllegalArgumentException("a collect goes to the worker of the whole last stage; pipeline "
                    + r.getPipeline() + " hosts stages " + p.hostedStages() + ", shards " + p.hostedShards() + " here");
        }
        return outbox.collect(r.getPipeline(), r.getStepId(), COLLECT_TIMEOUT_MS);
    }

    /** Runs the hosted stages of one step and, when later stages live elsewhere, hands the activations on. */
    StepReply step(StepRequest r) {
        if (r.getCollect()) {
            throw new IllegalArgumentException("a collect is answered on the step socket only, not as a step");
        }
        if (!r.getLogitsDirect()) {
            return run(r);
        }
        try {
            return run(r);
        } catch (RuntimeException e) {
            Pipeline p;
            try {
                p = pipelines.apply(r.getPipeline());
            } catch (RuntimeException unknown) {
                throw e; // no such pipeline here: nobody can collect from it
            }
            if (p.hostedStages().to() == p.layout().stages()) {
                outbox.fail(r.getPipeline(), r.getStepId(), e); // the waiting collect fails now, not at its timeout
            }
            throw e;
        }
    }

    /** Opens ({@code true}) or closes the warm-up window. */
    void warming(boolean on) {
        this.warming = on;
    }

    /** Warm-up calls answered so far. */
    long warmUpServed() {
        return warmUpServed.get();
    }

    private StepReply run(StepRequest r) {
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
        IndexRange shards = p.hostedShards();
        GroupExchange.Group group = null;
        if (shards.length() != p.layout().shards()) {
            group = groups.group(r.getPipeline());
            if (group == null) {
                throw new IllegalStateException("pipeline " + r.getPipeline() + " hosts shards " + shards
                        + " but no group");
            }
        }
        AtomicLong reduceBytes = group == null ? null : new AtomicLong();
        long computeStart = System.nanoTime();
        if (group == null) {
            synchronized (p) {
                for (int s = hosted.from(); s < hosted.to(); s++) {
                    p.forwardStage(s, seqs, tokens, positions, count, hidden, logits);
                }
            }
        } else {
            TensorReducer reducer = groups.reducer(group, r.getStepId(), reduceBytes);
            try {
                synchronized (p) {
                    for (int s = hosted.from(); s < hosted.to(); s++) {
                        p.forwardStage(s, seqs, tokens, positions, count, hidden, logits, reducer);
                    }
                }
            } finally {
                groups.endStep(r.getPipeline(), r.getStepId());
            }
        }
        long compute = System.nanoTime() - computeStart;
        if (hosted.to() > last && group != null) {
            int from = p.layout().vocab(shards.from()).from();
            int to = p.layout().vocab(shards.to() - 1).to();
            float[] cols = new float[r.getLogitsForCount() * (to - from)];
            int k = 0;
            for (int i : r.getLogitsForList()) {
                System.arraycopy(logits[i], from, cols, k * (to - from), to - from);
                k++;
            }
            return StepReply.newBuilder().addParts(LogitPart.newBuilder().setVocabFrom(from).setVocabTo(to)
                            .setLogits(Wire.floats(cols, cols.length))).setComputeNanos(compute)
                    .setReduceBytes(reduceBytes.get()).setHandlerNanos(System.nanoTime() - received).build();
        }
        if (hosted.to() > last) {
            ByteString packed = Wire.floats(logits, r.getLogitsForList(), c.vocabSize());
            if (r.getLogitsDirect()) { // the controller collects them from here; the chain carries the counts
                outbox.deliver(r.getPipeline(), r.getStepId(), StepReply.newBuilder().setLogits(packed).build());
                return StepReply.newBuilder().setComputeNanos(compute).setHandlerNanos(System.nanoTime() - received)
                        .build();
            }
            return StepReply.newBuilder().setLogits(packed).setComputeNanos(compute)
                    .setHandlerNanos(System.nanoTime() - received).build();
        }
        Hop next = r.getRoute(0);
        ByteString activations = Wire.floats(hidden, hidden.length);
        if (group != null || next.getMembersCount() > 0) {
            return fanOut(r, group, activations, compute, reduceBytes == null ? 0 : reduceBytes.get(), received);
        }
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

    /**
     * Hands the hidden state of member g of a group of G (G = 1 for a worker hosting all M shards) to the members j
     * of the next stage group with j % G == g, in parallel ({@code Peer/StageForward}, inside this call's context: a
     * cancelled step cancels them), and merges their replies; a member with no such j answers with its own counts.
     */
    private StepReply fanOut(StepRequest r, GroupExchange.Group group, ByteString activations, long compute,
                             long reduceBytes, long received) {
        int g = group == null ? 0 : group.index();
        int size = group == null ? 1 : group.members().size();
        Hop next = r.getRoute(0);
        List<Hop> targets = next.getMembersCount() > 0 ? next.getMembersList() : List.of(next);
        List<ListenableFuture<StepReply>> calls = new ArrayList<>();
        for (int j = g; j < targets.size(); j += size) {
            Hop t = targets.get(j);
            StepRequest forward = r.toBuilder().setPipeline(t.getPipeline()).setStage(t.getFirstStage())
                    .setHidden(activations).clearRoute().addAllRoute(r.getRouteList().subList(1, r.getRouteCount()))
                    .build();
            calls.add(PeerGrpc.newFutureStub(peers.apply(t.getAddress())).withDeadlineAfter(60, TimeUnit.SECONDS)
                    .stageForward(forward));
        }
        long called = System.nanoTime();
        StepReply.Builder out = StepReply.newBuilder();
        long activationBytes = 0;
        long computeNanos = compute;
        long handlerNanos = 0;
        long reduce = reduceBytes;
        try {
            for (ListenableFuture<StepReply> f : calls) {
                StepReply d = f.get(70, TimeUnit.SECONDS);
                activationBytes += d.getActivationBytes() + activations.size();
                computeNanos += d.getComputeNanos();
                handlerNanos += d.getHandlerNanos();
                reduce += d.getReduceBytes();
                out.addAllParts(d.getPartsList());
                if (!d.getLogits().isEmpty()) {
                    out.setLogits(d.getLogits());
                }
            }
        } catch (ExecutionException e) {
            for (ListenableFuture<StepReply> f : calls) {
                f.cancel(true);
            }
            throw e.getCause() instanceof StatusRuntimeException sre ? sre : Status.INTERNAL.withCause(e.getCause())
                    .withDescription("next stage group failed: " + e.getCause()).asRuntimeException();
        } catch (TimeoutException e) {
            for (ListenableFuture<StepReply> f : calls) {
                f.cancel(true);
            }
            throw Status.DEADLINE_EXCEEDED.withDescription("next stage group answered nothing within 70 s")
                    .asRuntimeException();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
        }
        long downstreamNanos = System.nanoTime() - called;
        return out.setActivationBytes(activationBytes).setComputeNanos(computeNanos).setReduceBytes(reduce)
                .setHandlerNanos(handlerNanos + System.nanoTime() - received - downstreamNanos).build();
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
