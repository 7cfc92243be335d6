package io.spotserve.plan;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.IntStream;

/*
 * Implementation notes. Latency l_exe depends on (P, M, B, M1, M2) only, never on D, so the search space is
 * split: every feasible "shape" (P, M, B, M1, M2) and its l_exe are computed once when the optimizer is
 * built (at most |M|·|B|·|M1,M2|·|P|, e.g. 5·3·14·9 = 630 for OPT-6.7B with B <= 4), then each decision picks
 * D analytically per shape:
 *   ARTIFACT: D = floor(G / (P·M)), one pass in the artifact's enumeration order.
 *   PAPER:    l_req(D) = l_exe + l_sch(D) is non-increasing in D, so (1) the best l_req of a shape is at
 *             D_max = floor(G_max / (P·M)); shapes are visited in ascending l_exe and the pass stops once
 *             l_exe alone reaches the best l_req found (l_req >= l_exe); (2) with bound = (1 + tol)·best,
 *             the fewest-instance D of a shape is the smallest D with l_req(D) <= bound, found by binary
 *             search between D_min (first D with D·B > α·l_exe) and D_max. Shapes with l_exe > bound are
 *             skipped by the same sorted order.
 * Decision time is O(#shapes + Σ log D_max · queueing cost), independent of the instance count apart from
 * the Erlang recursion, which stops early (QueueingDelay).
 */
final class Algorithm1 implements ParallelConfigOptimizer {
    private final CostModel model;
    private final Policy policy;
    private final int gpusPerInstance;
    private final int promptTokens;
    private final int outputTokens;
    private final double tolerance;
    private final double arrivalCv;
    private final int spare;
    private final int acquirable;
    private final MemoryRule memoryRule;
    private final LayerSplit layerSplit;
    private final int maxBatch;
    private final int maxTp;

    // feasible shapes in the artifact's enumeration order (M, B, M1, M2, P ascending)
    private final int[] stages;
    private final int[] shards;
    private final int[] batch;
    private final int[] m1;
    private final int[] m2;
    private final double[] lexeMs;
    private final long[] memory;
    // shape indices by ascending l_exe (ties: enumeration order)
    private final int[] byLatency;

    Algorithm1(ParallelConfigOptimizer.Builder b) {
        this.model = b.costModel;
        this.policy = b.policy;
        this.gpusPerInstance = model.hardware().gpusPerInstance();
        this.promptTokens = b.promptTokens;
        this.outputTokens = b.outputTokens;
        this.tolerance = b.latencyTolerance;
        this.arrivalCv = b.arrivalCv;
        this.spare = b.spareInstances;
        this.acquirable = b.acquirableInstances;
        this.memoryRule = b.memoryRule;
        this.layerSplit = b.layerSplit;
        this.maxBatch = b.maxBatch;
        this.maxTp = b.maxTensorParallel;

        LatencyProfile profile = model.profile();
        int maxStages = layerSplit == LayerSplit.PADDED_DIVISIBLE ? profile.paddedLayerNum() : profile.layerNum();
        List<int[]> shapes = new ArrayList<>();
        for (int m = 1; m <= maxTp; m *= 2) {
            if (!profile.layerTimes().containsKey(m)) {
                continue;
            }
            for (int bsz = 1; bsz <= maxBatch && model.hasEmbed(bsz); bsz *= 2) {
                for (int a = 1; a <= bsz; a *= 2) {
                    for (int c = 1; c <= bsz; c *= 2) {
                        if (!model.hasTimes(m, bsz / a) || !model.hasTimes(m, bsz / c)) {
                            continue;
                        }
                        for (int p = 1; p <= maxStages; p++) {
                            if (layerSplit == LayerSplit.PADDED_DIVISIBLE && profile.paddedLayerNum() % p != 0) {
                                continue;
                            }
                            if (!model.fitsUnchecked(memoryRule, p, m, bsz, promptTokens, outputTokens)) {
                                continue;
                            }
                            shapes.add(new int[] {p, m, bsz, a, c});
                        }
                    }
                }
            }
        }
        int n = shapes.size();
        stages = new int[n];
        shards = new int[n];
        batch = new int[n];
        m1 = new int[n];
        m2 = new int[n];
        lexeMs = new double[n];
        memory = new long[n];
        for (int i = 0; i < n; i++) {
            int[] s = shapes.get(i);
            stages[i] = s[0];
            shards[i] = s[1];
            batch[i] = s[2];
            m1[i] = s[3];
            m2[i] = s[4];
            lexeMs[i] = model.executionMs(s[0], s[1], s[2], s[3], s[4], promptTokens, outputTokens);
            memory[i] = model.memoryBytes(s[0], s[1], s[2], promptTokens, outputTokens);
        }
        byLatency = IntStream.range(0, n).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> lexeMs[i]).thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    @Override
    public Decision decide(int availableInstances, int onDemandInstances, double arrivalRate) {
        if (availableInstances < 0) {
            throw new IllegalArgumentException("available instances must be >= 0, was " + availableInstances);
        }
        if (onDemandInstances < 0 || onDemandInstances > availableInstances) {
            throw new IllegalArgumentException("on-demand instances must be in [0, available=" + availableInstances
                    + "], was " + onDemandInstances);
        }
        if (!(arrivalRate >= 0) || Double.isInfinite(arrivalRate)) {
            throw new IllegalArgumentException("arrival rate must be finite and >= 0 req/s, was " + arrivalRate);
        }
        return policy == Policy.ARTIFACT
                ? artifact(availableInstances, onDemandInstances, arrivalRate)
                : paper(availableInstances, onDemandInstances, arrivalRate);
    }

