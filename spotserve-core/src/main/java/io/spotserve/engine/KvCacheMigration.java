package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StagedSlice;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.InflightBatch;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first unit of a {@link ContextMigration}: the KV caches of the in-flight batches the device mapper keeps move
 * to their new pipelines (SpotServe §3.3), so those requests resume at their committed token; the other requests lose
 * their place, their caches parked in host memory where allowed ({@link KvParking}). A cache moves staged (every piece
 * staged at its source, the old sequence closed, the new one opened, the pieces imported) or, with an executor that
 * {@link Executor#batchesTransfers batches transfers} and no device shared between the old and the new positions,
 * straight from the open old sequence in one {@link Executor#transferAll} per route. Counts go to the migration's
 * {@link MigrationLedger}. Not thread-safe; runs on the engine thread.
 */
final class KvCacheMigration {
    private static final Logger LOG = LoggerFactory.getLogger(KvCacheMigration.class);

    private final Executor executor;
    private final SliceMover mover;
    private final LlamaConfig c;
    /** Whether caches crossing instances go straight from the old sequence ({@link Executor#batchesTransfers}). */
    private final boolean direct;
    /** Whether kept requests' caches move (or are parked) at all: SpotServe's mode, unless the arranger rerouted them. */
    private final boolean movesCaches;
    private final KvParking parking;
    private final MigrationLedger ledger;
    /** The new pipelines of the call in progress (positions on instances found dead are marked lost). */
    private List<PipelineSlot> fresh = List.of();

    KvCacheMigration(Executor executor, SliceMover mover, LlamaConfig c, boolean movesCaches, KvParking parking,
                     MigrationLedger ledger) {
        this.executor = executor;
        this.mover = mover;
        this.c = c;
        this.direct = executor.batchesTransfers();
        this.movesCaches = movesCaches;
        this.parking = parking;
        this.ledger = ledger;
    }

    /**
     * Moves the caches of the batches {@code mapping} keeps into the {@code fresh} pipelines (by position in the list)
     * and hands those requests to them; every other request of the {@code old} pipelines goes to {@code dropped} with
     * its cache parked in host memory where allowed ({@code untouched} too if it had computed nothing yet). Closes
     * every sequence of the old pipelines not {@code reused}.
     *
     * @return how many requests resumed on another pipeline with their moved cache
     */
    int moveAll(List<PipelineSlot> old, List<PipelineSlot> fresh, Set<PipelineSlot> reused, DeviceMapping mapping,
                Map<String, LiveRequest> batchRequests, List<LiveRequest> dropped, Set<LiveRequest> untouched) {
        this.fresh = fresh;
        Map<Long, LiveRequest> byId = new LinkedHashMap<>();
        for (PipelineSlot s : old) {
            for (LiveRequest r : s.active) {
                byId.put(r.id, r);
            }
        }
        Map<PipelineSlot, List<LiveRequest>> placed = new LinkedHashMap<>();
        for (PipelineSlot s : fresh) {
            placed.put(s, new ArrayList<>());
        }
        int resumed = 0;
        for (Map.Entry<Integer, List<InflightBatch>> e : mapping.keptBatches().entrySet()) {
            PipelineSlot to = fresh.get(e.getKey());
            for (InflightBatch b : e.getValue()) {
                LiveRequest r = batchRequests.get(b.id());
                if (r == null) {
                    continue;
                }
                if (r.slot == to) {
                    // its pipeline stays as it is: not interrupted, nothing to resume
                    ledger.kept((long) to.pipeline.length(r.id) * c.kvBytesPerPosition());
                } else if (movesCaches && move(r, r.slot, to)) {
                    resumed++;
                } else {
                    continue;
                }
                byId.remove(r.id);
                placed.get(to).add(r);
            }
        }
        for (PipelineSlot s : old) {
            for (LiveRequest r : s.active) {
                if (byId.containsKey(r.id)) {
                    // no room for its cache in the new configuration: park it in host memory if we may, else recompute
                    boolean open = s.pipeline.sequences().contains(r.id);
                    if (open && s.pipeline.length(r.id) == 0) {
                        untouched.add(r); // admitted but not computed yet: it loses nothing
                    } else if (open && parking != null && movesCaches) {
                        parking.park(r, s);
                    }
                    dropped.add(r);
                    r.slot = null;
                    s.pipeline.closeSequence(r.id);
                }
            }
            s.active.clear();
            if (!reused.contains(s)) {
                for (long seq : s.pipeline.sequences()) {
                    s.pipeline.closeSequence(seq);
                }
            }
        }
        for (Map.Entry<PipelineSlot, List<LiveRequest>> e : placed.entrySet()) {
            for (LiveRequest r : e.getValue()) {
                r.slot = e.getKey();
                e.getKey().active.add(r);
            }
        }
        return resumed;
    }

    /**
     * Moves the request's filled KV cache from its old positions to the new pipeline. Staged: every piece is staged at
     * its source, the old sequence closed, the new one opened and the pieces imported; every staged piece is released,
     * moved or not. With an executor that batches transfers, when no device of the new positions holds one of the old
     * ones, the new sequence is opened first and the pieces from other instances go in one
     * {@link Executor#transferAll} per (old position, new position) straight from the open old sequence, which is
     * closed afterwards (no device holds both). A source that dies before its piece arrives costs the request its
     * cache (it recomputes); a target that dies fails the migration.
     */
    private boolean move(LiveRequest r, PipelineSlot from, PipelineSlot to) {
        Pipeline src = from.pipeline;
        Pipeline dst = to.pipeline;
        int length = src.length(r.id);
        ShardLayout a = src.layout();
        ShardLayout b = dst.layout();
        List<KvRoute> pieces = new ArrayList<>();
        for (int s2 = 0; s2 < b.stages() && length > 0; s2++) {
            for (int m2 = 0; m2 < b.shards(); m2++) {
                for (ContextSlice need : b.kvSlices(s2, m2, r.id, length)) {
                    for (int s1 = 0; s1 < a.stages(); s1++) {
                        for (int m1 = 0; m1 < a.shards(); m1++) {
                            for (ContextSlice have : a.kvSlices(s1, m1, r.id, length)) {
                                var common = have.intersect(need);
                                if (common.isEmpty()) {
                                    continue;
                                }
                                if (!from.alive(s1, m1) || !ledger.usable(src.device(s1, m1))) {
                                    return false; // part of its cache is gone: recompute
                                }
                                pieces.add(new KvRoute(s1, m1, s2, m2, common.get()));
                            }
                        }
                    }
                }
            }
        }
        boolean direct = this.direct;
        boolean crosses = false;
        for (KvRoute k : pieces) {
            crosses |= !src.device(k.s1(), k.m1()).id().instance().equals(dst.device(k.s2(), k.m2()).id().instance());
            for (KvRoute o : pieces) {
                direct &= src.device(k.s1(), k.m1()) != dst.device(o.s2(), o.m2());
            }
        }
        boolean ok = direct && crosses ? moveDirect(r, from, to, pieces) : moveStaged(r, from, to, pieces);
        if (ok && dst.length(r.id) != length) {
            throw new IllegalStateException("new pipeline holds " + dst.length(r.id) + " positions of request " + r.id
                    + ", expected " + length);
        }
        return ok;
    }

    /** A KV piece from old position (s1, m1) to new position (s2, m2). */
    private record KvRoute(int s1, int m1, int s2, int m2, ContextSlice piece) {
    }

    private boolean moveStaged(LiveRequest r, PipelineSlot from, PipelineSlot to, List<KvRoute> pieces) {
        Pipeline src = from.pipeline;
        Pipeline dst = to.pipeline;
        List<KvPiece> staged = new ArrayList<>();
        try {
            for (KvRoute k : pieces) {
                boolean same = src.device(k.s1(), k.m1()) == dst.device(k.s2(), k.m2());
                staged.add(new KvPiece(k.s2(), k.m2(), mover.stage(src, k.s1(), k.m1(), k.piece()), same,
                        k.piece().bytes(c), src.device(k.s1(), k.m1()).id().instance(),
                        dst.device(k.s2(), k.m2()).id().instance()));
            }
            src.closeSequence(r.id);
            try {
                dst.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
            } catch (DeviceMemoryException e) {
                LOG.debug("no KV room for request {} on new pipeline {}: {}", r.id, to.id, e.getMessage());
                return false;
            }
            for (KvPiece piece : staged) {
                try {
                    mover.place(dst, piece.stage(), piece.shard(), piece.data());
                } catch (DeviceLostException e) {
                    if (!ContextMigration.sourceOnlyLost(e, piece.fromInstance(), piece.toInstance())) {
                        throw e;
                    }
                    kvSourceLost(r, dst, piece.fromInstance(), e);
                    return false;
                }
            }
            for (KvPiece piece : staged) {
                countKv(piece.bytes(), piece.sameDevice(), piece.fromInstance(), piece.toInstance());
            }
        } finally {
            for (KvPiece piece : staged) {
                piece.data().release();
            }
        }
        return true;
    }

    /**
     * The new sequence first, then the pieces: those from another instance straight from the open old sequence, one
     * {@link Executor#transferAll} per route, the others staged; the old sequence is closed last.
     */
    private boolean moveDirect(LiveRequest r, PipelineSlot from, PipelineSlot to, List<KvRoute> pieces) {
        Pipeline src = from.pipeline;
        Pipeline dst = to.pipeline;
        try {
            dst.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
        } catch (DeviceMemoryException e) {
            LOG.debug("no KV room for request {} on new pipeline {}: {}", r.id, to.id, e.getMessage());
            return false; // its old cache is still there: it is parked or recomputes as any request without room
        }
        Map<List<Integer>, List<ContextSlice>> routes = new LinkedHashMap<>();
        List<KvRoute> local = new ArrayList<>();
        for (KvRoute k : pieces) {
            if (src.device(k.s1(), k.m1()).id().instance().equals(dst.device(k.s2(), k.m2()).id().instance())) {
                local.add(k);
            } else {
                routes.computeIfAbsent(List.of(k.s1(), k.m1(), k.s2(), k.m2()), x -> new ArrayList<>()).add(k.piece());
            }
        }
        for (Map.Entry<List<Integer>, List<ContextSlice>> e : routes.entrySet()) {
            List<Integer> at = e.getKey();
            String fromInstance = src.device(at.get(0), at.get(1)).id().instance();
            String toInstance = dst.device(at.get(2), at.get(3)).id().instance();
            try {
                executor.transferAll(src, at.get(0), at.get(1), e.getValue(), dst, at.get(2), at.get(3));
            } catch (DeviceLostException ex) {
                if (!ContextMigration.sourceOnlyLost(ex, fromInstance, toInstance)) {
                    throw ex;
                }
                kvSourceLost(r, dst, fromInstance, ex);
                from.closeSequence(r.id); // never throws: a lost position has nothing left to free
                return false;
            }
            for (ContextSlice piece : e.getValue()) {
                countKv(piece.bytes(c), false, fromInstance, toInstance);
            }
        }
        for (KvRoute k : local) {
            StagedSlice staged = mover.stage(src, k.s1(), k.m1(), k.piece());
            mover.place(dst, k.s2(), k.m2(), staged); // releases it, imported or not
            countKv(k.piece().bytes(c), false, src.device(k.s1(), k.m1()).id().instance(),
                    dst.device(k.s2(), k.m2()).id().instance());
        }
        src.closeSequence(r.id);
        return true;
    }

    private void kvSourceLost(LiveRequest r, Pipeline dst, String instance, DeviceLostException e) {
        LOG.info("request {}: the worker holding part of its KV cache ({}) died during the move; it will recompute", r.id,
                instance);
        ledger.sourceLost(e, instance);
        ledger.markLost(fresh);
        dst.closeSequence(r.id);
    }

    private void countKv(long bytes, boolean sameDevice, String fromInstance, String toInstance) {
        if (sameDevice) {
            ledger.kept(bytes);
        } else {
            ledger.moved(fromInstance, toInstance, bytes);
        }
    }


    /** A KV piece on its way to new position (stage, shard), staged at its source. */
    private record KvPiece(int stage, int shard, StagedSlice data, boolean sameDevice, long bytes, String fromInstance,
                           String toInstance) {
    }
}
