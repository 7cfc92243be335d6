package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.clock.ForwardStep;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Pipeline;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request manager (SpotServe §3, DESIGN.md §2): the admission queue, iteration-level batching, the forward steps
 * of each pipeline, per-token commit and streaming, cancellation and deadlines. Owned by the engine thread; the
 * only state it shares with callers is the {@link #waiting} count of the admission queue.
 *
 * <p>Pipelines compute side by side: each step is laid out here, then handed to the pipeline's own dispatcher thread
 * ({@link #dispatch}); its end comes back through the engine's inbox as a {@link StepInFlight.Ended} command and is
 * committed here ({@link #complete}). While a pipeline computes, its requests and sequences are left alone (no
 * admission, no cancellation on it). On a clock that is not real time the engine waits for the steps it dispatched,
 * in dispatch order, so simulated runs stay deterministic.
 */
final class RequestManager {
    private static final Logger LOG = LoggerFactory.getLogger(RequestManager.class);

    private final LlamaConfig config;
    private final EngineClock clock;
    private final MetricsRecorder metrics;
    private final KvParking parking;
    private final ConfigPlanner planner;
    private final LostDevices losses;
    private final int admissionGroup;
    /** Where dispatchers post the end of a step (the engine's inbox). */
    private final Consumer<Object> inbox;
    /** Pipelines whose step failed (not by a device loss) since the last {@link #takeFailed}: to be retired. */
    private final List<PipelineSlot> failedPipelines = new ArrayList<>();
    /** Requests accepted but not admitted yet; shared with caller threads (admission control). */
    final AtomicInteger waiting = new AtomicInteger();

    private final ArrayDeque<LiveRequest> queue = new ArrayDeque<>();
    /** Dated submissions whose arrival time has not come yet, earliest first (ties: submission order). */
    private final PriorityQueue<LiveRequest> scheduled = new PriorityQueue<>(
            Comparator.comparing((LiveRequest r) -> r.submittedAt).thenComparingLong(r -> r.id));
    /** Engine-clock duration of one step (the longest of those dispatched together), smoothed. */
    private Duration stepEstimate = Duration.ZERO;
    /** Requests that lost their cache since the last reconfiguration reported it. */
    private int interrupted;

    RequestManager(LlamaConfig config, EngineClock clock, MetricsRecorder metrics, KvParking parking,
                   ConfigPlanner planner, LostDevices losses, int admissionGroup, Consumer<Object> inbox) {
        this.config = config;
        this.losses = losses;
        this.clock = clock;
        this.metrics = metrics;
        this.parking = parking;
        this.planner = planner;
        this.admissionGroup = admissionGroup;
        this.inbox = inbox;
    }

    // ------------------------------------------------------------------ queue

    /** A submission taken off the inbox: queued now, or held until its dated arrival. */
    void accept(LiveRequest r) {
        if (r.submittedAt.compareTo(clock.now()) > 0) {
            scheduled.add(r);
        } else {
            queue.addLast(r);
            planner.arrived(r.submittedAt);
        }
    }

    /** Dated submissions whose arrival has come join the queue. */
    void arrivalsDue(Duration now) {
        while (!scheduled.isEmpty() && scheduled.peek().submittedAt.compareTo(now) <= 0) {
            LiveRequest r = scheduled.poll();
            queue.addLast(r);
            planner.arrived(r.submittedAt);
        }
    }

    int queued() {
        return queue.size();
    }

    /** Whether {@code r} waits in the admission queue (it was re-queued already). */
    boolean isQueued(LiveRequest r) {
        return queue.contains(r);
    }

    boolean hasWaiting() {
        return !queue.isEmpty() || !scheduled.isEmpty();
    }

    /** The smoothed duration of one step: how long a pipeline takes to produce one more token. */
    Duration stepEstimate() {
        return stepEstimate;
    }

    /** Requests that lost their KV cache (they recompute) since the last call. */
    int takeInterrupted() {
        int n = interrupted;
        interrupted = 0;
        return n;
    }

    /** The earliest dated arrival or request deadline, or null. */
    Duration nextDue(List<PipelineSlot> slots) {
        Duration next = scheduled.isEmpty() ? null : scheduled.peek().submittedAt;
        for (LiveRequest r : queue) {
            next = min(next, r.deadline);
        }
        for (PipelineSlot s : slots) {
            for (LiveRequest r : s.active) {
                next = min(next, r.deadline);
            }
        }
        return next;
    }

    static Duration min(Duration a, Duration b) {
        return a == null ? b : b == null ? a : a.compareTo(b) <= 0 ? a : b;
    }

    // ------------------------------------------------------------------ admission

    /**
     * Admits queued requests, least-loaded pipeline first, into the pipelines that take requests ({@code open}) and
     * are not computing a step now, up to {@code batchCap} each.
     */
    void admit(List<PipelineSlot> slots, Predicate<PipelineSlot> open, int batchCap) {
        if (queue.isEmpty() || slots.isEmpty()) {
            return;
        }
        while (!queue.isEmpty()) {
            // least-loaded pipeline first, so requests spread over the replicas (idle ones first)
            PipelineSlot best = null;
            for (PipelineSlot s : slots) {
                if (s.inFlight == null && open.test(s) && s.active.size() < batchCap
                        && (best == null || s.active.size() < best.active.size())) {
                    best = s;
                }
            }
            if (best == null) {
                return;
            }
            int joining = Math.min(queue.size(), batchCap - best.active.size());
            if (!best.active.isEmpty() && joining < Math.min(admissionGroup, batchCap)) {
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
        boolean parked = r.parked != null;
        boolean restored;
        try {
            s.pipeline.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
            restored = parked && parking.restore(r, s.pipeline);
        } catch (DeviceMemoryException e) {
            LOG.debug("pipeline {} is full: {}", s.describe(), e.getMessage());
            return false;
        } catch (RuntimeException e) {
            DeviceLostException lost = LostDevices.find(e);
            if (lost == null) {
                throw e;
            }
            deviceLost(s, lost, "admitting request " + r.id);
            if (parked && r.parked == null) {
                r.restarts++; // its parked cache was spent on the lost pipeline: it recomputes
                metrics.restarted(1);
            }
            return false;
        }
        if (restored) {
            metrics.migrated(1, 0); // resumes at its committed step with the cache it parked
        } else if (parked) {
            r.restarts++;
            metrics.restarted(1);
        }
        queue.pollFirst();
        uncount(r);
        r.slot = s;
        s.active.add(r);
        return true;
    }

    // ------------------------------------------------------------------ forward steps

    /**
     * Dispatches one forward step on every pipeline with work that is not computing and whose previous step has
     * ended on the engine clock. On a real-time clock it returns at once (the ends arrive through the inbox) and
     * reports false; otherwise it waits for the dispatched steps in dispatch order, commits them, and reports
     * whether any ran.
     */
    boolean dispatch(List<PipelineSlot> slots) {
        List<StepInFlight> started = new ArrayList<>();
        Duration now = clock.now();
        for (PipelineSlot s : new ArrayList<>(slots)) {
            if (s.inFlight != null || s.active.isEmpty() || s.broken() || s.busyUntil.compareTo(now) > 0) {
                continue;
            }
            StepInFlight step = start(s, null);
            if (step != null) {
                started.add(step);
            }
        }
        if (clock.isRealTime() || started.isEmpty()) {
            return false;
        }
        Duration longest = Duration.ZERO;
        for (StepInFlight step : started) {
            Duration busy = complete(step);
            longest = busy != null && busy.compareTo(longest) > 0 ? busy : longest;
        }
        Duration took = clock.now().minus(now);
        stepEstimate = smooth(stepEstimate, took.compareTo(longest) >= 0 ? took : longest);
        return true;
    }

    /**
     * One step of {@code s} starting at {@code start}, waited for and committed (pipelines that keep decoding during a
     * migration); returns whether anything ran.
     */
    boolean stepNow(PipelineSlot s, Duration start) {
        StepInFlight step = start(s, start);
        if (step == null) {
            return false;
        }
        complete(step);
        return true;
    }

    /** Waits for every step in flight and commits it (before anything touches pipelines or their requests). */
    void joinAll(List<PipelineSlot> slots) {
        for (PipelineSlot s : new ArrayList<>(slots)) {
            StepInFlight step = s.inFlight;
            if (step != null) {
                complete(step);
            }
        }
    }

    /** The end of a step came through the inbox; commits it unless it was committed already. */
    void ended(StepInFlight step) {
        if (step.slot().inFlight == step) {
            Duration busy = complete(step);
            Duration took = clock.now().minus(step.dispatchedAt());
            stepEstimate = smooth(stepEstimate, busy != null && busy.compareTo(took) > 0 ? busy : took);
        }
    }

    /**
     * The pipelines whose forward step failed since the last call (their requests failed already); the caller takes
     * them out of service.
     */
    List<PipelineSlot> takeFailed() {
        if (failedPipelines.isEmpty()) {
            return List.of();
        }
        List<PipelineSlot> out = List.copyOf(failedPipelines);
        failedPipelines.clear();
        return out;
    }

    static Duration smooth(Duration average, Duration sample) {
        return average.isZero() ? sample : average.multipliedBy(3).plus(sample).dividedBy(4);
    }

    /** Lays out the next batch of {@code s} and hands it to its dispatcher; null when it has nothing to compute. */
    private StepInFlight start(PipelineSlot s, Duration start) {
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
            return null;
        }
        int rows = n;
        CompletableFuture<Void> done;
        try {
            done = CompletableFuture.runAsync(() -> p.forward(b.seqs, b.toks, b.pos, rows, b.logits), s.dispatcher());
        } catch (RejectedExecutionException e) {
            done = CompletableFuture.failedFuture(e);
        }
        StepInFlight step = new StepInFlight(s, n, new ForwardStep(p.layout().stages(), p.layout().shards(),
                promptSequences, promptPositions, decodes), start, clock.now(), done);
        s.inFlight = step;
        if (clock.isRealTime()) {
            done.whenComplete((v, e) -> inbox.accept(new StepInFlight.Ended(step)));
        }
        return step;
    }

    /**
     * Waits for {@code step}, prices it on the clock, samples each finished row with its request's own sampler and
     * commits; returns how long the pipeline is busy with it (null when it failed: when devices were lost its requests
     * go back to the queue, see {@link #deviceLost}; on any other failure its requests failed and the pipeline waits in
     * {@link #takeFailed} for the engine to retire it).
     */
    private Duration complete(StepInFlight step) {
        PipelineSlot s = step.slot();
        Throwable error = null;
        try {
            step.done().get();
        } catch (ExecutionException | CompletionException e) {
            error = e.getCause() != null ? e.getCause() : e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error = e;
        }
        s.inFlight = null;
        DeviceLostException lost = LostDevices.find(error);
        if (lost != null) {
            deviceLost(s, lost, "a forward step");
            return null;
        }
        if (error != null) {
            LOG.error("forward step failed on pipeline {}; failing its requests", s.describe(), error);
            for (LiveRequest r : new ArrayList<>(s.active)) {
                fail(r, RequestFailedException.Reason.INTERNAL_ERROR, "forward step failed: " + error, error);
            }
            failedPipelines.add(s);
            return null;
        }
        Duration busy = clock.computed(step.shape());
        Duration done = (step.start() != null ? step.start() : clock.now()).plus(busy);
        s.busyUntil = done;
        PipelineSlot.Scratch b = s.scratch(s.pipeline.maxBatch());
        for (int i = 0; i < step.positions(); i++) {
            LiveRequest r = b.owners[i];
            if (r != null) {
                b.owners[i] = null;
                sampleAndCommit(r, b.logits[i], done);
            }
        }
        return busy;
    }

    /** Samples the next token of {@code r}; a sampler failure fails this request only, never its batch-mates. */
    private void sampleAndCommit(LiveRequest r, float[] logits, Duration now) {
        int token;
        try {
            token = r.sampler.sample(logits);
        } catch (RuntimeException e) {
            LOG.error("sampling failed for request {} ({}); failing it alone", r.id, r.request.sampling(), e);
            fail(r, RequestFailedException.Reason.INTERNAL_ERROR, "sampling failed: " + e, e);
            return;
        }
        commit(r, token, now);
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

    void fail(LiveRequest r, RequestFailedException.Reason reason, String message, Throwable cause) {
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
            r.slot.closeSequence(r.id);
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

    // ------------------------------------------------------------------ cancellation, deadlines, failures

    /**
     * Drops requests their callers gave up on and fails those past their deadline ({@code why} names what kept an
     * expired request from running, or null). Requests on a pipeline that is computing are checked after its step.
     */
    void dropAbandonedAndExpired(List<PipelineSlot> slots, String why) {
        Duration now = clock.now();
        List<LiveRequest> all = new ArrayList<>(queue);
        all.addAll(scheduled);
        for (PipelineSlot s : slots) {
            if (s.inFlight == null) {
                all.addAll(s.active);
            }
        }
        for (LiveRequest r : all) {
            Throwable streamError = r.publisher == null ? null : r.publisher.subscriberError();
            if (streamError != null) {
                fail(r, RequestFailedException.Reason.SUBSCRIBER_FAILED, "the token subscriber failed: " + streamError,
                        streamError);
            } else if (r.abandoned()) {
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
                String elapsed = "timeout " + r.request.timeout() + " elapsed after " + r.generatedCount + " of "
                        + r.request.maxNewTokens() + " tokens";
                if (r.slot == null && why != null) {
                    fail(r, RequestFailedException.Reason.NO_CAPACITY, elapsed + "; it could not run: " + why, null);
                } else {
                    fail(r, RequestFailedException.Reason.DEADLINE_EXCEEDED, elapsed, null);
                }
            }
        }
    }

    /** Fails every request the manager holds (queued, dated, running). */
    void failAll(List<PipelineSlot> slots, RequestFailedException.Reason reason, String message, Throwable cause) {
        List<LiveRequest> all = new ArrayList<>(queue);
        all.addAll(scheduled);
        for (PipelineSlot s : slots) {
            all.addAll(s.active);
        }
        for (LiveRequest r : all) {
            fail(r, reason, message, cause);
        }
    }

    /**
     * A call into {@code s} found devices gone (a worker died): not the requests' fault, so none fails. They go back
     * to the front of the queue and recompute from their committed tokens; the pipeline's positions on the lost
     * instances are marked lost (it is broken: it computes and admits nothing more, while its surviving positions keep
     * their weights for the next configuration), or all of them when the lost devices are none of its own; the loss
     * is recorded for the instance manager, which takes those instances out of the fleet and re-plans.
     */
    void deviceLost(PipelineSlot s, DeviceLostException e, String during) {
        Set<String> gone = losses.report(e);
        LOG.warn("{} on pipeline {} failed: devices {} are lost ({}); its {} requests resume from their committed "
                + "tokens", during, s.describe(), e.devices(), e.getMessage(), s.active.size());
        requeue(s);
        if (s.markLost(gone) == 0 && !s.broken()) {
            s.markLost(s.instances); // it cannot be trusted to compute any more
        }
    }

    /** Sends the requests of a pipeline back to the front of the queue, freeing their KV caches. */
    void requeue(PipelineSlot s) {
        List<LiveRequest> back = new ArrayList<>(s.active);
        Set<LiveRequest> untouched = new HashSet<>();
        s.active.clear();
        for (LiveRequest r : back) {
            if (s.pipeline.length(r.id) == 0) {
                untouched.add(r);
            }
            s.closeSequence(r.id);
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
    void requeue(List<LiveRequest> back, Set<LiveRequest> untouched) {
        back = new ArrayList<>(back);
        back.sort(Comparator.comparingLong((LiveRequest r) -> r.id).reversed());
        int recompute = 0;
        for (LiveRequest r : back) {
            if (r.parked == null && !untouched.contains(r)) {
                r.restarts++;
                recompute++;
            }
            queue.addFirst(r);
        }
        interrupted += recompute;
        metrics.restarted(recompute);
    }

    /** Forgets the queue (shutdown, after {@link #failAll}). */
    void clear() {
        queue.clear();
        scheduled.clear();
    }
}
