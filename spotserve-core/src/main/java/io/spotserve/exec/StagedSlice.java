package io.spotserve.exec;

import io.spotserve.model.ModelWeights;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One slice on its way from one pipeline to another during context migration: exported from its source position by
 * {@link Pipeline#stageSlice}, then written into a target position by {@link Pipeline#importStaged}. Where the staged
 * bytes wait is the source pipeline's business: in the caller's memory for the in-process executors ({@link #held}),
 * in the source worker's memory for pipelines whose positions live in other processes, which then stream them to the
 * target worker directly instead of through the caller.
 *
 * <p>A staged slice outlives its source position and pipeline: the migration releases or closes the old positions
 * before it imports into the new ones, so a device never holds a unit twice. Whoever stages a slice must
 * {@link #release} it exactly once, imported or not (the second and later calls do nothing); a staged slice whose
 * source process died fails its import with {@link DeviceLostException}.
 */
public interface StagedSlice extends AutoCloseable {
    /** What is staged. */
    ContextSlice slice();

    /** Size of the staged bytes (SliceFormat, header included). */
    long bytes();

    /**
     * The staged bytes in {@link SliceFormat}, in the caller's memory (for a target that cannot take the staged
     * slice otherwise; a remote staged slice then crosses the network to the caller).
     *
     * @throws IllegalStateException if the slice was released
     * @throws DeviceLostException   if the process holding the bytes is gone
     */
    byte[] data();

    /** Whether {@link #release} was called. */
    boolean released();

    /** Frees the staged bytes wherever they are; only the first call does anything. */
    void release();

    /** Same as {@link #release}. */
    @Override
    default void close() {
        release();
    }

    /** A slice staged as bytes in the caller's memory (the default of {@link Pipeline#stageSlice}). */
    static StagedSlice held(ContextSlice slice, byte[] data) {
        return new Held(slice, data);
    }

    /**
     * Weight slice {@code slice} to be read from {@code checkpoint} (the migration's source when no device holds it):
     * nothing is read until {@link #data()} asks, so a target that can read the checkpoint itself (a worker on a
     * machine with the checkpoint file) loads the slice there instead.
     */
    static StagedSlice fromCheckpoint(ModelWeights checkpoint, ContextSlice slice) {
        return new FromCheckpoint(checkpoint, slice);
    }

    /** The staged slice of {@link #fromCheckpoint}: encoded ({@link SliceFormat#encodeWeights}) on first use. */
    final class FromCheckpoint implements StagedSlice {
        private final ModelWeights checkpoint;
        private final ContextSlice slice;
        private byte[] data;
        private boolean released;

        private FromCheckpoint(ModelWeights checkpoint, ContextSlice slice) {
            this.checkpoint = Objects.requireNonNull(checkpoint, "checkpoint");
            this.slice = Objects.requireNonNull(slice, "slice");
            if (slice instanceof ContextSlice.KvCache) {
                throw new IllegalArgumentException("a checkpoint holds no KV cache: " + slice);
            }
            slice.validate(checkpoint.config());
        }

        /** The checkpoint the slice is read from. */
        public ModelWeights checkpoint() {
            return checkpoint;
        }

        @Override
        public ContextSlice slice() {
            return slice;
        }

        @Override
        public synchronized long bytes() {
            return data().length;
        }

        @Override
        public synchronized byte[] data() {
            if (released) {
                throw new IllegalStateException("staged " + slice + " was released");
            }
            if (data == null) {
                data = SliceFormat.encodeWeights(checkpoint, slice);
            }
            return data;
        }

        @Override
        public synchronized boolean released() {
            return released;
        }

        @Override
        public synchronized void release() {
            released = true;
            data = null;
        }

        @Override
        public String toString() {
            return "StagedSlice.FromCheckpoint[" + slice + (released ? ", released" : "") + "]";
        }
    }

    /** The staged slice of {@link #held}: the bytes are dropped on release. */
    final class Held implements StagedSlice {
        private final ContextSlice slice;
        private final long size;
        private volatile byte[] data;
        private final AtomicBoolean released = new AtomicBoolean();

        private Held(ContextSlice slice, byte[] data) {
            this.slice = Objects.requireNonNull(slice, "slice");
            this.data = Objects.requireNonNull(data, "data");
            this.size = data.length;
        }

        @Override
        public ContextSlice slice() {
            return slice;
        }

        @Override
        public long bytes() {
            return size;
        }

        @Override
        public byte[] data() {
            byte[] d = data;
            if (d == null) {
                throw new IllegalStateException("staged " + slice + " was released");
            }
            return d;
        }

        @Override
        public boolean released() {
            return released.get();
        }

        @Override
        public void release() {
            if (released.compareAndSet(false, true)) {
                data = null;
            }
        }

        @Override
        public String toString() {
            return "StagedSlice.Held[" + slice + ", " + size + " B" + (released() ? ", released" : "") + "]";
        }
    }
}
