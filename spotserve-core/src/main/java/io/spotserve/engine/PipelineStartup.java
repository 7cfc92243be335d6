package io.spotserve.engine;

import io.spotserve.clock.DataMove;
import io.spotserve.clock.EngineClock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The baselines' pipeline start-up ({@link ServingEngine.Builder#pipelineStartup}): during a reconfiguration the weight
 * reads from storage are kept off the engine's clock and counted per instance; each pipeline the reconfiguration
 * built then takes requests only once its engine has started, its slowest instance has read its weights and the
 * start-up after the load has passed. Engine thread only.
 */
final class PipelineStartup {
    private static final Logger LOG = LoggerFactory.getLogger(PipelineStartup.class);

    private final Duration beforeLoad;
    private final Duration afterLoad;
    /** Per instance, bytes read from storage in the running reconfiguration. */
    private final Map<String, Long> loading = new HashMap<>();

    private PipelineStartup(Duration beforeLoad, Duration afterLoad) {
        this.beforeLoad = beforeLoad;
        this.afterLoad = afterLoad;
    }

    /** The builder's start-up, or null when none is set (reads pause the engine, built pipelines serve at once). */
    static PipelineStartup of(ServingEngine.Builder b) {
        return b.startupBeforeLoad == null ? null : new PipelineStartup(b.startupBeforeLoad, b.startupAfterLoad);
    }

    /** A new reconfiguration starts: nothing read yet. */
    void begin() {
        loading.clear();
    }

    /** Keeps the storage reads of {@code moves} for the pipelines' start; returns the other copies, for the clock. */
    List<DataMove> withoutReads(List<DataMove> moves) {
        List<DataMove> copies = new ArrayList<>(moves.size());
        for (DataMove m : moves) {
            if (m.fromStorage()) {
                loading.merge(m.toInstance(), m.bytes(), Long::sum);
            } else {
                copies.add(m);
            }
        }
        return copies;
    }

    /**
     * Dates when each pipeline of {@code built} that is not in {@code unchanged} takes its first requests; returns how
     * long the slowest of them waits from now (zero when none starts).
     */
    Duration start(List<PipelineSlot> built, List<PipelineSlot> unchanged, EngineClock clock) {
        Duration now = clock.now();
        Duration longest = Duration.ZERO;
        for (PipelineSlot s : built) {
            if (unchanged.contains(s)) {
                continue;
            }
            Duration load = Duration.ZERO;
            for (String id : s.instances) {
                Duration t = clock.loadTime(loading.getOrDefault(id, 0L));
                load = t.compareTo(load) > 0 ? t : load;
            }
            s.readyAt = now.plus(beforeLoad).plus(load).plus(afterLoad);
            LOG.debug("pipeline {} starts: ready at {}", s.describe(), s.readyAt);
            Duration wait = s.readyAt.minus(now);
            longest = wait.compareTo(longest) > 0 ? wait : longest;
        }
        return longest;
    }
}
