package io.spotserve.worker;

import io.grpc.Context;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.instance.InstanceType;
import io.spotserve.worker.proto.ControllerGrpc;
import io.spotserve.worker.proto.HeartbeatReply;
import io.spotserve.worker.proto.HeartbeatRequest;
import io.spotserve.worker.proto.NoticeReply;
import io.spotserve.worker.proto.NoticeRequest;
import io.spotserve.worker.proto.RegisterReply;
import io.spotserve.worker.proto.RegisterRequest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.IntConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The controller's view of real worker processes, as an {@link InstanceProvider}: it listens for workers (one
 * per cloud instance, started by {@code java -jar spotserve-worker.jar --controller HOST:PORT ...}); a worker
 * that registers is {@link InstanceEvent.Acquired}, the notice it forwards from its cloud is a
 * {@link InstanceEvent.PreemptionNotice} with the deadline, and a worker whose lease expires (no heartbeat for
 * the lease timeout, 2 s by default) or that is released is {@link InstanceEvent.Terminated}. Each registration
 * gets a fresh instance id and epoch; once declared dead an epoch is fenced: its heartbeats are answered FENCED,
 * its notices ignored, and {@link #executor()} never uses a result from it (calls fail with
 * {@link io.spotserve.exec.DeviceLostException}).
 *
 * <p>The host application passes this provider to {@code ServingEngine.builder().instances(...)} and
 * {@link #executor()} as the engine's executor. Binds loopback unless told otherwise; every caller must
 * authenticate ({@link WireSecurity}).
 */
public final class RemoteInstanceProvider implements InstanceProvider {
    private static final Logger LOG = LoggerFactory.getLogger(RemoteInstanceProvider.class);

    private final Builder cfg;
    private final Server server;
    private final Channels channels;
    private final ScheduledExecutorService leases;
    private final Map<String, WorkerLink> workers = new LinkedHashMap<>();
    /** Live workers by the registration id they chose: a retried registration finds its instance here. */
    private final Map<String, WorkerLink> registrations = new java.util.HashMap<>();
    private final List<InstanceEvent> pending = new ArrayList<>();
    private final long startNanos = System.nanoTime();
    private final RemoteExecutor executor;
    private java.util.function.Consumer<InstanceEvent> listener;
    private long nextEpoch = 1;
    private int nextId;
    private volatile boolean closed;

    private RemoteInstanceProvider(Builder b) throws IOException {
        this.cfg = b;
        this.channels = new Channels(b.security, b.maxMessageBytes);
        this.executor = new RemoteExecutor(this, channels);
        this.server = Servers.start(b.bind, b.security, b.maxMessageBytes, "controller", List.of(new Service()));
        this.leases = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "spotserve-controller-leases");
            t.setDaemon(true);
            return t;
        });
        long every = Math.max(10, b.leaseTimeout.toMillis() / 8);
        leases.scheduleWithFixedDelay(this::expireLeases, every, every, TimeUnit.MILLISECONDS);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The port the controller listens on. */
    public int port() {
        return server.getPort();
    }

    /** host:port workers pass as {@code --controller}. */
    public String address() {
        String h = cfg.bind.getAddress() != null ? cfg.bind.getAddress().getHostAddress() : cfg.bind.getHostString();
        return (h.contains(":") ? "[" + h + "]" : h) + ":" + port();
    }

    /** Whether tensor groups may span workers ({@link Builder#tensorGroupsSpanWorkers}). */
    boolean tensorGroupsSpanWorkers() {
        return cfg.tensorGroupsSpanWorkers;
    }

    /** The executor whose devices are the registered workers' devices. */
    public RemoteExecutor executor() {
        return executor;
    }

    /** Ids of the workers whose lease is live. */
    public synchronized List<String> liveWorkers() {
        List<String> out = new ArrayList<>();
        for (WorkerLink w : workers.values()) {
            if (!w.dead) {
                out.add(w.id);
            }
        }
        return out;
    }

    /**
     * The most bytes per matrix weight any live worker stores (what their executors said at registration), or
     * {@code fallback} while none is live: the planner's memory model then never under-counts a worker.
     */
    synchronized double bytesPerWeight(double fallback) {
        double most = 0;
        for (WorkerLink w : workers.values()) {
            if (!w.dead) {
                most = Math.max(most, w.bytesPerWeight);
            }
        }
        return most > 0 ? most : fallback;
    }

    private Duration now() {
        return cfg.clock != null ? cfg.clock.get() : Duration.ofNanos(System.nanoTime() - startNanos);
    }

    private synchronized void emit(InstanceEvent e) {
        if (listener != null) {
            listener.accept(e);
        } else {
            pending.add(e);
        }
    }

    /** The live worker with this instance id. */
    synchronized WorkerLink live(String instanceId) {
        WorkerLink w = workers.get(instanceId);
        return w == null || w.dead ? null : w;
    }

    /**
     * Waits until one of {@code links} is declared dead, at most until a hung worker's lease would have expired (a
     * killed worker's dropped connection is seen at once); returns whether one was.
     */
    boolean awaitDeath(List<WorkerLink> links) {
        if (closed) {
            return false;
        }
        CompletableFuture<Void> any = new CompletableFuture<>();
        Context.CancellationListener onDeath = ctx -> any.complete(null);
        for (WorkerLink w : links) {
            w.calls.addListener(onDeath, Runnable::run);
        }
        long waitMs = cfg.leaseTimeout.toMillis() * 3 / 2 + 100;
        try {
            any.get(waitMs, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException | ExecutionException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            for (WorkerLink w : links) {
                w.calls.removeListener(onDeath);
            }
        }
    }

    /** Declares a worker dead (lease expired, released, or its connection failed): fence, cancel, report. */
    void declareDead(WorkerLink w, String why) {
        declareDead(w, why, false);
    }

    private void declareDead(WorkerLink w, String why, boolean released) {
        synchronized (this) {
            if (w.dead) {
                return;
            }
            w.dead = true;
            registrations.values().remove(w);
        }
        w.calls.cancel(new IllegalStateException("worker " + w.id + " declared dead: " + why));
        channels.forget(w.address);
        if (released) {
            LOG.info("worker {} (epoch {}, {}) released", w.id, w.epoch, w.address);
        } else {
            LOG.warn("worker {} (epoch {}, {}) is gone: {}", w.id, w.epoch, w.address, why);
        }
        emit(new InstanceEvent.Terminated(w.id, now()));
    }

    private void expireLeases() {
        long limit = cfg.leaseTimeout.toNanos();
        List<WorkerLink> expired = new ArrayList<>();
        synchronized (this) {
            long t = System.nanoTime();
            for (WorkerLink w : workers.values()) {
                if (!w.dead && t - w.lastBeat > limit) {
                    expired.add(w);
                }
            }
        }
        for (WorkerLink w : expired) {
            declareDead(w, "no heartbeat for " + cfg.leaseTimeout.toMillis() + " ms (lease expired)");
        }
    }

    @Override
    public synchronized void start(java.util.function.Consumer<InstanceEvent> l) {
        Objects.requireNonNull(l, "listener");
        if (listener != null) {
            throw new IllegalStateException("RemoteInstanceProvider was already started");
        }
        listener = l;
        for (InstanceEvent e : pending) {
            l.accept(e);
        }
        pending.clear();
    }

    @Override
    public void requestOnDemand(int count) {
        if (cfg.launcher != null) {
            cfg.launcher.accept(count);
        } else {
            LOG.info("asked for {} on-demand instances but no launcher is configured; start workers by hand", count);
        }
    }

    @Override
    public void release(String instanceId) {
        WorkerLink w;
        synchronized (this) {
            w = workers.get(instanceId);
        }
        if (w != null) {
            declareDead(w, "released by the engine", true);
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        leases.shutdownNow();
        Servers.stop(server);
        channels.close();
    }

    /** A registered worker: where it listens, its lease, and the context its calls run in (cancelled at death). */
    static final class WorkerLink {
        final String id;
        final long epoch;
        final String address;
        final int devices;
        final long deviceMemory;
        /** Bytes one matrix weight takes on this worker's devices (what its executor said at registration). */
        final double bytesPerWeight;
        final Context.CancellableContext calls = Context.ROOT.withCancellation();
        volatile long lastBeat = System.nanoTime();
        volatile boolean dead;

        WorkerLink(String id, long epoch, String address, int devices, long deviceMemory, double bytesPerWeight) {
            this.id = id;
            this.bytesPerWeight = bytesPerWeight;
            this.epoch = epoch;
            this.address = address;
            this.devices = devices;
            this.deviceMemory = deviceMemory;
        }
    }

    private final class Service extends ControllerGrpc.ControllerImplBase {
        @Override
        public void register(RegisterRequest r, StreamObserver<RegisterReply> out) {
            WorkerLink w;
            try {
                Servers.address(r.getAddress());
                if (r.getDevices() < 1 || r.getDevices() > 1024 || r.getDeviceMemoryBytes() < 1) {
                    throw new IllegalArgumentException("a worker offers 1..1024 devices of >= 1 byte; got "
                            + r.getDevices() + " of " + r.getDeviceMemoryBytes());
                }
                if (r.getRegistrationId().length() > 64) {
                    throw new IllegalArgumentException("a registration id has at most 64 characters; got "
                            + r.getRegistrationId().length());
                }
                double bpw = r.getStoredBytesPerWeight();
                if (!(bpw == 0 || (bpw >= 0.5 && bpw <= 8))) {
                    throw new IllegalArgumentException("a worker stores 0.5..8 bytes per weight (0: not said); got "
                            + bpw);
                }
            } catch (IllegalArgumentException e) {
                out.onError(Wire.status(e));
                return;
            }
            synchronized (RemoteInstanceProvider.this) {
                if (closed) {
                    out.onError(io.grpc.Status.UNAVAILABLE.withDescription("controller is closing").asRuntimeException());
                    return;
                }
                WorkerLink earlier = r.getRegistrationId().isEmpty() ? null : registrations.get(r.getRegistrationId());
                if (earlier != null && !earlier.dead && earlier.address.equals(r.getAddress())) {
                    // the same worker again: its first reply was lost. Same instance, same epoch, no second Acquired
                    LOG.info("worker {} registered again from {} (a retry: same registration)", earlier.id,
                            earlier.address);
                    out.onNext(registered(earlier));
                    out.onCompleted();
                    return;
                }
                String id = cfg.idPrefix + (nextId++);
                w = new WorkerLink(id, nextEpoch++, r.getAddress(), r.getDevices(), r.getDeviceMemoryBytes(),
                        r.getStoredBytesPerWeight() == 0 ? Float.BYTES : r.getStoredBytesPerWeight());
                workers.put(id, w);
                if (!r.getRegistrationId().isEmpty()) {
                    registrations.put(r.getRegistrationId(), w);
                }
            }
            InstanceType type = new InstanceType(cfg.typeName, w.devices, w.deviceMemory, cfg.pricePerHour, cfg.market);
            LOG.info("worker {} registered from {} ({} x {} bytes, {}, {} bytes per weight, '{}')", w.id, w.address,
                    w.devices, w.deviceMemory, r.getExecutor(), w.bytesPerWeight, r.getLabel());
            out.onNext(registered(w));
            out.onCompleted();
            emit(new InstanceEvent.Acquired(new Instance(w.id, type), now()));
        }

        private RegisterReply registered(WorkerLink w) {
            long lease = cfg.leaseTimeout.toMillis();
            return RegisterReply.newBuilder().setInstanceId(w.id).setEpoch(w.epoch)
                    .setHeartbeatIntervalMs(Math.max(10, lease / 4)).setLeaseTimeoutMs(lease).build();
        }

        @Override
        public void heartbeat(HeartbeatRequest r, StreamObserver<HeartbeatReply> out) {
            WorkerLink w;
            synchronized (RemoteInstanceProvider.this) {
                w = workers.get(r.getInstanceId());
            }
            HeartbeatReply.Status s;
            if (w == null || w.dead || w.epoch != r.getEpoch()) {
                s = HeartbeatReply.Status.FENCED;
            } else {
                w.lastBeat = System.nanoTime();
                s = HeartbeatReply.Status.OK;
            }
            out.onNext(HeartbeatReply.newBuilder().setStatus(s).build());
            out.onCompleted();
        }

        @Override
        public void attach(HeartbeatRequest r, StreamObserver<HeartbeatReply> out) {
            WorkerLink w = live(r.getInstanceId());
            if (w == null || w.epoch != r.getEpoch()) {
                out.onNext(HeartbeatReply.newBuilder().setStatus(HeartbeatReply.Status.FENCED).build());
                out.onCompleted();
                return;
            }
            // the stream stays open; its cancellation is the worker's connection going away
            ((io.grpc.stub.ServerCallStreamObserver<HeartbeatReply>) out).setOnCancelHandler(() -> {
                if (!closed) {
                    declareDead(w, "its connection to the controller dropped");
                }
            });
        }

        @Override
        public void notice(NoticeRequest r, StreamObserver<NoticeReply> out) {
            WorkerLink w = live(r.getInstanceId());
            boolean ok = w != null && w.epoch == r.getEpoch() && r.getGraceMs() >= 0;
            if (ok) {
                Duration at = now();
                LOG.warn("worker {} got a {} preemption notice: {} ms left ({})", w.id, r.getSource(), r.getGraceMs(),
                        r.getDetail());
                emit(new InstanceEvent.PreemptionNotice(w.id, at, at.plusMillis(r.getGraceMs())));
            }
            out.onNext(NoticeReply.newBuilder().setAccepted(ok).build());
            out.onCompleted();
        }
    }

    /** Configuration of the controller endpoint. */
    public static final class Builder {
        private InetSocketAddress bind = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        private WireSecurity security;
        private Duration leaseTimeout = Duration.ofSeconds(2);
        private String typeName = "worker";
        private double pricePerHour;
        private InstanceType.Market market = InstanceType.Market.SPOT;
        private IntConsumer launcher;
        private Supplier<Duration> clock;
        private String idPrefix = "w";
        private int maxMessageBytes = Wire.DEFAULT_MAX_MESSAGE_BYTES;
        private boolean tensorGroupsSpanWorkers;

        /** Where to listen for workers; loopback on a free port by default. */
        public Builder bind(InetSocketAddress a) {
            this.bind = Objects.requireNonNull(a, "bind");
            return this;
        }

        /** How workers authenticate (required). */
        public Builder security(WireSecurity s) {
            this.security = Objects.requireNonNull(s, "security");
            return this;
        }

        /** How long without a heartbeat until a worker is declared dead (default 2 s). */
        public Builder leaseTimeout(Duration d) {
            if (d.toMillis() < 40) {
                throw new IllegalArgumentException("lease timeout must be >= 40 ms, got " + d);
            }
            this.leaseTimeout = d;
            return this;
        }

        /** The instance type reported for workers: its name, price and market (GPUs and memory come from the worker). */
        public Builder instanceType(String name, double pricePerHour, InstanceType.Market market) {
            this.typeName = Objects.requireNonNull(name, "name");
            this.pricePerHour = pricePerHour;
            this.market = Objects.requireNonNull(market, "market");
            return this;
        }

        /** What {@link #requestOnDemand} calls to start more workers (e.g. the cloud's launch API). */
        public Builder launcher(IntConsumer l) {
            this.launcher = l;
            return this;
        }

        /** The engine's clock for event times (default: time since this provider was built). */
        public Builder clock(Supplier<Duration> c) {
            this.clock = c;
            return this;
        }

        /** Prefix of the instance ids given to workers (ids are prefix + a counter, never reused). */
        public Builder idPrefix(String p) {
            this.idPrefix = Objects.requireNonNull(p, "idPrefix");
            return this;
        }

        public Builder maxMessageBytes(int bytes) {
            if (bytes < Wire.CHUNK_BYTES + (1 << 16)) {
                throw new IllegalArgumentException("max message size must leave room for a 4 MiB chunk, got " + bytes);
            }
            this.maxMessageBytes = bytes;
            return this;
        }

        /**
         * Whether the engine may split a tensor group (the M shards of one pipeline stage) over several workers;
         * default false: the engine then deploys a tensor degree M only on workers whose device count M divides, keeps
         * each group inside one worker (where it reduces in-process) and its Algorithm 1 searches only such M.
         *
         * <p>When true ({@link RemoteExecutor#tensorGroupsSpanInstances()}), a group may span workers: at each of a
         * stage's reduce points (the first stage's embedding, then two per layer: 1 + 2 × layers for a whole model)
         * every member sends its shards' partial sums, {@code count × dim} floats, to every other member of the group
         * over a persistent peer socket and waits for theirs. That is one network one-way latency per reduce point on
         * the step's critical path. Measured on loopback on a loaded 2-vCPU VM: about 190 µs of worker CPU per frame
         * and 300 to 400 µs of wall time per reduce point (25M model, P1M2 split over two worker JVMs: 17 points and
         * 69,632 bytes of partials per decode step; the step 1.5 to 2.0 times the same group inside one worker in a
         * quiet window, 1.6 to 3.5 times under load; {@code GroupStepBench}, benchmarks/notes/worker-migration.md).
         * Enable it for models whose tensor degree M must exceed one VM's GPUs (the paper's GPT-20B P2M8 and
         * LLaMA-30B P4M8 span two 4-GPU instances), and only between workers on fast links (one placement group or
         * rack, tens of microseconds one way): there a decode step's 1 + 2 × layers sequential exchanges cost far
         * less than its compute. On slower links, or where a group fits one worker, leave it off.
         */
        public Builder tensorGroupsSpanWorkers(boolean allow) {
            this.tensorGroupsSpanWorkers = allow;
            return this;
        }

        /** Starts listening. */
        public RemoteInstanceProvider build() throws IOException {
            if (security == null) {
                throw new IllegalStateException("the controller needs a shared token or mTLS material; it never runs "
                        + "unauthenticated");
            }
            return new RemoteInstanceProvider(this);
        }
    }
}
