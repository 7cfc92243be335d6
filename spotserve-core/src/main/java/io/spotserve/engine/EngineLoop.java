package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightSource;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.ContextUnit;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapper;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.MigrationInfeasibleException;
import io.spotserve.plan.MigrationPlanner;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.Position;
import io.spotserve.plan.TargetFleet;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine's control loop and all its mutable state (request manager, instance manager and the
 * reconfiguration step of the meta-context manager, DESIGN.md §2), driven by one thread:
 * <ol>
 *   <li>drain the inbox (submissions, instance events, close) — events dated in the future wait in a timer queue;</li>
 *   <li>apply due events and preemption deadlines; drop cancelled and expired requests;</li>
 *   <li>on a membership change: choose the configuration C = (D, P, M, B) for the usable devices
 *       ({@link ConfigPlanner}: Algorithm 1 with a cost model, else the configured layouts), map its
 *       positions to devices with the {@link DeviceMapper} (most context stays in place), order the moves with
 *       the {@link MigrationPlanner} and carry them out ({@link ContextMigration}): KV caches of inherited
 *       requests and weights really move between device arenas, lost ones are reloaded from the checkpoint;
 *       requests whose cache is lost go back to the front of the queue with their committed tokens;</li>
 *   <li>on a preemption notice the doomed pipelines keep decoding until just before the deadline (the
 *       interruption arranger's "S more steps"), then migrate off the instance;</li>
 *   <li>admit queued requests into pipelines (up to B each) and run one forward step per busy pipeline, mixing
 *       prompt chunks of new or resumed requests with one decode position per running request;</li>
 *   <li>sample with each request's own sampler, commit, stream, complete; when idle, wait on the clock.</li>
 * </ol>
 * Because sampling state and committed tokens live here and a resumed request re-feeds exactly its prompt and
 * committed tokens, outputs do not depend on batching, placement or interruptions.
 */
final class EngineLoop {
    private static final Logger LOG = LoggerFactory.getLogger(EngineLoop.class);

    final Tokenizer tokenizer;
    final EngineClock clock;
    private final WeightSource weights;
    private final LlamaConfig config;
    private final InstanceProvider provider;
    private final Executor executor;
    private final boolean ownsExecutor;
    private final int maxBatch;
    private final int maxBatchTokens;
    /** How context crosses a reconfiguration (SpotServe or one of the paper's baselines). */
    private final ReconfigurationMode reconfigurationMode;
    /** The fewest queued requests that may join a pipeline already decoding. */
    private final int admissionGroup;
    private final int queueCapacity;
    private final int targetInstances;
    private final Duration drainTimeout;
    private final ModelContext modelContext;
    /** Which configuration to run, and when to re-plan (Algorithm 1 with a cost model, else fixed layouts). */
    private final ConfigPlanner planner;
    /** KV caches parked in host memory while their requests wait for a pipeline. */
    private final KvParking parking;

    // ---- shared with caller threads ----
    private final Object monitor = new Object();
    private final ConcurrentLinkedQueue<Object> inbox = new ConcurrentLinkedQueue<>();
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicBoolean closing = new AtomicBoolean();
    private final AtomicLong nextRequestId = new AtomicLong(1);
    private final MetricsRecorder metrics = new MetricsRecorder();
    private final Thread thread;
    private volatile String configurationDescription = "[]";

    // ---- engine-thread state ----
    private final ArrayDeque<LiveRequest> queue = new ArrayDeque<>();
    private final List<PipelineSlot> slots = new ArrayList<>();
    private final Map<String, InstanceRecord> instances = new LinkedHashMap<>();
    private final Set<String> gone = new HashSet<>();
    private final Map<Device, PipelineSlot> owner = new HashMap<>();
    private final PriorityQueue<Timed> timers = new PriorityQueue<>();
    /** Dated submissions whose arrival time has not come yet, earliest first (ties: submission order). */
    private final PriorityQueue<LiveRequest> scheduled = new PriorityQueue<>(
            java.util.Comparator.comparing((LiveRequest r) -> r.submittedAt).thenComparingLong(r -> r.id));
    private long timerSeq;
    private int nextSlotId;
    private int outstandingInstanceRequests;
    private boolean membershipChanged;
    private final List<String> changeReasons = new ArrayList<>();
    private Duration drainDeadline;
    private int interruptedSinceReconfiguration;
    /** The configuration before the first membership change not yet handled by {@link #reconfigure}. */
    private String pendingFrom;
    private boolean stopped;
    /** The configuration the slots implement (slot i = pipeline i), or null when there are none. */
    private ParallelConfig current;
    /** Engine-clock duration of one busy loop iteration (all pipelines step once), smoothed. */
    private Duration iterationEstimate = Duration.ZERO;
    /** The longest step time a simulated clock reported in the last loop iteration (pipelines run side by side). */
    private Duration longestStep = Duration.ZERO;
    /** When the running reconfiguration started copying (untouched pipelines decode from then on). */
    private Duration migrationStart = Duration.ZERO;
    /** Engine-clock duration of a reconfiguration, smoothed: the lead time a preemption notice needs. */
    private Duration migrationEstimate = Duration.ZERO;

    private record Timed(Duration at, long seq, InstanceEvent event) implements Comparable<Timed> {
        @Override
        public int compareTo(Timed o) {
            int c = at.compareTo(o.at);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private record Submit(LiveRequest request) {
    }

    private record Close() {
    }

    EngineLoop(ServingEngine.Builder b, Executor executor, boolean ownsExecutor, EngineClock clock,
               List<ShardLayout> layouts) {
        this.weights = b.weights;
        this.tokenizer = b.tokenizer;
        this.config = b.weights.config();
        this.provider = b.provider;
        this.executor = executor;
        this.ownsExecutor = ownsExecutor;
        this.clock = clock;
        this.maxBatch = b.maxBatch;
        this.maxBatchTokens = b.maxBatchTokens;
        this.admissionGroup = b.admissionGroup;
        this.reconfigurationMode = b.reconfigurationMode;
        this.queueCapacity = b.queueCapacity;
        this.targetInstances = b.targetInstances;
        this.drainTimeout = b.drainTimeout;
        this.modelContext = ModelContext.of("model", config);
        this.planner = new ConfigPlanner(b, config, List.copyOf(layouts), executor.storedBytesPerWeight());
        this.parking = new KvParking(config, b.hostKvBudget);
        this.thread = new Thread(this::run, "spotserve-engine");
        this.thread.setDaemon(true);
    }

    void start() {
        // the provider first: events it reports synchronously (the instances that exist now) are all in the inbox
        // before the engine thread looks, so the initial fleet is configured in one reconfiguration
        provider.start(this::post);
        thread.start();
    }

    // ===================================================================== caller side

    private void post(Object command) {
        inbox.add(command);
        synchronized (monitor) {
            monitor.notifyAll();
        }
    }

    CompletableFuture<Completion> submit(GenerationRequest request, TokenPublisher publisher, Duration arrival) {
        java.util.Objects.requireNonNull(request, "request");
        if (request.prompt() != null && tokenizer == null) {
            throw new IllegalArgumentException("this engine's model has no tokenizer (model(WeightSource)); give the "
                    + "request promptTokens instead of a text prompt");
        }
        int[] prompt = request.prompt() != null ? tokenizer.encode(request.prompt(), true, false)
                : request.promptTokens();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("promptTokens[" + i + "] = " + prompt[i] + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        if ((long) prompt.length + request.maxNewTokens() > ConfigPlanner.contextTokens(config)) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens + maxNewTokens "
                    + request.maxNewTokens() + " = " + (prompt.length + request.maxNewTokens())
                    + (config.seqLen() <= ConfigPlanner.MAX_CONTEXT_TOKENS ? " exceeds the model's seq_len " + config.seqLen()
                    : " exceeds the engine's context limit " + ConfigPlanner.MAX_CONTEXT_TOKENS + " (model seq_len "
                    + config.seqLen() + ")"));
        }
        if (closing.get()) {
            metrics.rejected();
            throw new RequestRejectedException("engine is closing; request not accepted");
        }
        if (waiting.incrementAndGet() > queueCapacity) {
            waiting.decrementAndGet();
            metrics.rejected();
            throw new RequestRejectedException("admission queue is full (" + queueCapacity
                    + " requests waiting); retry later");
        }
        long id = nextRequestId.getAndIncrement();
        CompletableFuture<Completion> future = new CompletableFuture<>();
        Duration now = clock.now();
        LiveRequest live = new LiveRequest(id, request, prompt,
                tokenizer == null ? null : tokenizer.streamDecoder(prompt[prompt.length - 1]), future, publisher,
                arrival != null && arrival.compareTo(now) > 0 ? arrival : now);
        if (publisher != null) {
            publisher.subscribe();
        }
        metrics.submitted();
        post(new Submit(live));
        return future;
    }

    EngineMetrics metrics() {
        return metrics.snapshot(clock.now());
    }

    String configurationDescription() {
        return configurationDescription;
    }

    void close() {
        if (closing.compareAndSet(false, true)) {
            post(new Close());
        }
        if (Thread.currentThread() == thread) {
            return;
        }
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    // ===================================================================== engine thread

    private void run() {
        try {
            while (!stopped) {
                drainInbox();
                fireTimers();
                dropAbandonedAndExpired();
                if (drainDeadline == null) {
                    String why = planner.replanReason(usableInstances(), current, clock.now(), queue.size(),
                            running(), migrationEstimate);
                    if (why != null) {
                        changed(why);
                    }
                }
                if (membershipChanged) {
                    reconfigure();
                }
                manageInstances();
                admit();
                Duration before = clock.now();
                boolean worked = step();
                if (worked) {
                    Duration took = clock.now().minus(before);
                    iterationEstimate = smooth(iterationEstimate, took.compareTo(longestStep) >= 0 ? took : longestStep);
                }
                metrics.load(queue.size(), running());
                if (drainDeadline != null && (idle() || clock.now().compareTo(drainDeadline) >= 0)) {
                    shutdown();
                    return;
                }
                if (!worked) {
                    awaitWork();
                }
            }
        } catch (Throwable t) {
            LOG.error("serving engine stopped by an internal error", t);
            closing.set(true);
            failAll(RequestFailedException.Reason.INTERNAL_ERROR, "engine stopped: " + t, t);
            try {
                shutdown();
            } catch (RuntimeException e) {
                LOG.error("cleanup after the internal error failed", e);
            }
        }
    }

    private static Duration smooth(Duration average, Duration sample) {
        return average.isZero() ? sample : average.multipliedBy(3).plus(sample).dividedBy(4);
    }

    private boolean idle() {
        return queue.isEmpty() && scheduled.isEmpty() && running() == 0 && inbox.isEmpty();
    }

    private int running() {
        int n = 0;
        for (PipelineSlot s : slots) {
            n += s.active.size();
        }
        return n;
    }

    private void awaitWork() throws InterruptedException {
        synchronized (monitor) {
            if (!inbox.isEmpty()) {
                return;
            }
            clock.awaitUntil(nextWakeup(), monitor);
        }
    }

    /** The earliest time something is due: a dated event, a preemption deadline, a request deadline, the drain end. */
    private Duration nextWakeup() {
        Duration next = drainDeadline;
        // re-plan while there is load, or until a decision has seen it gone (then an idle engine sleeps)
        next = min(next, planner.nextReplan(!queue.isEmpty() || running() > 0));
        if (!timers.isEmpty()) {
            next = min(next, timers.peek().at);
        }
        if (!scheduled.isEmpty()) {
            next = min(next, scheduled.peek().submittedAt);
        }
        for (PipelineSlot s : slots) {
            if (!s.active.isEmpty() && s.busyUntil.compareTo(clock.now()) > 0) {
                next = min(next, s.busyUntil); // its step ends then
            }
        }
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null) {
                next = min(next, r.deadline);
            }
            if (r.arrangeAt != null) {
                next = min(next, r.arrangeAt);
            }
        }
        for (LiveRequest r : queue) {
            if (r.deadline != null) {
                next = min(next, r.deadline);
            }
        }
        for (PipelineSlot s : slots) {
            for (LiveRequest r : s.active) {
                if (r.deadline != null) {
                    next = min(next, r.deadline);
                }
            }
        }
        return next;
    }

    private static Duration min(Duration a, Duration b) {
        return a == null ? b : b == null ? a : a.compareTo(b) <= 0 ? a : b;
    }

    private void drainInbox() {
        drainInbox(true);
    }

    /** Takes commands off the inbox; with {@code apply} false every instance event waits in the timer queue. */
    private void drainInbox(boolean apply) {
        Object cmd;
        while ((cmd = inbox.poll()) != null) {
            if (cmd instanceof Submit s) {
                if (s.request.submittedAt.compareTo(clock.now()) > 0) {
                    scheduled.add(s.request);
                } else {
                    queue.addLast(s.request);
                    planner.arrived(s.request.submittedAt);
                }
            } else if (cmd instanceof InstanceEvent e) {
                if (!apply || e.at().compareTo(clock.now()) > 0) {
                    timers.add(new Timed(e.at(), timerSeq++, e));
                } else {
                    apply(e);
                }
            } else if (cmd instanceof Close) {
                drainDeadline = clock.now().plus(drainTimeout);
                LOG.info("closing: draining {} queued and {} running requests (timeout {})", queue.size(), running(),
                        drainTimeout);
            }
        }
    }

    private void fireTimers() {
        Duration now = clock.now();
        while (!timers.isEmpty() && timers.peek().at.compareTo(now) <= 0) {
            apply(timers.poll().event);
        }
        while (!scheduled.isEmpty() && scheduled.peek().submittedAt.compareTo(now) <= 0) {
            LiveRequest r = scheduled.poll();
            queue.addLast(r);
            planner.arrived(r.submittedAt);
        }
        for (InstanceRecord r : instances.values()) {
            if (r.arrangeAt != null && r.arrangeAt.compareTo(now) <= 0) {
                r.arrangeAt = null;
                LOG.info("{} is due to leave at {}: migrating off it now", r.instance.id(), r.deadline);
                changed("notice " + r.instance.id());
            }
        }
        List<InstanceRecord> expired = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null && r.deadline.compareTo(now) <= 0) {
                expired.add(r);
            }
        }
        for (InstanceRecord r : expired) {
            String id = r.instance.id();
            LOG.info("preemption deadline of {} reached; releasing it", id);
            remove(id, "deadline of " + id, r.deadline); // the cloud takes it at the deadline: billing ends there
            provider.release(id);
        }
    }

    // ---------------------------------------------------------------- instance manager

    private void apply(InstanceEvent event) {
        if (event instanceof InstanceEvent.Acquired a) {
            acquired(a);
        } else if (event instanceof InstanceEvent.PreemptionNotice n) {
            noticed(n);
        } else if (event instanceof InstanceEvent.Terminated t) {
            terminated(t);
        }
    }

    private void acquired(InstanceEvent.Acquired a) {
        String id = a.instanceId();
        outstandingInstanceRequests = Math.max(0, outstandingInstanceRequests - 1);
        if (instances.containsKey(id)) {
            LOG.debug("duplicate Acquired event for {} ignored", id);
            return;
        }
        if (gone.contains(id)) {
            LOG.warn("late Acquired event for {} ignored: the instance already terminated", id);
            return;
        }
        if (closing.get() && drainDeadline != null) {
            LOG.info("instance {} arrived while closing; releasing it", id);
            provider.release(id);
            return;
        }
        List<Device> devices = new ArrayList<>();
        try {
            for (int g = 0; g < a.instance().type().gpus(); g++) {
                devices.add(executor.createDevice(new DeviceId(id, g), a.instance().type().memoryPerGpuBytes()));
            }
        } catch (RuntimeException e) {
            LOG.error("cannot create the devices of instance {}; ignoring it", id, e);
            for (Device d : devices) {
                executor.destroyDevice(d);
            }
            return;
        }
        instances.put(id, new InstanceRecord(a.instance(), devices));
        metrics.instanceStarted(a.instance(), clock.now());
        LOG.info("instance {} acquired ({} x {} MiB, {})", id, devices.size(),
                a.instance().type().memoryPerGpuBytes() >> 20, a.instance().type().market());
        changed("acquired " + id);
    }

    private void noticed(InstanceEvent.PreemptionNotice n) {
        InstanceRecord r = instances.get(n.instanceId());
        if (r == null) {
            if (gone.contains(n.instanceId())) {
                LOG.debug("late preemption notice for {} ignored: already gone", n.instanceId());
            } else {
                LOG.warn("preemption notice for unknown instance {} ignored", n.instanceId());
            }
            return;
        }
        if (r.deadline != null) {
            if (n.deadline().compareTo(r.deadline) < 0) {
                LOG.info("repeated notice for {} moves its deadline from {} to {}", n.instanceId(), r.deadline,
                        n.deadline());
                r.deadline = n.deadline();
            } else {
                LOG.debug("duplicate preemption notice for {} ignored", n.instanceId());
            }
            return;
        }
        r.deadline = n.deadline();
        LOG.info("preemption notice for {}: deadline {} (grace {})", n.instanceId(), n.deadline(), n.grace());
        // just-in-time arrangement (SpotServe §4.1): keep decoding on the doomed pipelines while the grace period
        // still leaves room for the migration, then move their context off the instance
        Duration lead = migrationEstimate.multipliedBy(2).plus(iterationEstimate.multipliedBy(2));
        Duration at = n.deadline().minus(lead);
        if (current != null && hostsPipeline(n.instanceId())) {
            int remaining = 0;
            for (PipelineSlot s : slots) {
                if (s.instances.contains(n.instanceId())) {
                    for (LiveRequest q : s.active) {
                        remaining = Math.max(remaining, q.request.maxNewTokens() - q.generatedCount);
                    }
                }
            }
            at = planner.arrange(n, current, remaining, clock.now(), lead, at, iterationEstimate);
        }
        if (at.compareTo(clock.now()) <= 0 || !hostsPipeline(n.instanceId())) {
            changed("notice " + n.instanceId());
        } else {
            r.arrangeAt = at;
            LOG.info("pipelines on {} keep decoding until {} ({} before the deadline)", n.instanceId(), at, lead);
        }
    }

    private List<InstanceRecord> usableInstances() {
        List<InstanceRecord> usable = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (r.usable()) {
                usable.add(r);
            }
        }
        return usable;
    }

    private boolean hostsPipeline(String instanceId) {
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId) && !s.broken()) {
                return true;
            }
        }
        return false;
    }

    private void terminated(InstanceEvent.Terminated t) {
        if (!instances.containsKey(t.instanceId())) {
            if (gone.contains(t.instanceId())) {
                LOG.debug("duplicate or late Terminated event for {} ignored", t.instanceId());
            } else {
                LOG.warn("Terminated event for unknown instance {} ignored", t.instanceId());
                gone.add(t.instanceId());
            }
            return;
        }
        LOG.info("instance {} terminated", t.instanceId());
        // bill until the cloud's termination time, even when the event is applied later on the engine clock
        Duration now = clock.now();
        remove(t.instanceId(), "terminated " + t.instanceId(), t.at().compareTo(now) < 0 ? t.at() : now);
    }

    /** Forgets an instance now: retires its pipelines (their KV caches are lost) and destroys its devices. */
    private void remove(String id, String reason) {
        remove(id, reason, clock.now());
    }

    /** Forgets an instance whose billing ended at {@code endedAt}. */
    private void remove(String id, String reason, Duration endedAt) {
        InstanceRecord r = instances.remove(id);
        gone.add(id);
        if (r == null) {
            return;
        }
        loseInstance(id);
        for (Device d : r.devices) {
            executor.destroyDevice(d);
        }
        metrics.instanceEnded(id, endedAt);
        changed(reason);
    }

    private void changed(String reason) {
        if (pendingFrom == null) {
            pendingFrom = describe();
        }
        membershipChanged = true;
        changeReasons.add(reason);
    }

    /** Asks for instances below the target, releases surplus on-demand ones (on-demand first, paper §3.2). */
    private void manageInstances() {
        if (targetInstances == 0 || drainDeadline != null) {
            return;
        }
        int desired = planner.desiredInstances(targetInstances);
        if (desired < 0) {
            return;
        }
        int usable = 0;
        for (InstanceRecord r : instances.values()) {
            if (r.usable()) {
                usable++;
            }
        }
        int missing = desired - usable - outstandingInstanceRequests;
        if (missing > 0) {
            outstandingInstanceRequests += missing;
            LOG.info("{} usable instances, target {}: requesting {}", usable, desired, missing);
            provider.requestOnDemand(missing);
        } else if (usable > desired) {
            // on-demand first (paper §3.2); idle ones before those hosting a pipeline, newest first
            List<InstanceRecord> onDemand = new ArrayList<>();
            for (InstanceRecord r : instances.values()) {
                if (r.usable() && !r.instance.type().preemptible()) {
                    onDemand.add(0, r);
                }
            }
            onDemand.sort(Comparator.comparing((InstanceRecord r) -> hostsPipeline(r.instance.id())));
            for (int i = 0; i < onDemand.size() && usable > desired; i++, usable--) {
                InstanceRecord r = onDemand.get(i);
                String id = r.instance.id();
                if (hostsPipeline(id)) {
                    // like a preemption notice we give ourselves: migrate off first, release at the deadline
                    LOG.info("releasing surplus on-demand instance {} after moving its context off", id);
                    r.deadline = clock.now().plusMillis(1);
                    changed("releasing " + id);
                } else {
                    LOG.info("releasing surplus on-demand instance {}", id);
                    remove(id, "released " + id);
                    provider.release(id);
                }
            }
            if (usable > desired && planner.planning()) {
                // then spot instances Algorithm 1's Δ no longer needs — only idle ones, never a serving pipeline
                List<InstanceRecord> idleSpot = new ArrayList<>();
                for (InstanceRecord r : instances.values()) {
                    if (r.usable() && r.instance.type().preemptible() && !hostsPipeline(r.instance.id())) {
                        idleSpot.add(0, r);
                    }
                }
                for (int i = 0; i < idleSpot.size() && usable > desired; i++, usable--) {
                    String id = idleSpot.get(i).instance.id();
                    LOG.info("releasing surplus idle spot instance {}", id);
                    remove(id, "released " + id);
                    provider.release(id);
                }
            }
        }
    }

    // ---------------------------------------------------------------- meta-context manager (slice 2)

    /**
     * The instance is gone: every pipeline with a position on it is broken. Its requests lose their KV cache (it is
     * incomplete now) and go back to the front of the queue; the weights on the lost positions are freed, while the
     * surviving positions keep theirs for the next reconfiguration to reuse.
     */
    private void loseInstance(String instanceId) {
        for (PipelineSlot s : slots) {
            if (!s.instances.contains(instanceId)) {
                continue;
            }
            requeue(s);
            ShardLayout l = s.pipeline.layout();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    if (s.pipeline.device(st, m).id().instance().equals(instanceId)) {
                        s.lost.add(st * l.shards() + m); // may be marked already by a migration that saw it die
                        for (ContextSlice w : l.weightSlices(st, m)) {
                            s.pipeline.releaseSlice(st, m, w);
                        }
                    }
                }
            }
            changed("lost a position of " + s.describe());
        }
    }

    /** Sends the requests of a pipeline back to the front of the queue, freeing their KV caches. */
    private void requeue(PipelineSlot s) {
        List<LiveRequest> back = new ArrayList<>(s.active);
        Set<LiveRequest> untouched = new HashSet<>();
        s.active.clear();
        for (LiveRequest r : back) {
            if (s.pipeline.length(r.id) == 0) {
                untouched.add(r);
            }
            s.pipeline.closeSequence(r.id);
            r.slot = null;
        }
        requeue(back, untouched);
        if (!back.isEmpty()) {
            LOG.info("pipeline {} lost its requests' caches; {} requests re-queued at their committed step",
                    s.describe(), back.size());
        }
    }

    /**
     * Puts requests back at the front of the queue, oldest first; they recompute from their committed tokens,
     * unless their KV cache is parked in host memory (then they resume with it when admitted) or they had no cache
     * yet ({@code untouched}: nothing was lost).
     */
    private void requeue(List<LiveRequest> back, Set<LiveRequest> untouched) {
        back.sort(Comparator.comparingLong((LiveRequest r) -> r.id).reversed());
        int recompute = 0;
        for (LiveRequest r : back) {
            if (r.parked == null && !untouched.contains(r)) {
                r.restarts++;
                recompute++;
            }
            queue.addFirst(r);
        }
        interruptedSinceReconfiguration += recompute;
        metrics.restarted(recompute);
    }

    /**
     * No configuration fits the usable instances, but pipelines on instances whose notice is due still hold requests:
     * park their KV caches in host memory and take those pipelines out of service, so the requests resume with their
     * caches as soon as instances are available again (beyond the paper, which recomputes them).
     */
    private void parkDoomed() {
        for (PipelineSlot s : new ArrayList<>(slots)) {
            boolean due = false;
            for (String id : s.instances) {
                InstanceRecord r = instances.get(id);
                due |= r != null && !r.usable() && r.arrangeAt == null;
            }
            if (!due || s.broken() || s.active.isEmpty()) {
                continue;
            }
            int parked = 0;
            for (LiveRequest r : s.active) {
                if (parking.park(r, s)) {
                    parked++;
                }
            }
            LOG.info("no configuration fits the usable instances: {} of {} requests on doomed {} parked their KV caches"
                    + " in host memory", parked, s.active.size(), s.describe());
            retire(s);
        }
    }

    /** Takes a pipeline out of service (step failure, shutdown): requests re-queued, storage freed. */
    private void retire(PipelineSlot s) {
        changed("retired " + s.describe());
        requeue(s);
        slots.remove(s);
        s.pipeline.close();
        for (Device d : s.devices) {
            owner.remove(d);
        }
        if (slots.isEmpty()) {
            current = null;
        }
    }

    /**
     * Re-plans after a membership change (SpotServe §3): configuration for the usable devices, device mapping,
     * migration order, then the migration itself. Nothing happens when the current pipelines are intact and still
     * the best choice, or when no configuration fits (doomed pipelines then serve until their deadline).
     */
    private void reconfigure() {
        membershipChanged = false;
        Duration started;
        String from = pendingFrom != null ? pendingFrom : describe();
        pendingFrom = null;
        Map<DeviceId, Device> all = new HashMap<>();
        for (InstanceRecord r : instances.values()) {
            for (Device d : r.devices) {
                all.put(d.id(), d);
            }
        }
        List<InstanceRecord> usable = usableInstances();
        List<TargetFleet.Instance> fleet = new ArrayList<>();
        ParallelConfig target = planner.choose(usable, fleet, clock.now(), queue.size());
        if (target == null) {
            parkDoomed();
        }
        if (target == null || intact(target)) {
            if (target == null && !slots.isEmpty()) {
                LOG.info("no configuration fits the {} usable instances; current pipelines {} stay as they are",
                        usable.size(), describe());
            }
            pendingFrom = from; // nothing changed: the reasons wait for the change that follows
            return;
        }
        awaitStepsEnded();
        started = clock.now();
        int interrupted = interruptedSinceReconfiguration;
        interruptedSinceReconfiguration = 0;
        Deployment old = deployment(target);
        DeviceMapping mapping = DeviceMapper.map(modelContext, old, new TargetFleet(target, fleet));
        long minCapacity = Long.MAX_VALUE;
        for (TargetFleet.Instance i : fleet) {
            minCapacity = Math.min(minCapacity, instances.get(i.name()).instance.type().memoryPerGpuBytes());
        }
        List<ContextUnit> order = migrationOrder(mapping, minCapacity);
        List<PipelineSlot> before = new ArrayList<>(slots);
        List<LiveRequest> inFlight = new ArrayList<>();
        for (PipelineSlot s : before) {
            inFlight.addAll(s.active);
        }
        ContextMigration.Result result;
        clock.migrationStarted();
        migrationStart = clock.now();
        try {
            result = new ContextMigration(executor, weights, before, mapping, all, parking, reconfigurationMode)
                    .run(order, maxBatchTokens, () -> nextSlotId++, this::duringMigration);
        } catch (RuntimeException e) {
            LOG.warn("context migration to {} failed ({}); restarting from the checkpoint", target, e.toString(), e);
            result = coldStart(mapping, before, inFlight, all);
        }
        slots.clear();
        owner.clear();
        slots.addAll(result.slots());
        for (PipelineSlot s : slots) {
            for (Device d : s.devices) {
                owner.put(d, s);
            }
        }
        current = slots.isEmpty() ? null : target;
        requeue(new ArrayList<>(result.dropped()), result.untouched());
        interrupted += interruptedSinceReconfiguration;
        interruptedSinceReconfiguration = 0;
        metrics.migrated(result.resumed(), result.bytesMoved());
        String to = describe();
        configurationDescription = to;
        String reason = String.join(", ", changeReasons);
        changeReasons.clear();
        Duration pause = clock.now().minus(started);
        migrationEstimate = smooth(migrationEstimate, pause);
        Reconfiguration rec = new Reconfiguration(started, reason, from, to, current, interrupted, result.resumed(),
                result.bytesMoved(), result.bytesKept(), result.bytesReloaded(), mapping.bytesMoved(),
                mapping.bytesReloaded(), pause);
        metrics.reconfigured(rec);
        LOG.info("reconfigured {} -> {} as {} ({}): {} requests resumed with their cache, {} recompute; bytes moved {}"
                        + " (mapper: {}), kept in place {}, reloaded {} (mapper: {})", from, to, target, reason,
                result.resumed(), interrupted, result.bytesMoved(), mapping.bytesMoved(), result.bytesKept(),
                result.bytesReloaded(), mapping.bytesReloaded());
    }

    /**
     * Waits until every pipeline's last forward step has ended (only a simulated clock prices steps ahead of now): a
     * reconfiguration, like a GPU kernel, does not cut a running step short.
     */
    private void awaitStepsEnded() {
        Duration until = Duration.ZERO;
        for (PipelineSlot s : slots) {
            until = s.busyUntil.compareTo(until) > 0 ? s.busyUntil : until;
        }
        while (clock.now().compareTo(until) < 0) {
            synchronized (monitor) {
                try {
                    clock.awaitUntil(until, monitor);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** Whether the pipelines already implement {@code target} on usable, complete positions. */
    private boolean intact(ParallelConfig target) {
        if (current == null || !current.equals(target) || slots.size() != target.dataParallel()) {
            return false;
        }
        for (PipelineSlot s : slots) {
            if (s.broken()) {
                return false;
            }
            for (String id : s.instances) {
                InstanceRecord r = instances.get(id);
                if (r == null || !r.usable()) {
                    return false;
                }
            }
        }
        return true;
    }

    /** The current deployment as the device mapper sees it: live positions and each pipeline's requests. */
    private Deployment deployment(ParallelConfig target) {
        if (current == null || slots.isEmpty()) {
            return new Deployment(target, Map.of(), Map.of());
        }
        ParallelConfig oc = ParallelConfig.of(slots.size(), current.pipelineStages(), current.tensorShards(),
                current.maxBatch());
        Map<Position, DeviceId> placement = new LinkedHashMap<>();
        Map<Integer, List<InflightBatch>> batches = new LinkedHashMap<>();
        for (int i = 0; i < slots.size(); i++) {
            PipelineSlot s = slots.get(i);
            ShardLayout l = s.pipeline.layout();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    DeviceId d = s.pipeline.device(st, m).id();
                    if (s.alive(st, m) && instances.containsKey(d.instance())) {
                        placement.put(new Position(i, st, m), d);
                    }
                }
            }
            List<InflightBatch> mine = new ArrayList<>();
            for (LiveRequest r : s.active) {
                int filled = s.pipeline.length(r.id);
                if (filled > 0) {
                    int prompt = Math.min(filled, r.prompt.length);
                    mine.add(new InflightBatch("r" + r.id, 1, prompt, filled - prompt));
                }
            }
            if (!mine.isEmpty()) {
                batches.put(i, mine);
            }
        }
        return new Deployment(oc, placement, batches);
    }

    /** Whether a pipeline touches an instance under preemption notice (it takes no new requests). */
    private boolean doomed(PipelineSlot s) {
        for (String id : s.instances) {
            InstanceRecord r = instances.get(id);
            if (r == null || !r.usable()) {
                return true;
            }
        }
        return false;
    }

    /** Requests one pipeline runs at once: B of the current configuration. */
    private int batchCap() {
        return current != null ? current.maxBatch() : maxBatch;
    }

    /** The request id behind a batch of {@link #deployment}. */
    static long requestIdOf(InflightBatch b) {
        return Long.parseLong(b.id().substring(1));
    }

    /** Algorithm 2's unit order under a per-instance buffer of one device's memory; sequential when infeasible. */
    private static List<ContextUnit> migrationOrder(DeviceMapping mapping, long bufferBytes) {
        try {
            return MigrationPlanner.plan(mapping, bufferBytes).order();
        } catch (MigrationInfeasibleException e) {
            LOG.info("no migration order keeps every instance's buffer within {} bytes ({}); using the sequential order",
                    bufferBytes, e.getMessage());
            return List.of();
        }
    }

    /**
     * Between two migrated units: charge the copies to the clock, then report which instances are gone by now.
     * Events are only queued here; they are applied after the migration, like any other.
     */
    private Set<String> duringMigration(ContextUnit unit, List<DataMove> moves, List<PipelineSlot> unchanged) {
        clock.migrated(moves);
        drainInbox(false);
        Duration now = clock.now();
        Set<String> dead = new HashSet<>(gone);
        for (Timed t : timers) {
            if (t.at.compareTo(now) <= 0) {
                if (t.event instanceof InstanceEvent.Terminated x) {
                    dead.add(x.instanceId());
                } else if (t.event instanceof InstanceEvent.PreemptionNotice n && n.deadline().compareTo(now) <= 0) {
                    dead.add(n.instanceId());
                }
            }
        }
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null && r.deadline.compareTo(now) <= 0) {
                dead.add(r.instance.id());
            }
        }
        if (clock.stepsDuringMigration()) {
            keepDecoding(unchanged, dead, now);
        }
        return dead;
    }

    /** Cold start of a pipeline: from the checkpoint directly when there is one, else slice by slice from the source. */
    private void loadAll(Pipeline p) {
        if (weights instanceof WeightSource.CheckpointWeights cw) {
            p.loadWeights(cw.checkpoint());
            return;
        }
        ShardLayout l = p.layout();
        for (int st = 0; st < l.stages(); st++) {
            for (int m = 0; m < l.shards(); m++) {
                for (ContextSlice w : l.weightSlices(st, m)) {
                    p.importSlice(st, m, weights.encode(w));
                }
            }
        }
    }

    /**
     * Pipelines the reconfiguration leaves as they are run the steps that fit up to {@code now} (each step starting
     * when the previous one ended, from the start of the migration), unless one of their instances is gone. No
     * admissions meanwhile: new requests wait for the new configuration.
     */
    private void keepDecoding(List<PipelineSlot> unchanged, Set<String> dead, Duration now) {
        for (PipelineSlot s : unchanged) {
            boolean alive = !s.broken();
            for (String id : s.instances) {
                alive &= !dead.contains(id);
            }
            if (!alive) {
                continue;
            }
            if (s.busyUntil.compareTo(migrationStart) < 0) {
                s.busyUntil = migrationStart;
            }
            while (!s.active.isEmpty() && s.busyUntil.compareTo(now) < 0) {
                try {
                    if (!step(s, s.busyUntil)) {
                        break;
                    }
                } catch (RuntimeException e) {
                    LOG.error("forward step failed on pipeline {} during a migration; failing its requests", s.describe(), e);
                    for (LiveRequest r : new ArrayList<>(s.active)) {
                        fail(r, RequestFailedException.Reason.INTERNAL_ERROR, "forward step failed: " + e, e);
                    }
                    break;
                }
            }
        }
    }

    /**
     * The Reparallelization fallback when a migration fails midway: every request recomputes, every old pipeline is
     * closed and the new configuration loads all its weights from the checkpoint.
     */
    private ContextMigration.Result coldStart(DeviceMapping mapping, List<PipelineSlot> before,
                                              List<LiveRequest> inFlight, Map<DeviceId, Device> all) {
        for (PipelineSlot s : before) {
            s.active.clear();
            s.pipeline.close();
        }
        List<LiveRequest> dropped = new ArrayList<>();
        for (LiveRequest r : inFlight) {
            r.slot = null;
            if (!r.future.isDone()) {
                dropped.add(r);
            }
        }
        ParallelConfig nc = mapping.newConfig();
        ShardLayout l = ContextMigration.layout(config, nc.pipelineStages(), nc.tensorShards());
        List<PipelineSlot> fresh = new ArrayList<>();
        long loaded = 0;
        for (int j = 0; j < nc.dataParallel(); j++) {
            List<Device> devs = new ArrayList<>();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    devs.add(all.get(mapping.deviceOf(new Position(j, st, m))));
                }
            }
            Pipeline p = executor.createPipeline(l, devs, maxBatchTokens);
            try {
                loadAll(p);
            } catch (RuntimeException e) {
                LOG.error("cannot load the weights of {} on {}; pipeline {} stays down", l, devs, j, e);
                p.close();
                continue;
            }
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    loaded += l.weightBytes(st, m, executor.storedBytesPerWeight());
                }
            }
            fresh.add(new PipelineSlot(nextSlotId++, p, devs));
        }
        if (fresh.size() != nc.dataParallel()) {
            for (PipelineSlot s : fresh) {
                s.pipeline.close();
            }
            fresh.clear();
        }
        return new ContextMigration.Result(fresh, dropped, Set.of(), 0, 0, 0, loaded);
    }

    private String describe() {
        List<String> out = new ArrayList<>();
        for (PipelineSlot s : slots) {
            out.add(s.describe());
        }
        return out.toString();
    }

    // ---------------------------------------------------------------- request manager

    private void admit() {
        if (queue.isEmpty() || slots.isEmpty()) {
            return;
        }
        while (!queue.isEmpty()) {
            // least-loaded pipeline first, so requests spread over the replicas (idle ones first)
            PipelineSlot best = null;
            for (PipelineSlot s : slots) {
                if (!s.broken() && !doomed(s) && s.active.size() < batchCap()
                        && (best == null || s.active.size() < best.active.size())) {
                    best = s;
                }
            }
            if (best == null) {
                return;
            }
            int joining = Math.min(queue.size(), batchCap() - best.active.size());
            if (!best.active.isEmpty() && joining < Math.min(admissionGroup, batchCap())) {
                return; // a decoding batch is joined by a group, not one prefill stall per request
            }
            for (int k = 0; k < joining; k++) {
                if (!admitOne(best)) {
                    return;
                }
            }
        }
    }

    /** Admits the head of the queue into {@code s}; false if the pipeline has no KV room for it. */
    private boolean admitOne(PipelineSlot s) {
        LiveRequest r = queue.peekFirst();
        try {
            s.pipeline.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
        } catch (DeviceMemoryException e) {
            LOG.debug("pipeline {} is full: {}", s.describe(), e.getMessage());
            return false;
        }
        if (r.parked != null) {
            if (parking.restore(r, s.pipeline)) {
                metrics.migrated(1, 0); // resumes at its committed step with the cache it parked
            } else {
                r.restarts++;
                metrics.restarted(1);
            }
        }
        queue.pollFirst();
        uncount(r);
        r.slot = s;
        s.active.add(r);
        return true;
    }

    /** One forward step on every pipeline with work whose previous step has ended; returns whether anything ran. */
    private boolean step() {
        boolean any = false;
        longestStep = Duration.ZERO;
        for (PipelineSlot s : new ArrayList<>(slots)) {
            if (s.active.isEmpty() || s.broken() || s.busyUntil.compareTo(clock.now()) > 0) {
                continue;
            }
            try {
                any |= step(s, null);
            } catch (RuntimeException e) {
                LOG.error("forward step failed on pipeline {}; failing its requests", s.describe(), e);
                for (LiveRequest r : new ArrayList<>(s.active)) {
                    fail(r, RequestFailedException.Reason.INTERNAL_ERROR, "forward step failed: " + e, e);
                }
                retire(s);
            }
        }
        return any;
    }

    /** One step of {@code s} starting at {@code start} (null: now); returns whether anything ran. */
    private boolean step(PipelineSlot s, Duration start) {
        Pipeline p = s.pipeline;
        PipelineSlot.Scratch b = s.scratch(p.maxBatch());
        int budget = b.seqs.length;
        int n = 0;
        int owned = 0;
        int promptSequences = 0;
        int promptPositions = 0;
        int decodes = 0;
        // decodes first (one position each), then prompt / recompute chunks in admission order
        for (int pass = 0; pass < 2 && n < budget; pass++) {
            for (LiveRequest r : s.active) {
                int filled = p.length(r.id);
                int pending = r.totalTokens() - filled;
                if ((pass == 0) != (pending == 1) || pending < 1) {
                    continue;
                }
                int take = Math.min(pending, budget - n);
                if (pass == 0) {
                    decodes++;
                } else {
                    promptSequences++;
                    promptPositions += take;
                }
                for (int k = 0; k < take; k++) {
                    b.seqs[n] = r.id;
                    b.toks[n] = r.tokenAt(filled + k);
                    b.pos[n] = filled + k;
                    if (k == pending - 1) {
                        b.logits[n] = b.row(owned++, config.vocabSize());
                        b.owners[n] = r;
                    } else {
                        b.logits[n] = null;
                        b.owners[n] = null;
                    }
                    n++;
                }
                if (n == budget) {
                    break;
                }
            }
        }
        if (n == 0) {
            return false;
        }
        p.forward(b.seqs, b.toks, b.pos, n, b.logits);
        Duration busy = clock.computed(new ForwardStep(p.layout().stages(), p.layout().shards(), promptSequences,
                promptPositions, decodes));
        Duration done = (start != null ? start : clock.now()).plus(busy);
        s.busyUntil = done;
        if (busy.compareTo(longestStep) > 0) {
            longestStep = busy;
        }
        for (int i = 0; i < n; i++) {
            LiveRequest r = b.owners[i];
            if (r != null) {
                b.owners[i] = null;
                commit(r, r.sampler.sample(b.logits[i]), done);
            }
        }
        return true;
    }

    private void commit(LiveRequest r, int token, Duration now) {
        if (token == config.stopToken()) {
            finish(r, Completion.FinishReason.STOP, now);
            return;
        }
        r.commit(token);
        metrics.generated(1);
        if (r.firstTokenAt == null) {
            r.firstTokenAt = now;
        }
        String piece = r.decoder == null ? "" : r.decoder.accept(token);
        r.text.append(piece);
        if (r.publisher != null) {
            r.publisher.offer(new Token(r.generatedCount - 1, token, piece));
        }
        if (r.generatedCount == r.request.maxNewTokens()) {
            finish(r, Completion.FinishReason.LENGTH, now);
        }
    }

    private void finish(LiveRequest r, Completion.FinishReason reason, Duration now) {
        detach(r);
        String tail = r.decoder == null ? "" : r.decoder.finish();
        r.text.append(tail);
        Completion c = new Completion(r.id, r.text.toString(), r.generatedTokens(), r.prompt.length, reason,
                r.submittedAt, r.firstTokenAt != null ? r.firstTokenAt : now, now, r.restarts);
        if (r.publisher != null) {
            r.publisher.complete();
        }
        metrics.completed(c); // before the future completes, so callers who join then read metrics see it
        if (!r.future.complete(c)) {
            metrics.completionLost(); // cancelled by the caller at the last moment
        }
    }

    private void fail(LiveRequest r, RequestFailedException.Reason reason, String message, Throwable cause) {
        detach(r);
        RequestFailedException e = new RequestFailedException(r.id, reason, message, cause);
        if (r.publisher != null) {
            r.publisher.fail(e);
        }
        if (!r.future.isDone()) {
            metrics.failed();
            if (!r.future.completeExceptionally(e)) {
                metrics.failureLost();
            }
        }
    }

    /** Takes a request off its pipeline (freeing its KV cache) or out of the queue. */
    private void detach(LiveRequest r) {
        parking.release(r);
        if (r.slot != null) {
            r.slot.active.remove(r);
            r.slot.pipeline.closeSequence(r.id);
            r.slot = null;
        } else if (!queue.remove(r)) {
            scheduled.remove(r);
        }
        uncount(r);
    }

    /** Ends the request's claim on the admission queue's capacity (once: on first admission or removal). */
    private void uncount(LiveRequest r) {
        if (r.countedInQueue) {
            r.countedInQueue = false;
            waiting.decrementAndGet();
        }
    }

    private void dropAbandonedAndExpired() {
        Duration now = clock.now();
        List<LiveRequest> all = new ArrayList<>(queue);
        all.addAll(scheduled);
        for (PipelineSlot s : slots) {
            all.addAll(s.active);
        }
        for (LiveRequest r : all) {
            if (r.abandoned()) {
                detach(r);
                metrics.cancelled();
                if (!r.future.isDone()) {
                    r.future.cancel(false);
                }
                if (r.publisher != null) {
                    r.publisher.complete();
                }
                LOG.debug("request {} cancelled by its caller", r.id);
            } else if (r.deadline != null && now.compareTo(r.deadline) >= 0) {
                fail(r, RequestFailedException.Reason.DEADLINE_EXCEEDED, "timeout " + r.request.timeout()
                        + " elapsed after " + r.generatedCount + " of " + r.request.maxNewTokens() + " tokens", null);
            }
        }
    }

    private void failAll(RequestFailedException.Reason reason, String message, Throwable cause) {
        List<LiveRequest> all = new ArrayList<>(queue);
        all.addAll(scheduled);
        for (PipelineSlot s : slots) {
            all.addAll(s.active);
        }
        for (LiveRequest r : all) {
            fail(r, reason, message, cause);
        }
        Object cmd;
        while ((cmd = inbox.poll()) != null) {
            if (cmd instanceof Submit s) {
                fail(s.request, reason, message, cause);
            }
        }
    }

    private void shutdown() {
        stopped = true;
        closing.set(true);
        failAll(RequestFailedException.Reason.ENGINE_CLOSED, "engine closed before the request finished", null);
        for (PipelineSlot s : new ArrayList<>(slots)) {
            retire(s);
        }
        queue.clear();
        for (String id : new ArrayList<>(instances.keySet())) {
            InstanceRecord r = instances.remove(id);
            gone.add(id);
            for (Device d : r.devices) {
                executor.destroyDevice(d);
            }
            metrics.instanceEnded(id, clock.now());
            provider.release(id);
        }
        configurationDescription = "[]";
        metrics.load(0, 0);
        if (ownsExecutor) {
            executor.close();
        }
        LOG.info("serving engine closed: {}", Arrays.asList(metrics.snapshot(clock.now()).completed(), "completed"));
    }
}
