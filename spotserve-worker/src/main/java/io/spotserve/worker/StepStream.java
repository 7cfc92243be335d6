package io.spotserve.worker;

import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;

/**
 * One long-lived {@code Worker/Steps} stream to the worker that hosts a pipeline's next stages: a step is one
 * request and its reply on the open stream instead of a unary call (no per-step HTTP/2 stream, headers, credentials
 * or deadline timer). One step at a time: {@link #tryStep} returns null when another thread is stepping (the caller
 * then makes a unary call). Replies are handled on the transport's thread (they only complete a future), so the
 * waiting caller is woken directly. A stream that failed, timed out or was cancelled is {@link #broken()} for good;
 * its owner opens a new one.
 */
final class StepStream implements StepLink {
    private final ReentrantLock lock = new ReentrantLock();
    private final ClientCallStreamObserver<StepRequest> requests;
    private volatile CompletableFuture<StepReply> pending;
    private volatile StatusRuntimeException broken;

    StepStream(ManagedChannel channel) {
        // a fresh root context: the stream outlives the call that opened it
        Context previous = Context.ROOT.attach();
        try {
            this.requests = (ClientCallStreamObserver<StepRequest>) WorkerGrpc.newStub(channel)
                    .withExecutor(Runnable::run).steps(new ClientResponseObserver<StepRequest, StepReply>() {
                        @Override
                        public void beforeStart(ClientCallStreamObserver<StepRequest> stream) {
                        }

                        @Override
                        public void onNext(StepReply r) {
                            CompletableFuture<StepReply> f = pending;
                            if (f != null) {
                                f.complete(r);
                            }
                        }

                        @Override
                        public void onError(Throwable t) {
                            fail(t instanceof StatusRuntimeException sre ? sre : Status.UNAVAILABLE.withCause(t)
                                    .withDescription("step stream failed: " + t).asRuntimeException());
                        }

                        @Override
                        public void onCompleted() {
                            fail(Status.UNAVAILABLE.withDescription("the worker closed the step stream")
                                    .asRuntimeException());
                        }
                    });
        } finally {
            Context.ROOT.detach(previous);
        }
    }

    private void fail(StatusRuntimeException e) {
        if (broken == null) {
            broken = e;
        }
        CompletableFuture<StepReply> f = pending;
        if (f != null) {
            f.completeExceptionally(e);
        }
    }

    @Override
    public boolean broken() {
        return broken != null;
    }

    /**
     * Sends {@code r} and waits for its reply, failing when the current gRPC context is cancelled (a worker involved
     * was declared dead) or after {@code timeoutSeconds}.
     *
     * @return the reply, or null if another thread is stepping on this stream right now
     * @throws StatusRuntimeException as a unary call would: the step's own refusal (the stream stays usable), or the
     *                                stream's failure (it is broken from then on)
     */
    @Override
    public StepReply tryStep(StepRequest r, long timeoutSeconds) {
        if (!lock.tryLock()) {
            return null;
        }
        try {
            if (broken != null) {
                throw broken;
            }
            CompletableFuture<StepReply> f = new CompletableFuture<>();
            pending = f;
            Context ctx = Context.current();
            Context.CancellationListener onCancel = c -> f.completeExceptionally(Status.CANCELLED
                    .withDescription("step cancelled").withCause(c.cancellationCause()).asRuntimeException());
            ctx.addListener(onCancel, Runnable::run);
            StepReply reply;
            try {
                if (broken != null) { // failed between the check and the future: never wait for a reply
                    throw broken;
                }
                requests.onNext(r);
                reply = f.get(timeoutSeconds, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                StatusRuntimeException s = e.getCause() instanceof StatusRuntimeException sre ? sre
                        : Status.INTERNAL.withCause(e.getCause()).asRuntimeException();
                breakStream(s); // whatever comes next on this stream would answer the wrong step
                throw s;
            } catch (TimeoutException e) {
                StatusRuntimeException s = Status.DEADLINE_EXCEEDED.withDescription("no reply to a step within "
                        + timeoutSeconds + " s").asRuntimeException();
                breakStream(s);
                throw s;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                StatusRuntimeException s = Status.CANCELLED.withDescription("interrupted").asRuntimeException();
                breakStream(s);
                throw s;
            } finally {
                ctx.removeListener(onCancel);
                pending = null;
            }
            if (reply.getErrorCode() != 0) {
                throw Status.fromCodeValue(reply.getErrorCode()).withDescription(reply.getError()).asRuntimeException();
            }
            return reply;
        } finally {
            lock.unlock();
        }
    }

    private void breakStream(StatusRuntimeException s) {
        if (broken == null) {
            broken = s;
        }
        requests.cancel("step stream abandoned: " + s.getStatus(), null);
    }

    @Override
    public void close() {
        if (lock.tryLock()) {
            try {
                if (broken == null) {
                    broken = Status.CANCELLED.withDescription("step stream closed").asRuntimeException();
                    requests.onCompleted();
                }
            } finally {
                lock.unlock();
            }
        } else { // a step is waiting on it: it fails now
            breakStream(Status.CANCELLED.withDescription("step stream closed").asRuntimeException());
        }
    }

    /**
     * The step links a worker keeps to the next stage's worker, one per hosted pipeline: the peer's step socket where
     * it has one ({@link StepSocket#open}), else a step stream.
     */
    static final class Hops {
        private record Hop(String address, StepLink link) {
        }

        private final Function<String, ManagedChannel> peers;
        private final Map<Long, Hop> open = new ConcurrentHashMap<>();

        Hops(Function<String, ManagedChannel> peers) {
            this.peers = peers;
        }

        /**
         * Hands a step of {@code pipeline} on to the worker at {@code address} (a unary call while its link is busy).
         */
        StepReply step(long pipeline, String address, StepRequest forward) {
            Hop h = open.get(pipeline);
            if (h == null || h.link().broken() || !h.address().equals(address)) {
                // opened outside the map's lock (a ticket call and a connect); one pipeline's steps come one at a time
                Hop fresh = new Hop(address, StepSocket.open(peers.apply(address), address));
                Hop old = open.put(pipeline, fresh);
                if (old != null) {
                    old.link().close();
                }
                h = fresh;
            }
            StepReply reply = h.link().tryStep(forward, 60);
            return reply != null ? reply : PeerGrpc.newBlockingStub(peers.apply(address))
                    .withDeadlineAfter(60, TimeUnit.SECONDS).stageForward(forward);
        }

        void close(long pipeline) {
            Hop h = open.remove(pipeline);
            if (h != null) {
                h.link().close();
            }
        }

        void closeAll() {
            for (Long id : List.copyOf(open.keySet())) {
                close(id);
            }
        }
    }
}
