package io.spotserve.plan;

import java.io.Serializable;

/**
 * An exact sub-range {@code [from/units, to/units)} of a tensor's shardable dimension (heads, FFN columns,
 * KV heads). Tensor shard m of M is {@code [m/M, (m+1)/M)}; re-sharding from M_old to M_new is cut in
 * units of lcm(M_old, M_new), so the intersections the device mapper weighs (SpotServe §3.3) are exact
 * fractions, never accumulating doubles. Always kept reduced, so equal ranges are equal records.
 *
 * @param from  start, in units
 * @param to    end (exclusive), in units
 * @param units denominator
 */
public record ShardRange(int from, int to, int units) implements Serializable {

    /** The whole tensor. */
    public static final ShardRange FULL = new ShardRange(0, 1, 1);

    public ShardRange {
        if (units < 1 || from < 0 || to <= from || to > units) {
            throw new IllegalArgumentException("shard range [" + from + "/" + units + ", " + to + "/" + units
                    + ") is invalid; expected 0 <= from < to <= units, units >= 1");
        }
        int g = gcd(gcd(from, to), units);
        if (g > 1) {
            from /= g;
            to /= g;
            units /= g;
        }
    }

    /** Shard {@code m} of {@code M}: {@code [m/M, (m+1)/M)}. */
    public static ShardRange ofShard(int m, int shards) {
        if (shards < 1 || m < 0 || m >= shards) {
            throw new IllegalArgumentException("shard " + m + " of " + shards + " does not exist; expected 0 <= m < M");
        }
        return new ShardRange(m, m + 1, shards);
    }

    /** The common part of both ranges, or null when they do not overlap. */
    public ShardRange intersect(ShardRange o) {
        long u = lcm(units, o.units);
        long a = Math.max((long) from * (u / units), (long) o.from * (u / o.units));
        long b = Math.min((long) to * (u / units), (long) o.to * (u / o.units));
        return a < b ? new ShardRange((int) a, (int) b, (int) u) : null;
    }

    /** Whether {@code o} lies entirely inside this range. */
    public boolean contains(ShardRange o) {
        return o.equals(intersect(o));
    }

    /**
     * Bytes of this range of a tensor of {@code totalBytes}: {@code floor(T·to/units) − floor(T·from/units)}.
     * Cumulative rounding makes this additive: the pieces of any split sum exactly to the whole.
     */
    public long bytesOf(long totalBytes) {
        return floorPart(totalBytes, to) - floorPart(totalBytes, from);
    }

    private long floorPart(long total, int num) {
        return Math.floorDiv(Math.multiplyExact(total, (long) num), (long) units);
    }

    static int gcd(int a, int b) {
        while (b != 0) {
            int t = a % b;
            a = b;
            b = t;
        }
        return Math.abs(a);
    }

    static long lcm(int a, int b) {
        return (long) a / gcd(a, b) * b;
    }

    @Override
    public String toString() {
        return "[" + from + "/" + units + "," + to + "/" + units + ")";
    }
}
