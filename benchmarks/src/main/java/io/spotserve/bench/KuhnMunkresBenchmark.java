package io.spotserve.bench;

import io.spotserve.plan.Assignment;
import io.spotserve.plan.KuhnMunkres;
import java.util.LinkedHashSet;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jgrapht.Graph;
import org.jgrapht.alg.interfaces.MatchingAlgorithm;
import org.jgrapht.alg.matching.KuhnMunkresMinimalWeightBipartitePerfectMatching;
import org.jgrapht.graph.DefaultWeightedEdge;
import org.jgrapht.graph.SimpleWeightedGraph;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Minimum-cost perfect assignment on a dense n×n matrix of uniform random costs in [0, 1) (seeded by n):
 * our {@link KuhnMunkres} against JGraphT's {@code KuhnMunkresMinimalWeightBipartitePerfectMatching}, the
 * reference implementation the device mapper (SpotServe §3.3) could otherwise have used. Ours is timed from
 * the {@code double[][]} to the {@link Assignment}; JGraphT from the prepared complete bipartite graph to its
 * matching (it reads the weights out of the graph itself). After each trial both optimal totals are compared
 * and the run fails if they differ, so the two really solve the same problem.
 *
 * <p>Run (ours, average time):
 * <pre>java -jar benchmarks/target/benchmarks.jar KuhnMunkresBenchmark -p impl=OURS -f 1 -wi 3 -i 5</pre>
 * JGraphT is orders of magnitude slower (seconds at n = 512), so time it single-shot:
 * <pre>java -jar benchmarks/target/benchmarks.jar KuhnMunkresBenchmark -p impl=JGRAPHT -bm ss -f 1 -wi 1 -i 3</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class KuhnMunkresBenchmark {

    /** Which solver to time. */
    public enum Impl {
        OURS, JGRAPHT
    }

    @Param({"16", "64", "256", "512", "1024"})
    public int n;

    @Param({"OURS", "JGRAPHT"})
    public Impl impl;

    private double[][] costs;
    private Graph<Integer, DefaultWeightedEdge> graph;
    private Set<Integer> left;
    private Set<Integer> right;
    private double lastTotal = Double.NaN;

    @Setup(Level.Trial)
    public void setUp() {
        Random rnd = new Random(0x5EED + n);
        costs = new double[n][n];
        for (double[] row : costs) {
            for (int j = 0; j < n; j++) {
                row[j] = rnd.nextDouble();
            }
        }
        if (impl == Impl.JGRAPHT) {
            graph = new SimpleWeightedGraph<>(DefaultWeightedEdge.class);
            left = new LinkedHashSet<>();
            right = new LinkedHashSet<>();
            for (int i = 0; i < n; i++) {
                graph.addVertex(i);
                left.add(i);
                graph.addVertex(n + i);
                right.add(n + i);
            }
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    DefaultWeightedEdge e = graph.addEdge(i, n + j);
                    graph.setEdgeWeight(e, costs[i][j]);
                }
            }
        }
    }

    @Benchmark
    public double solve() {
        double total;
        if (impl == Impl.OURS) {
            total = KuhnMunkres.minimize(costs).total();
        } else {
            MatchingAlgorithm.Matching<Integer, DefaultWeightedEdge> m =
                    new KuhnMunkresMinimalWeightBipartitePerfectMatching<>(graph, left, right).getMatching();
            total = m.getWeight();
        }
        lastTotal = total;
        return total;
    }

    @TearDown(Level.Trial)
    public void checkSameOptimum() {
        double ours = KuhnMunkres.minimize(costs).total();
        if (!(Math.abs(ours - lastTotal) <= 1e-9 * n)) {
            throw new IllegalStateException("n=" + n + ": " + impl + " total " + lastTotal + " differs from ours "
                    + ours + "; expected the same optimum");
        }
    }
}
