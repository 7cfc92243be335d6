package io.spotserve.engine;

/**
 * A request was not accepted: the admission queue is full or the engine is closing. Thrown by
 * {@link ServingEngine#submit}; the request never entered the engine, so retrying later is safe.
 */
public final class RequestRejectedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** A rejection with its reason. */
    public RequestRejectedException(String message) {
        super(message);
    }
}
