package io.spotserve.worker;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.TensorReducer;
import io.spotserve.worker.proto.BulkTicket;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A split tensor group's partials from one member to one peer member on a raw TCP connection to the peer worker's
 * step socket ({@link StepServer}), instead of a {@code Peer/PartialsStream}: one persistent connection per ordered
 * member pair, opened with a single-use ticket from the authenticated {@code Worker/OpenSteps} call and magic
 * {@link #MAGIC}, then one frame per reduce point, written by the reducing thread in one write and read on the peer
 * by the connection's own thread, which checks it and deposits it into the peer's mailbox ({@link GroupExchange}).
 * No protobuf and no allocation per frame on either side (the buffers are reused; the mailbox keeps pooled arrays).
 *
 * <p>Frame (little-endian): a {@value #HEADER_BYTES}-byte header — receiver's pipeline id (long), step id (long),
 * the point's stage, layer and kind ordinal (ints), the sender's shards {@code [first, end)} (ints), floats per
 * partial {@code n} (int), payload bytes (int, must be {@code (end - first) × n × 4}) — then the partials, shard-major
 * float32. The receiver checks the header against the group before it reads the payload (the same checks and bounds
 * as {@code Peer/Partials}); a frame it refuses is answered with {@link StepServer#REFUSED}, the status code (int) and
 * the reason (modified UTF-8), and the connection closes with nothing kept. The receiver sends nothing else, so the
 * sender's watcher thread, blocked reading, learns at once of a refusal or of the peer's end (EOF: it died or closed),
 * fails the link and wakes the member waiting on that peer's partials.
 */
final class PartialsSocket implements GroupExchange.PartialsLink {
    private static final Logger LOG = LoggerFactory.getLogger(PartialsSocket.class);
    static final int MAGIC = 0x53535350; // "SSSP"
    static final int HEADER_BYTES = 44;

    /** Where a receiving connection deposits what it reads (the worker's {@link GroupExchange}). */
    interface Inbox {
        /**
         * Checks a frame's header before its payload is read.
         *
         * @return how many partials it carries
         * @throws RuntimeException why it is refused (nothing was kept)
         */
        int check(long pipeline, long step, int stage, int layer, int kind, int first, int end, int n, long bytes);

        /** An array of {@code floats} for a frame's partials (pooled). */
        float[] buffer(int floats);

        /** Keeps checked partials ({@code flat}: shard-major) for their step; throws (nothing kept) if it cannot. */
        void keep(long pipeline, long step, int stage, int layer, int kind, int first, float[] flat, long bytes);
    }

    private final String peer;
    private final Socket socket;
    private final OutputStream out;
    private final Runnable onFail;
    private final Object failLock = new Object();
    private volatile StatusRuntimeException failed;
    private byte[] frame = new byte[HEADER_BYTES + (4 << 10)]; // guarded by this
    private ByteBuffer header = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
    private FloatBuffer floats = header.asFloatBuffer();

    private PartialsSocket(String peer, Socket socket, Runnable onFail) throws IOException {
        this.peer = peer;
        this.socket = socket;
        this.out = socket.getOutputStream();
        this.onFail = onFail;
    }

    /**
     * A partials link to the worker at {@code address}: its step socket when it has one and it can be reached, else
     * null (the caller uses the gRPC stream: mTLS, raw sockets off, or the socket is unreachable or full).
     *
     * @param onFail run once when the link fails (the peer refused a frame, closed or died)
     * @throws StatusRuntimeException if the worker cannot be asked for a ticket (it is down, or refuses the caller)
     */
    static PartialsSocket open(ManagedChannel channel, String address, Runnable onFail) {
        BulkTicket ticket = StepSocket.ticket(channel);
        if (ticket == null) {
            return null; // no step socket there
        }
        try {
            return connect(Servers.address(address).getHostString(), ticket, onFail);
        } catch (IOException e) {
            LOG.warn("cannot use the step socket of {} (port {}) for partials: {}; sending them over gRPC instead",
                    address, ticket.getPort(), e.toString());
            return null;
        }
    }

    /**
     * Connects to the step socket on {@code host} with {@code ticket} as a partials connection.
     *
     * @throws IOException if it cannot be reached, or it refused the ticket (the reason in the message)
     */
    static PartialsSocket connect(String host, BulkTicket ticket, Runnable onFail) throws IOException {
        StepSocket.Accepted a = StepSocket.handshake(host, ticket, MAGIC, 1 << 10);
        Socket s = a.socket();
        try {
            s.setSoTimeout(0); // from now on the peer writes only to refuse a frame, or closes
            PartialsSocket link = new PartialsSocket(host + ":" + ticket.getPort(), s, onFail);
            Thread t = new Thread(() -> link.watch(a.in()), "spotserve-partials-watch");
            t.setDaemon(true);
            t.start();
            return link;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    /** Blocks reading the peer's only possible answers: a refusal, or the end of the connection. */
    private void watch(DataInputStream in) {
        try {
            int b = in.read();
            if (b < 0) {
                fail(Status.UNAVAILABLE.withDescription("partials socket to " + peer + " closed by the peer"));
            } else if (b == StepServer.REFUSED) {
                int code = in.readInt();
                String why = in.readUTF();
                fail(Status.fromCodeValue(code).withDescription("partials socket to " + peer + " refused a frame: "
                        + why));
            } else {
                fail(Status.INTERNAL.withDescription("partials socket to " + peer + " sent byte " + b));
            }
        } catch (IOException e) {
            fail(Status.UNAVAILABLE.withDescription("partials socket to " + peer + " failed: " + e));
        }
    }

    private void fail(Status s) {
        synchronized (failLock) {
            if (failed != null) {
                return;
            }
            failed = s.asRuntimeException();
        }
        try {
            socket.close(); // a sender blocked writing, and the watcher, wake up now
        } catch (IOException ignored) {
            // closing anyway
        }
        onFail.run();
    }

    @Override
    public synchronized void send(long pipeline, long step, TensorReducer.Point point, IndexRange shards,
                                  float[][] partials, int n) {
        StatusRuntimeException f = failed;
        if (f != null) {
            throw f;
        }
        int count = shards.length();
        int bytes = count * n * Float.BYTES;
        if (frame.length < HEADER_BYTES + bytes) {
            frame = new byte[HEADER_BYTES + bytes];
            header = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
            floats = header.asFloatBuffer();
        }
        header.putLong(0, pipeline).putLong(8, step).putInt(16, point.stage()).putInt(20, point.layer())
                .putInt(24, point.kind().ordinal()).putInt(28, shards.from()).putInt(32, shards.to()).putInt(36, n)
                .putInt(40, bytes);
        for (int i = 0; i < count; i++) {
            floats.position(HEADER_BYTES / Float.BYTES + i * n);
            floats.put(partials[i], 0, n);
        }
        try {
            out.write(frame, 0, HEADER_BYTES + bytes);
        } catch (IOException e) {
            fail(Status.UNAVAILABLE.withDescription("partials socket to " + peer + " failed: " + e));
            throw failed;
        }
    }

    @Override
    public StatusRuntimeException failure() {
        return failed;
    }

    @Override
    public void close() {
        fail(Status.CANCELLED.withDescription("partials socket to " + peer + " closed"));
    }

    /**
     * Reads the frames of one accepted partials connection (its handshake done) until it ends; each is checked and
     * kept in {@code inbox}. Waits for the next frame as long as it takes; once a frame has started, the rest must
     * come within {@link StepServer#READ_TIMEOUT_MS}.
     *
     * @param maxPayloadBytes the largest payload accepted (the worker's message bound)
     * @throws StepServer.Frames.BadFrame after answering a refused frame (nothing of it was kept)
     */
    static void receive(Socket s, DataInputStream in, DataOutputStream out, Inbox inbox, int maxPayloadBytes)
            throws IOException {
        byte[] head = new byte[HEADER_BYTES];
        ByteBuffer h = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
        byte[] payload = new byte[4 << 10];
        FloatBuffer view = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        while (true) {
            s.setSoTimeout(0);
            int b0 = in.read();
            if (b0 < 0) {
                return; // the sender closed the link
            }
            s.setSoTimeout(StepServer.READ_TIMEOUT_MS);
            head[0] = (byte) b0;
            in.readFully(head, 1, HEADER_BYTES - 1);
            long pipeline = h.getLong(0);
            long step = h.getLong(8);
            int stage = h.getInt(16);
            int layer = h.getInt(20);
            int kind = h.getInt(24);
            int first = h.getInt(28);
            int end = h.getInt(32);
            int n = h.getInt(36);
            int bytes = h.getInt(40);
            int count;
            try {
                if (bytes < 0 || bytes > maxPayloadBytes) {
                    throw new IllegalArgumentException("a frame of " + (bytes & 0xffffffffL) + " payload bytes; at most "
                            + maxPayloadBytes + " allowed");
                }
                count = inbox.check(pipeline, step, stage, layer, kind, first, end, n, bytes);
            } catch (RuntimeException e) {
                throw refuse(out, e);
            }
            if (payload.length < bytes) {
                payload = new byte[Math.max(bytes, Math.min(maxPayloadBytes, 2 * payload.length))];
                view = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            }
            in.readFully(payload, 0, bytes);
            float[] flat = inbox.buffer(count * n);
            view.position(0);
            view.get(flat, 0, count * n);
            try {
                inbox.keep(pipeline, step, stage, layer, kind, first, flat, bytes);
            } catch (RuntimeException e) {
                throw refuse(out, e);
            }
        }
    }

    private static StepServer.Frames.BadFrame refuse(DataOutputStream out, RuntimeException e) throws IOException {
        Status s = WorkerService.error(e).getStatus();
        String why = s.getDescription() == null ? s.getCode().toString() : s.getDescription();
        out.writeByte(StepServer.REFUSED);
        out.writeInt(s.getCode().value());
        out.writeUTF(why);
        out.flush();
        return new StepServer.Frames.BadFrame("partials refused (" + s.getCode() + "): " + why);
    }
}
