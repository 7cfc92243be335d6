package io.spotserve.engine;

/**
 * An accepted request ended without a completion: its deadline passed, or the engine closed before it could
 * finish it. The future of the request completes exceptionally with this exception (exactly once).
 */
public final class RequestFailedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why an accepted request failed. */
    public enum Reason {
        /** Its timeout elapsed on the engine clock. */
        DEADLINE_EXCEEDED,
        /** {@link ServingEngine#close} gave up waiting for it. */
        ENGINE_CLOSED,
        /** The engine hit an internal error while running it. */
        INTERNAL_ERROR,
        /**
         * Its token subscriber broke the Reactive Streams contract: {@code onNext} threw, or it called
         * {@code request(n)} with {@code n <= 0} (rule 3.9); the cause is what it threw or the rule violation.
         */
        SUBSCRIBER_FAILED,
        /**
         * Its timeout elapsed while no configuration of the usable instances could serve the model (instances too
         * small for it, or too few): it never ran.
         */
        NO_CAPACITY
    }

    private final long requestId;
    private final Reason reason;

    RequestFailedException(long requestId, Reason reason, String message, Throwable cause) {
        super("request " + requestId + ": " + reason + ": " + message, cause);
        this.requestId = requestId;
        this.reason = reason;
    }

    /** The engine's id of the failed request. */
    public long requestId() {
        return requestId;
    }

    /** Why it failed. */
    public Reason reason() {
        return reason;
    }
}
