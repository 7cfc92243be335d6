package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine's control loop, driven by one thread: the inbox (submissions, instance events, the end of pipeline
 * steps, close), the timers (dated arrivals and events, deadlines) and shutdown. The work is done by the parts
 * DESIGN.md §2 names, each owning its state:
 * <ul>
 *   <li>{@link RequestManager}: admission queue, iteration-level batching, forward steps dispatched to each
 *       pipeline's own thread (pipelines compute side by side), per-token commit and streaming, cancellation and
 *       deadlines;</li>
 *   <li>{@link InstanceManager}: instance events (in provider order per instance, {@link Inbox}), preemption
 *       deadlines, N_t with on-demand asks and releases;</li>
 *   <li>{@link Reconfigurator}: on a membership change, configuration → device mapping → interruption arrangement →
 *       migration order → migration ({@link ContextMigration}) → resume.</li>
 * </ul>
 * One iteration: drain the inbox, apply what is due, drop cancelled and expired requests, re-plan if membership
 * changed, manage the fleet, admit, dispatch steps; when there is nothing to do, wait on the clock. Because sampling
 * state and committed tokens live in the request manager and a resumed request re-feeds exactly its prompt and
 * committed tokens, outputs do not depend on batching, placement or interruptions.
 */
final class EngineLoop {
    private static final Logger LOG = LoggerFactory.getLogger(EngineLoop.class);

    final Tokenizer tokenizer;
    final EngineClock clock;
    private final LlamaConfig config;
    private final InstanceProvider provider;
    private final Executor executor;
    private final boolean ownsExecutor;
    private final int queueCapacity;
    private final Duration drainTimeout;
    private final ConfigPlanner planner;
    private final RequestManager requests;
    private final InstanceManager instances;
    private final Reconfigurator reconfigurator;
    /** Devices found lost by calls into pipelines, until the instance manager takes them out of the fleet. */
    private final LostDevices losses = new LostDevices();

    // ---- shared with caller threads ----
    private final Inbox inbox = new Inbox();
    private final AtomicBoolean closing = new AtomicBoolean();
    /** Set under the inbox monitor when the engine thread has taken its last command: nothing is posted after. */
    private boolean terminated;
    private final AtomicLong nextRequestId = new AtomicLong(1);
    private final MetricsRecorder metrics = new MetricsRecorder();
    private final Thread thread;

    // ---- engine-thread state ----
    private Duration drainDeadline;
    /** close() was called: the drain starts once the commands before it are handled. */
    private boolean closeSeen;
    private boolean stopped;

    private record Submit(LiveRequest request) {
    }

    private record Close() {
    }

    EngineLoop(ServingEngine.Builder b, Executor executor, boolean ownsExecutor, EngineClock clock,
               List<ShardLayout> layouts) {
        this.tokenizer = b.tokenizer;
        this.config = b.weights.config();
        this.provider = b.provider;
        this.executor = executor;
        this.ownsExecutor = ownsExecutor;
        this.clock = clock;
        this.queueCapacity = b.queueCapacity;
        this.drainTimeout = b.drainTimeout;
        this.planner = new ConfigPlanner(b, config, List.copyOf(layouts), executor::storedBytesPerWeightExact,
                executor.tensorGroupsSpanInstances());
        SliceMover mover = new SliceMover(b.weights);
        KvParking parking = new KvParking(config, b.hostKvBudget, mover);
        this.requests = new RequestManager(config, clock, metrics, parking, planner, losses, b.admissionGroup,
                inbox::post);
        this.instances = new InstanceManager(executor, provider, metrics, clock, planner, b.targetInstances);
        this.reconfigurator = new Reconfigurator(b, config, clock, executor, mover, parking, planner, metrics,
                instances, requests, inbox, losses);
        this.instances.wire(reconfigurator, requests);
        this.thread = new Thread(this::run, "spotserve-engine");
        this.thread.setDaemon(true);
    }

    void start() {
        // the provider first: events it reports synchronously (the instances that exist now) are all in the inbox
        // before the engine thread looks, so the initial fleet is configured in one reconfiguration
        provider.start(inbox::post);
        thread.start();
    }

