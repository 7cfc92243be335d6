package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * KV caches parked in host memory (beyond the paper, which recomputes them): when a request must leave a doomed
 * pipeline and no surviving pipeline can take its cache — every spot instance going away at once, or too little
 * room in the new configuration — its filled KV cache is exported during the grace period, one (layer, KV head)
 * piece at a time so that any later layout can take it back, and imported when the request is admitted again.
 * The request then resumes at its committed step instead of recomputing its prompt and tokens. Host memory is
 * bounded by a budget; beyond it requests recompute as before. Runs on the engine thread.
 */
final class KvParking {
    private static final Logger LOG = LoggerFactory.getLogger(KvParking.class);

    private final LlamaConfig c;
    private final long budgetBytes;
    private final SliceMover mover;
    private long usedBytes;
    /** Requests parked since the last {@link #takeParked()} (the next reconfiguration record counts them). */
    private int parkedSince;

    /** One parked (layer, KV head) piece: what it is, and the bytes its pipeline exported (any executor's format). */
    record Piece(ContextSlice.KvCache slice, byte[] data) {
    }

    KvParking(LlamaConfig config, long budgetBytes) {
        this(config, budgetBytes, new SliceMover(null));
    }

    KvParking(LlamaConfig config, long budgetBytes, SliceMover mover) {
        this.c = config;
        this.budgetBytes = budgetBytes;
        this.mover = mover;
    }

    /** Requests parked since the previous call (each reconfiguration record takes its count). */
    int takeParked() {
        int n = parkedSince;
        parkedSince = 0;
        return n;
    }

    /** Bytes of KV cache parked now. */
    long usedBytes() {
        return usedBytes;
    }

    /**
     * Exports the filled KV cache of {@code r} from its pipeline into host memory (the caller then closes the
     * sequence there). Returns false, parking nothing, when the budget is exhausted or part of the cache is gone.
     */
    boolean park(LiveRequest r, PipelineSlot from) {
        Pipeline p = from.pipeline;
        int length = p.length(r.id);
        if (length == 0 || from.broken()) {
            return false;
        }
        long bytes = (long) length * c.kvBytesPerPosition();
        if (usedBytes + bytes > budgetBytes) {
            LOG.debug("host KV budget {} B exhausted ({} B parked); request {} will recompute", budgetBytes, usedBytes,
                    r.id);
            return false;
        }
        ShardLayout l = p.layout();
        List<Piece> pieces = new ArrayList<>();
        for (int st = 0; st < l.stages(); st++) {
            for (int m = 0; m < l.shards(); m++) {
                IndexRange heads = l.kvHeads(m);
                for (int layer = l.layers(st).from(); layer < l.layers(st).to(); layer++) {
                    for (int h = heads.from(); h < heads.to(); h++) {
                        ContextSlice.KvCache piece = new ContextSlice.KvCache(r.id, layer, new IndexRange(h, h + 1),
                                length);
                        pieces.add(new Piece(piece, mover.export(p, st, m, piece)));
                    }
                }
            }
        }
        r.parked = pieces;
        r.parkedLength = length;
        usedBytes += bytes;
        parkedSince++;
        LOG.debug("request {}: {} KV positions parked in host memory ({} B)", r.id, length, bytes);
        return true;
    }

    /**
     * Imports the parked cache of {@code r} into pipeline {@code p}, where its sequence has just been opened. Returns
     * false (and leaves the sequence empty) if the pieces do not fit the layout; the request then recomputes.
     */
    boolean restore(LiveRequest r, Pipeline p) {
        List<Piece> pieces = r.parked;
        release(r);
        ShardLayout l = p.layout();
        try {
            for (Piece piece : pieces) {
                ContextSlice.KvCache k = piece.slice();
                mover.place(p, l.stageOf(k.layer()), shardOfKvHead(l, k.kvHeads().from()), piece.data());
            }
            if (p.length(r.id) == r.parkedLength) {
                return true;
            }
            LOG.warn("request {}: restored {} of {} KV positions; it will recompute", r.id, p.length(r.id),
                    r.parkedLength);
        } catch (RuntimeException e) {
            LOG.warn("request {}: parked KV cache could not be restored; it will recompute", r.id, e);
        }
        p.closeSequence(r.id);
        p.openSequence(r.id, r.prompt.length + r.request.maxNewTokens());
        return false;
    }

    /** Frees the parked cache of {@code r} (restored, finished, failed or cancelled). */
    void release(LiveRequest r) {
        if (r.parked != null) {
            usedBytes -= (long) r.parkedLength * c.kvBytesPerPosition();
            r.parked = null;
        }
    }

    private static int shardOfKvHead(ShardLayout l, int kvHead) {
        for (int m = 0; m < l.shards(); m++) {
            if (l.kvHeads(m).from() <= kvHead && kvHead < l.kvHeads(m).to()) {
                return m;
            }
        }
        throw new IllegalArgumentException("KV head " + kvHead + " is outside " + l);
    }
}
