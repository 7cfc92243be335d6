package io.spotserve.exec;

import java.nio.ByteBuffer;

/**
 * One slice imported piece by piece ({@link Pipeline#beginImport}): its {@link SliceFormat} bytes arrive in order, in
 * pieces of any size, and each piece goes into the position's storage at once (while it is still in the cache), instead
 * of the whole encoding first being held in memory. The slice counts as imported only after {@link #finish}; closing an
 * unfinished import abandons it: the slice is not marked present, and storage the import allocated is freed again
 * unless other slices were imported into the pipeline since it began (then it stays allocated, marked absent, for a
 * later import of the slice to fill). Calls on one import are serialised with every other call on its pipeline, as
 * for every pipeline call.
 */
public interface SliceImport extends AutoCloseable {
    /** The slice being imported. */
    ContextSlice slice();

    /** Its encoding's length in bytes (header included). */
    long length();

    /** Bytes of the encoding received so far. */
    long received();

    /**
     * Imports the next bytes of the encoding, from {@code bytes}' position to its limit (the position advances to the
     * limit). The first {@link SliceFormat#HEADER_BYTES} bytes must equal the slice's header; a piece that does not end
     * on a float boundary leaves its last partial float for the next piece.
     *
     * @throws IllegalArgumentException if the bytes run past {@link #length} or the header bytes differ (nothing of
     *                                  the piece is imported then)
     * @throws IllegalStateException    if the import was finished or closed, or the pipeline closed
     */
    void put(ByteBuffer bytes);

    /**
     * Marks the slice present once all {@link #length} bytes were put.
     *
     * @return the slice
     * @throws IllegalStateException if bytes are missing (the import stays open) or it was finished or closed
     */
    ContextSlice finish();

    /** Abandons the import unless it was finished (see the class comment); a no-op after the first call. */
    @Override
    void close();
}
