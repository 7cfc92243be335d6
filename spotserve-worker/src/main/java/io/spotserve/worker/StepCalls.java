package io.spotserve.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.PartialsMessage;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;

/**
 * The step RPCs of a worker: forward steps from the controller ({@code Worker/Forward}, the {@code Worker/Steps}
 * stream, tickets for the step socket) and from the previous stage's worker ({@code Peer/StageForward}), the warm-up
 * calls, and the partials a split tensor group's peers send at each reduce point ({@code Peer/Partials},
 * {@code Peer/PartialsStream}).
 */
final class StepCalls {
    private final WorkerState state;
    /** Forward steps through the hosted stages (and warm-up calls). */
    private final StageStep steps;
    /** The tensor groups split over workers that this worker hosts members of, and their partials. */
    private final GroupExchange groups;
    /** This worker's step socket, or null (steps then come over gRPC only). */
    private volatile StepServer stepServer;

    StepCalls(WorkerState state, StageStep steps, GroupExchange groups) {
        this.state = state;
        this.steps = steps;
        this.groups = groups;
    }

    /** Serves steps over {@code s} from now on ({@code Worker/OpenSteps} issues its tickets). */
    void stepServer(StepServer s) {
        this.stepServer = s;
    }

    StepServer stepServer() {
        return stepServer;
    }

    /**
     * Runs one step and answers it, a refusal included (its status in the reply): what the {@code Steps} stream and
     * the step socket send back for each request.
     */
    StepReply answer(StepRequest r) {
        return answered(() -> steps.step(r));
    }

    /**
     * What the step socket answers: a step as {@link #answer}, or a collect ({@code StepRequest.collect}: the logits a
     * last stage kept for the controller), which only the socket serves (it holds its connection's thread while it
     * waits, never a gRPC transport thread).
     */
    StepReply answerSocket(StepRequest r) {
        return r.getCollect() ? answered(() -> steps.collect(r)) : answer(r);
    }

    /** The reply of {@code call} on a live worker, or its refusal as a reply carrying the status. */
    private StepReply answered(java.util.function.Supplier<StepReply> call) {
        try {
            state.checkLive();
            return call.get();
        } catch (RuntimeException e) {
            Status s = WorkerService.error(e).getStatus();
            return StepReply.newBuilder().setErrorCode(s.getCode().value())
                    .setError(s.getDescription() == null ? s.getCode().toString() : s.getDescription()).build();
        }
    }

    void forward(StepRequest r, StreamObserver<StepReply> out) {
        state.unary(out, () -> steps.step(r));
    }

    void openSteps(Ack r, StreamObserver<BulkTicket> out) {
        state.unary(out, () -> {
            StepServer ss = stepServer;
            if (ss == null) {
                throw new StatusRuntimeException(Status.UNIMPLEMENTED.withDescription(
                        "this worker has no step socket"));
            }
            return ss.issue();
        });
    }

    StreamObserver<StepRequest> steps(StreamObserver<StepReply> out) {
        return new StreamObserver<>() {
            @Override
            public void onNext(StepRequest r) {
                out.onNext(answer(r));
            }

            @Override
            public void onError(Throwable t) {
                // the caller gave up on the stream; nothing is pending here
            }

            @Override
            public void onCompleted() {
                out.onCompleted();
            }
        };
    }

    void stageForward(StepRequest r, StreamObserver<StepReply> out) {
        state.unary(out, () -> steps.step(r));
    }

    void warmUp(StepRequest r, StreamObserver<StepReply> out) {
        state.unary(out, () -> steps.warmStep(r));
    }

    StreamObserver<PartialsMessage> partialsStream(StreamObserver<Ack> out) {
        return new StreamObserver<>() {
            private boolean failed;

            @Override
            public void onNext(PartialsMessage m) {
                if (failed) {
                    return;
                }
                try {
                    state.checkLive();
                    groups.deposit(m);
                } catch (RuntimeException e) {
                    failed = true;
                    out.onError(WorkerService.error(e));
                }
            }

            @Override
            public void onError(Throwable t) {
                failed = true; // the sender is gone: nothing pending here
            }

            @Override
            public void onCompleted() {
                if (!failed) {
                    out.onNext(Ack.getDefaultInstance());
                    out.onCompleted();
                }
            }
        };
    }

    void partials(PartialsMessage r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            groups.deposit(r);
            return Ack.getDefaultInstance();
        });
    }
}
