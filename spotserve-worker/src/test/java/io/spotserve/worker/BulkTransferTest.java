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
                // the first transfer to a worker the source never sent to: the controller fetched the ticket over
                // its own channel and the source asked for none (w2 has no bulk socket: nothing to fetch)
                assertEquals(1, ex.controllerTickets(), "after the transfer to " + target.instanceId());
                if (target.bulkTransfer() != null) {
                    assertEquals(1, target.bulkTransfer().ticketsIssued(), "one ticket, the controller's");
                }
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
                for (ContextSlice s : slices) {
                    dst.releaseSlice(0, 0, s);
                }
                // again right away: the source keeps its connection, so no ticket is fetched or issued
                assertEquals(slices, ex.transferAll(src, 0, 0, slices, dst, 0, 0));
                assertTrue(dst.hasAllWeights(0, 0));
                assertEquals(1, ex.controllerTickets());
                if (target.bulkTransfer() != null) {
                    assertEquals(1, target.bulkTransfer().ticketsIssued());
                }
                dst.close();
            }
            src.close();
        }
    }

    /** Imports into {@code to} whole or piece by piece, and admits requests on kept connections for {@link #TARGET}. */
    private BulkTransfer.Importer partsImporter() {
        return new BulkTransfer.Importer() {
            @Override
            public ContextSlice importSlice(PositionRef t, ByteBuffer bytes) {
                synchronized (to) {
                    return to.importSlice(t.getStage(), t.getShard(), bytes);
                }
            }

            @Override
            public io.spotserve.exec.SliceImport begin(PositionRef t, ContextSlice slice, long length) {
                synchronized (to) {
                    return to.beginImport(t.getStage(), t.getShard(), slice, length);
                }
            }

            @Override
            public BulkTransfer.Admitted admit(PositionRef t, List<com.google.protobuf.ByteString> headers) {
                if (!t.equals(TARGET)) {
                    throw new IllegalArgumentException("position " + t + " is not hosted here");
                }
                List<ContextSlice> named = new ArrayList<>();
                for (com.google.protobuf.ByteString h : headers) {
                    named.add(Wire.slice(h, to.config()));
                }
                return new BulkTransfer.Admitted(named, to.config());
            }
        };
    }

    /** {@code from}'s slices {@code list}, exported piece by piece. */
    private BulkTransfer.Source parts(List<ContextSlice> list, java.util.concurrent.atomic.AtomicInteger wholeExports) {
        return new BulkTransfer.Source() {
            @Override
            public ByteBuffer export(int i, ByteBuffer reuse) {
                wholeExports.incrementAndGet();
                return from.exportSlice(0, 0, list.get(i), reuse);
            }

            @Override
            public long length(int i) {
                return from.exportLength(0, 0, list.get(i));
            }

            @Override
            public void part(int i, long offset, ByteBuffer dst) {
                from.exportPart(0, 0, list.get(i), offset, dst);
            }
        };
    }

    private static List<com.google.protobuf.ByteString> headers(List<ContextSlice> list) {
        return list.stream().map(Wire::sliceHeader).toList();
    }

    @Test
    void piecewiseSlicesArriveExactlyAndAKeptConnectionTakesTheNextTransferWithoutATicket() throws IOException {
        java.util.concurrent.atomic.AtomicInteger whole = new java.util.concurrent.atomic.AtomicInteger();
        try (BulkTransfer receiver = new BulkTransfer(InetAddress.getLoopbackAddress(), null, partsImporter())) {
            assertEquals(null, bulk.sendKept("peer", TARGET, headers(slices), parts(slices, whole)), "nothing kept yet");
            BulkTransfer.Sent sent = bulk.send("127.0.0.1", receiver.issue(TARGET, slices, from.config()),
                    slices.size(), parts(slices, whole), "peer");
            long expected = 0;
            int chunks = 0;
            for (ContextSlice s : slices) {
                byte[] original = from.exportSlice(0, 0, s);
                expected += original.length;
                chunks += (original.length + BulkTransfer.PART_BYTES - 1) / BulkTransfer.PART_BYTES;
                assertArrayEquals(original, to.exportSlice(0, 0, s), s.toString());
            }
            assertEquals(new BulkTransfer.Sent(expected, chunks, slices.size()), sent);
            assertEquals(0, whole.get(), "every slice left piece by piece");

            // the next transfers to the same worker: over the kept connection, no ticket, same bytes
            for (ContextSlice s : slices) {
                to.releaseSlice(0, 0, s);
            }
            for (ContextSlice s : slices) {
                BulkTransfer.Sent again = bulk.sendKept("peer", TARGET, headers(List.of(s)), parts(List.of(s), whole));
                assertEquals(1, again.slices(), s.toString());
                assertArrayEquals(from.exportSlice(0, 0, s), to.exportSlice(0, 0, s), s.toString());
            }
            assertEquals(1, receiver.ticketsIssued());
            assertEquals(0, receiver.refused());

            // a request the receiver would not issue a ticket for: refused, and the connection is not kept
            PositionRef elsewhere = TARGET.toBuilder().setStage(3).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bulk.sendKept("peer",
                    elsewhere, headers(slices.subList(0, 1)), parts(slices.subList(0, 1), whole)));
            assertTrue(e.getMessage().contains("is not hosted here"), e.getMessage());
            assertEquals(null, bulk.sendKept("peer", TARGET, headers(slices), parts(slices, whole)));

            // a kept connection whose receiver went away: dropped, nothing sent, the caller asks for a ticket
            bulk.send("127.0.0.1", receiver.issue(TARGET, slices.subList(0, 1), from.config()), 1,
                    parts(slices.subList(0, 1), whole), "peer");
            receiver.close();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            BulkTransfer.Sent late = null;
            while (System.nanoTime() < deadline) {
                late = bulk.sendKept("peer", TARGET, headers(slices.subList(0, 1)), parts(slices.subList(0, 1), whole));
                if (late == null) {
                    break;
                }
            }
            assertEquals(null, late);
        }
    }

    @Test
    void aBadChunkInTheMiddleOfAPiecewiseImportLeavesNothingBehind() throws Exception {
        try (BulkTransfer receiver = new BulkTransfer(InetAddress.getLoopbackAddress(), null, partsImporter())) {
            ContextSlice layer = slices.stream().filter(s -> s instanceof ContextSlice.LayerWeights).findFirst()
                    .orElseThrow();
            byte[] bytes = from.exportSlice(0, 0, layer);
            long before = used();
            Reply r = raw(receiver.issue(TARGET, List.of(layer), from.config()), out -> {
                out.writeLong(bytes.length);
                out.writeInt(1000); // a first chunk that names the slice: its import starts
                out.writeInt(Wire.crc(bytes, 0, 1000));
                out.write(bytes, 0, 1000);
                int rest = bytes.length - 1000;
                out.writeInt(rest);
                out.writeInt(Wire.crc(bytes, 1000, rest) ^ 1); // then a chunk that fails its check
                out.write(bytes, 1000, rest);
            });
            assertEquals(BulkTransfer.REFUSED, r.status);
            assertTrue(r.msg.contains("chunk 1 of slice 0 (offset 1000) fails its CRC32C check"), r.msg);
            assertEquals(0, r.imported);
            assertEquals(before, used(), "the abandoned import's storage is freed");
            assertThrows(IllegalArgumentException.class, () -> to.exportSlice(0, 0, layer));

            // odd chunk sizes from another sender: the pieces are put together exactly
            r = raw(receiver.issue(TARGET, List.of(layer), from.config()), out -> {
                out.writeLong(bytes.length);
                int[] cuts = {3, 77, 1001, 4093};
                int off = 0;
                for (int k = 0; off < bytes.length; k++) {
                    int len = Math.min(cuts[k % cuts.length], bytes.length - off);
                    out.writeInt(len);
                    out.writeInt(Wire.crc(bytes, off, len));
                    out.write(bytes, off, len);
                    off += len;
                }
            });
            assertEquals(BulkTransfer.OK, r.status, r.msg);
            assertArrayEquals(bytes, to.exportSlice(0, 0, layer));
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