    private Decision artifact(int n, int onDemand, double alpha) {
        long g = (long) n * gpusPerInstance;
        int best = -1;
        long bestD = 0;
        double minLat = Double.POSITIVE_INFINITY;
        int maxIdx = -1;
        long maxD = 0;
        double maxTpt = 0;
        for (int i = 0; i < stages.length; i++) {
            long pm = (long) stages[i] * shards[i];
            if (shards[i] > g || pm > g) {
                continue;
            }
            long d = g / pm;
            double tpt = d * batch[i] / lexeMs[i] * 1000;
            if (tpt >= alpha && lexeMs[i] < minLat) {
                minLat = lexeMs[i];
                best = i;
                bestD = d;
            }
            if (tpt > maxTpt) {
                maxTpt = tpt;
                maxIdx = i;
                maxD = d;
            }
        }
        if (best >= 0) {
            return decision(estimate(best, bestD, 0), true, alpha, n, onDemand,
                    "minimum l_exe among configurations with throughput >= " + fmt(alpha) + " req/s");
        }
        if (maxIdx >= 0) {
            return decision(estimate(maxIdx, maxD, 0), false, alpha, n, onDemand,
                    "no configuration reaches " + fmt(alpha) + " req/s; maximum throughput on " + n + " instances");
        }
        return infeasible(alpha, n, onDemand, g);
    }

