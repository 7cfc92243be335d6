package io.spotserve.worker;

import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.worker.proto.Hop;
import io.spotserve.worker.proto.LogitPart;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The controller's side of a step through a pipeline with a tensor group split over workers: the route names every
 * member of each split group, the step goes to every member of the first group at once (each needs the tokens), and
 * the logits come back as the last group's members' vocabulary columns, gathered here. The calls run inside one
 * {@link RemoteExecutor#call} over all the pipeline's workers, so a worker declared dead cancels them all.
 */
final class GroupSteps {
    private GroupSteps() {
    }

    static boolean split(List<List<RemotePipeline.Segment>> levels) {
        for (List<RemotePipeline.Segment> l : levels) {
            if (l.size() > 1) {
                return true;
            }
        }
        return false;
    }

    private static Hop hop(RemotePipeline.Segment s) {
        return Hop.newBuilder().setAddress(s.worker().address).setPipeline(s.id()).setFirstStage(s.stages().from())
                .build();
    }

    /** Runs one step; {@code r} holds the entries, the route and the step id are added here. */
    static StepReply step(RemoteExecutor executor, List<RemoteInstanceProvider.WorkerLink> workers,
                          List<List<RemotePipeline.Segment>> levels, StepRequest.Builder r, long stepId) {
        r.setStepId(stepId).clearRoute();
        for (List<RemotePipeline.Segment> level : levels.subList(1, levels.size())) {
            if (level.size() == 1) {
                r.addRoute(hop(level.get(0)));
            } else {
                Hop.Builder h = Hop.newBuilder().setFirstStage(level.get(0).stages().from());
                for (RemotePipeline.Segment s : level) {
                    h.addMembers(hop(s));
                }
                r.addRoute(h);
            }
        }
        List<RemotePipeline.Segment> first = levels.get(0);
        return executor.call(workers, first.get(0).worker(), ignored -> {
            List<ListenableFuture<StepReply>> calls = new ArrayList<>();
            for (RemotePipeline.Segment s : first) {
                calls.add(WorkerGrpc.newFutureStub(executor.channel(s.worker())).withDeadlineAfter(60, TimeUnit.SECONDS)
                        .forward(r.setPipeline(s.id()).build()));
            }
            StepReply.Builder out = StepReply.newBuilder();
            try {
                for (ListenableFuture<StepReply> f : calls) {
                    StepReply d = f.get(70, TimeUnit.SECONDS);
                    out.setActivationBytes(out.getActivationBytes() + d.getActivationBytes())
                            .setComputeNanos(out.getComputeNanos() + d.getComputeNanos())
                            .setHandlerNanos(out.getHandlerNanos() + d.getHandlerNanos())
                            .setReduceBytes(out.getReduceBytes() + d.getReduceBytes()).addAllParts(d.getPartsList());
                    if (!d.getLogits().isEmpty()) {
                        out.setLogits(d.getLogits());
                    }
                }
            } catch (ExecutionException e) {
                for (ListenableFuture<StepReply> f : calls) {
                    f.cancel(true);
                }
                throw e.getCause() instanceof StatusRuntimeException sre ? sre : Status.INTERNAL
                        .withCause(e.getCause()).asRuntimeException();
            } catch (TimeoutException e) {
                throw Status.DEADLINE_EXCEEDED.withDescription("no reply to a step within 70 s").asRuntimeException();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
            }
            return out.build();
        });
    }

    /**
     * Fills the requested entries' logits from a split last group's columns (which must cover the vocabulary once),
     * or from whole rows when the last stage is one worker's.
     */
    static void gather(StepReply reply, List<Integer> logitsFor, int vocab, float[][] logits) {
        int wanted = logitsFor.size();
        if (reply.getPartsCount() == 0) {
            if (reply.getLogits().size() != (long) wanted * vocab * Float.BYTES) {
                throw new IllegalStateException("the workers returned " + reply.getLogits().size() + " bytes of logits, "
                        + "expected " + wanted + " x vocab " + vocab + " floats");
            }
            java.nio.FloatBuffer all = reply.getLogits().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .asFloatBuffer();
            for (int k = 0; k < wanted; k++) {
                all.get(logits[logitsFor.get(k)], 0, vocab); // straight into the caller's arrays
            }
            return;
        }
        if (!reply.getLogits().isEmpty()) {
            throw new IllegalStateException("the workers returned both whole logits and vocabulary columns");
        }
        boolean[] covered = new boolean[vocab];
        for (LogitPart p : reply.getPartsList()) {
            int from = p.getVocabFrom();
            int to = p.getVocabTo();
            if (from < 0 || to > vocab || from >= to || p.getLogits().size() != (long) wanted * (to - from) * Float.BYTES) {
                throw new IllegalStateException("logit columns [" + from + ", " + to + ") with " + p.getLogits().size()
                        + " bytes do not fit " + wanted + " entries of vocab " + vocab);
            }
            for (int v = from; v < to; v++) {
                if (covered[v]) {
                    throw new IllegalStateException("logit column " + v + " returned twice");
                }
                covered[v] = true;
            }
            float[] cols = new float[wanted * (to - from)];
            Wire.floats(p.getLogits(), cols, 0, cols.length);
            for (int k = 0; k < wanted; k++) {
                System.arraycopy(cols, k * (to - from), logits[logitsFor.get(k)], from, to - from);
            }
        }
        for (int v = 0; v < vocab; v++) {
            if (!covered[v]) {
                throw new IllegalStateException("logit column " + v + " was returned by no worker");
            }
        }
    }
}
