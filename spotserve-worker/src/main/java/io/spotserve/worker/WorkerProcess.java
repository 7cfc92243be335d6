package io.spotserve.worker;

import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.worker.proto.ControllerGrpc;
import io.spotserve.worker.proto.HeartbeatReply;
import io.spotserve.worker.proto.HeartbeatRequest;
import io.spotserve.worker.proto.NoticeRequest;
import io.spotserve.worker.proto.RegisterReply;
import io.spotserve.worker.proto.RegisterRequest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One worker: the devices of one cloud instance behind the executor SPI, served over gRPC to the controller and
 * to the other workers. {@link #start} binds the server, registers with the controller and keeps the lease
 * alive with heartbeats; {@link #terminated()} completes when the controller fences this worker (it declared it
 * dead) or the worker is closed. Used by {@link WorkerMain}; embeddable for tests.
 */
public final class WorkerProcess implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerProcess.class);

    private final Builder cfg;
    private final Executor executor;
    private final Channels channels;
    private final WorkerService service;
    private final CompletableFuture<String> terminated = new CompletableFuture<>();
    private final ScheduledExecutorService heartbeats;
    private Server server;
    private volatile String instanceId;
    private volatile long epoch;
    private volatile long selfFenceNanos = Long.MAX_VALUE;
    private volatile long lastAnswer;
    private String address;

    private WorkerProcess(Builder b) {
        this.cfg = b;
        this.executor = b.executor != null ? b.executor : ExecutorProvider.best().create();
        this.channels = new Channels(b.security, b.maxMessageBytes);
        this.service = new WorkerService(executor, b.devices, b.deviceMemory, channels::to);
        this.heartbeats = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "spotserve-worker-heartbeat");
            t.setDaemon(true);
            return t;
        });
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Binds the server, registers with the controller and starts heartbeating.
     *
     * @throws IOException           if the server cannot bind
     * @throws IllegalStateException if the controller refuses or cannot be reached within the register timeout
     */
    public WorkerProcess start() throws IOException {
        server = Servers.start(cfg.bind, cfg.security, cfg.maxMessageBytes, "worker",
                List.of(service.worker(), service.peer()));
        String host = cfg.advertise != null ? cfg.advertise : hostOf(cfg.bind);
        address = host + ":" + server.getPort();
        ControllerGrpc.ControllerBlockingStub controller = ControllerGrpc.newBlockingStub(channels.to(cfg.controller));
        RegisterReply reply;
        long deadline = System.nanoTime() + cfg.registerTimeout.toNanos();
        while (true) {
            try {
                // a retry after a lost reply registers again: the first registration then never heartbeats and
                // its lease expires (Terminated), so no ghost stays
                reply = controller.withDeadlineAfter(10, TimeUnit.SECONDS).register(RegisterRequest.newBuilder()
                        .setAddress(address).setDevices(cfg.devices).setDeviceMemoryBytes(cfg.deviceMemory)
                        .setExecutor(executor.name()).setLabel(cfg.label).build());
                break;
            } catch (StatusRuntimeException e) {
                Status.Code code = e.getStatus().getCode();
                boolean retry = code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED;
                if (!retry || System.nanoTime() > deadline) {
                    close();
                    throw new IllegalStateException("controller " + cfg.controller + " refused registration: "
                            + code + (e.getStatus().getDescription() == null ? "" : " (" + e.getStatus().getDescription()
                            + ")"), e);
                }
                sleep(200);
            }
        }
        instanceId = reply.getInstanceId();
        epoch = reply.getEpoch();
        service.registeredAs(instanceId);
        LOG.info("worker {} (epoch {}) serving {} devices of {} bytes with {} at {}", instanceId, epoch, cfg.devices,
                cfg.deviceMemory, executor.name(), address);
        long every = Math.max(50, reply.getHeartbeatIntervalMs());
        // the controller declares us dead after its lease; without an answer for 5 leases (>= 1 s) we are dead to
        // it for sure, so stop: a worker never outlives its controller's interest (nor a crashed test's)
        selfFenceNanos = TimeUnit.MILLISECONDS.toNanos(Math.max(1_000, 5 * reply.getLeaseTimeoutMs()));
        lastAnswer = System.nanoTime();
        heartbeats.scheduleWithFixedDelay(() -> heartbeat(controller), every, every, TimeUnit.MILLISECONDS);
        attach();
        return this;
    }

    /** Opens the stream whose drop tells the controller at once that this process or its connection is gone. */
    private void attach() {
        ControllerGrpc.newStub(channels.to(cfg.controller)).attach(HeartbeatRequest.newBuilder().setInstanceId(instanceId)
                .setEpoch(epoch).build(), new io.grpc.stub.StreamObserver<>() {
                    @Override
                    public void onNext(HeartbeatReply r) {
                        if (r.getStatus() == HeartbeatReply.Status.FENCED) {
                            fence("the controller declared worker " + instanceId + " (epoch " + epoch + ") dead");
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        // the connection dropped: the controller has declared us dead; the next heartbeat hears so
                        LOG.debug("attach stream to {} ended: {}", cfg.controller, t.toString());
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
    }

    private void heartbeat(ControllerGrpc.ControllerBlockingStub controller) {
        try {
            HeartbeatReply r = controller.withDeadlineAfter(2, TimeUnit.SECONDS).heartbeat(
                    HeartbeatRequest.newBuilder().setInstanceId(instanceId).setEpoch(epoch).build());
            lastAnswer = System.nanoTime();
            if (r.getStatus() == HeartbeatReply.Status.FENCED) {
                fence("the controller declared worker " + instanceId + " (epoch " + epoch + ") dead");
            }
        } catch (StatusRuntimeException e) {
            LOG.debug("heartbeat to {} failed: {}", cfg.controller, e.getStatus());
            long silent = System.nanoTime() - lastAnswer;
            if (silent > selfFenceNanos) {
                fence("no answer from controller " + cfg.controller + " for " + TimeUnit.NANOSECONDS.toSeconds(silent)
                        + " s (its lease on worker " + instanceId + " has expired)");
            }
        }
    }

    private void fence(String why) {
        if (terminated.isDone()) {
            return;
        }
        service.fence();
        LOG.warn("{}; fenced, serving nothing more", why);
        terminated.complete(why);
    }

    /**
     * Forwards a preemption notice to the controller.
     *
     * @return whether the controller accepted it
     */
    public boolean notice(String source, Duration grace, String detail) {
        try {
            return ControllerGrpc.newBlockingStub(channels.to(cfg.controller)).withDeadlineAfter(5, TimeUnit.SECONDS)
                    .notice(NoticeRequest.newBuilder().setInstanceId(instanceId).setEpoch(epoch).setSource(source)
                            .setGraceMs(Math.max(0, grace.toMillis())).setDetail(detail == null ? "" : detail).build())
                    .getAccepted();
        } catch (StatusRuntimeException e) {
            LOG.warn("could not forward the {} notice to {}: {}", source, cfg.controller, e.getStatus());
            return false;
        }
    }

    /** The instance id the controller gave this worker. */
    public String instanceId() {
        return instanceId;
    }

    /** host:port where this worker serves. */
    public String address() {
        return address;
    }

    /** Completes (with the reason) when the controller fences this worker or it is closed. */
    public CompletableFuture<String> terminated() {
        return terminated;
    }

    @Override
    public void close() {
        heartbeats.shutdownNow();
        Servers.stop(server);
        channels.close();
        executor.close();
        terminated.complete("closed");
    }

    private static String hostOf(InetSocketAddress a) {
        InetAddress ia = a.getAddress();
        if (ia != null && ia.isAnyLocalAddress()) {
            throw new IllegalArgumentException("bound to the wildcard address " + a + ": give --advertise HOST so the "
                    + "controller and peers know where to reach this worker");
        }
        String h = ia != null ? ia.getHostAddress() : a.getHostString();
        return h.contains(":") ? "[" + h + "]" : h;
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while registering");
        }
    }

    /** Configuration of a worker. */
    public static final class Builder {
        private String controller;
        private int devices = 1;
        private long deviceMemory = 1L << 30;
        private WireSecurity security;
        private InetSocketAddress bind = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        private String advertise;
        private Executor executor;
        private String label = "worker";
        private int maxMessageBytes = Wire.DEFAULT_MAX_MESSAGE_BYTES;
        private Duration registerTimeout = Duration.ofSeconds(30);

        /** host:port of the controller (required). */
        public Builder controller(String hostPort) {
            Servers.address(hostPort);
            this.controller = hostPort;
            return this;
        }

        public Builder devices(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("a worker hosts >= 1 devices, got " + n);
            }
            this.devices = n;
            return this;
        }

        public Builder deviceMemory(long bytes) {
            if (bytes < 1) {
                throw new IllegalArgumentException("device memory must be >= 1 byte, got " + bytes);
            }
            this.deviceMemory = bytes;
            return this;
        }

        /** How this worker authenticates and is authenticated (required). */
        public Builder security(WireSecurity s) {
            this.security = Objects.requireNonNull(s, "security");
            return this;
        }

        /** Where to listen; loopback on a free port by default. */
        public Builder bind(InetSocketAddress a) {
            this.bind = Objects.requireNonNull(a, "bind");
            return this;
        }

        /** The host the controller and peers dial (defaults to the bind host). */
        public Builder advertise(String host) {
            this.advertise = host;
            return this;
        }

        /** The executor to serve (defaults to {@code ExecutorProvider.best()}). */
        public Builder executor(Executor e) {
            this.executor = e;
            return this;
        }

        public Builder label(String l) {
            this.label = Objects.requireNonNull(l, "label");
            return this;
        }

        public Builder maxMessageBytes(int bytes) {
            if (bytes < Wire.CHUNK_BYTES + (1 << 16)) {
                throw new IllegalArgumentException("max message size must leave room for a 4 MiB chunk, got " + bytes);
            }
            this.maxMessageBytes = bytes;
            return this;
        }

        public Builder registerTimeout(Duration d) {
            this.registerTimeout = Objects.requireNonNull(d, "registerTimeout");
            return this;
        }

        public WorkerProcess build() {
            if (controller == null) {
                throw new IllegalStateException("a worker needs the controller's HOST:PORT");
            }
            if (security == null) {
                throw new IllegalStateException("a worker needs a shared token or mTLS material; it never runs "
                        + "unauthenticated");
            }
            return new WorkerProcess(this);
        }
    }
}
