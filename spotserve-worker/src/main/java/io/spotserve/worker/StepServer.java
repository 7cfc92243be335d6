package io.spotserve.worker;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker's step socket: forward steps from the controller or the previous stage's worker over plain TCP instead
 * of a gRPC stream. Each connection has one thread that blocks reading the next step, runs it itself (the hosted
 * stages and, for a middle stage, the hand-off to the next worker) and writes the reply; no event loop or executor
 * sits between the socket and the forward pass.
 *
 * <p>Nobody can use the socket without asking first over the authenticated gRPC call: {@code Worker/OpenSteps}
 * issues a ticket (256 random bits) valid for {@link #TICKET_LIFETIME_MS} and for one connection, as the bulk
 * socket's are ({@link BulkTransfer}). Under mTLS there is no step socket (steps keep to the TLS gRPC stream).
 *
 * <p>Protocol (big-endian): the caller sends {@link #MAGIC} and the ticket; the worker answers a status byte
 * ({@link #OK}, else {@link #REFUSED} and a modified-UTF-8 reason, then closes). Then, any number of times: the caller
 * sends a frame (length int, then that many bytes of a {@code StepRequest}), the worker answers a frame holding the
 * {@code StepReply} (a refused step carries its status code in the reply, and the connection stays usable). A frame
 * longer than the worker's message bound, or one that is not a {@code StepRequest}, ends the connection with one log
 * line and runs nothing.
 *
 * <p>A connection that opens with {@link PartialsSocket#MAGIC} instead (same ticket, same answer) carries a split
 * tensor group's partials from a peer member: raw frames read by the connection's thread into the worker's mailbox
 * ({@link PartialsSocket#receive}); it counts against the same connection bound.
 */
final class StepServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StepServer.class);
    static final int MAGIC = 0x53535331; // "SSS1"
    static final int TICKET_BYTES = 32;
    static final long TICKET_LIFETIME_MS = 30_000;
    /** Tickets outstanding at once (unused ones expire). */
    static final int MAX_TICKETS = 256;
    /**
     * Connections open at once (each holds one thread: one per pipeline and caller in use, one per ordered pair of
     * split-group members sending partials here).
     */
    static final int MAX_CONNECTIONS = 64;
    /** How long the handshake, or the rest of a frame once its first byte came, may take. */
    static final int READ_TIMEOUT_MS = 30_000;

    static final byte OK = 0;
    static final byte REFUSED = 1;

    private final ServerSocket server;
    private final int maxFrameBytes;
    private final Function<StepRequest, StepReply> handler;
    /** Where partials connections deposit their frames, or null (they are refused). */
    private final PartialsSocket.Inbox partials;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Long> tickets = new ConcurrentHashMap<>(); // ticket -> expiry (nanoTime)
    private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger refused = new AtomicInteger();
    private volatile boolean closed;

    /**
     * Binds the step socket on {@code bind} (the worker's own address), any free port, and starts accepting.
     *
     * @param maxFrameBytes the largest request frame accepted (the worker's gRPC message bound)
     * @param handler       runs one step and answers it; never throws (a refusal is a reply with its status)
     */
    StepServer(InetAddress bind, int maxFrameBytes, Function<StepRequest, StepReply> handler) throws IOException {
        this(bind, maxFrameBytes, handler, null);
    }

    /**
     * As above; a connection that opens with {@link PartialsSocket#MAGIC} (and a ticket) carries a split tensor
     * group's partials into {@code partials} instead of steps.
     */
    StepServer(InetAddress bind, int maxFrameBytes, Function<StepRequest, StepReply> handler,
               PartialsSocket.Inbox partials) throws IOException {
        this.maxFrameBytes = maxFrameBytes;
        this.handler = handler;
        this.partials = partials;
        ServerSocket s = new ServerSocket();
        s.bind(new InetSocketAddress(bind, 0), 16);
        this.server = s;
        Thread t = new Thread(this::acceptLoop, "spotserve-steps-accept");
        t.setDaemon(true);
        t.start();
    }

    int port() {
        return server.getLocalPort();
    }

    /** Connections refused (bad magic or ticket) or ended for a bad frame so far. */
    int refused() {
        return refused.get();
    }

    /** Connections open now. */
    int connections() {
        return connections.size();
    }

    /** Issues a ticket for one connection (the caller passed the gRPC server's security check). */
    BulkTicket issue() {
        long now = System.nanoTime();
        tickets.values().removeIf(expires -> now - expires > 0);
        if (tickets.size() >= MAX_TICKETS) {
            throw new IllegalStateException("too many step socket tickets pending (" + MAX_TICKETS + "); try later");
        }
        byte[] id = new byte[TICKET_BYTES];
        random.nextBytes(id);
        tickets.put(HexFormat.of().formatHex(id), now + TimeUnit.MILLISECONDS.toNanos(TICKET_LIFETIME_MS));
        return BulkTicket.newBuilder().setTicket(ByteString.copyFrom(id)).setPort(port())
                .setExpiresInMs(TICKET_LIFETIME_MS).build();
    }

    /** Lets every ticket issued so far expire now (for tests of the expiry). */
    void expireAll() {
        tickets.replaceAll((k, v) -> System.nanoTime() - 1);
    }

    /** Drops every open connection (the worker was fenced); their callers see the socket close. */
    void closeConnections() {
        for (Socket s : connections) {
            closeQuietly(s);
        }
    }

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.warn("step socket accept failed: {}", e.toString());
                }
                continue;
            }
            if (connections.size() >= MAX_CONNECTIONS) {
                refused.incrementAndGet();
                LOG.warn("step socket refused a connection from {}: {} connections already open",
                        s.getRemoteSocketAddress(), MAX_CONNECTIONS);
                closeQuietly(s);
                continue;
            }
            connections.add(s);
            Thread t = new Thread(() -> {
                try {
                    serve(s);
                } finally {
                    connections.remove(s);
                    closeQuietly(s);
                }
            }, "spotserve-steps");
            t.setDaemon(true);
            t.start();
        }
    }

    private void serve(Socket s) {
        String from = String.valueOf(s.getRemoteSocketAddress());
        try {
            s.setTcpNoDelay(true);
            s.setSoTimeout(READ_TIMEOUT_MS);
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 16 << 10));
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            int[] magic = new int[1];
            String refusal = handshake(in, magic);
            if (refusal != null) {
                refused.incrementAndGet();
                LOG.warn("step socket refused a connection from {}: {}", from, refusal);
                out.writeByte(REFUSED);
                out.writeUTF(refusal);
                out.flush();
                return;
            }
            out.writeByte(OK);
            out.flush();
            if (magic[0] == PartialsSocket.MAGIC) {
                PartialsSocket.receive(s, in, out, partials, maxFrameBytes);
                return;
            }
            Frames frames = new Frames(s, in, maxFrameBytes);
            while (!closed) {
                CodedInputStream request = frames.next(0); // waits for the next step as long as it takes
                if (request == null) {
                    return; // the caller closed the link
                }
                StepRequest r;
                try {
                    r = StepRequest.parseFrom(request);
                } catch (InvalidProtocolBufferException e) {
                    throw new Frames.BadFrame("a frame that is not a step request (" + e.getMessage() + ")");
                }
                frames.write(out, handler.apply(r));
            }
        } catch (Frames.BadFrame e) {
            refused.incrementAndGet();
            LOG.warn("step socket closed the connection from {}: {}", from, e.getMessage());
        } catch (SocketTimeoutException e) {
            LOG.warn("step socket closed the connection from {}: it stalled for {} ms mid-frame", from,
                    READ_TIMEOUT_MS);
        } catch (EOFException e) {
            LOG.debug("step socket: {} closed the connection mid-frame", from);
        } catch (IOException e) {
            if (!closed) {
                LOG.debug("step socket connection from {} ended: {}", from, e.toString());
            }
        }
    }

    /**
     * Checks the magic and reads the ticket; returns why the connection is refused, or null if it may step (or send
     * partials).
     */
    private String handshake(DataInputStream in, int[] magicOut) throws IOException {
        byte[] id = new byte[TICKET_BYTES];
        try {
            int magic = in.readInt();
            magicOut[0] = magic;
            if (magic != MAGIC && (magic != PartialsSocket.MAGIC || partials == null)) {
                return "not a step connection (bad magic)";
            }
            in.readFully(id);
        } catch (EOFException e) {
            return "the connection closed before its ticket";
        }
        Long expires = tickets.remove(HexFormat.of().formatHex(id)); // single use: gone whatever follows
        if (expires == null) {
            return "unknown or already used ticket";
        }
        if (System.nanoTime() - expires > 0) {
            return "expired ticket";
        }
        return null;
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
        closeConnections();
    }

    /**
     * Length-prefixed frames on a blocking socket, both ends: a reusable buffer for what is read, another for what is
     * written (the length and the message leave in one write).
     */
    static final class Frames {
        private final Socket socket;
        private final DataInputStream in;
        private final int maxBytes;
        private byte[] read = new byte[4 << 10];
        private byte[] written = new byte[4 << 10];

        Frames(Socket socket, DataInputStream in, int maxBytes) {
            this.socket = socket;
            this.in = in;
            this.maxBytes = maxBytes;
        }

        /**
         * Reads the next frame; waits up to {@code firstByteMillis} for it to start (0 = forever), then up to
         * {@link #READ_TIMEOUT_MS} for the rest.
         *
         * @return the frame's bytes (aliased, valid until the next call), or null at a clean end of stream
         * @throws BadFrame if the length is out of bounds
         */
        CodedInputStream next(int firstByteMillis) throws IOException {
            socket.setSoTimeout(firstByteMillis);
            int b0 = in.read();
            if (b0 < 0) {
                return null;
            }
            socket.setSoTimeout(READ_TIMEOUT_MS);
            int length = (b0 << 24) | (in.readUnsignedByte() << 16) | (in.readUnsignedByte() << 8)
                    | in.readUnsignedByte();
            if (length < 0 || length > maxBytes) {
                throw new BadFrame("a frame of " + (length & 0xffffffffL) + " bytes; at most " + maxBytes + " allowed");
            }
            if (read.length < length) {
                read = new byte[Math.max(length, Math.min(maxBytes, 2 * read.length))];
            }
            in.readFully(read, 0, length);
            CodedInputStream c = CodedInputStream.newInstance(read, 0, length);
            c.enableAliasing(true); // the activations are read straight from this buffer
            return c;
        }

        /** Writes {@code m} as one frame (one write call). */
        void write(OutputStream out, MessageLite m) throws IOException {
            int size = m.getSerializedSize();
            if (written.length < size + 4) {
                written = new byte[Math.max(size + 4, 2 * written.length)];
            }
            written[0] = (byte) (size >>> 24);
            written[1] = (byte) (size >>> 16);
            written[2] = (byte) (size >>> 8);
            written[3] = (byte) size;
            CodedOutputStream c = CodedOutputStream.newInstance(written, 4, size);
            m.writeTo(c);
            c.checkNoSpaceLeft();
            out.write(written, 0, size + 4);
            out.flush();
        }

        /** A frame the other end should never have sent. */
        static final class BadFrame extends IOException {
            BadFrame(String message) {
                super(message);
            }
        }
    }
}
