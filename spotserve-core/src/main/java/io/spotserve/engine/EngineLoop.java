package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.DeviceId;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
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
 *   <li>on a membership change: retire the pipelines on lost or noticed instances (their requests go back to
 *       the front of the queue with their committed tokens), build pipelines on the free devices and load
 *       their weights from the checkpoint;</li>
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
    private final LlamaCheckpoint checkpoint;
    private final LlamaConfig config;
    private final InstanceProvider provider;
    private final Executor executor;
    private final boolean ownsExecutor;
    private final List<ShardLayout> layouts;
    private final int maxBatch;
    private final int maxBatchTokens;
    private final int queueCapacity;
    private final int targetInstances;
    private final Duration drainTimeout;

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
    private long timerSeq;
    private int nextSlotId;
    private int outstandingInstanceRequests;
    private boolean membershipChanged;
    private final List<String> changeReasons = new ArrayList<>();
    private Duration drainDeadline;
    private int interruptedSinceReconfiguration;
    private long migratedSinceReconfiguration;
    /** The configuration before the first membership change not yet handled by {@link #reconfigure}. */
    private String pendingFrom;
    private boolean stopped;

    private static final class InstanceRecord {
        final Instance instance;
        final List<Device> devices;
        Duration deadline;

        InstanceRecord(Instance instance, List<Device> devices) {
            this.instance = instance;
            this.devices = devices;
        }

        boolean usable() {
            return deadline == null;
        }
    }

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
        this.checkpoint = b.checkpoint;
        this.tokenizer = b.tokenizer;
        this.config = b.checkpoint.config();
        this.provider = b.provider;
        this.executor = executor;
        this.ownsExecutor = ownsExecutor;
        this.clock = clock;
        this.layouts = List.copyOf(layouts);
        this.maxBatch = b.maxBatch;
        this.maxBatchTokens = b.maxBatchTokens;
        this.queueCapacity = b.queueCapacity;
        this.targetInstances = b.targetInstances;
        this.drainTimeout = b.drainTimeout;
        this.thread = new Thread(this::run, "spotserve-engine");
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
        provider.start(this::post);
    }

    // ===================================================================== caller side

    private void post(Object command) {
        inbox.add(command);
        synchronized (monitor) {
            monitor.notifyAll();
        }
    }

    CompletableFuture<Completion> submit(GenerationRequest request, TokenPublisher publisher) {
        java.util.Objects.requireNonNull(request, "request");
        int[] prompt = request.prompt() != null ? tokenizer.encode(request.prompt(), true, false)
                : request.promptTokens();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("promptTokens[" + i + "] = " + prompt[i] + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        if ((long) prompt.length + request.maxNewTokens() > config.seqLen()) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens + maxNewTokens "
                    + request.maxNewTokens() + " = " + (prompt.length + request.maxNewTokens())
                    + " exceeds the model's seq_len " + config.seqLen());
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
        LiveRequest live = new LiveRequest(id, request, prompt, tokenizer.streamDecoder(prompt[prompt.length - 1]),
                future, publisher, clock.now());
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
                if (membershipChanged) {
                    reconfigure();
                }
                manageInstances();
                admit();
                boolean worked = step();
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

    private boolean idle() {
        return queue.isEmpty() && running() == 0 && inbox.isEmpty();
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
        if (!timers.isEmpty()) {
            next = min(next, timers.peek().at);
        }
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null) {
                next = min(next, r.deadline);
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
        Object cmd;
        while ((cmd = inbox.poll()) != null) {
            if (cmd instanceof Submit s) {
                queue.addLast(s.request);
            } else if (cmd instanceof InstanceEvent e) {
                if (e.at().compareTo(clock.now()) > 0) {
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
        changed("notice " + n.instanceId());
        if (n.deadline().compareTo(clock.now()) > 0) {
            // the instance still computes during the grace: build what the free devices allow, then move the
            // KV caches of its requests to surviving pipelines so they continue without recomputation
            reconfigure();
            migrateRequestsOff(n.instanceId());
        }
        // whatever could not move resumes elsewhere from its committed tokens (recompute)
        retireSlotsOn(n.instanceId());
    }

    /**
     * Moves each request running on a pipeline that touches {@code instanceId} to a surviving pipeline with a free
     * batch slot, copying its KV cache slice by slice (intersection of what each old position holds with what
     * each new position owns, so any layout change works). A request is moved only if the new pipeline ends up
     * holding all its positions; otherwise it stays and is recomputed later.
     */
    private void migrateRequestsOff(String instanceId) {
        for (PipelineSlot from : new ArrayList<>(slots)) {
            if (!from.instances.contains(instanceId)) {
                continue;
            }
            for (LiveRequest r : new ArrayList<>(from.active)) {
                PipelineSlot to = survivorWithRoom();
                if (to == null) {
                    return;
                }
                long moved = migrateKv(r, from, to);
                if (moved >= 0) {
                    from.active.remove(r);
                    from.pipeline.closeSequence(r.id);
                    to.active.add(r);
                    r.slot = to;
                    migratedSinceReconfiguration += moved;
                    metrics.migrated(moved);
                }
            }
        }
    }

    private PipelineSlot survivorWithRoom() {
        PipelineSlot best = null;
        for (PipelineSlot s : slots) {
            boolean safe = true;
            for (String id : s.instances) {
                InstanceRecord rec = instances.get(id);
                safe &= rec != null && rec.usable();
            }
            if (safe && s.active.size() < maxBatch && (best == null || s.active.size() < best.active.size())) {
                best = s;
            }
        }
        return best;
    }

    /** Copies the filled KV cache of {@code r} from one pipeline to another; returns bytes moved, or -1 on failure. */
    private long migrateKv(LiveRequest r, PipelineSlot from, PipelineSlot to) {
        Pipeline src = from.pipeline;
        Pipeline dst = to.pipeline;
        int length = src.length(r.id);
        try {
            dst.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
        } catch (DeviceMemoryException e) {
            LOG.debug("no KV room for request {} on {}: {}", r.id, to.describe(), e.getMessage());
            return -1;
        }
        long bytes = 0;
        try {
            ShardLayout a = src.layout();
            ShardLayout b = dst.layout();
            if (length > 0) {
                for (int s2 = 0; s2 < b.stages(); s2++) {
                    for (int m2 = 0; m2 < b.shards(); m2++) {
                        for (var need : b.kvSlices(s2, m2, r.id, length)) {
                            for (int s1 = 0; s1 < a.stages(); s1++) {
                                for (int m1 = 0; m1 < a.shards(); m1++) {
                                    for (var have : a.kvSlices(s1, m1, r.id, length)) {
                                        var common = have.intersect(need);
                                        if (common.isPresent()) {
                                            byte[] data = src.exportSlice(s1, m1, common.get());
                                            dst.importSlice(s2, m2, data);
                                            bytes += common.get().bytes(config);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if (dst.length(r.id) != length) {
                throw new IllegalStateException("new pipeline holds " + dst.length(r.id) + " positions, expected " + length);
            }
            return bytes;
        } catch (RuntimeException e) {
            LOG.warn("KV migration of request {} from {} to {} failed; it will be recomputed", r.id, from.describe(),
                    to.describe(), e);
            dst.closeSequence(r.id);
            return -1;
        }
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
        retireSlotsOn(id);
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
        int usable = 0;
        for (InstanceRecord r : instances.values()) {
            if (r.usable()) {
                usable++;
            }
        }
        int missing = targetInstances - usable - outstandingInstanceRequests;
        if (missing > 0) {
            outstandingInstanceRequests += missing;
            LOG.info("{} usable instances, target {}: requesting {}", usable, targetInstances, missing);
            provider.requestInstances(missing);
        } else if (usable > targetInstances) {
            List<String> onDemand = new ArrayList<>();
            for (InstanceRecord r : instances.values()) {
                if (r.usable() && !r.instance.type().preemptible()) {
                    onDemand.add(r.instance.id());
                }
            }
            for (int i = onDemand.size() - 1; i >= 0 && usable > targetInstances; i--, usable--) {
                String id = onDemand.get(i);
                LOG.info("releasing surplus on-demand instance {}", id);
                remove(id, "released " + id);
                provider.release(id);
            }
        }
    }

    // ---------------------------------------------------------------- meta-context manager (slice 2)

    /** Closes every pipeline touching {@code instanceId}; its requests go back to the front of the queue. */
    private void retireSlotsOn(String instanceId) {
        List<PipelineSlot> hit = new ArrayList<>();
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId)) {
                hit.add(s);
            }
        }
        for (PipelineSlot s : hit) {
            retire(s);
        }
    }

    private void retire(PipelineSlot s) {
        changed("retired " + s.describe());
        slots.remove(s);
        List<LiveRequest> back = new ArrayList<>(s.active);
        for (int i = back.size() - 1; i >= 0; i--) {
            LiveRequest r = back.get(i);
            r.slot = null;
            r.restarts++;
            queue.addFirst(r);
        }
        if (!back.isEmpty()) {
            interruptedSinceReconfiguration += back.size();
            metrics.restarted(back.size());
            LOG.info("pipeline {} retired; {} requests re-queued at their committed step", s.describe(), back.size());
        }
        s.active.clear();
        s.pipeline.close();
        for (Device d : s.devices) {
            owner.remove(d);
        }
    }

    /** Builds pipelines on the free devices of usable instances (configured layout first, smaller fallbacks). */
    private void reconfigure() {
        membershipChanged = false;
        Duration started = clock.now();
        String from = pendingFrom != null ? pendingFrom : describe();
        pendingFrom = null;
        int interrupted = interruptedSinceReconfiguration;
        interruptedSinceReconfiguration = 0;
        long loaded = 0;
        List<Device> free = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (!r.usable()) {
                continue;
            }
            for (Device d : r.devices) {
                if (!owner.containsKey(d)) {
                    free.add(d);
                }
            }
        }
        int i = 0;
        while (i < free.size()) {
            boolean built = false;
            for (ShardLayout layout : layouts) {
                int need = layout.stages() * layout.shards();
                if (i + need > free.size()) {
                    continue;
                }
                List<Device> devs = free.subList(i, i + need);
                if (!fits(layout, devs)) {
                    continue;
                }
                Pipeline p = executor.createPipeline(layout, devs, maxBatchTokens);
                try {
                    p.loadWeights(checkpoint);
                } catch (DeviceMemoryException e) {
                    LOG.warn("weights of {} do not fit on {}: {}", layout, devs, e.getMessage());
                    p.close();
                    continue;
                }
                PipelineSlot slot = new PipelineSlot(nextSlotId++, p, devs);
                for (Device d : devs) {
                    owner.put(d, slot);
                }
                for (int st = 0; st < layout.stages(); st++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        loaded += layout.weightBytes(st, m);
                    }
                }
                slots.add(slot);
                i += need;
                built = true;
                break;
            }
            if (!built) {
                // too few devices left for any layout, or too little memory: idle until the next membership
                // change reconsiders it together with the devices free then
                Device d = free.get(i);
                LOG.debug("device {} ({} bytes free) stays idle: no layout fits the free devices from here",
                        d.id(), d.freeBytes());
                i++;
            }
        }
        String to = describe();
        configurationDescription = to;
        if (from.equals(to)) {
            // nothing changed yet (e.g. a notice whose pipelines are still running): keep the reasons and the
            // starting point for the record of the change that follows
            pendingFrom = from;
            return;
        }
        String reason = String.join(", ", changeReasons);
        changeReasons.clear();
        {
            Reconfiguration rec = new Reconfiguration(started, reason, from, to, interrupted, loaded,
                    migratedSinceReconfiguration, clock.now().minus(started));
            migratedSinceReconfiguration = 0;
            metrics.reconfigured(rec);
            LOG.info("reconfigured {} -> {} ({}; {} requests interrupted, {} weight bytes loaded)", from, to, reason,
                    interrupted, loaded);
        }
    }

    /** Whether each position's weights plus KV cache for B full-length sequences fit its device. */
    private boolean fits(ShardLayout layout, List<Device> devs) {
        for (int st = 0; st < layout.stages(); st++) {
            for (int m = 0; m < layout.shards(); m++) {
                long need = layout.weightBytes(st, m)
                        + (long) maxBatch * config.seqLen() * layout.kvBytesPerPosition(st, m);
                if (need > devs.get(st * layout.shards() + m).freeBytes()) {
                    return false;
                }
            }
        }
        return true;
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
        boolean progress = true;
        while (!queue.isEmpty() && progress) {
            progress = false;
            // least-loaded pipeline first, so requests spread over the replicas
            PipelineSlot best = null;
            for (PipelineSlot s : slots) {
                if (s.active.size() < maxBatch && (best == null || s.active.size() < best.active.size())) {
                    best = s;
                }
            }
            if (best == null) {
                return;
            }
            LiveRequest r = queue.peekFirst();
            try {
                best.pipeline.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
            } catch (DeviceMemoryException e) {
                LOG.debug("pipeline {} is full: {}", best.describe(), e.getMessage());
                return;
            }
            queue.pollFirst();
            uncount(r);
            r.slot = best;
            best.active.add(r);
            progress = true;
        }
    }

    /** One forward step on every pipeline with work; returns whether anything ran. */
    private boolean step() {
        boolean any = false;
        for (PipelineSlot s : new ArrayList<>(slots)) {
            if (s.active.isEmpty()) {
                continue;
            }
            try {
                any |= step(s);
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

    private boolean step(PipelineSlot s) {
        Pipeline p = s.pipeline;
        int budget = p.maxBatch();
        long[] seqs = new long[budget];
        int[] toks = new int[budget];
        int[] pos = new int[budget];
        float[][] logits = new float[budget][];
        LiveRequest[] owners = new LiveRequest[budget];
        int n = 0;
        // decodes first (one position each), then prompt / recompute chunks in admission order
        for (int pass = 0; pass < 2 && n < budget; pass++) {
            for (LiveRequest r : s.active) {
                int filled = p.length(r.id);
                int pending = r.totalTokens() - filled;
                if ((pass == 0) != (pending == 1) || pending < 1) {
                    continue;
                }
                int take = Math.min(pending, budget - n);
                for (int k = 0; k < take; k++) {
                    seqs[n] = r.id;
                    toks[n] = r.tokenAt(filled + k);
                    pos[n] = filled + k;
                    if (k == pending - 1) {
                        logits[n] = new float[config.vocabSize()];
                        owners[n] = r;
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
        p.forward(seqs, toks, pos, n, logits);
        clock.computed(n);
        for (int i = 0; i < n; i++) {
            if (owners[i] != null) {
                commit(owners[i], owners[i].sampler.sample(logits[i]));
            }
        }
        return true;
    }

    private void commit(LiveRequest r, int token) {
        Duration now = clock.now();
        if (token == Tokenizer.BOS) {
            finish(r, Completion.FinishReason.STOP, now);
            return;
        }
        r.commit(token);
        metrics.generated(1);
        if (r.firstTokenAt == null) {
            r.firstTokenAt = now;
        }
        String piece = r.decoder.accept(token);
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
        String tail = r.decoder.finish();
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
        if (r.slot != null) {
            r.slot.active.remove(r);
            r.slot.pipeline.closeSequence(r.id);
            r.slot = null;
        } else {
            queue.remove(r);
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
