package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.PositionRef;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The bulk socket on real stories260K weights: slices move exactly; a wrong, reused or expired ticket, a corrupted
 * chunk, an oversized length or a slice other than the announced one is refused and leaves the receiver as it was.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BulkTransferTest {
    private static final PositionRef TARGET = PositionRef.newBuilder().setPipeline(1).setStage(0).setShard(0).build();

    private CpuExecutor cpu;
    private Pipeline from;
    private Pipeline to;
    private BulkTransfer bulk;
    private List<ContextSlice> slices;

    @BeforeEach
    void setUp() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        cpu = new CpuExecutor(new ExecutorOptions(1, false));
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        Device a = cpu.createDevice(new DeviceId("a", 0), 64L << 20);
        Device b = cpu.createDevice(new DeviceId("b", 0), 64L << 20);
        from = cpu.createPipeline(layout, List.of(a), 1);
        to = cpu.createPipeline(layout, List.of(b), 1);
        from.loadWeights(ckpt);
        slices = layout.weightSlices(0, 0);
        bulk = new BulkTransfer(InetAddress.getLoopbackAddress(), null, (t, bytes) -> {
            synchronized (to) {
                return to.importSlice(t.getStage(), t.getShard(), bytes);
            }
        });
    }

    @AfterEach
    void tearDown() {
        bulk.close();
        cpu.close();
    }

    private byte[] export(int i) {
        return from.exportSlice(0, 0, slices.get(i));
    }

    private ByteBuffer export(int i, ByteBuffer reuse) {
        return from.exportSlice(0, 0, slices.get(i), reuse);
    }

    private long used() {
        return to.device(0, 0).usedBytes();
    }

    @Test
    void everySliceArrivesBitForBitAndTheCountsAreExact() {
        BulkTicket t = bulk.issue(TARGET, slices, from.config());
        assertEquals(32, t.getTicket().size());
        BulkTransfer.Sent sent = bulk.send("127.0.0.1", t, slices.size(), this::export);
        long expected = 0;
        for (int i = 0; i < slices.size(); i++) {
            byte[] original = export(i);
            expected += original.length;
            assertArrayEquals(original, to.exportSlice(0, 0, slices.get(i)), slices.get(i).toString());
        }
        assertEquals(expected, sent.bytes());
        assertEquals(slices.size(), sent.slices());
        assertTrue(to.hasAllWeights(0, 0));
        assertEquals(0, bulk.refused());

        // again, in the opposite order, into buffers the first transfer left behind: the same bytes arrive
        for (ContextSlice s : slices) {
            to.releaseSlice(0, 0, s);
        }
        List<ContextSlice> reversed = new ArrayList<>(slices);
        java.util.Collections.reverse(reversed);
        BulkTicket again = bulk.issue(TARGET, reversed, from.config());
        sent = bulk.send("127.0.0.1", again, reversed.size(),
                (i, reuse) -> from.exportSlice(0, 0, reversed.get(i), reuse));
        assertEquals(expected, sent.bytes());
        for (ContextSlice s : slices) {
            assertArrayEquals(from.exportSlice(0, 0, s), to.exportSlice(0, 0, s), s.toString());
        }
        assertEquals(0, bulk.refused());
    }

    @Test
    void aReusedUnknownOrExpiredTicketIsRefusedAndChangesNothing() {
        List<ContextSlice> one = List.of(slices.get(0));
        BulkTicket t = bulk.issue(TARGET, one, from.config());
        bulk.send("127.0.0.1", t, 1, this::export);
        to.releaseSlice(0, 0, slices.get(0));
        long before = used();

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> bulk.send("127.0.0.1", t, 1, this::export));
        assertTrue(e.getMessage().contains("unknown or already used ticket"), e.getMessage());

        byte[] forged = t.getTicket().toByteArray();
        forged[0] ^= 1;
        BulkTicket wrong = t.toBuilder().setTicket(com.google.protobuf.ByteString.copyFrom(forged)).build();
        e = assertThrows(IllegalArgumentException.class, () -> bulk.send("127.0.0.1", wrong, 1, this::export));
        assertTrue(e.getMessage().contains("unknown or already used ticket"), e.getMessage());

        BulkTicket stale = bulk.issue(TARGET, one, from.config());
        bulk.expireAll();
        e = assertThrows(IllegalArgumentException.class, () -> bulk.send("127.0.0.1", stale, 1, this::export));
        assertTrue(e.getMessage().contains("expired ticket"), e.getMessage());

        assertEquals(before, used());
        assertFalse(to.hasAllWeights(0, 0));
        assertThrows(IllegalArgumentException.class, () -> to.exportSlice(0, 0, slices.get(0)));
        assertEquals(3, bulk.refused());
    }

    @Test
    void aCorruptedChunkAnOversizedLengthOrAnotherSliceIsRefusedAndChangesNothing() throws Exception {
        long before = used();
        byte[] bytes = export(0);
        long max = BulkTransfer.maxEncodedBytes(from.config(), slices.get(0));

        // one bit flipped in transit after the checksum was taken
        Reply r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> {
            out.writeLong(bytes.length);
            int len = Math.min(Wire.CHUNK_BYTES, bytes.length);
            out.writeInt(len);
            out.writeInt(Wire.crc(bytes, 0, len));
            byte[] bent = bytes.clone();
            bent[len / 2] ^= 0x10;
            out.write(bent, 0, len);
        });
        assertEquals(BulkTransfer.REFUSED, r.status);
        assertTrue(r.msg.contains("CRC32C"), r.msg);

        // a slice length past what the announced slice can take: refused before anything is allocated
        r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> out.writeLong(max + 1));
        assertTrue(r.msg.contains("announces " + (max + 1) + " bytes"), r.msg);
        r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> out.writeLong(Long.MAX_VALUE));
        assertTrue(r.msg.contains("announces"), r.msg);

        // a chunk longer than 4 MiB or than what is left of the slice
        r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> {
            out.writeLong(bytes.length);
            out.writeInt(bytes.length + 1);
            out.writeInt(0);
        });
        assertTrue(r.msg.contains("chunk 0 of slice 0 announces " + (bytes.length + 1)), r.msg);

        // well-formed bytes of another slice than the ticket names (one that fits the announced slice's bound)
        int announced = -1;
        byte[] other = null;
        for (int i = 0; i < slices.size() && other == null; i++) {
            for (int j = 0; j < slices.size() && other == null; j++) {
                byte[] b = export(j);
                if (i != j && b.length <= BulkTransfer.maxEncodedBytes(from.config(), slices.get(i))) {
                    announced = i;
                    other = b;
                }
            }
        }
        byte[] impostor = other;
        r = raw(bulk.issue(TARGET, List.of(slices.get(announced)), from.config()), out -> writeSlice(out, impostor));
        assertTrue(r.msg.contains("its ticket announced"), r.msg);

        // a stream cut off mid-slice
        r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> {
            out.writeLong(bytes.length);
            out.writeInt(8);
            out.writeInt(Wire.crc(bytes, 0, 8));
            out.write(bytes, 0, 8);
        });
        assertTrue(r.msg.contains("closed the connection mid-transfer"), r.msg);

        assertEquals(0, r.imported);
        assertEquals(before, used());
        assertFalse(to.hasAllWeights(0, 0));
        assertThrows(IllegalArgumentException.class, () -> to.exportSlice(0, 0, slices.get(0)));
        assertEquals(6, bulk.refused());

        // the same bytes sent properly are taken
        r = raw(bulk.issue(TARGET, List.of(slices.get(0)), from.config()), out -> writeSlice(out, bytes));
        assertEquals(BulkTransfer.OK, r.status, r.msg);
        assertArrayEquals(bytes, to.exportSlice(0, 0, slices.get(0)));
    }

    @Test
    void aBatchStopsAtItsFirstBadSliceKeepingTheOnesBefore() throws Exception {
        byte[] first = export(0);
        byte[] second = export(1);
        Reply r = raw(bulk.issue(TARGET, slices.subList(0, 2), from.config()), out -> {
            writeSlice(out, first);
            out.writeLong(second.length);
            out.writeInt(Math.min(Wire.CHUNK_BYTES, second.length));
            out.writeInt(0xdeadbeef); // wrong checksum
            out.write(second, 0, Math.min(Wire.CHUNK_BYTES, second.length));
        });
        assertEquals(BulkTransfer.REFUSED, r.status);
        assertEquals(1, r.imported, r.msg);
        assertArrayEquals(first, to.exportSlice(0, 0, slices.get(0)));
        assertThrows(IllegalArgumentException.class, () -> to.exportSlice(0, 0, slices.get(1)));
    }

    @Test
    void anUnreachableSocketIsReportedBeforeAnythingIsExported() throws Exception {
        long before = used();
        BulkTicket t = bulk.issue(TARGET, slices, from.config());
        int closedPort;
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = probe.getLocalPort();
        }
        java.util.concurrent.atomic.AtomicInteger exports = new java.util.concurrent.atomic.AtomicInteger();
        BulkTransfer.Unreachable e = assertThrows(BulkTransfer.Unreachable.class, () -> bulk.send("127.0.0.1",
                t.toBuilder().setPort(closedPort).build(), slices.size(), (i, reuse) -> {
                    exports.incrementAndGet();
                    return export(i, reuse);
                }));
        assertTrue(e.getMessage().contains("cannot connect"), e.getMessage());
        assertEquals(0, exports.get());
        assertEquals(before, used());
    }

    @Test
    void ticketsAreBoundedAndNameAtLeastOneSlice() {
        assertThrows(IllegalArgumentException.class, () -> bulk.issue(TARGET, List.of(), from.config()));
        List<ContextSlice> many = new ArrayList<>();
        for (int i = 0; i <= BulkTransfer.MAX_SLICES_PER_TICKET; i++) {
            many.add(slices.get(0));
        }
        assertThrows(IllegalArgumentException.class, () -> bulk.issue(TARGET, many, from.config()));
    }

    /**
     * Two in-process workers behind a controller: {@code transferAll} and {@code transfer} move real weights worker
     * to worker over the bulk socket; to a worker without one they fall back to gRPC streams; either way the bytes
     * counted on the wire are the SliceFormat bytes of the slices.
     */
    @Test
    void workersMoveSlicesOverTheBulkSocketOrFallBackToGrpcWithExactByteCounts() throws Exception {
        WireSecurity token = WireSecurity.token("bulk-token-0123456789abcdef");
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(token).build();
             WorkerProcess w0 = worker(controller, token, true);
             WorkerProcess w1 = worker(controller, token, true);
             WorkerProcess w2 = worker(controller, token, false)) {
            RemoteExecutor ex = controller.executor();
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
            Pipeline src = ex.createPipeline(layout, List.of(ex.createDevice(new DeviceId(w0.instanceId(), 0),
                    64L << 20)), 1);
            src.loadWeights(ckpt);
            long expected = 0;
            for (ContextSlice s : slices) {
                expected += from.exportSlice(0, 0, s).length;
            }
            for (WorkerProcess target : List.of(w1, w2)) {
                Pipeline dst = ex.createPipeline(layout, List.of(ex.createDevice(new DeviceId(target.instanceId(), 0),
                        64L << 20)), 1);
                long before = ex.sliceBytes();
                assertEquals(slices, ex.transferAll(src, 0, 0, slices, dst, 0, 0));
                assertEquals(expected, ex.sliceBytes() - before, "bytes on the wire to " + target.instanceId());
                assertTrue(dst.hasAllWeights(0, 0));
                for (ContextSlice s : slices) {
                    assertArrayEquals(from.exportSlice(0, 0, s), dst.exportSlice(0, 0, s), s.toString());
                    dst.releaseSlice(0, 0, s);
                }
                before = ex.sliceBytes();
                for (ContextSlice s : slices) {
                    ex.transfer(src, 0, 0, s, dst, 0, 0);
                }
                assertEquals(expected, ex.sliceBytes() - before);
                assertTrue(dst.hasAllWeights(0, 0));
                dst.close();
            }
            src.close();
        }
    }

    private static WorkerProcess worker(RemoteInstanceProvider controller, WireSecurity token, boolean bulk)
            throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(64L << 20)
                .security(token).bulkTransfer(bulk).executor(new CpuExecutor(new ExecutorOptions(1, false))).build()
                .start();
    }

    private static void writeSlice(DataOutputStream out, byte[] bytes) throws IOException {
        out.writeLong(bytes.length);
        for (int off = 0; off < bytes.length; off += Wire.CHUNK_BYTES) {
            int len = Math.min(Wire.CHUNK_BYTES, bytes.length - off);
            out.writeInt(len);
            out.writeInt(Wire.crc(bytes, off, len));
            out.write(bytes, off, len);
        }
    }

    private record Reply(byte status, int imported, String msg) {
    }

    private interface Body {
        void write(DataOutputStream out) throws IOException;
    }

    /** Speaks the bulk protocol by hand: magic, ticket, then {@code body}; ends its side and reads the answer. */
    private Reply raw(BulkTicket t, Body body) throws IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), t.getPort())) {
            s.setSoTimeout(20_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(BulkTransfer.MAGIC);
            out.write(t.getTicket().toByteArray());
            body.write(out);
            out.flush();
            s.shutdownOutput();
            DataInputStream in = new DataInputStream(s.getInputStream());
            return new Reply(in.readByte(), in.readInt(), in.readUTF());
        }
    }
}
