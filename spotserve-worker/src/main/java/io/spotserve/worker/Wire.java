package io.spotserve.worker;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.SliceFormat;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.grpc.stub.StreamObserver;
import io.spotserve.worker.proto.DeviceRef;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.ModelShape;
import io.spotserve.worker.proto.SliceChunk;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.zip.CRC32C;

/**
 * Conversions between the executor SPI's values and the wire messages, and the bounds every message obeys:
 * floats travel little-endian, slices in {@link SliceFormat} cut into checksummed chunks of at most
 * {@link #CHUNK_BYTES}, and SPI exceptions map to gRPC statuses and back.
 */
final class Wire {
    /** The largest payload of one slice chunk (the bound: 4 MiB). */
    static final int CHUNK_BYTES = 4 << 20;
    /** The default bound on one inbound message (a chunk, a step's activations or logits). */
    static final int DEFAULT_MAX_MESSAGE_BYTES = 32 << 20;
    /** The largest slice a stream may announce (one layer's shard of a 70B model is about 0.8 GiB in fp32). */
    static final long MAX_SLICE_BYTES = Integer.MAX_VALUE - 16;

    private Wire() {
    }

    static DeviceRef ref(DeviceId id) {
        return DeviceRef.newBuilder().setInstance(id.instance()).setGpu(id.gpu()).build();
    }

    static DeviceId id(DeviceRef ref) {
        if (ref.getInstance().isBlank()) {
            throw new IllegalArgumentException("device reference has a blank instance id");
        }
        return new DeviceId(ref.getInstance(), ref.getGpu());
    }

    static ModelShape shape(LlamaConfig c) {
        return ModelShape.newBuilder().setDim(c.dim()).setHiddenDim(c.hiddenDim()).setLayers(c.layers())
                .setHeads(c.heads()).setKvHeads(c.kvHeads()).setVocabSize(c.vocabSize()).setSeqLen(c.seqLen())
                .setSharedClassifier(c.sharedClassifier()).build();
    }

    static LlamaConfig config(ModelShape s) {
        return new LlamaConfig(s.getDim(), s.getHiddenDim(), s.getLayers(), s.getHeads(), s.getKvHeads(),
                s.getVocabSize(), s.getSeqLen(), s.getSharedClassifier());
    }

    /** The slice's identity (kind and ranges) without payload. */
    static ByteString sliceHeader(ContextSlice slice) {
        ByteBuffer buf = ByteBuffer.allocate(SliceFormat.SLICE_FIELD_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        SliceFormat.writeSlice(buf, slice);
        buf.flip();
        return ByteString.copyFrom(buf);
    }

    static ContextSlice slice(ByteString header, LlamaConfig c) {
        if (header.size() != SliceFormat.SLICE_FIELD_BYTES) {
            throw new IllegalArgumentException("slice header has " + header.size() + " bytes, expected "
                    + SliceFormat.SLICE_FIELD_BYTES);
        }
        ContextSlice s = SliceFormat.readSlice(header.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN), c);
        s.validate(c);
        return s;
    }

