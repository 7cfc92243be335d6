package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceImport;
import io.spotserve.model.LlamaConfig;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.PositionRef;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bulk data path for slices moving worker to worker: a plain TCP socket (TLS with client certificates when the
 * cluster uses mTLS) instead of gRPC's HTTP/2 stream, so slice bytes go from the exported array to the kernel and
 * from the kernel into the array that is imported, with no framing or protobuf copies in between.
 *
 * <p>Nobody can use the socket without asking first over the authenticated gRPC call: the receiver's
 * {@code Peer/OpenBulk} issues a ticket (256 random bits) bound to one target position and the list of slices that
 * will arrive, valid for {@link #TICKET_LIFETIME_MS} and for one connection. On the socket the sender presents the
 * ticket, then each slice as its length (at most what the announced slice can take in SliceFormat) and chunks of at
 * most {@link Wire#CHUNK_BYTES}, each with its CRC32C. The receiver checks everything before it imports: an
 * unknown, reused or expired ticket, a length out of bounds, a failed checksum or a slice other than the announced
 * one (its first chunk names it) ends the transfer without importing that slice (slices of the same transfer that
 * were complete and imported before it stay). One thread on each side: where the pipelines allow it
 * ({@link io.spotserve.exec.Pipeline#exportPart}, {@link io.spotserve.exec.Pipeline#beginImport}) the sender exports,
 * checksums and writes one chunk of {@link #PART_BYTES} at a time and the receiver reads, checks and imports each
 * chunk at once, so a chunk's bytes stay in the cache from storage to the kernel and back into storage; a slice whose
 * piece-by-piece import is abandoned (a later chunk failed) is not marked present and its new storage is freed.
 *
 * <p>Protocol (big-endian): sender {@code MAGIC}, ticket (32 bytes); per slice: total (long), then chunks of
 * (length int, crc32c int, payload). Receiver, once at the end or at the first refusal: status (byte), slices
 * imported (int), message (modified UTF-8).
 */
final class BulkTransfer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BulkTransfer.class);
    static final int MAGIC = 0x53534231; // "SSB1"
    /** Starts a further request on a connection kept open after a transfer. */
    static final int NEXT = 0x53534232; // "SSB2"
    /** The longest slice header a request on a kept connection may carry. */
    static final int MAX_HEADER_BYTES = 1024;
    /** How long a receiver keeps a connection open, silent, for the sender's next request. */
    static final int IDLE_MS = 30_000;
    /** How long a sender reuses a kept connection after its last transfer (less than {@link #IDLE_MS}). */
    static final long KEEP_MS = 20_000;
    /** Connections a receiver keeps open at once, waiting for requests (they hold no transfer slot). */
    static final int MAX_IDLE = 64;
    static final int TICKET_BYTES = 32;
    static final long TICKET_LIFETIME_MS = 30_000;
    /** Tickets outstanding at once (a sender asks for one per transfer; unused ones expire). */
    static final int MAX_TICKETS = 256;
    static final int MAX_SLICES_PER_TICKET = 4096;
    static final int MAX_CONNECTIONS = 8;
    /** How long a connection may stall (no byte read) before the receiver drops it. */
    static final int READ_TIMEOUT_MS = 30_000;

    static final byte OK = 0;
    static final byte REFUSED = 1;
    static final byte FAILED = 2;
    static final byte NO_MEMORY = 3;

    /**
     * Imports one complete, checked slice into a hosted position (the worker's pipeline, under its lock); keeps no
     * reference to {@code bytes} (the receiver reads a later slice of the transfer into the same array).
     */
    interface Importer {
        ContextSlice importSlice(PositionRef target, ByteBuffer bytes);

        /**
         * Starts a piece-by-piece import of {@code slice} ({@code length} encoded bytes) into a hosted position
         * ({@link io.spotserve.exec.Pipeline#beginImport}; each call on it under the pipeline's lock), or null when
         * the position imports it only whole (then {@link #importSlice} gets all its bytes).
         */
        default SliceImport begin(PositionRef target, ContextSlice slice, long length) {
            return null;
        }

        /**
         * Checks a request for a transfer into {@code target} as {@code Peer/OpenBulk} does before it issues a ticket
         * (a position hosted here; headers of the model's slices), for a request made on a connection a ticket
         * opened: the slices and the model's shape.
         *
         * @throws IllegalArgumentException if the request would not get a ticket
         */
        default Admitted admit(PositionRef target, List<ByteString> headers) {
            throw new IllegalArgumentException("this receiver takes transfers only with a ticket");
        }
    }

    /** The slices a checked request names, and the model's shape. */
    record Admitted(List<ContextSlice> slices, LlamaConfig config) {
    }

    /**
     * The sender's slices: slice i's SliceFormat bytes in a buffer (position 0, limit their length), written into
     * {@code reuse} when it is big enough ({@link io.spotserve.exec.Pipeline#exportSlice(int, int, ContextSlice,
     * ByteBuffer)}); {@code reuse} is a buffer whose bytes were sent already, or null.
     */
    interface Source {
        ByteBuffer export(int i, ByteBuffer reuse);

        /**
         * The length of slice i's encoding when {@link #part} can write it piece by piece, else -1 (the default:
         * the slice is exported whole).
         */
        default long length(int i) {
            return -1;
        }

        /** Writes bytes {@code [offset, offset + dst.remaining())} of slice i's encoding into {@code dst}. */
        default void part(int i, long offset, ByteBuffer dst) {
            throw new UnsupportedOperationException("slices are exported whole");
        }
    }

    /**
     * The bytes of one chunk a sender exports, checksums and writes before the next, when the slice can be exported
     * piece by piece: small enough to stay in the core's cache from the export through the CRC to the kernel's copy
     * (and, at the receiver, from the kernel's copy through the CRC to the import), big enough for few system calls.
     */
    static final int PART_BYTES = 1 << 20;

    /** The largest SliceFormat encoding of {@code slice}: fp32 payload, or a Q8 one with every chunk left as floats. */
    static long maxEncodedBytes(LlamaConfig c, ContextSlice slice) {
        long floats = slice.floats(c);
        return SliceFormat.HEADER_BYTES + (floats / 32 + 7) / 8 + 4 * floats;
    }

    /**
     * The slice that SliceFormat bytes (from the buffer's position to its limit) name; magic, version and shape are left
     * to the import to check.
     */
    static ContextSlice named(ByteBuffer bytes, LlamaConfig c) {
        if (bytes.remaining() < SliceFormat.HEADER_BYTES) {
            throw new IllegalArgumentException("slice bytes are " + bytes.remaining() + " long, shorter than the header");
        }
        ByteBuffer b = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        b.position(8 + 6 * Integer.BYTES);
        return SliceFormat.readSlice(b, c);
    }

    // ------------------------------------------------------------------ receiver

    /** A ticket the receiver issued: what may arrive, into which position, until when. */
    private record Ticket(PositionRef target, List<ContextSlice> slices, long[] maxBytes, LlamaConfig config,
                          long expiresNanos) {
    }

    private final ServerSocket server;
    private final SSLContext tls;
    private final Importer importer;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Ticket> tickets = new ConcurrentHashMap<>();
    private final Semaphore connections = new Semaphore(MAX_CONNECTIONS);
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "spotserve-bulk");
        t.setDaemon(true);
        return t;
    });
    private final AtomicInteger refused = new AtomicInteger();
    private final AtomicInteger issued = new AtomicInteger();
    /** Connections kept open after a transfer, waiting for the sender's next request. */
    private final AtomicInteger idle = new AtomicInteger();
    /** Direct buffers of finished transfers, for the next ones (the sender's too). */
    private final BulkBuffers buffers = new BulkBuffers();
    private final BulkSender sender;
    private volatile boolean closed;
    /**
     * Binds the bulk socket on {@code bind} (the worker's own address), any free port.
     *
     * @param tls the context under mTLS (client certificates required on accept, the server's checked on connect),
     *            null for plain TCP
     */
    BulkTransfer(InetAddress bind, SSLContext tls, Importer importer) throws IOException {
        this.tls = tls;
        this.importer = importer;
        this.sender = new BulkSender(tls, buffers);
        // plain TCP through a channel (its accepted sockets have channels: slice bytes read with no copy)
        ServerSocket s = tls == null ? ServerSocketChannel.open().socket()
                : tls.getServerSocketFactory().createServerSocket();
        if (s instanceof SSLServerSocket ssl) {
            ssl.setNeedClientAuth(true);
        }
        s.bind(new InetSocketAddress(bind, 0), 16);
        this.server = s;
        threads.execute(this::acceptLoop);
    }

    int port() {
        return server.getLocalPort();
    }

    /** How many transfers were refused (bad ticket, length, checksum or slice) so far. */
    int refused() {
        return refused.get();
    }

    /** Issues a ticket for {@code slices} into {@code target} (the caller checked that it is a hosted position). */
    BulkTicket issue(PositionRef target, List<ContextSlice> slices, LlamaConfig c) {
        long now = System.nanoTime();
        Ticket t = ticket(target, slices, c, now + TimeUnit.MILLISECONDS.toNanos(TICKET_LIFETIME_MS));
        tickets.values().removeIf(x -> now - x.expiresNanos > 0);
        if (tickets.size() >= MAX_TICKETS) {
            throw new IllegalStateException("too many bulk transfers pending (" + MAX_TICKETS + "); try later");
        }
        byte[] id = new byte[TICKET_BYTES];
        random.nextBytes(id);
        tickets.put(HexFormat.of().formatHex(id), t);
        issued.incrementAndGet();
        return BulkTicket.newBuilder().setTicket(ByteString.copyFrom(id)).setPort(port())
                .setExpiresInMs(TICKET_LIFETIME_MS).build();
    }

    /** What may arrive into {@code target}: the slices, each with its largest encoding. */
    private static Ticket ticket(PositionRef target, List<ContextSlice> slices, LlamaConfig c, long expiresNanos) {
        if (slices.isEmpty() || slices.size() > MAX_SLICES_PER_TICKET) {
            throw new IllegalArgumentException("a bulk transfer carries 1 to " + MAX_SLICES_PER_TICKET
                    + " slices, got " + slices.size());
        }
        long[] max = new long[slices.size()];
        for (int i = 0; i < max.length; i++) {
            max[i] = Math.min(maxEncodedBytes(c, slices.get(i)), Wire.MAX_SLICE_BYTES);
        }
        return new Ticket(target, List.copyOf(slices), max, c, expiresNanos);
    }

    /** How many tickets this receiver issued (a transfer on a kept connection needs none). */
    int ticketsIssued() {
        return issued.get();
    }

    /** Lets every ticket issued so far expire now (for tests of the expiry). */
    void expireAll() {
        tickets.replaceAll((k, t) -> new Ticket(t.target, t.slices, t.maxBytes, t.config, System.nanoTime() - 1));
    }

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.warn("bulk socket accept failed: {}", e.toString());
                }
                continue;
            }
            if (!connections.tryAcquire()) {
                LOG.warn("bulk socket refused a connection from {}: {} transfers already running",
                        s.getRemoteSocketAddress(), MAX_CONNECTIONS);
                closeQuietly(s);
                continue;
            }
            threads.execute(() -> {
                boolean[] slot = {true};
                try {
                    serve(s, slot);
                } finally {
                    if (slot[0]) {
                        connections.release();
                    }
                    closeQuietly(s);
                }
            });
        }
    }

    /**
     * Serves one connection: the transfer its ticket allows, then, on plain TCP, further requests the same sender
     * makes on it ({@link #NEXT}: the target and slice headers, checked as a ticket's request is) until it closes the
     * connection or stays silent for {@link #IDLE_MS}. An idle connection holds no transfer slot ({@code slot[0]} says
     * whether this thread holds one); a refusal ends the connection.
     */
    private void serve(Socket s, boolean[] slot) {
        BulkConnection conn = null;
        ByteBuffer[] chunkAndWhole = new ByteBuffer[2]; // kept for the connection's next transfer
        try {
            conn = BulkConnection.of(s, READ_TIMEOUT_MS);
            Ticket t;
            try {
                DataInputStream in = conn.in();
                if (in.readInt() != MAGIC) {
                    throw new Refusal("not a bulk transfer (bad magic)");
                }
                byte[] id = new byte[TICKET_BYTES];
                in.readFully(id);
                t = tickets.remove(HexFormat.of().formatHex(id)); // single use: gone whatever follows
                if (t == null) {
                    throw new Refusal("unknown or already used ticket");
                }
                if (System.nanoTime() - t.expiresNanos > 0) {
                    throw new Refusal("expired ticket");
                }
            } catch (Refusal | IOException e) {
                refuse(s, conn, e, 0);
                return;
            }
            boolean ok = transfer(s, conn, t, chunkAndWhole);
            while (ok && s.getChannel() != null && !closed) {
                if (idle.incrementAndGet() > MAX_IDLE) {
                    idle.decrementAndGet();
                    return;
                }
                connections.release(); // idle: no transfer slot held
                slot[0] = false;
                boolean more;
                try {
                    more = conn.awaitReadable(IDLE_MS);
                } finally {
                    idle.decrementAndGet();
                }
                if (!more || !connections.tryAcquire(READ_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
                    return; // silent for IDLE_MS (or no slot): closed; the sender asks for a ticket next time
                }
                slot[0] = true;
                Ticket next;
                try {
                    next = request(conn);
                } catch (EOFException e) {
                    return; // the sender closed its kept connection
                } catch (RuntimeException e) { // not admitted (or this worker is fenced): refused
                    refuse(s, conn, e, 0);
                    return;
                }
                ok = transfer(s, conn, next, chunkAndWhole);
            }
        } catch (IOException | InterruptedException e) {
            LOG.debug("bulk connection from {} ended: {}", s.getRemoteSocketAddress(), e.toString());
        } finally {
            buffers.give(chunkAndWhole[0]);
            buffers.give(chunkAndWhole[1]);
            if (conn != null) {
                conn.close();
            }
        }
    }

    /** Reads a request made on a kept connection ({@link #NEXT}, target, slice headers) and checks it. */
    private Ticket request(BulkConnection conn) throws IOException {
        DataInputStream in = conn.in();
        if (in.readInt() != NEXT) {
            throw new Refusal("not a bulk transfer request (bad magic)");
        }
        PositionRef target = PositionRef.newBuilder().setPipeline(in.readLong()).setStage(in.readInt())
                .setShard(in.readInt()).build();
        int count = in.readInt();
        if (count < 1 || count > MAX_SLICES_PER_TICKET) {
            throw new Refusal("a bulk transfer carries 1 to " + MAX_SLICES_PER_TICKET + " slices, got " + count);
        }
        List<ByteString> headers = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int len = in.readInt();
            if (len < 1 || len > MAX_HEADER_BYTES) {
                throw new Refusal("slice header " + i + " announces " + len + " bytes; expected 1 to "
                        + MAX_HEADER_BYTES);
            }
            byte[] h = new byte[len];
            in.readFully(h);
            headers.add(ByteString.copyFrom(h));
        }
        Admitted a = importer.admit(target, headers);
        return ticket(target, a.slices(), a.config(), Long.MAX_VALUE);
    }

    /**
     * Receives the slices {@code t} allows and answers; false after a refusal (answered, the connection to be closed).
     * {@code kept} holds the connection's chunk and whole-slice buffers.
     */
    private boolean transfer(Socket s, BulkConnection conn, Ticket t, ByteBuffer[] kept) {
        SliceImport open = null; // the piece-by-piece import under way
        int imported = 0;
        try {
            if (kept[0] == null) {
                kept[0] = s.getChannel() != null ? buffers.take(Wire.CHUNK_BYTES, conn)
                        : conn.allocate(Wire.CHUNK_BYTES);
            }
            ByteBuffer chunk = kept[0]; // one chunk, imported from here while it is in the cache
            for (int i = 0; i < t.slices.size(); i++) {
                long total = conn.readLong();
                if (total < SliceFormat.HEADER_BYTES || total > t.maxBytes[i]) {
                    throw new Refusal("slice " + i + " announces " + total + " bytes; " + t.slices.get(i) + " takes "
                            + SliceFormat.HEADER_BYTES + " to " + t.maxBytes[i]);
                }
                int len = readChunk(conn, chunk, 0, total, 0, i, 0);
                if (len >= SliceFormat.HEADER_BYTES) { // the first chunk names the slice: checked before any import
                    announced(named(chunk.duplicate().position(0).limit(len), t.config), t, i);
                    open = importer.begin(t.target, t.slices.get(i), total);
                }
                if (open != null) {
                    open.put(chunk.duplicate().position(0).limit(len));
                    for (int c = 1; open.received() < total; c++) {
                        len = readChunk(conn, chunk, 0, total - open.received(), c, i, open.received());
                        open.put(chunk.duplicate().position(0).limit(len));
                    }
                    open.finish();
                    open = null;
                } else { // a position that imports this slice only whole
                    ByteBuffer whole = wholeBuffer(conn, kept[1], total);
                    kept[1] = whole;
                    whole.put(0, chunk, 0, len);
                    for (int c = 1, off = len; off < total; c++) {
                        off += readChunk(conn, whole, off, total - off, c, i, off);
                    }
                    announced(named(whole, t.config), t, i);
                    importer.importSlice(t.target, whole);
                }
                imported++;
            }
            reply(conn.out(), OK, imported, "");
            return true;
        } catch (Exception e) {
            if (open != null) {
                open.close(); // abandoned: the slice is not marked present, its new storage freed
            }
            refuse(s, conn, e, imported);
            return false;
        }
    }

    /** Answers a refused (or failed) transfer with its reason and drains what the sender still sends. */
    private void refuse(Socket s, BulkConnection conn, Exception e, int imported) {
        byte status = REFUSED;
        String msg;
        if (e instanceof DeviceMemoryException d) {
            status = NO_MEMORY;
            msg = d.device().instance() + "," + d.device().gpu() + "," + d.requested() + "," + d.used() + ","
                    + d.capacity() + "," + d.getMessage();
        } else if (e instanceof SocketTimeoutException) {
            msg = "the sender stalled for " + READ_TIMEOUT_MS + " ms";
        } else if (e instanceof EOFException) {
            msg = "the sender closed the connection mid-transfer";
        } else if (e instanceof Refusal || e instanceof IllegalArgumentException) {
            msg = e.getMessage();
        } else {
            status = FAILED;
            msg = e.toString();
        }
        refused.incrementAndGet();
        LOG.warn("bulk transfer from {} refused after {} slices imported: {}", s.getRemoteSocketAddress(), imported,
                msg);
        try {
            reply(conn.out(), status, imported, msg);
            s.shutdownOutput();
            conn.drain();
        } catch (IOException ignored) {
            // the sender is gone; nothing else to tell it
        }
    }

    /** Refuses slice i of a transfer unless its bytes name the slice its ticket announced. */
    private static void announced(ContextSlice named, Ticket t, int i) {
        if (!named.equals(t.slices.get(i))) {
            throw new Refusal("slice " + i + " of the transfer is " + named + "; its ticket announced "
                    + t.slices.get(i));
        }
    }

    /**
     * Reads chunk {@code c} of slice {@code i} (its length, at most {@code room} and {@link Wire#CHUNK_BYTES}, its
     * CRC32C, its bytes) into {@code buf} at index {@code at}; refuses it unless the checksum matches.
     *
     * @return its length
     */
    private static int readChunk(BulkConnection conn, ByteBuffer buf, int at, long room, int c, int i, long offset)
            throws IOException {
        long head = conn.readLong(); // length, CRC32C
        int len = (int) (head >>> 32);
        int crc = (int) head;
        long max = Math.min(Wire.CHUNK_BYTES, room);
        if (len < 1 || len > max) {
            throw new Refusal("chunk " + c + " of slice " + i + " announces " + len + " bytes; expected 1 to " + max);
        }
        conn.readFully(buf, at, len);
        if (Wire.crc(buf, at, len) != crc) {
            throw new Refusal("chunk " + c + " of slice " + i + " (offset " + offset + ") fails its CRC32C check");
        }
        return len;
    }

    /**
     * A buffer for a whole slice of {@code total} bytes (position 0, limit {@code total}): {@code spare} when it is
     * big enough, else a new one; a slice bigger than the pool goes to the heap (its direct memory would be freed only
     * by a collection).
     */
    private ByteBuffer wholeBuffer(BulkConnection conn, ByteBuffer spare, long total) {
        ByteBuffer buf = spare != null && spare.capacity() >= total ? spare
                : total > BulkBuffers.POOL_BYTES ? ByteBuffer.allocate((int) total) : conn.allocate((int) total);
        return buf.clear().limit((int) total);
    }

    private static void reply(DataOutputStream out, byte status, int slices, String msg) throws IOException {
        out.writeByte(status);
        out.writeInt(slices);
        out.writeUTF(msg.length() > 2000 ? msg.substring(0, 2000) : msg);
        out.flush();
    }

    // ------------------------------------------------------------------ sender

    /** How long a sender tries to reach a receiver's bulk socket before it reports it {@link Unreachable}. */
    static final int CONNECT_TIMEOUT_MS = 3_000;

    /**
     * The receiver's bulk socket cannot be reached (e.g. a firewall between VMs lets only the gRPC port through);
     * nothing was sent, so the caller may move the slices over gRPC instead.
     */
    static final class Unreachable extends IllegalStateException {
        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** What a sender moved: SliceFormat bytes, chunks, slices (all imported at the receiver). */
    record Sent(long bytes, int chunks, int slices) {
    }

    /**
     * Sends {@code count} slices to the receiver at {@code host} with {@code ticket} ({@link BulkSender#send}).
     *
     * @throws IllegalArgumentException if the receiver refused the transfer (its reason in the message)
     * @throws DeviceMemoryException    if the receiver's device has no room
     * @throws Unreachable             if the receiver's socket cannot be reached (nothing was sent)
     * @throws IllegalStateException    if the connection failed later
     */
    Sent send(String host, BulkTicket ticket, int count, Source export) {
        return sender.send(host, ticket, count, export, null);
    }

    /** {@link #send(String, BulkTicket, int, Source)}, the connection kept for the worker {@code keepFor}. */
    Sent send(String host, BulkTicket ticket, int count, Source export, String keepFor) {
        return sender.send(host, ticket, count, export, keepFor);
    }

    /** {@link BulkSender#sendKept}: over a connection kept for {@code peer}, or null when none is usable. */
    Sent sendKept(String peer, PositionRef target, List<ByteString> headers, Source export) {
        return sender.sendKept(peer, target, headers, export);
    }

    static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() {
        closed = true;
        sender.close();
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        threads.shutdownNow();
    }

    /** A transfer the receiver turns down because of what the sender sent. */
    private static final class Refusal extends RuntimeException {
        Refusal(String message) {
            super(message);
        }
    }
}