    private Decision paper(int n, int onDemand, double alpha) {
        long gMax = (long) (n + acquirable) * gpusPerInstance;
        double best = Double.POSITIVE_INFINITY;
        for (int i : byLatency) {
            double lexe = lexeMs[i] / 1000;
            if (lexe >= best) {
                break;
            }
            long pm = (long) stages[i] * shards[i];
            if (pm > gMax) {
                continue;
            }
            long dMax = gMax / pm;
            best = Math.min(best, lexe + wait(i, dMax, alpha));
        }
        if (best < Double.POSITIVE_INFINITY) {
            double bound = best * (1 + tolerance);
            int chosen = -1;
            long chosenD = 0;
            long chosenInstances = Long.MAX_VALUE;
            double chosenLatency = Double.POSITIVE_INFINITY;
            for (int i : byLatency) {
                double lexe = lexeMs[i] / 1000;
                if (lexe > bound) {
                    break;
                }
                long pm = (long) stages[i] * shards[i];
                if (pm > gMax) {
                    continue;
                }
                long dMax = gMax / pm;
                long dMin = alpha == 0 ? 1 : Math.max(1, (long) Math.floor(alpha * lexe / batch[i]) + 1);
                if (dMin > dMax || lexe + wait(i, dMax, alpha) > bound) {
                    continue;
                }
                long lo = dMin;
                long hi = dMax;
                while (lo < hi) {
                    long mid = (lo + hi) >>> 1;
                    if (lexe + wait(i, mid, alpha) <= bound) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                long instances = ceilDiv(lo * pm, gpusPerInstance);
                double latency = lexe + wait(i, lo, alpha);
                if (instances < chosenInstances || (instances == chosenInstances && (latency < chosenLatency
                        || latency == chosenLatency && lo * pm < chosenD * pm(chosen)))) {
                    chosen = i;
                    chosenD = lo;
                    chosenInstances = instances;
                    chosenLatency = latency;
                }
            }
            return decision(estimate(chosen, chosenD, wait(chosen, chosenD, alpha)), true, alpha, n, onDemand,
                    "fewest instances with l_req within " + fmt(tolerance * 100) + "% of the best "
                            + fmt(best) + " s at " + fmt(alpha) + " req/s");
        }
        // Alg. 1 line 5: no configuration keeps up with α_t; maximum throughput on the instances we have
        long g = (long) n * gpusPerInstance;
        int maxIdx = -1;
        long maxD = 0;
        double maxTpt = 0;
        for (int i = 0; i < stages.length; i++) {
            long pm = pm(i);
            if (pm > g) {
                continue;
            }
            long d = g / pm;
            double tpt = d * batch[i] / (lexeMs[i] / 1000);
            if (maxIdx < 0 || tpt > maxTpt || tpt == maxTpt && (lexeMs[i] < lexeMs[maxIdx]
                    || lexeMs[i] == lexeMs[maxIdx] && d * pm < maxD * pm(maxIdx))) {
                maxTpt = tpt;
                maxIdx = i;
                maxD = d;
            }
        }
        if (maxIdx < 0) {
            return infeasible(alpha, n, onDemand, (long) (n + acquirable) * gpusPerInstance);
        }
        return decision(estimate(maxIdx, maxD, wait(maxIdx, maxD, alpha)), false, alpha, n, onDemand,
                "no configuration keeps up with " + fmt(alpha) + " req/s; maximum throughput on " + n + " instances");
    }

    private long pm(int i) {
        return (long) stages[i] * shards[i];
    }

    private double wait(int i, long d, double alpha) {
        return QueueingDelay.waitSeconds(alpha, lexeMs[i] / 1000, d * batch[i], arrivalCv);
    }

    private ConfigEstimate estimate(int i, long d, double schedulingSeconds) {
        double lexe = lexeMs[i] / 1000;
        ParallelConfig c = ParallelConfig.of(Math.toIntExact(d), stages[i], shards[i], batch[i]);
        return new ConfigEstimate(c, m1[i], m2[i], lexe, schedulingSeconds, lexe + schedulingSeconds,
                d * batch[i] / lexe, memory[i]);
    }

    private Decision decision(ConfigEstimate e, boolean meets, double alpha, int n, int onDemand, String reason) {
        int needed = Math.toIntExact(ceilDiv(e.gpus(), gpusPerInstance));
        int target = needed + spare;
        int delta = target - n;
        int release = Math.max(-delta, 0);
        int releaseOnDemand = Math.min(release, onDemand);
        return new Decision(Optional.of(e), meets, alpha, n, needed, target, delta, Math.max(delta, 0),
                releaseOnDemand, release - releaseOnDemand, policy, reason);
    }

    private Decision infeasible(double alpha, int n, int onDemand, long gpus) {
        return new Decision(Optional.empty(), false, alpha, n, 0, n, 0, 0, 0, 0, policy,
                "no feasible configuration on " + gpus + " GPUs (memory rule " + memoryRule + ", layer split "
                        + layerSplit + ", max TP " + maxTp + ", max batch " + maxBatch + ")");
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }
}
