package io.spotserve.exec;

/**
 * A half-open range {@code [from, to)} of indices (layers, heads, FFN hidden units, vocabulary rows).
 *
 * <p>Sharding and migration are arithmetic on these ranges: a tensor shard owns a head range and a hidden
 * range, and what a device can hand over to a new position is the intersection of what it holds with what
 * the position needs (SpotServe §3.3 "reusable context").
 *
 * @param from first index, inclusive, {@code >= 0}
 * @param to   end index, exclusive, {@code >= from}
 */
public record IndexRange(int from, int to) {
    public IndexRange {
        if (from < 0 || to < from) {
            throw new IllegalArgumentException("index range [" + from + ", " + to + ") is invalid; expected 0 <= from <= to");
        }
    }

    /** Shorthand for {@code new IndexRange(from, to)}. */
    public static IndexRange of(int from, int to) {
        return new IndexRange(from, to);
    }

    /** Number of indices in the range. */
    public int length() {
        return to - from;
    }

    /** Whether the range holds no index. */
    public boolean isEmpty() {
        return to == from;
    }

    /** Whether {@code other} lies entirely inside this range (an empty range lies inside every range). */
    public boolean contains(IndexRange other) {
        return other.isEmpty() || (other.from >= from && other.to <= to);
    }

    /** Whether {@code index} lies inside the range. */
    public boolean contains(int index) {
        return index >= from && index < to;
    }

    /** The common part of two ranges, empty (at the larger start) when they do not overlap. */
    public IndexRange intersect(IndexRange other) {
        int lo = Math.max(from, other.from);
        int hi = Math.min(to, other.to);
        return new IndexRange(lo, Math.max(lo, hi));
    }

    /** This range with every bound multiplied by {@code factor} (e.g. heads to head features). */
    public IndexRange scale(int factor) {
        return new IndexRange(from * factor, to * factor);
    }

    @Override
    public String toString() {
        return "[" + from + "," + to + ")";
    }
}
