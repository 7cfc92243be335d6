package io.spotserve.exec.spi;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceImport;
import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * A slice's {@link SliceFormat} encoding (fp32, version 1) leaving or entering a position's storage a piece at a time,
 * through {@link PipelinePosition#transferPart}: the header bytes come from {@link SliceFormat#headerBytes}, each
 * payload byte range maps onto a window of the slice's canonical floats.
 */
final class SliceParts {
    /** An empty window: asks a position whether it has the part path at all (copies nothing). */
    static final FloatBuffer NOTHING = FloatBuffer.allocate(0);

    private SliceParts() {
    }

    /** Whether {@code s} can export {@code slice} (which it holds) a part at a time. */
    static boolean exportable(PipelinePosition s, ContextSlice slice) {
        return s.transferPart(slice, NOTHING, 0, false);
    }

    /**
     * Writes bytes {@code [offset, offset + dst.remaining())} of {@code slice}'s encoding into {@code dst}; false, having
     * written nothing, when the position has no part path.
     */
    static boolean export(LlamaConfig c, PipelinePosition s, ContextSlice slice, long offset, ByteBuffer dst) {
        if (!exportable(s, slice)) {
            return false;
        }
        long total = SliceFormat.encodedLength(c, slice);
        int n = dst.remaining();
        if (offset < 0 || offset > total - n) {
            throw new IllegalArgumentException("bytes [" + offset + ", " + (offset + n) + ") run outside the "
                    + total + " bytes of " + slice + "'s encoding");
        }
        int at = dst.position();
        long end = offset + n;
        int h = SliceFormat.HEADER_BYTES;
        if (offset < h) {
            dst.put(at, SliceFormat.headerBytes(c, slice), (int) offset, (int) (Math.min(end, h) - offset));
        }
        long a = Math.max(offset, h) - h; // payload bytes [a, b)
        long b = end - h;
        if (b > a) {
            int into = at + (int) (Math.max(offset, h) - offset);
            int len = (int) (b - a);
            if (a % Float.BYTES == 0 && b % Float.BYTES == 0) {
                s.transferPart(slice, floats(dst, into, len), (int) (a / Float.BYTES), false);
            } else { // a float cut by the range's edge: the whole floats through a small buffer
                long f0 = a / Float.BYTES;
                long f1 = (b + Float.BYTES - 1) / Float.BYTES;
                ByteBuffer tmp = ByteBuffer.allocate((int) ((f1 - f0) * Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
                s.transferPart(slice, tmp.asFloatBuffer(), (int) f0, false);
                dst.put(into, tmp, (int) (a - f0 * Float.BYTES), len);
            }
        }
        dst.position(dst.limit());
        return true;
    }

    /** Bytes {@code [at, at + len)} of {@code b} as little-endian floats (len a multiple of 4). */
    static FloatBuffer floats(ByteBuffer b, int at, int len) {
        return b.duplicate().limit(at + len).position(at).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    }

    /** A {@link SliceImport} into one position of {@code owner}. */
    static final class Import implements SliceImport {
        private final AbstractPipeline<?> owner;
        private final PipelinePosition s;
        private final ContextSlice slice;
        private final long length;
        private final byte[] header;
        /** Whether this import allocated the slice's storage (it frees it when abandoned, if nothing else changed). */
        private final boolean allocated;
        /** The owner's storage-change count when this import began. */
        private final long began;
        /** For a KV slice: its sequence's state when the import began (the sequence must stay that open sequence). */
        private final int[] sequence;
        /** The bytes of a float cut by the end of the last piece. */
        private final ByteBuffer carry = ByteBuffer.allocate(Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        private long received;
        private boolean ended;

        Import(AbstractPipeline<?> owner, LlamaConfig c, PipelinePosition s, ContextSlice slice, boolean allocated,
               long began) {
            this.sequence = slice instanceof ContextSlice.KvCache k ? owner.sequenceState(k.sequence()) : null;
            this.owner = owner;
            this.s = s;
            this.slice = slice;
            this.length = SliceFormat.encodedLength(c, slice);
            this.header = SliceFormat.headerBytes(c, slice);
            this.allocated = allocated;
            this.began = began;
        }

        @Override
        public ContextSlice slice() {
            return slice;
        }

        @Override
        public long length() {
            return length;
        }

        @Override
        public long received() {
            return received;
        }

        @Override
        public void put(ByteBuffer bytes) {
            checkActive();
            int n = bytes.remaining();
            if (n > length - received) {
                throw new IllegalArgumentException(n + " bytes at offset " + received + " run past the " + length
                        + " bytes of " + slice + "'s encoding");
            }
            int at = bytes.position();
            int h = SliceFormat.HEADER_BYTES;
            int headerPart = (int) Math.max(0, Math.min(n, h - received));
            for (int i = 0; i < headerPart; i++) {
                if (bytes.get(at + i) != header[(int) received + i]) {
                    throw new IllegalArgumentException("byte " + (received + i) + " differs from the header of "
                            + slice + " (a header of another slice, shape or format)");
                }
            }
            checkStorage();
            long payload = received + headerPart - h; // payload bytes already in, where this piece's payload starts
            int from = at + headerPart;
            int end = at + n;
            if (carry.position() > 0 && from < end) { // complete the float the last piece cut
                int take = Math.min(carry.remaining(), end - from);
                carry.put(bytes.duplicate().limit(from + take).position(from));
                from += take;
                payload += take;
                if (!carry.hasRemaining()) {
                    s.transferPart(slice, carry.flip().asFloatBuffer(), (int) (payload / Float.BYTES - 1), true);
                    carry.clear();
                }
            }
            int whole = (end - from) / Float.BYTES * Float.BYTES;
            if (whole > 0) {
                s.transferPart(slice, floats(bytes, from, whole), (int) (payload / Float.BYTES), true);
                from += whole;
            }
            if (from < end) {
                carry.put(bytes.duplicate().limit(end).position(from));
            }
            received += n;
            bytes.position(bytes.limit());
        }

        @Override
        public ContextSlice finish() {
            checkActive();
            if (received != length) {
                throw new IllegalStateException(slice + ": " + received + " of " + length + " bytes imported");
            }
            checkStorage();
            ended = true;
            s.completeImport(slice);
            owner.imported(slice); // a KV slice extends its sequence's filled length
            owner.storageChanged();
            return slice;
        }

        @Override
        public void close() {
            if (ended) {
                return;
            }
            ended = true;
            if (allocated && !owner.isClosed() && owner.storageChangesSince(began) == 0
                    && s.allocationBytes(slice) == 0) {
                s.release(slice);
            }
        }

        /** The slice's storage is still the one this import writes: not released, its sequence not closed. */
        private void checkStorage() {
            if (sequence != null) {
                long id = ((ContextSlice.KvCache) slice).sequence();
                if (owner.sequenceState(id) != sequence) {
                    throw new IllegalStateException("sequence " + id + " was closed while its KV cache " + slice
                            + " was being imported");
                }
            } else if (s.allocationBytes(slice) > 0) {
                throw new IllegalStateException(slice + " was released while it was being imported");
            }
        }

        private void checkActive() {
            if (ended) {
                throw new IllegalStateException("the import of " + slice + " was finished or closed");
            }
            owner.checkOpen();
        }
    }
}
