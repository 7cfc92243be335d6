package io.spotserve.worker;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The caller's end of a worker's step socket ({@link StepServer}): each step is one length-prefixed
 * {@code StepRequest} written by the calling thread, which then blocks reading the reply itself, so no transport
 * thread sits between the reply and the waiting caller. One step at a time ({@link #tryStep} returns null while
 * another thread steps). A reply that does not come within the step's timeout, a connection that fails, or a call
 * cancelled because a worker it involves was declared dead closes the socket: the link is broken for good, so a late
 * reply is never read as the answer to a later step.
 */
final class StepSocket implements StepLink {
    private static final Logger LOG = LoggerFactory.getLogger(StepSocket.class);
    /** How long a caller tries to reach the step socket before it falls back to the gRPC stream. */
    static final int CONNECT_TIMEOUT_MS = 3_000;

    private final String peer;
    private final Socket socket;
    private final OutputStream out;
    private final StepServer.Frames frames;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile StatusRuntimeException broken;

    private StepSocket(String peer, Socket socket, DataInputStream in, int maxReplyBytes) throws IOException {
        this.peer = peer;
        this.socket = socket;
        this.out = socket.getOutputStream();
        this.frames = new StepServer.Frames(socket, in, maxReplyBytes);
    }

    /**
     * A step link to the worker at {@code address} reached over {@code channel}: its step socket when it has one and
     * it can be reached, else a {@link StepStream} on the channel.
     *
     * @throws StatusRuntimeException if the worker cannot be asked for a ticket (it is down, or refuses the caller)
     */
    static StepLink open(ManagedChannel channel, String address) {
        BulkTicket ticket = ticket(channel);
        if (ticket == null) {
            return new StepStream(channel); // no step socket there (mTLS, or raw sockets turned off)
        }
        try {
            return connect(Servers.address(address).getHostString(), ticket, Wire.DEFAULT_MAX_MESSAGE_BYTES);
        } catch (IOException e) {
            LOG.warn("cannot use the step socket of {} (port {}): {}; stepping over gRPC instead", address,
                    ticket.getPort(), e.toString());
            return new StepStream(channel);
        }
    }

    /**
     * A one-time ticket for the step socket of the worker on {@code channel} (asked in the root context: the link
     * outlives the step that opens it, and the ticket call is not that step's to cancel), or null when the worker has
     * no step socket (mTLS, or raw sockets turned off).
     *
     * @throws StatusRuntimeException if the worker cannot be asked (it is down, or refuses the caller)
     */
    static BulkTicket ticket(ManagedChannel channel) {
        Context previous = Context.ROOT.attach();
        try {
            return WorkerGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .openSteps(Ack.getDefaultInstance());
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
                throw e;
            }
            return null;
        } finally {
            Context.ROOT.detach(previous);
        }
    }

    /** A connection the step socket accepted: the socket and its buffered input. */
    record Accepted(Socket socket, DataInputStream in) {
    }

    /**
     * Connects to the step socket on {@code host} and presents {@code ticket} after {@code magic} (one write), with
     * the read timeout {@link StepServer#READ_TIMEOUT_MS}; closes the socket when it fails.
     *
     * @param inBuffer the input buffer's size in bytes
     * @throws IOException if it cannot be reached, or it refused the ticket (the reason in the message)
     */
    static Accepted handshake(String host, BulkTicket ticket, int magic, int inBuffer) throws IOException {
        Socket s = new Socket();
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(host, ticket.getPort()), CONNECT_TIMEOUT_MS);
            s.setSoTimeout(StepServer.READ_TIMEOUT_MS);
            byte[] hello = new byte[4 + StepServer.TICKET_BYTES];
            hello[0] = (byte) (magic >>> 24);
            hello[1] = (byte) (magic >>> 16);
            hello[2] = (byte) (magic >>> 8);
            hello[3] = (byte) magic;
            ticket.getTicket().copyTo(hello, 4);
            OutputStream o = s.getOutputStream();
            o.write(hello);
            o.flush();
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), inBuffer));
            byte status = in.readByte();
            if (status != StepServer.OK) {
                throw new IOException("the step socket " + host + ":" + ticket.getPort() + " refused the connection: "
                        + in.readUTF());
            }
            return new Accepted(s, in);
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    /**
     * Connects to the step socket on {@code host} with {@code ticket}.
     *
     * @throws IOException if it cannot be reached, or it refused the ticket (the reason in the message)
     */
    static StepSocket connect(String host, BulkTicket ticket, int maxReplyBytes) throws IOException {
        Accepted a = handshake(host, ticket, StepServer.MAGIC, 16 << 10);
        try {
            return new StepSocket(host + ":" + ticket.getPort(), a.socket(), a.in(), maxReplyBytes);
        } catch (IOException | RuntimeException e) {
            a.socket().close();
            throw e;
        }
    }

    @Override
    public boolean broken() {
        return broken != null;
    }

    @Override
    public StepReply tryStep(StepRequest r, long timeoutSeconds) {
        return tryStepAround(r, timeoutSeconds, null);
    }

    /**
     * As {@link #tryStep}, with {@code meanwhile} run between sending {@code r} and reading its reply: the controller
     * sends a collect here, then runs the step whose last stage (on this worker) answers it. When {@code meanwhile}
     * throws, the link breaks (its reply may still come, and must never be read as a later request's) and the
     * exception propagates.
     */
    StepReply tryStepAround(StepRequest r, long timeoutSeconds, Runnable meanwhile) {
        if (!lock.tryLock()) {
            return null;
        }
        try {
            if (broken != null) {
                throw broken;
            }
            Context ctx = Context.current();
            Context.CancellationListener onCancel = c -> breakLink(Status.CANCELLED.withDescription("step cancelled")
                    .withCause(c.cancellationCause()).asRuntimeException());
            ctx.addListener(onCancel, Runnable::run); // runs at once if already cancelled
            StepReply reply;
            try {
                if (broken != null) {
                    throw broken;
                }
                frames.write(out, r);
                if (meanwhile != null) {
                    try {
                        meanwhile.run();
                    } catch (RuntimeException e) {
                        breakLink(Status.CANCELLED.withDescription("the step this link's request waited for failed")
                                .withCause(e).asRuntimeException());
                        throw e;
                    }
                }
                CodedInputStream in = frames.next((int) Math.min(Integer.MAX_VALUE, timeoutSeconds * 1000));
                if (in == null) {
                    throw new IOException("the worker closed the step socket");
                }
                reply = StepReply.parseFrom(in);
            } catch (SocketTimeoutException e) {
                throw breakLink(Status.DEADLINE_EXCEEDED.withDescription("no reply to a step from " + peer
                        + " within " + timeoutSeconds + " s").asRuntimeException());
            } catch (InvalidProtocolBufferException | StepServer.Frames.BadFrame e) {
                throw breakLink(Status.INTERNAL.withDescription("malformed step reply from " + peer + ": "
                        + e.getMessage()).asRuntimeException());
            } catch (IOException e) {
                throw breakLink(Status.UNAVAILABLE.withDescription("step socket to " + peer + " failed: " + e)
                        .withCause(e).asRuntimeException());
            } finally {
                ctx.removeListener(onCancel);
            }
            if (reply.getErrorCode() != 0) {
                throw Status.fromCodeValue(reply.getErrorCode()).withDescription(reply.getError()).asRuntimeException();
            }
            return reply;
        } finally {
            lock.unlock();
        }
    }

    /** Breaks the link with {@code s} unless it broke already, closes the socket; returns the link's failure. */
    private StatusRuntimeException breakLink(StatusRuntimeException s) {
        synchronized (this) {
            if (broken == null) {
                broken = s;
            }
        }
        try {
            socket.close(); // a thread blocked reading the reply wakes up now
        } catch (IOException ignored) {
            // closing anyway
        }
        return broken;
    }

    @Override
    public void close() {
        breakLink(Status.CANCELLED.withDescription("step link closed").asRuntimeException());
    }
}
