package io.spotserve.engine;

/**
 * A request was not accepted: the admission queue is full or the engine is closing. Thrown by
 * {@link ServingEngine#submit}; the request never entered the engine, so retrying later is safe.
 */
public final class RequestRejectedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why a request was not accepted. */
    public enum Reason {
        /** The admission queue is full: retry later (an HTTP front end answers 429). */
        QUEUE_FULL,
        /** The engine is closing and accepts nothing more (an HTTP front end answers 503). */
        CLOSING
    }

    private final Reason reason;

    /** A rejection with its reason, {@link Reason#QUEUE_FULL}. */
    public RequestRejectedException(String message) {
        this(Reason.QUEUE_FULL, message);
    }

    /** A rejection with its reason. */
    public RequestRejectedException(Reason reason, String message) {
        super(message);
        this.reason = java.util.Objects.requireNonNull(reason, "reason");
    }

    /** Why the request was not accepted. */
    public Reason reason() {
        return reason;
    }
}
