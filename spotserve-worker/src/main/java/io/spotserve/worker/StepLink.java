package io.spotserve.worker;

import io.grpc.StatusRuntimeException;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;

/**
 * A long-lived channel for the forward steps of one pipeline to one worker: a {@link StepSocket} (the worker's
 * ticketed step socket) or a {@link StepStream} (a {@code Worker/Steps} gRPC stream, the fallback). One step at a
 * time; a link that failed, timed out or was cancelled is {@link #broken()} for good and its owner opens a new one.
 */
interface StepLink extends AutoCloseable {
    /**
     * Sends {@code r} and waits for its reply, failing when the current gRPC context is cancelled (a worker involved
     * was declared dead) or after {@code timeoutSeconds}.
     *
     * @return the reply, or null if another thread is stepping on this link right now (the caller makes a unary call)
     * @throws StatusRuntimeException as a unary call would: the step's own refusal (the link stays usable), or the
     *                                link's failure (it is broken from then on)
     */
    StepReply tryStep(StepRequest r, long timeoutSeconds);

    /** Whether this link failed or was closed (no step can use it any more). */
    boolean broken();

    @Override
    void close();
}