    // ===================================================================== caller side

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
            throw new RequestRejectedException(RequestRejectedException.Reason.CLOSING,
                    "engine is closing; request not accepted");
        }
        if (requests.waiting.incrementAndGet() > queueCapacity) {
            requests.waiting.decrementAndGet();
            metrics.rejected();
            throw new RequestRejectedException(RequestRejectedException.Reason.QUEUE_FULL, "admission queue is full (" + queueCapacity
                    + " requests waiting); retry later");
        }
        long id = nextRequestId.getAndIncrement();
        CompletableFuture<Completion> future = new CompletableFuture<>();
        Duration now = clock.now();
        LiveRequest live = new LiveRequest(id, request, prompt,
                tokenizer == null ? null : tokenizer.streamDecoder(prompt[prompt.length - 1]), future, publisher,
                arrival != null && arrival.compareTo(now) > 0 ? arrival : now);
        if (publisher != null) {
            try {
                publisher.subscribe();
            } catch (RuntimeException | Error e) {
                requests.waiting.decrementAndGet(); // not accepted: it holds no admission capacity
                throw e;
            }
        }
        metrics.submitted();
        synchronized (inbox.monitor) {
            if (!terminated) {
                inbox.post(new Submit(live));
                return future;
            }
        }
        // the engine thread finished its last drain while this submission was on its way: it is failed here, so its
        // future completes like every other accepted request's
        live.countedInQueue = false;
        requests.waiting.decrementAndGet();
        RequestFailedException e = new RequestFailedException(id, RequestFailedException.Reason.ENGINE_CLOSED,
                "engine closed before the request finished", null);
        if (publisher != null) {
            publisher.fail(e);
        }
        metrics.failed();
        future.completeExceptionally(e);
        return future;
    }

    EngineMetrics metrics() {
        return metrics.snapshot(clock.now());
    }

    int contextLength() {
        return ConfigPlanner.contextTokens(config);
    }

    String configurationDescription() {
        return reconfigurator.description();
    }

    void close() {
        if (closing.compareAndSet(false, true)) {
            inbox.post(new Close());
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

    /** After a failed {@link #start}: releases what the constructor and start took (the thread never ran). */
    void abandon() {
        closing.set(true);
        synchronized (inbox.monitor) {
            terminated = true;
        }
        if (ownsExecutor) {
            executor.close();
        }
    }

    // ===================================================================== engine thread

    private void run() {
        try {
            while (!stopped) {
                drainInbox();
                fireTimers();
                applyLosses();
                if (closeSeen && drainDeadline == null) {
                    // after the instance events posted before close() were applied: those instances still serve
                    drainDeadline = clock.now().plus(drainTimeout);
                    instances.draining();
                    LOG.info("closing: draining {} queued and {} running requests (timeout {})", requests.queued(),
                            PipelineSlot.running(reconfigurator.slots()), drainTimeout);
                }
                requests.dropAbandonedAndExpired(reconfigurator.slots(), reconfigurator.noFit());
                if (drainDeadline == null) {
                    reconfigurator.replanGate(requests.queued(), PipelineSlot.running(reconfigurator.slots()));
                }
                if (reconfigurator.pending()) {
                    requests.joinAll(reconfigurator.slots());
                    retireFailed();
                    applyLosses(); // a step that just ended may have found a worker dead: plan without it
                    reconfigurator.reconfigure();
                    applyLosses(); // the migration may have found one dead: re-planned next iteration
                }
                instances.manage();
                requests.admit(reconfigurator.slots(), reconfigurator::admits, reconfigurator.batchCap());
                boolean worked = requests.dispatch(reconfigurator.slots());
                retireFailed();
                worked |= applyLosses();
                metrics.load(requests.queued(), PipelineSlot.running(reconfigurator.slots()),
                        PipelineSlot.kvCacheUsage(reconfigurator.slots(), reconfigurator.batchCap(), ConfigPlanner.contextTokens(config)));
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
            try {
                shutdown(RequestFailedException.Reason.INTERNAL_ERROR, "engine stopped: " + t, t);
            } catch (RuntimeException e) {
                LOG.error("cleanup after the internal error failed", e);
            }
        }
    }

    /** Takes the pipelines whose step failed out of service (the request manager failed their requests). */
    private void retireFailed() {
        for (PipelineSlot s : requests.takeFailed()) {
            reconfigurator.retire(s);
        }
    }

    private boolean idle() {
        return !requests.hasWaiting() && PipelineSlot.running(reconfigurator.slots()) == 0 && inbox.isEmpty();
    }

    private void awaitWork() throws InterruptedException {
        synchronized (inbox.monitor) {
            if (!inbox.isEmpty()) {
                return;
            }
            clock.awaitUntil(nextWakeup(), inbox.monitor);
        }
    }

    /** The earliest time something is due: a dated event, a preemption deadline, a request deadline, the drain end. */
    private Duration nextWakeup() {
        List<PipelineSlot> slots = reconfigurator.slots();
        boolean busy = requests.queued() > 0 || PipelineSlot.running(slots) > 0;
        // re-plan while there is load, or until a decision has seen it gone (then an idle engine sleeps)
        Duration next = RequestManager.min(drainDeadline, planner.nextReplan(busy));
        next = RequestManager.min(next, inbox.nextEvent());
        next = RequestManager.min(next, requests.nextDue(slots));
        next = RequestManager.min(next, instances.nextDue());
        for (PipelineSlot s : slots) {
            if (!s.active.isEmpty() && s.inFlight == null && s.busyUntil.compareTo(clock.now()) > 0) {
                next = RequestManager.min(next, s.busyUntil); // its step ends then
            }
            if (requests.queued() > 0 && s.readyAt.compareTo(clock.now()) > 0) {
                next = RequestManager.min(next, s.readyAt); // a starting pipeline takes the queue then
            }
        }
        return next;
    }

    /**
     * Hands the devices found lost since the last call to the instance manager: their instances are gone now (a
     * preemption without grace) and the next iteration re-plans without them. Returns whether there were any.
     */
    private boolean applyLosses() {
        if (losses.isEmpty()) {
            return false;
        }
        for (LostDevices.Loss loss : losses.take()) {
            instances.lost(loss);
        }
        return true;
    }

    /** Takes commands off the inbox: instance events wait in the inbox's timers until they are due. */
    private void drainInbox() {
        Object cmd;
        while ((cmd = inbox.poll()) != null) {
            if (cmd instanceof Submit s) {
                requests.accept(s.request);
            } else if (cmd instanceof InstanceEvent e) {
                inbox.hold(e);
            } else if (cmd instanceof StepInFlight.Ended e) {
                requests.ended(e.step());
                retireFailed();
            } else if (cmd instanceof Close) {
                closeSeen = true; // takes effect after the events that came before it (see run)
            }
        }
    }

    /** Applies what is due: dated arrivals, instance events (in provider order per instance), instance deadlines. */
    private void fireTimers() {
        Duration now = clock.now();
        requests.arrivalsDue(now);
        if (inbox.eventDue(now) || instances.deadlineDue(now)) {
            // membership changes touch pipelines: let the steps in flight end first
            requests.joinAll(reconfigurator.slots());
            retireFailed();
            for (InstanceEvent e : inbox.due(now)) {
                instances.apply(e);
            }
            instances.deadlines(now);
        }
    }

    private void shutdown() {
        shutdown(RequestFailedException.Reason.ENGINE_CLOSED, "engine closed before the request finished", null);
    }

    private void shutdown(RequestFailedException.Reason reason, String message, Throwable cause) {
        stopped = true;
        closing.set(true);
        requests.joinAll(reconfigurator.slots());
        requests.takeFailed(); // everything is retired below
        requests.failAll(reconfigurator.slots(), reason, message, cause);
        synchronized (inbox.monitor) {
            terminated = true; // submissions after this fail in the caller's thread
        }
        Object cmd;
        while ((cmd = inbox.poll()) != null) {
            if (cmd instanceof Submit s) {
                requests.fail(s.request, reason, message, cause);
            }
        }
        reconfigurator.closeAll();
        requests.clear();
        instances.releaseAll();
        metrics.load(0, 0, 0);
        if (ownsExecutor) {
            executor.close();
        }
        LOG.info("serving engine closed: {}", Arrays.asList(metrics.snapshot(clock.now()).completed(), "completed"));
    }
}
