package io.spotserve.engine;

import io.spotserve.clock.DataMove;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What one migration did and learned: the bytes moved between devices, kept in place and reloaded from the checkpoint
 * (with the copies of the current unit, for the caller's clock), and the instances found dead on the way (with the
 * losses absorbed, for the caller to report). Shared by {@link ContextMigration} and {@link KvCacheMigration}; not
 * thread-safe, like them.
 */
final class MigrationLedger {
    private static final Logger LOG = LoggerFactory.getLogger(MigrationLedger.class);
    private long moved;
    private long kept;
    private long reloaded;
    private final List<DataMove> moves = new ArrayList<>();
    private final Set<String> dead = new HashSet<>();
    private final List<DeviceLostException> absorbed = new ArrayList<>();

    /** {@code bytes} copied from a device of instance {@code from} to one of instance {@code to}. */
    void moved(String from, String to, long bytes) {
        moved += bytes;
        moves.add(new DataMove(from, to, bytes));
    }

    /** {@code bytes} handed to a new position on the same device: no copy. */
    void kept(long bytes) {
        kept += bytes;
    }

    /** {@code bytes} read from the checkpoint for instance {@code to}. */
    void reloaded(String to, long bytes) {
        reloaded += bytes;
        moves.add(new DataMove(null, to, bytes));
    }

    /** A piece counted as moved (or kept) that comes from the checkpoint after all. */
    void reloadedInstead(long bytes, boolean wasMoved, String to) {
        if (wasMoved) {
            moved -= bytes;
        } else {
            kept -= bytes;
        }
        reloaded(to, bytes);
    }

    /** A piece counted as moved that was never sent (the position it was for is lost). */
    void notMoved(long bytes) {
        moved -= bytes;
    }

    /** {@code instance} died while it was a source ({@code e} says so): it stops being one. */
    void sourceLost(DeviceLostException e, String instance) {
        dead.add(instance);
        absorbed.add(e);
    }

    /** The instances gone by now (cumulative is fine). */
    void gone(Set<String> instances) {
        dead.addAll(instances);
    }

    /** New positions of {@code slots} on instances found dead are lost: nothing more is imported there. */
    void markLost(List<PipelineSlot> slots) {
        for (PipelineSlot s : slots) {
            int shards = s.pipeline.layout().shards();
            for (int i = 0; i < s.devices.size(); i++) {
                if (!usable(s.devices.get(i)) && s.lost.add(i)) {
                    LOG.info("new pipeline {} lost position (stage {}, shard {}) during the migration", s.id,
                            i / shards, i % shards);
                }
            }
        }
    }

    /** Whether {@code d}'s instance is still alive as far as this migration knows. */
    boolean usable(Device d) {
        return !dead.contains(d.id().instance());
    }

    /** The copies since the last call. */
    List<DataMove> takeMoves() {
        List<DataMove> out = List.copyOf(moves);
        moves.clear();
        return out;
    }

    /** The losses absorbed since the last call. */
    List<DeviceLostException> takeLosses() {
        List<DeviceLostException> out = List.copyOf(absorbed);
        absorbed.clear();
        return out;
    }

    long moved() {
        return moved;
    }

    long kept() {
        return kept;
    }

    long reloaded() {
        return reloaded;
    }
}
