package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.worker.proto.ControllerGrpc;
import io.spotserve.worker.proto.HeartbeatReply;
import io.spotserve.worker.proto.HeartbeatRequest;
import io.spotserve.worker.proto.Hop;
import io.spotserve.worker.proto.NoticeRequest;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.RegisterReply;
import io.spotserve.worker.proto.RegisterRequest;
import io.spotserve.worker.proto.StepRequest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Arrays;
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
 *
 * <p>Before it registers, a worker warms its own call path up ({@link Builder#warmUp}): a fresh JVM runs gRPC's
 * per-call code interpreted for its first few thousand calls (1-3 ms a call on a small VM against 0.15-0.3 ms
 * once C2 has compiled it), so it makes a bounded number of {@code WarmUp} calls to its own server over loopback,
 * through the same server, security interceptor, channel settings and message types as a real stage-to-stage
 * step, and joins only then. The controller sees nothing of it but a later registration.
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
    private BulkTransfer bulk;
    private StepServer stepServer;
    private volatile String instanceId;
    private volatile long epoch;
    private volatile long selfFenceNanos = Long.MAX_VALUE;
    private volatile long lastAnswer;
    private String address;

    private WorkerProcess(Builder b) {
        this.cfg = b;
        this.executor = b.executor != null ? b.executor : ExecutorProvider.best().create();
        this.channels = new Channels(b.security, b.maxMessageBytes);
        long staging = b.stagingMemory >= 0 ? b.stagingMemory : b.devices * b.deviceMemory;
        this.service = new WorkerService(executor, b.devices, b.deviceMemory, channels::to,
                new StagingArea(staging, b.stagingTimeout, System::nanoTime));
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
        if (cfg.bulkTransfer && !cfg.security.usesTls()) {
            // on the gRPC server's own address; under mTLS slices keep to the (TLS) gRPC streams
            bulk = new BulkTransfer(cfg.bind.getAddress(), null, service.bulkImporter());
            service.bulk(bulk);
            // steps too: a blocking reader thread per connection runs each step itself
            stepServer = new StepServer(cfg.bind.getAddress(), cfg.maxMessageBytes, service::answer,
                    service.partialsInbox());
            service.stepServer(stepServer);
        }
        warmUp();
        warmUpMigration();
        ControllerGrpc.ControllerBlockingStub controller = ControllerGrpc.newBlockingStub(channels.to(cfg.controller));
        RegisterReply reply;
        String registrationId = java.util.UUID.randomUUID().toString();
        long deadline = System.nanoTime() + cfg.registerTimeout.toNanos();
        while (true) {
            try {
                // a retry after a lost reply carries the same registration id: the controller answers it with the
                // instance it registered the first time, so no ghost instance appears
                reply = controller.withDeadlineAfter(10, TimeUnit.SECONDS).register(RegisterRequest.newBuilder()
                        .setRegistrationId(registrationId)
                        .setAddress(address).setDevices(cfg.devices).setDeviceMemoryBytes(cfg.deviceMemory)
                        .setExecutor(executor.name()).setLabel(cfg.label)
                        .setStoredBytesPerWeight(executor.storedBytesPerWeightExact()).build());
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

    /**
     * Runs {@link MigrationWarmUp} within {@code migrationWarmUp}, through a scratch bulk socket on the bind address
     * when this worker moves slices over one (best effort: a failure is a warning).
     */
    private void warmUpMigration() {
        if (cfg.migrationWarmUp.isZero()) {
            return;
        }
        try {
            MigrationWarmUp.Result r = MigrationWarmUp.run(executor, cfg.migrationWarmUp, MIGRATION_WARM_UP_BYTES,
                    bulk == null ? null : cfg.bind.getAddress());
            LOG.info("warmed the migration path up: {} MB in {} rounds, {} ms", r.bytes() / 1_000_000, r.rounds(),
                    r.took().toMillis());
        } catch (RuntimeException e) {
            LOG.warn("migration warm-up failed ({}); registering without it", e.toString());
        }
    }

    /**
     * Calls this worker's own {@code WarmUp} RPC over a dedicated channel to its advertised address (the one peers
     * dial, so mTLS host names check as they will for them) until {@code warmUpCalls} calls or {@code warmUpTime}
     * have passed, whichever comes first. Best effort: a failing call ends the warm-up with a warning, never the
     * start; the server answers these calls only during this window.
     */
    private void warmUp() {
        if (cfg.warmUpCalls == 0) {
            return;
        }
        long t0 = System.nanoTime();
        long deadline = t0 + cfg.warmUpTime.toNanos();
        float[] hidden = new float[WARM_UP_FLOATS];
        for (int i = 0; i < hidden.length; i++) {
            hidden[i] = (i % 17) * 0.25f - 2f;
        }
        StepRequest request = StepRequest.newBuilder().setPipeline(1).addSequences(1).addTokens(1).addPositions(0)
                .addLogitsFor(0).setStage(1).setHidden(Wire.floats(hidden, hidden.length))
                .addRoute(Hop.newBuilder().setAddress(address).setPipeline(1).setFirstStage(2)).build();
        long[] first = new long[Math.min(cfg.warmUpCalls, 200)];
        long[] last = new long[first.length];
        int done = 0;
        service.warming(true);
        ManagedChannel ch = channels.create(address);
        try {
            PeerGrpc.PeerBlockingStub stub = PeerGrpc.newBlockingStub(ch);
            while (done < cfg.warmUpCalls) {
                long c0 = System.nanoTime();
                if (c0 >= deadline) {
                    break;
                }
                ByteString logits;
                try {
                    // no call outlives the time bound, even one to an advertised address this host cannot reach
                    logits = stub.withDeadlineAfter(deadline - c0, TimeUnit.NANOSECONDS).warmUp(request).getLogits();
                } catch (StatusRuntimeException e) {
                    if (done > 0 && e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
                        break; // the time bound ran out during a call
                    }
                    throw e;
                }
                if (logits.size() != hidden.length * Float.BYTES) {
                    throw new IllegalStateException("warm-up reply carries " + logits.size() + " bytes, expected "
                            + hidden.length * Float.BYTES);
                }
                long took = System.nanoTime() - c0;
                if (done < first.length) {
                    first[done] = took;
                }
                last[done % last.length] = took;
                done++;
            }
            LOG.info("warmed the call path up: {} calls to its own server in {} ms; median {} us over the first {} "
                            + "calls, {} us over the last {}", done, (System.nanoTime() - t0) / 1_000_000,
                    medianMicros(first, Math.min(done, first.length)), Math.min(done, first.length),
                    medianMicros(last, Math.min(done, last.length)), Math.min(done, last.length));
        } catch (RuntimeException e) {
            LOG.warn("warm-up call to its own server at {} failed after {} calls ({}); registering without it",
                    address, done, e.toString());
        } finally {
            service.warming(false);
            ch.shutdownNow();
        }
    }

    private static long medianMicros(long[] nanos, int n) {
        if (n == 0) {
            return 0;
        }
        long[] a = Arrays.copyOf(nanos, n);
        Arrays.sort(a);
        return a[n / 2] / 1000;
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
        service.sweepStaging(); // staged slices nobody sent within the staging timeout
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

    /** This worker's bulk socket, or null without one (for tests). */
    BulkTransfer bulkTransfer() {
        return bulk;
    }

    /** How many warm-up calls this worker's own server answered before it registered (0 with warm-up off). */
    public long warmUpCalls() {
        return service.warmUpServed();
    }

    /** Logits the controller collected straight from this worker's last stages (tests). */
    long logitsCollected() {
        return service.logitsCollected();
    }

    /** Partials messages this worker's split-group members sent: {over step sockets, over gRPC streams} (tests). */
    long[] partialsSends() {
        return service.partialsSends();
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
        // take no more steps or partials before the split groups are forgotten: a peer member's frame then meets a
        // closed socket (UNAVAILABLE, so the controller sees a lost worker and the engine recovers), never a refusal
        // for a group this worker no longer knows (INVALID_ARGUMENT, which would fail the peer's requests)
        if (stepServer != null) {
            stepServer.close();
        }
        if (server != null) {
            server.shutdownNow();
        }
        service.closeLinks();
        Servers.stop(server);
        if (bulk != null) {
            bulk.close();
        }
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

    /**
     * Default bound on the warm-up's calls: 0, off. On the 2-core VM it was measured on, a fresh worker made only
     * 36-721 calls in 1.5 s (C2 needs 4,000-12,000) and the gain was within the noise, while every worker spent about
     * 2 s more CPU; 5000 is where a cold gRPC call comes within 2x of a warm one on a machine with cores to spare.
     */
    public static final int DEFAULT_WARM_UP_CALLS = 0;
    /**
     * Default bound on the migration warm-up's wall time ({@link Builder#migrationWarmUp}): on the 2-vCPU VM a fresh
     * worker moved its first 95 MB 2-3x faster after it (benchmarks/README.md, issue 13).
     */
    public static final Duration DEFAULT_MIGRATION_WARM_UP = Duration.ofSeconds(1);
    /** The migration warm-up stops after this many bytes even within its time. */
    static final long MIGRATION_WARM_UP_BYTES = 512L << 20;
    /** Default bound on the warm-up's wall time. */
    public static final Duration DEFAULT_WARM_UP_TIME = Duration.ofMillis(1500);
    /** Floats of activations per warm-up call: one 2 KB residual vector, the size of a small model's step. */
    static final int WARM_UP_FLOATS = 512;

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
        private int warmUpCalls = DEFAULT_WARM_UP_CALLS;
        private Duration warmUpTime = DEFAULT_WARM_UP_TIME;
        private Duration migrationWarmUp = DEFAULT_MIGRATION_WARM_UP;
        private boolean bulkTransfer = true;
        private long stagingMemory = -1;
        private Duration stagingTimeout = Duration.ofMinutes(2);

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

        /**
         * At most {@code calls} warm-up calls (0 = no warm-up) within the default {@link #DEFAULT_WARM_UP_TIME}
         * before registering.
         */
        public Builder warmUp(int calls) {
            return warmUp(calls, warmUpTime);
        }

        /** At most {@code calls} warm-up calls (0 = no warm-up) and at most {@code maxTime} before registering. */
        public Builder warmUp(int calls, Duration maxTime) {
            if (calls < 0) {
                throw new IllegalArgumentException("warm-up calls must be >= 0 (0 = off), got " + calls);
            }
            Objects.requireNonNull(maxTime, "maxTime");
            if (maxTime.isNegative() || maxTime.isZero() || maxTime.compareTo(Duration.ofMinutes(1)) > 0) {
                throw new IllegalArgumentException("warm-up time must be in (0, 1 min], got " + maxTime);
            }
            this.warmUpCalls = calls;
            this.warmUpTime = maxTime;
            return this;
        }

        /**
         * At most {@code maxTime} of moving a small random model's weights between two scratch pipelines of this
         * worker's executor before it registers ({@link Duration#ZERO} = off; default
         * {@link #DEFAULT_MIGRATION_WARM_UP}), so the first migration into it runs compiled code.
         */
        public Builder migrationWarmUp(Duration maxTime) {
            Objects.requireNonNull(maxTime, "maxTime");
            if (maxTime.isNegative() || maxTime.compareTo(Duration.ofMinutes(1)) > 0) {
                throw new IllegalArgumentException("migration warm-up must be in [0, 1 min] (0 = off), got " + maxTime);
            }
            this.migrationWarmUp = maxTime;
            return this;
        }

        /**
         * Whether slices to and from other workers may travel over this worker's bulk socket (plain TCP on the bind
         * address, opened per transfer with a one-time ticket issued over gRPC) instead of gRPC streams; default on.
         * Under mTLS slices always take the gRPC streams. The same switch governs the step socket (forward steps over
         * plain TCP with a ticket from {@code Worker/OpenSteps}, else over the {@code Worker/Steps} gRPC stream).
         */
        public Builder bulkTransfer(boolean on) {
            this.bulkTransfer = on;
            return this;
        }

        /**
         * The most bytes of migration slices this worker keeps staged at once (exported, waiting to be sent to their
         * target worker), outside its device memory; default: devices x device memory. A stage beyond it is refused.
         */
        public Builder stagingMemory(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("staging memory must be >= 0 bytes, got " + bytes);
            }
            this.stagingMemory = bytes;
            return this;
        }

        /** How long a staged slice waits for its send before it is freed (a controller that gave up); default 2 min. */
        public Builder stagingTimeout(Duration d) {
            Objects.requireNonNull(d, "stagingTimeout");
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("staging timeout must be positive, got " + d);
            }
            this.stagingTimeout = d;
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
