package io.spotserve.engine;

import io.spotserve.clock.DataMove;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StagedSlice;
import io.spotserve.exec.WeightSource;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.ContextUnit;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.Position;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries out one reparallelization (SpotServe §3.3–§3.4) on real device arenas: builds the new pipelines on
 * the devices the {@link io.spotserve.plan.DeviceMapper} chose, moves the KV caches of the batches the new
 * pipelines inherit ({@link KvCacheMigration}), then moves the weights unit by unit in the {@link io.spotserve.plan.MigrationPlanner}'s
 * order.
 *
 * <p>For every piece a new position needs (the intersection of its slice with each old shard's slice), the
 * source is, in order of preference: the target device itself (the piece <em>stays in place</em>: it is
 * handed from the old position to the new one without leaving the device), another device of the same
 * instance, any other surviving holder, and only when no holder survives, the checkpoint. Each unit is first
 * staged at its source ({@link Pipeline#stageSlice}: in host memory for the in-process executors, in the source
 * worker's memory for remote ones, which then stream it to the target worker directly), then released from the old
 * positions, then imported and the staged copy released: a device never holds the old and the new copy of a unit at
 * once, and every allocation goes through the arena's capacity check ({@link DeviceMemoryException} before anything
 * is allocated). Staged copies of one unit (or one request's KV cache) exist at a time, and are released on every
 * path, failures included. A source that dies between staging and import is read from the checkpoint instead (a KV
 * piece: its request recomputes).
 *
 * <p>With an executor that {@link Executor#batchesTransfers batches transfers} (worker processes), a weight piece
 * whose holder is on another instance is not staged: it is queued, its old slice kept, and the queue is sent straight
 * from the old positions with one {@link Executor#transferAll} per (old position, new position), several units per
 * call (up to {@link #DIRECT_BATCH_BYTES}, the last unit, or a unit that would place something on a device still
 * keeping old copies for the queue), after which the old slices are released. Every device still holds at most what
 * it holds in the unit-by-unit order: a target's releases come as early and its imports later, and a source receives
 * nothing while it keeps copies for the queue (a piece whose source device also receives a piece of the same unit is
 * staged as above). Bytes and their counts are the same as staged; a source that dies before its queued pieces
 * arrive is read from the checkpoint instead.
 *
 * <p>The caller drives it unit by unit ({@link #begin}, then {@link #nextUnit} while {@link #hasNextUnit}, then
 * {@link #finish}); between units it charges the copies to its clock and tells the migration which instances died
 * meanwhile ({@link #instancesGone}, a preemption during the migration): their devices stop being sources (the next
 * replica or the checkpoint serves instead) and new positions on them are marked lost, so the engine re-plans right
 * after. Nothing here calls back into the engine. Every byte moves through the {@link SliceMover}. Not thread-safe;
 * runs on the engine thread.
 */
final class ContextMigration {
    private static final Logger LOG = LoggerFactory.getLogger(ContextMigration.class);

    /**
     * What happened: the new pipelines, the requests that lost their cache (parked in host memory or to recompute),
     * how many requests resumed on another pipeline with their moved cache, and the bytes moved / kept / reloaded.
     */
    record Result(List<PipelineSlot> slots, List<LiveRequest> dropped, Set<LiveRequest> untouched, int resumed,
                  long bytesMoved,
                  long bytesKept, long bytesReloaded) {
    }

    private final Executor executor;
    /** The executor's stored bytes per weight (4 fp32, 2 halves, 1.0625 Q8_0), read once per migration. */
    private final double bytesPerWeight;
    private final SliceMover mover;
    /** The requests behind the deployment's in-flight batches, by batch id (see {@link DeploymentSnapshot}). */
    private final Map<String, LiveRequest> batchRequests;
    private final LlamaConfig c;
    private final List<PipelineSlot> old;
    private final DeviceMapping mapping;
    private final Map<DeviceId, Device> devices;
    private final ReconfigurationMode mode;
    /** The first unit: the kept requests' KV caches. */
    private final KvCacheMigration caches;
    /** What the migration moved, kept and reloaded, and the instances it found dead. */
    private final MigrationLedger ledger = new MigrationLedger();
    /** Old pipelines that become new ones unchanged (same layout on the same devices): nothing of theirs moves. */
    private final Set<PipelineSlot> reused = new HashSet<>();
    /** Bytes each instance has sent so far: among equally near holders, the least loaded sender is chosen. */
    private final Map<String, Long> sent = new java.util.HashMap<>();
    // ---- progress of a migration driven unit by unit
    private final List<PipelineSlot> fresh = new ArrayList<>();
    private final List<LiveRequest> dropped = new ArrayList<>();
    private final Set<LiveRequest> untouched = new HashSet<>();
    private final List<ContextUnit> pending = new ArrayList<>();
    private List<PipelineSlot> unchanged = List.of();
    // ---- weight pieces sent straight from their old positions (executors that batch transfers)
    /** Whether pieces from other instances go {@link #queueDirect direct}, batched ({@link Executor#batchesTransfers}). */
    private final boolean direct;
    /** Direct pieces not sent yet, in the planner's order. */
    private final List<Direct> directs = new ArrayList<>();
    /** Old slices that are sources of queued direct pieces: released once those are sent. */
    private final List<DeferredRelease> deferredReleases = new ArrayList<>();
    /** Devices whose old copies queued direct pieces are sent from (by identity): they receive nothing meanwhile. */
    private final Set<Device> directSources = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    private long directBytes;
    /**
     * Queued direct bytes that trigger a send when the pipelines left as they are decode between units (a clock that
     * {@link io.spotserve.clock.EngineClock#stepsDuringMigration steps during migrations}): large enough that a call
     * carries several slices of a small model (one stream, consecutive slices overlapping), small enough that those
     * pipelines still decode between sends.
     */
    static final long DIRECT_BATCH_BYTES = 64L << 20;
    /**
     * This migration's send threshold ({@link #directBatchBytes(long)}); the memory rule (nothing placed on a device
     * that still keeps old copies for the queue) and the last unit send the queue whatever it is.
     */
    private long directBatchBytes = DIRECT_BATCH_BYTES;
    private int resumed;

    ContextMigration(Executor executor, WeightSource weights, List<PipelineSlot> old, DeviceMapping mapping,
                     Map<DeviceId, Device> devices, KvParking parking, Map<String, LiveRequest> batchRequests) {
        this(executor, new SliceMover(weights), weights.config(), old, mapping, batchRequests, devices, parking,
                ReconfigurationMode.MIGRATE, true);
    }

    /**
     * A migration carrying context the way {@code mode} says (the baselines read weights from the source only);
     * without {@code carryCaches} no KV cache moves or is parked (the arranger rerouted the requests), whatever the mode.
     */
    ContextMigration(Executor executor, SliceMover mover, LlamaConfig config, List<PipelineSlot> old,
                     DeviceMapping mapping, Map<String, LiveRequest> batchRequests, Map<DeviceId, Device> devices,
                     KvParking parking, ReconfigurationMode mode, boolean carryCaches) {
        this.mode = mode;

        this.executor = executor;
        this.bytesPerWeight = executor.storedBytesPerWeightExact();
        this.mover = mover;
        this.c = config;
        this.old = List.copyOf(old);
        this.mapping = mapping;
        this.batchRequests = Map.copyOf(batchRequests);
        this.devices = devices;
        this.direct = executor.batchesTransfers();
        this.caches = new KvCacheMigration(executor, mover, config, mode == ReconfigurationMode.MIGRATE && carryCaches,
                parking, ledger);
    }

    /**
     * Bytes of weight slice {@code w} as the executor stores it ({@link #bytesPerWeight}), the size the device
     * mapper's model of this reconfiguration counts (Reconfigurator's {@code ModelContext}); KV slices are fp32
     * ({@link ContextSlice#bytes}).
     */
    private long weightBytes(ContextSlice w) {
        return Math.round(w.floats(c) * bytesPerWeight);
    }

    /** Runs the whole migration with no instance dying meanwhile (tests, tools). */
    Result runAll(List<ContextUnit> order, int maxBatchTokens, IntSupplier slotIds) {
        try {
            begin(order, maxBatchTokens, slotIds);
            while (hasNextUnit()) {
                nextUnit();
            }
            return finish();
        } catch (RuntimeException e) {
            abort();
            throw e;
        }
    }

    /**
     * Builds the new pipelines on the mapped devices (reusing old ones that stay as they are) and moves the KV caches
     * of the batches they inherit: the first unit. Returns what it copied.
     *
     * @throws DeviceMemoryException if a new position cannot take what it needs; call {@link #abort} then (the old
     *                               pipelines may have lost some units: the caller cold-starts)
     */
    List<DataMove> begin(List<ContextUnit> order, int maxBatchTokens, IntSupplier slotIds) {
        ParallelConfig nc = mapping.newConfig();
        ShardLayout nl = ShardLayout.split(c, nc.pipelineStages(), nc.tensorShards());
        for (int j = 0; j < nc.dataParallel(); j++) {
            List<Device> devs = new ArrayList<>();
            for (int s = 0; s < nl.stages(); s++) {
                for (int m = 0; m < nl.shards(); m++) {
                    DeviceId id = mapping.deviceOf(new Position(j, s, m));
                    Device d = devices.get(id);
                    if (d == null) {
                        throw new IllegalStateException("the mapping places " + new Position(j, s, m) + " on "
                                + id + ", which the engine does not have");
                    }
                    devs.add(d);
                }
            }
            PipelineSlot same = mode == ReconfigurationMode.RESTART ? null : unchanged(nl, devs);
            if (same != null) {
                reused.add(same);
                fresh.add(same);
            } else {
                fresh.add(new PipelineSlot(slotIds.getAsInt(), executor.createPipeline(nl, devs, maxBatchTokens),
                        devs));
            }
        }
        resumed = caches.moveAll(old, fresh, reused, mapping, batchRequests, dropped, untouched);
        ledger.markLost(fresh);
        unchanged = reusedInOrder(fresh);
        Set<ContextUnit> units = new LinkedHashSet<>();
        for (ContextUnit u : order) {
            if (!u.equals(ContextUnit.KV)) {
                units.add(u);
            }
        }
        units.addAll(allUnits()); // whatever the plan did not list, in the natural order
        pending.addAll(units);
        return takeMoves();
    }

    /** The old pipelines that become new ones unchanged (with their requests; they may keep decoding meanwhile). */
    List<PipelineSlot> unchanged() {
        return unchanged;
    }

    boolean hasNextUnit() {
        return !pending.isEmpty();
    }

    /**
     * Sends queued direct pieces once they reach {@code bytes} (default {@link #DIRECT_BATCH_BYTES}); with nothing
     * decoding between units, {@link Long#MAX_VALUE}: each route goes in as few calls as the memory rule allows (on a
     * fresh worker every call costs a round trip and a restarted stream). Returns this migration.
     *
     * @throws IllegalArgumentException if {@code bytes} is not positive
     */
    ContextMigration directBatchBytes(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("direct batch bytes must be > 0, was " + bytes);
        }
        this.directBatchBytes = bytes;
        return this;
    }

    /** Moves the next weight unit in the planner's order; returns what it copied. */
    List<DataMove> nextUnit() {
        moveUnit(pending.remove(0), fresh);
        if (pending.isEmpty() || directBytes >= directBatchBytes) {
            sendDirect();
        }
        return takeMoves();
    }

    /**
     * The instances gone by now (terminated or past their preemption deadline; cumulative is fine): they stop being
     * sources, and new positions on them are lost.
     */
    void instancesGone(Set<String> gone) {
        ledger.gone(gone);
        ledger.markLost(fresh);
    }

    /**
     * The device losses the migration absorbed since the last call (a source that died between staging a piece and
     * its import: the piece came from the checkpoint, or its request recomputes); the caller reports them.
     */
    List<DeviceLostException> takeLosses() {
        return ledger.takeLosses();
    }

    /** Closes the old pipelines not reused; returns what happened. */
    Result finish() {
        sendDirect(); // nothing is queued after the last unit; a caller that skipped units gets them sent here
        for (PipelineSlot s : old) {
            if (!reused.contains(s)) {
                s.close();
            }
        }
        return new Result(List.copyOf(fresh), dropped, untouched, resumed, ledger.moved(), ledger.kept(),
                ledger.reloaded());
    }

    /** After a failure: closes the new pipelines (their requests are the caller's to re-queue). */
    void abort() {
        directs.clear(); // never sent: the old positions keep their copies (their releases were deferred)
        deferredReleases.clear();
        directSources.clear();
        directBytes = 0;
        for (PipelineSlot s : fresh) {
            for (LiveRequest r : s.active) {
                r.slot = null;
            }
            s.close();
        }
    }

    private List<PipelineSlot> reusedInOrder(List<PipelineSlot> fresh) {
        List<PipelineSlot> out = new ArrayList<>();
        for (PipelineSlot s : fresh) {
            if (reused.contains(s)) {
                out.add(s);
            }
        }
        return List.copyOf(out);
    }

    private List<DataMove> takeMoves() {
        return ledger.takeMoves();
    }

    /** An intact old pipeline with exactly this layout on exactly these devices, not yet taken. */
    private PipelineSlot unchanged(ShardLayout layout, List<Device> devs) {
        for (PipelineSlot s : old) {
            if (!s.broken() && !reused.contains(s) && s.pipeline.layout().equals(layout) && s.devices.equals(devs)) {
                return s;
            }
        }
        return null;
    }

    private List<ContextUnit> allUnits() {
        List<ContextUnit> out = new ArrayList<>();
        out.add(ContextUnit.EMBEDDING);
        for (int l = 0; l < c.layers(); l++) {
            out.add(ContextUnit.layer(l));
        }
        out.add(ContextUnit.CLASSIFIER);
        return out;
    }

    static ContextUnit unitOf(ContextSlice s) {
        if (s instanceof ContextSlice.Embedding) {
            return ContextUnit.EMBEDDING;
        } else if (s instanceof ContextSlice.LayerWeights w) {
            return ContextUnit.layer(w.layer());
        } else if (s instanceof ContextSlice.FinalNorm || s instanceof ContextSlice.Classifier) {
            return ContextUnit.CLASSIFIER;
        }
        throw new IllegalArgumentException(s + " is not a weight slice");
    }

    private boolean usable(Device d) {
        return ledger.usable(d);
    }

    /**
     * Whether {@code e} says that the staged piece's source instance is gone while its target is not: the piece must
     * then come from elsewhere (the checkpoint, or a recomputation).
     */
    static boolean sourceOnlyLost(DeviceLostException e, String fromInstance, String toInstance) {
        Set<String> lost = LostDevices.instancesOf(e);
        return fromInstance != null && lost.contains(fromInstance) && !lost.contains(toInstance);
    }

    // ------------------------------------------------------------------ weights, unit by unit

    /**
     * A weight piece on its way to new position (stage, shard) of {@code slot}, staged at its source (instance
     * {@code fromInstance}, null for the checkpoint); {@code moved} when it counts as moved between devices.
     */
    private record Staged(PipelineSlot slot, int stage, int shard, StagedSlice data, String fromInstance,
                          boolean moved) {
    }

    /** A piece of a new position's slice and where it comes from ({@code from} null: the checkpoint; rank 0 = the
     * target device itself, 1 = its instance, 2 = another instance). */
    private record Choice(ContextSlice piece, Holder from, int rank, Device target, PipelineSlot to, int stage,
                          int shard) {
    }

    /** A piece queued to go straight from its old position to new position (stage, shard) of {@code to}. */
    private record Direct(Holder from, ContextSlice piece, PipelineSlot to, int stage, int shard, long bytes) {
    }

    /** An old slice kept until the direct pieces taken from it are sent. */
    private record DeferredRelease(PipelineSlot slot, int stage, int shard, ContextSlice slice) {
    }

    /** Old position (stage, shard) of {@code slot}: a possible source of a piece. */
    private record Holder(PipelineSlot slot, int stage, int shard) {
        Device device() {
            return slot.pipeline.device(stage, shard);
        }
    }

    private void moveUnit(ContextUnit unit, List<PipelineSlot> fresh) {
        List<Staged> staged = new ArrayList<>();
        try {
            stageAndPlace(unit, fresh, staged);
        } finally {
            for (Staged st : staged) {
                st.data().release(); // those placed are released already: this frees what a failure left behind
            }
        }
    }

    private void stageAndPlace(ContextUnit unit, List<PipelineSlot> fresh, List<Staged> staged) {
        List<Choice> choices = new ArrayList<>();
        for (PipelineSlot to : fresh) {
            if (reused.contains(to)) {
                keptUnit(unit, to);
                continue;
            }
            ShardLayout b = to.pipeline.layout();
            for (int s2 = 0; s2 < b.stages(); s2++) {
                for (int m2 = 0; m2 < b.shards(); m2++) {
                    if (!to.alive(s2, m2)) {
                        continue;
                    }
                    Device target = to.pipeline.device(s2, m2);
                    for (ContextSlice need : b.weightSlices(s2, m2)) {
                        if (unitOf(need).equals(unit)) {
                            choose(need, target, to, s2, m2, choices);
                        }
                    }
                }
            }
        }
        // pieces from other instances go direct (sent from the old position later, in a batch) unless their source
        // device also receives a piece of this unit; a device keeping old copies for queued pieces receives nothing
        // before they are sent (send the queue first). So a target holds at most what it would hold after the
        // last unit moved one by one (its releases come as early, its imports later), and a source at most what it
        // held when the queue began: no device ever needs more memory than in the unit-by-unit order
        Set<Device> unitTargets = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Choice ch : choices) {
            unitTargets.add(ch.target());
        }
        for (Choice ch : choices) {
            if (directSources.contains(ch.target())) {
                sendDirect();
                break;
            }
        }
        Set<Holder> deferred = new HashSet<>();
        for (Choice ch : choices) {
            if (goesDirect(ch, unitTargets)) {
                queueDirect(ch);
                deferred.add(ch.from());
            } else {
                staged.add(stageChoice(ch));
            }
        }
        // the old copies of this unit go first, so no device holds the unit twice (those still to be sent direct go
        // when they are sent, from devices that receive nothing until then)
        for (PipelineSlot s : old) {
            if (reused.contains(s)) {
                continue;
            }
            ShardLayout a = s.pipeline.layout();
            for (int s1 = 0; s1 < a.stages(); s1++) {
                for (int m1 = 0; m1 < a.shards(); m1++) {
                    if (!s.alive(s1, m1)) {
                        continue;
                    }
                    boolean later = deferred.contains(new Holder(s, s1, m1));
                    for (ContextSlice u : a.weightSlices(s1, m1)) {
                        if (unitOf(u).equals(unit)) {
                            if (later) {
                                deferredReleases.add(new DeferredRelease(s, s1, m1, u));
                            } else {
                                s.pipeline.releaseSlice(s1, m1, u);
                            }
                        }
                    }
                }
            }
        }
        for (Staged st : staged) {
            try {
                mover.place(st.slot.pipeline, st.stage, st.shard, st.data);
            } catch (DeviceLostException e) {
                String target = st.slot.pipeline.device(st.stage, st.shard).id().instance();
                if (!sourceOnlyLost(e, st.fromInstance(), target)) {
                    throw e;
                }
                // the worker that staged it died before it arrived: the checkpoint serves instead
                ContextSlice piece = st.data().slice();
                LOG.info("{} staged on {} was lost with it; reading it from the checkpoint", piece, st.fromInstance());
                sourceLost(e, st.fromInstance());
                mover.place(st.slot.pipeline, st.stage, st.shard, mover.readStaged(piece));
                reloadedInstead(piece, st.moved(), target);
            }
        }
    }

    /** A piece that was to be copied from a holder now comes from the checkpoint: its bytes count as reloaded. */
    private void reloadedInstead(ContextSlice piece, boolean wasMoved, String target) {
        ledger.reloadedInstead(weightBytes(piece), wasMoved, target);
    }

    /** {@code instance} died while it was a source: it stops being one, and the caller hears of the loss. */
    private void sourceLost(DeviceLostException e, String instance) {
        ledger.sourceLost(e, instance);
        ledger.markLost(fresh);
    }

    private boolean goesDirect(Choice ch, Set<Device> unitTargets) {
        return direct && ch.from() != null && ch.rank() == 2 && !unitTargets.contains(ch.from().device());
    }

    /** Queues a piece to be sent straight from its old position (counted as moved now, as a staged one is). */
    private void queueDirect(Choice ch) {
        long bytes = weightBytes(ch.piece());
        String from = ch.from().device().id().instance();
        String target = ch.target().id().instance();
        directs.add(new Direct(ch.from(), ch.piece(), ch.to(), ch.stage(), ch.shard(), bytes));
        directSources.add(ch.from().device());
        directBytes += bytes;
        ledger.moved(from, target, bytes);
    }

    /**
     * Sends the queued direct pieces, one {@link Executor#transferAll} per (old position, new position) in the
     * planner's order, then releases their old slices. A piece whose source died meanwhile comes from the checkpoint;
     * one whose target died is dropped (that position is lost: the engine re-plans).
     */
    private void sendDirect() {
        if (directs.isEmpty()) { // deferred releases exist only for queued pieces
            return;
        }
        Map<List<Object>, List<Direct>> routes = new LinkedHashMap<>();
        for (Direct d : directs) {
            routes.computeIfAbsent(List.of(d.from(), d.to(), d.stage(), d.shard()), k -> new ArrayList<>()).add(d);
        }
        List<DeferredRelease> releases = List.copyOf(deferredReleases);
        directs.clear();
        deferredReleases.clear();
        directSources.clear();
        directBytes = 0;
        for (List<Direct> route : routes.values()) {
            Direct first = route.get(0);
            PipelineSlot to = first.to();
            String target = to.pipeline.device(first.stage(), first.shard()).id().instance();
            String from = first.from().device().id().instance();
            if (!to.alive(first.stage(), first.shard()) || !usable(to.pipeline.device(first.stage(), first.shard()))) {
                for (Direct d : route) {
                    ledger.notMoved(d.bytes()); // never sent: the position it was for is lost
                }
                continue;
            }
            if (usable(first.from().device())) {
                List<ContextSlice> pieces = new ArrayList<>(route.size());
                for (Direct d : route) {
                    pieces.add(d.piece());
                }
                Holder h = first.from();
                try {
                    executor.transferAll(h.slot().pipeline, h.stage(), h.shard(), pieces, to.pipeline, first.stage(),
                            first.shard());
                    continue;
                } catch (DeviceLostException e) {
                    if (!sourceOnlyLost(e, from, target)) {
                        throw e;
                    }
                    LOG.info("{} died while sending {} pieces to {}; reading them from the checkpoint", from,
                            route.size(), target);
                    sourceLost(e, from);
                }
            }
            for (Direct d : route) { // re-imports the ones that arrived before the source died: same bytes
                mover.place(to.pipeline, d.stage(), d.shard(), mover.readStaged(d.piece()));
                reloadedInstead(d.piece(), true, target);
            }
        }
        for (DeferredRelease r : releases) {
            if (!r.slot().alive(r.stage(), r.shard()) || !usable(r.slot().pipeline.device(r.stage(), r.shard()))) {
                continue; // gone with its instance
            }
            try {
                r.slot().pipeline.releaseSlice(r.stage(), r.shard(), r.slice());
            } catch (DeviceLostException e) {
                sourceLost(e, r.slot().pipeline.device(r.stage(), r.shard()).id().instance());
            }
        }
    }

    /** Counts the unit's bytes of a pipeline that stays as it is: kept in place without any copy. */
    private void keptUnit(ContextUnit unit, PipelineSlot slot) {
        ShardLayout b = slot.pipeline.layout();
        for (int s2 = 0; s2 < b.stages(); s2++) {
            for (int m2 = 0; m2 < b.shards(); m2++) {
                for (ContextSlice w : b.weightSlices(s2, m2)) {
                    if (unitOf(w).equals(unit)) {
                        ledger.kept(weightBytes(w));
                    }
                }
            }
        }
    }

    /** The stage of {@code layout} that owns weight slice {@code w}: embedding first, layers by range, the rest last. */
    private static int stageHolding(ShardLayout layout, ContextSlice w) {
        if (w instanceof ContextSlice.Embedding) {
            return 0;
        } else if (w instanceof ContextSlice.LayerWeights lw) {
            return layout.stageOf(lw.layer());
        }
        return layout.stages() - 1; // final norm and classifier
    }

    /**
     * Chooses a source for every piece of {@code need}: the nearest surviving holder (the target device itself, then
     * its instance, then the least loaded other instance), else the checkpoint.
     */
    private void choose(ContextSlice need, Device target, PipelineSlot to, int s2, int m2, List<Choice> out) {
        // pieces: need ∩ each old shard's slice of the same kind on the one old stage that holds it; holders of
        // equal pieces are interchangeable
        Map<ContextSlice, List<Holder>> holders = new LinkedHashMap<>();
        for (PipelineSlot s : old) {
            ShardLayout a = s.pipeline.layout();
            int s1 = stageHolding(a, need);
            for (int m1 = 0; m1 < a.shards(); m1++) {
                for (ContextSlice have : a.weightSlices(s1, m1)) {
                    var piece = have.intersect(need);
                    if (piece.isPresent()) {
                        List<Holder> hs = holders.computeIfAbsent(piece.get(), k -> new ArrayList<>());
                        if (s.alive(s1, m1) && usable(s.pipeline.device(s1, m1))) {
                            hs.add(new Holder(s, s1, m1));
                        }
                    }
                }
            }
        }
        if (mode != ReconfigurationMode.MIGRATE) {
            holders.clear(); // the baselines load every new pipeline from storage
        }
        if (holders.isEmpty()) {
            holders.put(need, List.of()); // no old deployment: everything comes from the checkpoint
        }
        for (Map.Entry<ContextSlice, List<Holder>> e : holders.entrySet()) {
            ContextSlice piece = e.getKey();
            Holder best = null;
            int bestRank = Integer.MAX_VALUE;
            long bestSent = Long.MAX_VALUE;
            for (Holder h : e.getValue()) {
                Device d = h.device();
                int rank = d == target ? 0 : d.id().instance().equals(target.id().instance()) ? 1 : 2;
                long load = rank == 2 ? sent.getOrDefault(d.id().instance(), 0L) : 0;
                if (rank < bestRank || (rank == bestRank && load < bestSent)) {
                    best = h;
                    bestRank = rank;
                    bestSent = load;
                }
            }
            out.add(new Choice(piece, best, bestRank, target, to, s2, m2));
            if (best != null && bestRank == 2) {
                // counted now, so the next piece's choice sees this sender's load (as when pieces were staged here)
                sent.merge(best.device().id().instance(), weightBytes(piece), Long::sum);
            }
        }
    }

    /** Stages a chosen piece at its source (or reads it from the checkpoint) and counts it. */
    private Staged stageChoice(Choice ch) {
        StagedSlice data;
        long bytes = weightBytes(ch.piece());
        Holder best = ch.from();
        String target = ch.target().id().instance();
        if (best == null) {
            data = mover.readStaged(ch.piece());
            ledger.reloaded(target, bytes);
        } else {
            data = mover.stage(best.slot().pipeline, best.stage(), best.shard(), ch.piece());
            if (ch.rank() == 0) {
                ledger.kept(bytes);
            } else {
                ledger.moved(best.device().id().instance(), target, bytes);
            }
        }
        return new Staged(ch.to(), ch.stage(), ch.shard(), data, best == null ? null : best.device().id().instance(),
                best != null && ch.rank() != 0);
    }
}
