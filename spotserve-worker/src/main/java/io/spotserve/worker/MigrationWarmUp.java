package io.spotserve.worker;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceImport;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.PositionRef;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * A fresh worker's migration path, run before it registers: weight slices of a small random model move between two
 * scratch pipelines of the worker's own executor. With a bind address they go through a scratch {@link BulkTransfer}
 * on that address, to itself: ticket, sender and receiver threads, chunks exported, checksummed, written, read,
 * checked and imported piece by piece — the very calls a migration into or out of this worker makes, socket included.
 * Without one (a worker whose slices travel over gRPC, under mTLS) they are exported chunk by chunk, checksummed and
 * imported in-process. The first migration into a new worker otherwise runs those loops interpreted or half compiled:
 * on the 2-vCPU VM the engine's first 69 MB into a fresh worker went at ≈ 150 MB/s, the next 26 MB at ≈ 430 MB/s, a
 * warm worker at ≈ 1.8 GB/s. Best effort, bounded in time and bytes, and over once the speed levels off; it leaves no
 * device, pipeline, slice or socket behind.
 */
final class MigrationWarmUp {
    /** A layer of the warm-up model is 8.6 MB of fp32 weights, the shape of a 25M-parameter model's layer. */
    static final LlamaConfig MODEL = new LlamaConfig(512, 1376, 2, 8, 4, 512, 64, true);

    /**
     * The warm-up ends once this many rounds in a row were no more than 10 % faster than the best one before them: the
     * code is compiled (an already warm JVM, e.g. a second worker in the same process, stops after a few rounds).
     */
    static final int LEVEL_ROUNDS = 3;

    /** The target position the scratch socket's tickets name (its importer writes into the scratch pipeline). */
    private static final PositionRef SCRATCH = PositionRef.newBuilder().setPipeline(0).setStage(0).setShard(0).build();

    private MigrationWarmUp() {
    }

    /** What one warm-up did. */
    record Result(long bytes, int rounds, Duration took) {
    }

    /**
     * Moves the warm-up model's weight slices from one scratch pipeline to another until the rounds' speed levels off
     * ({@link #LEVEL_ROUNDS}), {@code maxBytes} moved or {@code maxTime} passed, whichever comes first (at least one
     * round).
     */
    static Result run(Executor executor, Duration maxTime, long maxBytes) {
        return run(executor, maxTime, maxBytes, null);
    }

