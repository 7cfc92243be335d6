package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.BulkTransfer.Sent;
import io.spotserve.worker.BulkTransfer.Source;
import io.spotserve.worker.BulkTransfer.Unreachable;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.PositionRef;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static io.spotserve.worker.BulkTransfer.CONNECT_TIMEOUT_MS;
import static io.spotserve.worker.BulkTransfer.FAILED;
import static io.spotserve.worker.BulkTransfer.KEEP_MS;
import static io.spotserve.worker.BulkTransfer.MAGIC;
import static io.spotserve.worker.BulkTransfer.NEXT;
import static io.spotserve.worker.BulkTransfer.NO_MEMORY;
import static io.spotserve.worker.BulkTransfer.OK;
import static io.spotserve.worker.BulkTransfer.PART_BYTES;
import static io.spotserve.worker.BulkTransfer.READ_TIMEOUT_MS;

/**
 * The sending side of {@link BulkTransfer}'s protocol: one thread writes a transfer's slices (chunk by chunk where the
 * source exports them piece by piece) and reads the receiver's answer; after a successful transfer the connection is
 * kept, per receiving worker, and carries the next transfer to that worker as a request of its own ({@link #sendKept})
 * instead of a ticket call and a new connection.
 */
final class BulkSender {
    private static final Logger LOG = LoggerFactory.getLogger(BulkSender.class);

    private final SSLContext tls;
    private final BulkBuffers buffers;
    /** Connections kept after transfers, by the receiving worker's address, most recent first. */
    private final Map<String, ConcurrentLinkedDeque<Link>> links = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** @param tls the context under mTLS (connections are then never kept), null for plain TCP */
    BulkSender(SSLContext tls, BulkBuffers buffers) {
        this.tls = tls;
        this.buffers = buffers;
    }

    /**
     * Sends {@code count} slices ({@code export} gives slice i's SliceFormat bytes) to the receiver at {@code host}
     * with {@code ticket}, on the calling thread, and keeps the connection open afterwards (plain TCP, after a
     * successful transfer) for the next transfer to the worker {@code keepFor} ({@link #sendKept}); null: closed. A
     * slice the source can export piece by piece leaves in chunks of {@link BulkTransfer#PART_BYTES}, each exported
     * into one small buffer, checksummed and written while it is in the cache (the receiver, likewise, imports each
     * chunk as soon as it is read and checked); any other slice is exported whole and written in chunks of
     * {@link Wire#CHUNK_BYTES}.
     *
     * @throws IllegalArgumentException if the receiver refused the transfer (its reason in the message)
     * @throws DeviceMemoryException    if the receiver's device has no room
     * @throws Unreachable             if the receiver's socket cannot be reached (nothing was sent)
     * @throws IllegalStateException    if the connection failed later
     */
    Sent send(String host, BulkTicket ticket, int count, Source export, String keepFor) {
        Socket socket = null;
        BulkConnection conn;
        try {
            // plain TCP through a channel, so slice bytes go from the exported buffer to the kernel with no copy
            socket = tls == null ? SocketChannel.open().socket() : tls.getSocketFactory().createSocket();
            socket.connect(new InetSocketAddress(host, ticket.getPort()), CONNECT_TIMEOUT_MS);
            conn = BulkConnection.of(socket, READ_TIMEOUT_MS + 5_000);
        } catch (IOException e) {
            if (socket != null) {
                BulkTransfer.closeQuietly(socket);
            }
            throw new Unreachable("cannot connect to the bulk socket " + host + ":" + ticket.getPort() + ": " + e, e);
        }
        boolean kept = false;
        try {
            DataOutputStream out = conn.out();
            out.writeInt(MAGIC);
            out.write(ticket.getTicket().toByteArray());
            Sent sent = slices(conn, host, count, export);
            if (keepFor != null && tls == null && !closed) {
                prune();
                links.computeIfAbsent(keepFor, k -> new ConcurrentLinkedDeque<>())
                        .offerFirst(new Link(socket, conn, System.nanoTime()));
                kept = true;
            }
            return sent;
        } catch (IOException e) {
            throw new IllegalStateException("bulk transfer to " + host + ":" + ticket.getPort() + " failed: " + e, e);
        } finally {
            if (!kept) {
                conn.close();
                BulkTransfer.closeQuietly(socket);
            }
        }
    }

    /** A connection kept open after a transfer to a worker, since {@code since} (nanoTime). */
    private record Link(Socket socket, BulkConnection conn, long since) {
        void close() {
            conn.close();
            BulkTransfer.closeQuietly(socket);
        }
    }

