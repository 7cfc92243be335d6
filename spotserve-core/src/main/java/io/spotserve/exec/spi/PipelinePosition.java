package io.spotserve.exec.spi;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.IndexRange;
import io.spotserve.model.ModelWeights;
import java.nio.FloatBuffer;

/**
 * What {@link AbstractPipeline} needs from one backend's pipeline position (stage p, shard m): its share of
 * the model, which slices it owns and holds, and the storage operations behind load / import / export /
 * release and sequence open / close. For executor implementors only; never called on the forward hot path.
 */
public interface PipelinePosition {
    /** Pipeline stage p of this position. */
    default int stage() {
        return coverage().stage();
    }

    /** Tensor shard m of this position. */
    default int shard() {
        return coverage().shard();
    }

    /** The device arena its storage is allocated from. */
    Device device();

    /** Which of its weights this position has been given. */
    WeightCoverage coverage();

    /** Capacity of the KV cache of {@code sequence} here, or -1 when the sequence is not open here. */
    int kvCapacity(long sequence);

    /** Global layers of its stage. */
    default IndexRange layers() {
        return coverage().layers();
    }

    /** Query heads of its shard. */
    default IndexRange heads() {
        return coverage().heads();
    }

    /** KV heads of its shard. */
    default IndexRange kvHeads() {
        return coverage().kvHeads();
    }

    /** FFN hidden units of its shard. */
    default IndexRange hidden() {
        return coverage().hidden();
    }

    /** Vocabulary rows of its shard (embedding on stage 0, classifier on the last stage). */
    default IndexRange vocab() {
        return coverage().vocab();
    }

    /** Whether one array serves as embedding and classifier (first and last stage, shared classifier). */
    default boolean aliasClassifier() {
        return coverage().aliasClassifier();
    }

    /** Whether this position owns all of {@code slice} (it may be imported here). */
    default boolean owns(ContextSlice slice) {
        return coverage().owns(slice, slice instanceof ContextSlice.KvCache k ? kvCapacity(k.sequence()) : -1);
    }

    /** Whether this position holds all of {@code slice}; KV slices up to {@code filledLength} positions. */
    default boolean holds(ContextSlice slice, int filledLength) {
        return coverage().holds(slice, slice instanceof ContextSlice.KvCache k ? kvCapacity(k.sequence()) : -1,
                filledLength);
    }

    /** Whether every weight this position needs is present (cached by the coverage). */
    default boolean complete() {
        return coverage().complete();
    }

    /** Bytes that importing {@code slice} would newly allocate on the device. */
    long allocationBytes(ContextSlice slice);

    /** Copies {@code slice} between storage and its canonical floats (into storage when importing). */
    void transfer(ContextSlice slice, float[] canon, boolean importing);

    /**
     * {@link #transfer(ContextSlice, float[], boolean)} with the canonical floats in a buffer (float i at index i,
     * absolute indexing; the buffer's position and limit are not used), typically a little-endian view of the
     * SliceFormat bytes that travel, so export and import need no float copy of the slice. Returns false, having
     * changed nothing, when the backend has no such path (the default); the caller then goes through a float array.
     * The caller never passes weight slices that must be rounded first (fp16 or Q8_0 pipelines).
     */
    default boolean transfer(ContextSlice slice, FloatBuffer canon, boolean importing) {
        return false;
    }

    /**
     * Part of {@link #transfer(ContextSlice, FloatBuffer, boolean)}: only canonical floats {@code [from, from +
     * canon.limit())} of {@code slice} (float {@code from + i} at index i of {@code canon}), so a slice can leave or
     * enter storage a cache-sized piece at a time. Importing allocates missing storage first (which may throw,
     * changing nothing) and copies the part, but does not record the slice as present: {@link #completeImport} does,
     * once every part is in. Returns false, having changed nothing, when the backend has no such path (the default).
     * The caller never passes weight slices that must be rounded first (fp16 or Q8_0 pipelines).
     */
    default boolean transferPart(ContextSlice slice, FloatBuffer canon, int from, boolean importing) {
        return false;
    }

    /**
     * Records that every float of {@code slice} arrived through {@link #transferPart} (what an import by
     * {@link #transfer} records at its end).
     *
     * @throws UnsupportedOperationException if the backend has no {@link #transferPart} path
     */
    default void completeImport(ContextSlice slice) {
        throw new UnsupportedOperationException("this backend imports slices whole");
    }

    /**
     * Imports weight slice {@code slice} (not a KV slice) straight from {@code source}, with the same result as
     * {@code transfer(slice, CheckpointSlices.read(source, slice), true)} after rounding every value to fp16 when
     * {@code fp16}, but without the slice's canonical copy on the heap. Returns false when the backend has no such
     * path; the caller then reads the canonical floats and calls {@link #transfer}.
     */
    default boolean load(ModelWeights source, ContextSlice slice, boolean fp16) {
        return false;
    }

    /** Frees the storage of one weight unit (a no-op when absent). */
    void release(ContextSlice slice);

    /**
     * Allocates and registers the KV cache of {@code sequence} for {@code capacity} positions.
     *
     * @throws io.spotserve.exec.DeviceMemoryException if the device cannot hold it; nothing changes then
     */
    void reserveSequence(long sequence, int capacity, String what);

    /** Frees the KV cache of {@code sequence} (a no-op when absent). */
    void removeSequence(long sequence);

    /** Frees all storage of this position (pipeline close). */
    void releaseAll();
}