    /**
     * {@link #run(Executor, Duration, long)}, each round through a scratch bulk socket bound to {@code socket} (the
     * worker's own bind address) when it is not null.
     *
     * @throws java.io.UncheckedIOException if the scratch socket cannot bind
     */
    static Result run(Executor executor, Duration maxTime, long maxBytes, InetAddress socket) {
        long t0 = System.nanoTime();
        long deadline = t0 + maxTime.toNanos();
        ShardLayout layout = ShardLayout.of(MODEL, 1, 1);
        List<ContextSlice> slices = layout.weightSlices(0, 0);
        long capacity = 0;
        for (ContextSlice s : slices) {
            capacity += SliceFormat.encodedLength(MODEL, s);
        }
        capacity = capacity * 2 + (16L << 20);
        Device a = executor.createDevice(new DeviceId("migration-warm-up", 0), capacity);
        Device b = null;
        Pipeline from = null;
        Pipeline to = null;
        BulkTransfer bulk = null;
        long bytes = 0;
        int rounds = 0;
        try {
            b = executor.createDevice(new DeviceId("migration-warm-up", 1), capacity);
            from = executor.createPipeline(layout, List.of(a), 1);
            to = executor.createPipeline(layout, List.of(b), 1);
            SplittableRandom rnd = new SplittableRandom(1);
            for (ContextSlice s : slices) {
                float[] w = new float[Math.toIntExact(s.floats(MODEL))];
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) (rnd.nextDouble() - 0.5) * 0.1f;
                }
                from.importSlice(0, 0, SliceFormat.encode(MODEL, s, w));
            }
            // the in-process rounds' chunk buffer and checksum; the socket's ends keep their own
            ByteBuffer chunk = socket == null ? ByteBuffer.allocateDirect(Wire.CHUNK_BYTES) : null;
            CRC32C crc = socket == null ? new CRC32C() : null;
            if (socket != null) {
                bulk = new BulkTransfer(socket, null, into(to));
            }
            long best = Long.MAX_VALUE;
            int level = 0; // rounds in a row no more than 10 % faster than the best so far
            do {
                long r0 = System.nanoTime();
                if (bulk != null) {
                    bytes += send(bulk, socket, from, slices);
                } else {
                    for (ContextSlice s : slices) {
                        bytes += move(from, to, s, chunk, crc);
                    }
                }
                for (ContextSlice s : slices) {
                    to.releaseSlice(0, 0, s);
                }
                rounds++;
                long took = System.nanoTime() - r0;
                level = took * 10 > best * 9 ? level + 1 : 0;
                best = Math.min(best, took);
            } while (level < LEVEL_ROUNDS && bytes < maxBytes && System.nanoTime() < deadline);
        } catch (IOException e) {
            throw new UncheckedIOException("the warm-up's bulk socket on " + socket + " did not bind", e);
        } finally {
            if (bulk != null) {
                bulk.close();
            }
            if (from != null) {
                from.close();
            }
            if (to != null) {
                to.close();
            }
            executor.destroyDevice(a);
            if (b != null) {
                executor.destroyDevice(b);
            }
        }
        return new Result(bytes, rounds, Duration.ofNanos(System.nanoTime() - t0));
    }

    /**
     * Every slice of {@code from} through the scratch bulk socket into the position its importer writes (the sender
     * throws unless the receiver imported them all).
     */
    private static long send(BulkTransfer bulk, InetAddress socket, Pipeline from, List<ContextSlice> slices) {
        BulkTicket ticket = bulk.issue(SCRATCH, slices, MODEL);
        InetAddress dial = socket.isAnyLocalAddress() ? InetAddress.getLoopbackAddress() : socket;
        return bulk.send(dial.getHostAddress(), ticket, slices.size(), new BulkTransfer.Source() {
            @Override
            public ByteBuffer export(int i, ByteBuffer reuse) {
                return from.exportSlice(0, 0, slices.get(i), reuse);
            }

            @Override
            public long length(int i) {
                return from.exportLength(0, 0, slices.get(i));
            }

            @Override
            public void part(int i, long offset, ByteBuffer dst) {
                from.exportPart(0, 0, slices.get(i), offset, dst);
            }
        }).bytes();
    }

    /** The scratch bulk socket's imports, all into {@code to} (the sender runs on another thread). */
    private static BulkTransfer.Importer into(Pipeline to) {
        return new BulkTransfer.Importer() {
            @Override
            public ContextSlice importSlice(PositionRef target, ByteBuffer bytes) {
                synchronized (to) {
                    return to.importSlice(0, 0, bytes);
                }
            }

            @Override
            public SliceImport begin(PositionRef target, ContextSlice slice, long length) {
                synchronized (to) {
                    return to.beginImport(0, 0, slice, length);
                }
            }
        };
    }

    /** One slice as a bulk transfer moves it: chunk by chunk where both ends allow it, else whole. */
    private static long move(Pipeline from, Pipeline to, ContextSlice s, ByteBuffer chunk, CRC32C crc) {
        long length = from.exportLength(0, 0, s);
        SliceImport in = length < 0 ? null : to.beginImport(0, 0, s, length);
        if (in == null) {
            ByteBuffer whole = from.exportSlice(0, 0, s, (ByteBuffer) null);
            crc.update(whole.duplicate());
            to.importSlice(0, 0, whole);
            return whole.remaining();
        }
        try (in) {
            for (long off = 0; off < length; off += chunk.capacity()) {
                chunk.clear().limit((int) Math.min(chunk.capacity(), length - off));
                from.exportPart(0, 0, s, off, chunk);
                chunk.flip();
                crc.update(chunk.duplicate());
                in.put(chunk);
            }
            in.finish();
        }
        return length;
    }
}
