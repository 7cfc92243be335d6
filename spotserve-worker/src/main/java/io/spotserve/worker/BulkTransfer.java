package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.SliceFormat;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
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
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
 * most {@link Wire#CHUNK_BYTES}, each with its CRC32C. The receiver checks everything before it imports a slice: an
 * unknown, reused or expired ticket, a length out of bounds, a failed checksum or a slice other than the announced
 * one ends the transfer without importing it (slices of the same transfer that were complete and imported before it
 * stay). While one slice is imported the next is read; the sender exports the next slice while one travels.
 *
 * <p>Protocol (big-endian): sender {@code MAGIC}, ticket (32 bytes); per slice: total (long), then chunks of
 * (length int, crc32c int, payload). Receiver, once at the end or at the first refusal: status (byte), slices
 * imported (int), message (modified UTF-8).
 */
final class BulkTransfer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BulkTransfer.class);
    static final int MAGIC = 0x53534231; // "SSB1"
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
    }

    /**
     * The sender's slices: slice i's SliceFormat bytes in a buffer (position 0, limit their length), written into
     * {@code reuse} when it is big enough ({@link io.spotserve.exec.Pipeline#exportSlice(int, int, ContextSlice,
     * ByteBuffer)}); {@code reuse} is a buffer whose bytes were sent already, or null.
     */
    interface Source {
        ByteBuffer export(int i, ByteBuffer reuse);
    }

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
    /** Direct buffers of finished transfers, for the next ones (at most {@link #POOL_BYTES} in all). */
    private final ConcurrentLinkedDeque<ByteBuffer> pool = new ConcurrentLinkedDeque<>();
    private volatile boolean closed;

    /** Bytes of direct buffers kept between transfers (two 25M-model layer slices each way). */
    static final long POOL_BYTES = 64L << 20;
    /** Asks an export for a new direct buffer (it is never big enough to be written into). */
    private static final ByteBuffer DIRECT = ByteBuffer.allocateDirect(0);

    /** A pooled direct buffer, or null. */
    private ByteBuffer take() {
        return pool.pollFirst();
    }

    /** Keeps a direct buffer for a later transfer while the pool has room; drops it otherwise. */
    private void give(ByteBuffer b) {
        if (b == null || !b.isDirect() || b.capacity() == 0) {
            return;
        }
        long held = b.capacity();
        for (ByteBuffer x : pool) {
            held += x.capacity();
        }
        if (held <= POOL_BYTES) {
            pool.offerFirst(b);
        }
    }

    /**
     * Binds the bulk socket on {@code bind} (the worker's own address), any free port.
     *
     * @param tls the context under mTLS (client certificates required on accept, the server's checked on connect),
     *            null for plain TCP
     */
    BulkTransfer(InetAddress bind, SSLContext tls, Importer importer) throws IOException {
        this.tls = tls;
        this.importer = importer;
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
        if (slices.isEmpty() || slices.size() > MAX_SLICES_PER_TICKET) {
            throw new IllegalArgumentException("a bulk transfer carries 1 to " + MAX_SLICES_PER_TICKET
                    + " slices, got " + slices.size());
        }
        long now = System.nanoTime();
        tickets.values().removeIf(t -> now - t.expiresNanos > 0);
        if (tickets.size() >= MAX_TICKETS) {
            throw new IllegalStateException("too many bulk transfers pending (" + MAX_TICKETS + "); try later");
        }
        long[] max = new long[slices.size()];
        for (int i = 0; i < max.length; i++) {
            max[i] = Math.min(maxEncodedBytes(c, slices.get(i)), Wire.MAX_SLICE_BYTES);
        }
        byte[] id = new byte[TICKET_BYTES];
        random.nextBytes(id);
        tickets.put(HexFormat.of().formatHex(id), new Ticket(target, List.copyOf(slices), max, c,
                now + TimeUnit.MILLISECONDS.toNanos(TICKET_LIFETIME_MS)));
        return BulkTicket.newBuilder().setTicket(ByteString.copyFrom(id)).setPort(port())
                .setExpiresInMs(TICKET_LIFETIME_MS).build();
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
                try {
                    serve(s);
                } finally {
                    connections.release();
                    closeQuietly(s);
                }
            });
        }
    }

    private void serve(Socket s) {
        BulkConnection conn = null;
        Future<ContextSlice> pending = null;
        ByteBuffer importing = null; // the buffer of the slice whose import is pending
        ByteBuffer spare = null;     // a buffer no import uses any more, reused for a slice that fits in it
        ByteBuffer second = null;    // a pooled buffer for the slice after the first
        int imported = 0;
        Ticket t = null;
        try {
            conn = BulkConnection.of(s, READ_TIMEOUT_MS);
            if (s.getChannel() != null) {
                spare = take();
                second = take();
            }
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
            for (int i = 0; i < t.slices.size(); i++) {
                ByteBuffer bytes = readSlice(conn, t, i, spare);
                if (bytes == spare) {
                    spare = null;
                }
                ContextSlice named = named(bytes, t.config);
                if (!named.equals(t.slices.get(i))) {
                    throw new Refusal("slice " + i + " of the transfer is " + named + "; its ticket announced "
                            + t.slices.get(i));
                }
                if (pending != null) { // the previous slice must be in before this one goes
                    await(pending);
                    imported++;
                    spare = importing;
                } else {
                    spare = second;
                    second = null;
                }
                importing = bytes;
                PositionRef target = t.target;
                pending = threads.submit(() -> importer.importSlice(target, bytes));
                // the next slice is read while this one is imported
            }
            Future<ContextSlice> last = pending;
            pending = null;
            await(last);
            imported++;
            reply(conn.out(), OK, imported, "");
            give(importing);
            give(spare);
            give(second);
        } catch (Exception e) {
            if (pending != null) { // an import in flight finishes (or fails) before the answer says what landed
                try {
                    await(pending);
                    imported++;
                } catch (Exception ignored) {
                    // reported below if it is the cause
                }
            }
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
            LOG.warn("bulk transfer from {} refused after {} slices imported: {}", s.getRemoteSocketAddress(),
                    imported, msg);
            if (conn != null) {
                try {
                    reply(conn.out(), status, imported, msg);
                    s.shutdownOutput();
                    conn.drain();
                } catch (IOException ignored) {
                    // the sender is gone; nothing else to tell it
                }
            }
        } finally {
            if (conn != null) {
                conn.close();
            }
        }
    }

    /**
     * Reads one slice (its length, then checksummed chunks) into a buffer (position 0, limit its length): {@code spare}
     * when it is big enough (layer slices of one position all have one length), else a new one.
     */
    private static ByteBuffer readSlice(BulkConnection conn, Ticket t, int i, ByteBuffer spare) throws IOException {
        DataInputStream in = conn.in();
        long total = in.readLong();
        if (total < SliceFormat.HEADER_BYTES || total > t.maxBytes[i]) {
            throw new Refusal("slice " + i + " announces " + total + " bytes; " + t.slices.get(i) + " takes "
                    + SliceFormat.HEADER_BYTES + " to " + t.maxBytes[i]);
        }
        // a slice bigger than the pool goes to the heap: its direct memory would be freed only by a collection
        ByteBuffer buf = spare != null && spare.capacity() >= total ? spare
                : total > POOL_BYTES ? ByteBuffer.allocate((int) total) : conn.allocate((int) total);
        buf.clear().limit((int) total);
        int off = 0;
        for (int chunk = 0; off < total; chunk++) {
            int len = in.readInt();
            int crc = in.readInt();
            long room = Math.min(Wire.CHUNK_BYTES, total - off);
            if (len < 1 || len > room) {
                throw new Refusal("chunk " + chunk + " of slice " + i + " announces " + len + " bytes; expected 1 to "
                        + room);
            }
            conn.readFully(buf, off, len);
            if (Wire.crc(buf, off, len) != crc) {
                throw new Refusal("chunk " + chunk + " of slice " + i + " (offset " + off
                        + ") fails its CRC32C check");
            }
            off += len;
        }
        return buf;
    }

    private static void reply(DataOutputStream out, byte status, int slices, String msg) throws IOException {
        out.writeByte(status);
        out.writeInt(slices);
        out.writeUTF(msg.length() > 2000 ? msg.substring(0, 2000) : msg);
        out.flush();
    }

    private static <T> T await(Future<T> f) throws Exception {
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception x) {
                throw x;
            }
            throw e;
        }
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

    /** A slice exported and checksummed, ready to go: its bytes from position 0 to the limit. */
    private record Exported(ByteBuffer bytes, int[] crcs) {
    }

    /**
     * Sends {@code count} slices ({@code export} gives slice i's SliceFormat bytes) to the receiver at {@code host} with
     * {@code ticket}: slice i+1 is exported on another thread while slice i is written, into the buffer slice i-1 was
     * written from (two buffers take turns, so slices of one size allocate nothing after the first two).
     *
     * @throws IllegalArgumentException    if the receiver refused the transfer (its reason in the message)
     * @throws DeviceMemoryException       if the receiver's device has no room
     * @throws Unreachable                if the receiver's socket cannot be reached (nothing was sent)
     * @throws IllegalStateException       if the connection failed later
     */
    Sent send(String host, BulkTicket ticket, int count, Source export) {
        long bytes = 0;
        int chunks = 0;
        Socket socket = null;
        try {
            // plain TCP through a channel, so slice bytes go from the exported buffer to the kernel with no copy
            socket = tls == null ? SocketChannel.open().socket() : tls.getSocketFactory().createSocket();
            socket.connect(new InetSocketAddress(host, ticket.getPort()), CONNECT_TIMEOUT_MS);
        } catch (IOException e) {
            if (socket != null) {
                closeQuietly(socket);
            }
            throw new Unreachable("cannot connect to the bulk socket " + host + ":" + ticket.getPort() + ": " + e, e);
        }
        // plain TCP: exports go into direct buffers (pooled ones, or new ones the exporter allocates)
        ByteBuffer[] turns = new ByteBuffer[2];
        if (tls == null) {
            turns[0] = take();
            turns[1] = take();
        }
        ByteBuffer first = turns[0] != null ? turns[0] : tls == null ? DIRECT : null;
        turns[1] = turns[1] != null ? turns[1] : tls == null ? DIRECT : null;
        Future<Exported> next = threads.submit(() -> exported(export.export(0, first)));
        try (Socket s = socket; BulkConnection conn = BulkConnection.of(s, READ_TIMEOUT_MS + 5_000)) {
            DataOutputStream out = conn.out();
            out.writeInt(MAGIC);
            out.write(ticket.getTicket().toByteArray());
            boolean answered = false;
            for (int i = 0; i < count && !answered; i++) {
                Exported e = await(next);
                turns[i % 2] = e.bytes;
                int following = i + 1;
                ByteBuffer reuse = turns[following % 2]; // slice i - 1's, written already (or null)
                next = following < count ? threads.submit(() -> exported(export.export(following, reuse))) : null;
                int size = e.bytes.limit();
                out.writeLong(size);
                for (int c = 0, off = 0; off < size; c++, off += Wire.CHUNK_BYTES) {
                    int len = Math.min(Wire.CHUNK_BYTES, size - off);
                    out.writeInt(len);
                    out.writeInt(e.crcs[c]);
                    conn.write(e.bytes, off, len);
                    chunks++;
                    if (conn.readable()) { // the receiver answered early: it refused
                        answered = true;
                        break;
                    }
                }
                bytes += size;
            }
            out.flush();
            DataInputStream in = conn.in();
            byte status = in.readByte();
            int imported = in.readInt();
            String msg = in.readUTF();
            if (status != OK) {
                throw refusal(host, status, imported, msg);
            }
            if (imported != count) {
                throw new IllegalStateException("bulk receiver " + host + " imported " + imported + " of " + count
                        + " slices");
            }
            give(turns[0]);
            give(turns[1]);
            return new Sent(bytes, chunks, imported);
        } catch (RuntimeException e) {
            throw e;
        } catch (IOException e) {
            throw new IllegalStateException("bulk transfer to " + host + ":" + ticket.getPort() + " failed: " + e, e);
        } catch (Exception e) {
            throw new IllegalStateException("bulk transfer to " + host + " failed: " + e, e);
        } finally {
            if (next != null) {
                next.cancel(true);
            }
        }
    }

    private static Exported exported(ByteBuffer bytes) {
        if (bytes.position() != 0) {
            throw new IllegalStateException("an exported slice starts at position " + bytes.position() + ", not 0");
        }
        int size = bytes.limit();
        int[] crcs = new int[Math.max(1, (size + Wire.CHUNK_BYTES - 1) / Wire.CHUNK_BYTES)];
        for (int c = 0, off = 0; off < size; c++, off += Wire.CHUNK_BYTES) {
            crcs[c] = Wire.crc(bytes, off, Math.min(Wire.CHUNK_BYTES, size - off));
        }
        return new Exported(bytes, crcs);
    }

    private static RuntimeException refusal(String host, byte status, int imported, String msg) {
        if (status == NO_MEMORY) {
            String[] f = msg.split(",", 6);
            if (f.length == 6) {
                try {
                    return new DeviceMemoryException(new DeviceId(f[0], Integer.parseInt(f[1])), f[5],
                            Long.parseLong(f[2]), Long.parseLong(f[3]), Long.parseLong(f[4]));
                } catch (IllegalArgumentException ignored) {
                    // reported as a plain refusal below
                }
            }
        }
        String what = "worker " + host + " refused the bulk transfer after " + imported + " slices were imported: "
                + msg;
        return status == FAILED ? new IllegalStateException(what) : new IllegalArgumentException(what);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() {
        closed = true;
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