    /**
     * Sends the slices named by {@code headers} into {@code target} over a connection kept from an earlier transfer to
     * the worker {@code peer}: no ticket call, no connect; the receiver checks the request as it would a ticket's.
     * Returns null when no usable connection is kept (none, too old, closed by the receiver, or it broke before the
     * receiver answered): the caller then asks for a ticket and sends them all (a slice the receiver may have imported
     * before the break is imported again, whole, with the same bytes).
     *
     * @throws IllegalArgumentException as {@link #send} when the receiver refused
     */
    Sent sendKept(String peer, PositionRef target, List<ByteString> headers, Source export) {
        ConcurrentLinkedDeque<Link> kept = links.get(peer);
        Link link;
        while (kept != null && (link = kept.pollFirst()) != null) {
            boolean keep = false;
            try {
                if (System.nanoTime() - link.since > TimeUnit.MILLISECONDS.toNanos(KEEP_MS) || link.conn.readable()) {
                    continue; // too old (the receiver may be closing it), or closed by the receiver
                }
                DataOutputStream out = link.conn.out();
                out.writeInt(NEXT);
                out.writeLong(target.getPipeline());
                out.writeInt(target.getStage());
                out.writeInt(target.getShard());
                out.writeInt(headers.size());
                for (ByteString h : headers) {
                    out.writeInt(h.size());
                    h.writeTo(out);
                }
                Sent sent = slices(link.conn, peer, headers.size(), export);
                keep = !closed;
                return sent;
            } catch (IOException e) {
                // the receiver closed it meanwhile (or died): the caller sends everything again with a ticket
                LOG.debug("kept bulk connection to {} failed: {}", peer, e.toString());
                return null;
            } finally {
                if (keep) {
                    kept.offerFirst(new Link(link.socket, link.conn, System.nanoTime()));
                } else {
                    link.close();
                }
            }
        }
        return null;
    }

    /**
     * Writes {@code count} slices on a connection whose request (ticket, or kept-connection request) was written, and
     * reads the receiver's answer.
     */
    private Sent slices(BulkConnection conn, String host, int count, Source export) throws IOException {
        long bytes = 0;
        int chunks = 0;
        ByteBuffer part = null;  // the chunk of a slice exported piece by piece
        ByteBuffer whole = null; // a slice exported whole
        DataOutputStream out = conn.out();
        boolean answered = false;
        for (int i = 0; i < count && !answered; i++) {
            long length = export.length(i);
            if (length >= 0) {
                if (part == null) {
                    part = tls == null ? buffers.take(PART_BYTES, conn) : ByteBuffer.allocate(PART_BYTES);
                }
                out.writeLong(length);
                for (long off = 0; off < length && !answered; off += PART_BYTES) {
                    int len = (int) Math.min(PART_BYTES, length - off);
                    export.part(i, off, part.clear().limit(len));
                    answered = writeChunk(conn, part, 0, len);
                    chunks++;
                }
                bytes += length;
                continue;
            }
            // plain TCP: a whole slice goes into a direct buffer (a pooled one, or one the exporter allocates)
            if (whole == null && tls == null) {
                whole = buffers.take();
            }
            whole = export.export(i, whole != null ? whole : tls == null ? BulkBuffers.DIRECT : null);
            if (whole.position() != 0) {
                throw new IllegalStateException("an exported slice starts at position " + whole.position() + ", not 0");
            }
            int size = whole.limit();
            out.writeLong(size);
            for (int off = 0; off < size && !answered; off += Wire.CHUNK_BYTES) {
                answered = writeChunk(conn, whole, off, Math.min(Wire.CHUNK_BYTES, size - off));
                chunks++;
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
        buffers.give(part);
        buffers.give(whole);
        return new Sent(bytes, chunks, imported);
    }

    /**
     * Writes one chunk (length, CRC32C, bytes {@code [off, off + len)} of {@code b}).
     *
     * @return whether the receiver has answered already (it refused: the sender stops and reads why)
     */
    private static boolean writeChunk(BulkConnection conn, ByteBuffer b, int off, int len) throws IOException {
        conn.writeChunk(len, Wire.crc(b, off, len), b, off);
        return conn.readable();
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

    /** Closes kept connections too old to be used (their receivers close them), whatever worker they lead to. */
    private void prune() {
        long now = System.nanoTime();
        for (ConcurrentLinkedDeque<Link> kept : links.values()) {
            for (Link l : kept) {
                if (now - l.since() > TimeUnit.MILLISECONDS.toNanos(KEEP_MS) && kept.remove(l)) {
                    l.close();
                }
            }
        }
    }

    /** Closes every kept connection; no connection is kept from now on. */
    void close() {
        closed = true;
        for (ConcurrentLinkedDeque<Link> kept : links.values()) {
            for (Link l; (l = kept.pollFirst()) != null; ) {
                l.close();
            }
        }
    }
}
