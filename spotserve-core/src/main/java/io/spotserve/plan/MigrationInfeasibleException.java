package io.spotserve.plan;

/**
 * No migration order keeps every instance's extra memory within the buffer cap U_max (SpotServe §3.4).
 * Carries the cap asked for and the smallest cap for which an order exists, so the caller (the
 * configuration optimizer) can pick another configuration or raise the cap.
 */
public final class MigrationInfeasibleException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final long cap;
    private final long minimumFeasibleCap;
    private final boolean exact;

    MigrationInfeasibleException(long cap, long minimumFeasibleCap, boolean exact) {
        super("no migration order keeps per-instance buffer use within U_max = " + cap + " bytes; the minimum feasible cap is "
                + (exact ? "" : "at most ") + minimumFeasibleCap + " bytes");
        this.cap = cap;
        this.minimumFeasibleCap = minimumFeasibleCap;
        this.exact = exact;
    }

    /** The cap that was asked for. */
    public long cap() {
        return cap;
    }

    /** Smallest cap with a feasible order (an upper bound when {@link #exact()} is false). */
    public long minimumFeasibleCap() {
        return minimumFeasibleCap;
    }

    /** Whether {@link #minimumFeasibleCap()} is proven minimal (false when the search space was too large). */
    public boolean exact() {
        return exact;
    }
}