    static ByteString floats(float[] data, int count) {
        ByteBuffer buf = ByteBuffer.allocate(count * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(data, 0, count);
        return com.google.protobuf.UnsafeByteOperations.unsafeWrap(buf.array()); // nobody else holds the array
    }

    /** Rows {@code which} of {@code rows}, {@code count} floats each, one after the other, as little-endian bytes. */
    static ByteString floats(float[][] rows, java.util.List<Integer> which, int count) {
        ByteBuffer buf = ByteBuffer.allocate(which.size() * count * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        java.nio.FloatBuffer f = buf.asFloatBuffer();
        for (int i : which) {
            f.put(rows[i], 0, count);
        }
        return com.google.protobuf.UnsafeByteOperations.unsafeWrap(buf.array()); // nobody else holds the array
    }

    /** Reads {@code count} little-endian floats into {@code out} at {@code off}. */
    static void floats(ByteString bytes, float[] out, int off, int count) {
        if (bytes.size() != count * Float.BYTES) {
            throw new IllegalArgumentException("float payload has " + bytes.size() + " bytes, expected " + count
                    + " floats (" + count * Float.BYTES + " bytes)");
        }
        bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out, off, count);
    }

    static int crc(byte[] data, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(data, off, len);
        return (int) crc.getValue();
    }

    /**
     * The bytes from {@code b}'s position to its limit as an array: the buffer's own array when it is exactly them (a
     * heap buffer an export allocated for one slice), else a copy.
     */
    static byte[] bytes(java.nio.ByteBuffer b) {
        if (b.hasArray() && b.arrayOffset() == 0 && b.position() == 0 && b.limit() == b.array().length) {
            return b.array();
        }
        byte[] copy = new byte[b.remaining()];
        b.duplicate().get(copy);
        return copy;
    }

    /** CRC32C of bytes {@code [off, off + len)} of {@code data} (by index; its position and limit stay). */
    static int crc(java.nio.ByteBuffer data, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(data.duplicate().limit(off + len).position(off));
        return (int) crc.getValue();
    }

    static int crc(ByteString payload) {
        CRC32C crc = new CRC32C();
        crc.update(payload.asReadOnlyByteBuffer());
        return (int) crc.getValue();
    }

    /**
     * {@code bytes} cut into checksummed chunks; the first names the target position. The chunks wrap {@code bytes}
     * without copying: the caller must not change them until the chunks are sent.
     */
    static List<SliceChunk> chunks(byte[] bytes, io.spotserve.worker.proto.PositionRef target) {
        List<SliceChunk> out = new ArrayList<>();
        for (int off = 0; off < bytes.length || off == 0; off += CHUNK_BYTES) {
            int len = Math.min(CHUNK_BYTES, bytes.length - off);
            SliceChunk.Builder b = SliceChunk.newBuilder().setTotalBytes(bytes.length).setOffset(off)
                    .setPayload(UnsafeByteOperations.unsafeWrap(bytes, off, len)).setCrc32C(crc(bytes, off, len));
            if (off == 0 && target != null) {
                b.setTarget(target);
            }
            out.add(b.build());
            if (bytes.length == 0) {
                break;
            }
        }
        return out;
    }

    /**
     * Sends {@code chunks} on a client-streaming import opened by {@code open} (a stub's {@code pushSlice} or
     * {@code importSlice}) and returns the receiver's single answer; a stream that ends without one completes
     * exceptionally with {@code noAnswer}. The caller waits and maps failures its own way.
     */
    static CompletableFuture<ImportReply> streamChunks(
            Function<StreamObserver<ImportReply>, StreamObserver<SliceChunk>> open, List<SliceChunk> chunks,
            Supplier<RuntimeException> noAnswer) {
        CompletableFuture<ImportReply> done = new CompletableFuture<>();
        StreamObserver<SliceChunk> up = open.apply(new StreamObserver<>() {
            @Override
            public void onNext(ImportReply v) {
                done.complete(v);
            }

            @Override
            public void onError(Throwable t) {
                done.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {
                done.completeExceptionally(noAnswer.get());
            }
        });
        for (SliceChunk c : chunks) {
            up.onNext(c);
        }
        up.onCompleted();
        return done;
    }

    /**
     * Reassembles a chunk stream, checking order, sizes and checksums; one instance per stream. Memory grows with
     * the bytes that actually arrived, never with what the first chunk merely announces.
     */
    static final class Assembly {
        private byte[] bytes;
        private long total = -1;
        private int filled;
        private int chunks;
        private io.spotserve.worker.proto.PositionRef target;

        void add(SliceChunk c) {
            if (total < 0) {
                if (!c.hasTarget()) {
                    throw new IllegalArgumentException("the first chunk of a slice stream must name its target");
                }
                if (c.getTotalBytes() < SliceFormat.HEADER_BYTES || c.getTotalBytes() > MAX_SLICE_BYTES) {
                    throw new IllegalArgumentException("slice stream announces " + c.getTotalBytes()
                            + " bytes, expected [" + SliceFormat.HEADER_BYTES + ", " + MAX_SLICE_BYTES + "]");
                }
                target = c.getTarget();
                total = c.getTotalBytes();
                bytes = new byte[(int) Math.min(total, CHUNK_BYTES)];
            }
            if (c.getTotalBytes() != total) {
                throw new IllegalArgumentException("chunk " + chunks + " announces " + c.getTotalBytes()
                        + " total bytes, the stream " + total);
            }
            if (c.getOffset() != filled) {
                throw new IllegalArgumentException("chunk " + chunks + " at offset " + c.getOffset() + ", expected "
                        + filled + " (chunks must arrive in order)");
            }
            ByteString p = c.getPayload();
            if (p.size() > CHUNK_BYTES || p.size() > total - filled || p.isEmpty()) {
                throw new IllegalArgumentException("chunk " + chunks + " carries " + p.size() + " bytes; expected 1 to "
                        + Math.min(CHUNK_BYTES, total - filled));
            }
            if (crc(p) != c.getCrc32C()) {
                throw new IllegalArgumentException("chunk " + chunks + " (offset " + filled + ") fails its CRC32C check");
            }
            if (filled + p.size() > bytes.length) {
                bytes = java.util.Arrays.copyOf(bytes, (int) Math.min(total, Math.max(2L * bytes.length,
                        (long) filled + p.size())));
            }
            p.copyTo(bytes, filled);
            filled += p.size();
            chunks++;
        }

        boolean complete() {
            return total >= 0 && filled == total;
        }

        byte[] bytes() {
            if (!complete()) {
                throw new IllegalArgumentException("slice stream ended after " + filled + " of "
                        + (total < 0 ? "?" : Long.toString(total)) + " bytes");
            }
            return bytes;
        }

        io.spotserve.worker.proto.PositionRef target() {
            return target;
        }
    }

    /** The gRPC status a worker answers an SPI exception with (its message kept). */
    static StatusRuntimeException status(RuntimeException e) {
        Status s;
        if (e instanceof DeviceMemoryException) {
            s = Status.RESOURCE_EXHAUSTED;
        } else if (e instanceof IllegalArgumentException || e instanceof NullPointerException
                || e instanceof IndexOutOfBoundsException) {
            s = Status.INVALID_ARGUMENT;
        } else if (e instanceof IllegalStateException) {
            s = Status.FAILED_PRECONDITION;
        } else if (e instanceof UnsupportedOperationException) {
            s = Status.UNIMPLEMENTED;
        } else if (e instanceof StatusRuntimeException sre) {
            return sre;
        } else {
            s = Status.INTERNAL;
        }
        return s.withDescription(e.getMessage()).withCause(e).asRuntimeException();
    }
}
