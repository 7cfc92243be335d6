package io.spotserve.bench.engine;

import io.spotserve.clock.ForwardStep;
import io.spotserve.clock.SimulatedClock;
import io.spotserve.plan.CostModel;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Prices the engine's forward steps with the cost model on the paper's measured T4 profiles, the same terms the
 * simulator charges (benchmarks/notes/evaluation.md): a step's prompt work costs
 * {@link CostModel#prefillSeconds} + {@link CostModel#embedSeconds} for its prompt sequences (batch rounded up to a
 * power of two, prompt length = the positions per sequence), its decode work {@link CostModel#decodeStepSeconds}
 * for its decoding sequences; a step that mixes both (a request joining a running batch) pays both. The micro-batch
 * counts M1 / M2 are the cheapest the profile offers for the batch (Algorithm 1 picks them the same way). Memoized:
 * a run prices about a million steps.
 */
final class CostModelStepTime implements SimulatedClock.StepTime {
    private final CostModel cost;
    private final Map<Long, Duration> prefill = new HashMap<>();
    private final Map<Long, Duration> decode = new HashMap<>();

    CostModelStepTime(CostModel cost) {
        this.cost = cost;
    }

    @Override
    public synchronized Duration of(ForwardStep step) {
        Duration d = Duration.ZERO;
        int p = step.stages();
        int m = step.shards();
        if (step.promptSequences() > 0) {
            int b = pow2(step.promptSequences());
            int len = (step.promptPositions() + step.promptSequences() - 1) / step.promptSequences();
            long key = (((long) p * 64 + m) * 64 + b) * 100_000L + len;
            d = d.plus(prefill.computeIfAbsent(key, k -> seconds(best(mb -> cost.prefillSeconds(p, m, b, mb, len), b)
                    + cost.embedSeconds(b))));
        }
        if (step.decodeSequences() > 0) {
            int b = pow2(step.decodeSequences());
            long key = ((long) p * 64 + m) * 64 + b;
            d = d.plus(decode.computeIfAbsent(key, k -> seconds(best(mb -> cost.decodeStepSeconds(p, m, b, mb), b))));
        }
        return d;
    }

    private interface Price {
        double of(int microBatches);
    }

    /** The cheapest micro-batch count in {1, 2, 4, ..., b} the profile can price. */
    private static double best(Price price, int b) {
        double best = Double.POSITIVE_INFINITY;
        IllegalArgumentException why = null;
        for (int mb = 1; mb <= b; mb *= 2) {
            try {
                best = Math.min(best, price.of(mb));
            } catch (IllegalArgumentException e) {
                why = e;
            }
        }
        if (best == Double.POSITIVE_INFINITY) {
            throw new IllegalStateException("the cost model cannot price a batch of " + b + ": " + why.getMessage(), why);
        }
        return best;
    }

    static int pow2(int n) {
        int b = 1;
        while (b < n) {
            b *= 2;
        }
        return b;
    }

    private static Duration seconds(double s) {
        return Duration.ofNanos(Math.round(s * 1e9));
    }
}
