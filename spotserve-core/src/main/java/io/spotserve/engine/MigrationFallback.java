package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.Position;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntSupplier;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the {@link Reconfigurator} does when a {@link ContextMigration} fails midway: every old pipeline is closed and
 * every request it ran recomputes from its committed tokens. When the failure was the loss of devices (a worker
 * died: {@link DeviceLostException}) nothing is rebuilt on the old mapping, which still names those devices; the loss
 * is recorded in {@link LostDevices} and the engine re-plans on the remaining instances. Any other failure restarts
 * the new configuration from the checkpoint (the Reparallelization baseline); a device lost meanwhile is recorded the
 * same way. Never throws for a lost device. Runs on the engine thread.
 */
final class MigrationFallback {
    private static final Logger LOG = LoggerFactory.getLogger(MigrationFallback.class);

    private final Executor executor;
    private final SliceMover mover;
    private final LlamaConfig config;
    private final int maxBatchTokens;
    private final LostDevices losses;

    MigrationFallback(Executor executor, SliceMover mover, LlamaConfig config, int maxBatchTokens, LostDevices losses) {
        this.executor = executor;
        this.mover = mover;
        this.config = config;
        this.maxBatchTokens = maxBatchTokens;
        this.losses = losses;
    }

    /**
     * After {@code failure} aborted a migration: closes the old pipelines and returns the requests to re-queue (not
     * finished and not queued already, see {@code queued}) with the pipelines that replace the old ones: none after a
     * device loss, else the new configuration loaded from the checkpoint (none when that fails too).
     */
    ContextMigration.Result recover(RuntimeException failure, DeviceMapping mapping, List<PipelineSlot> before,
                                    List<LiveRequest> inFlight, Map<DeviceId, Device> all,
                                    Predicate<LiveRequest> queued, IntSupplier slotIds) {
        for (PipelineSlot s : before) {
            s.active.clear();
            s.close();
        }
        List<LiveRequest> dropped = new ArrayList<>();
        for (LiveRequest r : inFlight) {
            r.slot = null;
            if (!r.future.isDone() && !queued.test(r)) {
                dropped.add(r);
            }
        }
        DeviceLostException lost = LostDevices.find(failure);
        if (lost != null) {
            Set<String> gone = losses.report(lost);
            LOG.warn("the migration to {} lost the devices {} of {}; {} requests recompute and the engine re-plans "
                    + "without them", mapping.newConfig(), lost.devices(), gone, dropped.size());
            return new ContextMigration.Result(List.of(), dropped, Set.of(), 0, 0, 0, 0);
        }
        LOG.warn("context migration to {} failed ({}); restarting from the checkpoint", mapping.newConfig(),
                failure.toString(), failure);
        return coldStart(mapping, dropped, all, slotIds);
    }

    /** Every pipeline of the new configuration created and loaded from the checkpoint; none unless all of them are. */
    private ContextMigration.Result coldStart(DeviceMapping mapping, List<LiveRequest> dropped,
                                              Map<DeviceId, Device> all, IntSupplier slotIds) {
        ParallelConfig nc = mapping.newConfig();
        ShardLayout l = ShardLayout.split(config, nc.pipelineStages(), nc.tensorShards());
        List<PipelineSlot> fresh = new ArrayList<>();
        long loaded = 0;
        for (int j = 0; j < nc.dataParallel(); j++) {
            List<Device> devs = new ArrayList<>();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    devs.add(all.get(mapping.deviceOf(new Position(j, st, m))));
                }
            }
            Pipeline p = null;
            try {
                p = executor.createPipeline(l, devs, maxBatchTokens);
                mover.loadAll(p);
            } catch (RuntimeException e) {
                DeviceLostException lost = LostDevices.find(e);
                if (lost != null) {
                    losses.report(lost);
                }
                LOG.error("cannot load the weights of {} on {}; pipeline {} stays down", l, devs, j, e);
                if (p != null) {
                    try {
                        p.close();
                    } catch (RuntimeException closing) {
                        LOG.warn("closing the half-built pipeline {} failed ({})", j, closing.toString());
                    }
                }
                continue;
            }
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    loaded += l.weightBytes(st, m, executor.storedBytesPerWeightExact());
                }
            }
            fresh.add(new PipelineSlot(slotIds.getAsInt(), p, devs));
        }
        if (fresh.size() != nc.dataParallel()) {
            for (PipelineSlot s : fresh) {
                s.close();
            }
            fresh.clear();
        }
        return new ContextMigration.Result(fresh, dropped, Set.of(), 0, 0, 0, loaded);
    }
}
