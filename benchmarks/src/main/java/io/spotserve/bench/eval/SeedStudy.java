package io.spotserve.bench.eval;

import io.spotserve.plan.PaperModel;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Robustness of the evaluation's conclusions across arrival seeds: with CV-6 Gamma arrivals one 20-minute trace holds a
 * handful of bursts, so a single seed's P99 is noisy. Runs every cell for seeds 1..N and prints, per cell, the P99 of
 * the requests of all seeds pooled for each system, the median over seeds of the P99 ratios, and how many seeds each
 * ratio exceeds 1. Prints to stdout (a tool, not a library).
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.eval.SeedStudy [--seeds 10] [--arrivals paper|artifact]
 * </pre>
 */
public final class SeedStudy {
    private SeedStudy() {
    }

    private static final String[] SYSTEMS = {"spotserve", "rerouting", "reparallelization", "spotserve+",
        "ablation-controller", "ablation-planner", "ablation-arranger", "ablation-mapper"};

    public static void main(String[] args) throws IOException {
        int seeds = 10;
        Arrivals.Mode mode = Arrivals.Mode.PAPER;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--seeds" -> seeds = Integer.parseInt(args[i + 1]);
                case "--arrivals" -> mode = args[i + 1].equals("artifact") ? Arrivals.Mode.ARTIFACT : Arrivals.Mode.PAPER;
                default -> {
                    System.err.println("unknown option " + args[i] + "; expected --seeds N, --arrivals paper|artifact");
                    System.exit(2);
                }
            }
        }
        var shared = Evaluation.locateShared();
        List<SystemSpec> systems = SystemSpec.all().stream().filter(s -> Arrays.asList(SYSTEMS).contains(s.name())).toList();
        System.out.printf(Locale.ROOT, "%-9s %-5s | pooled P99 s: %s | median P99 ratio over %d seeds (seeds > 1): "
                + "rer/ss rep/ss ss/plus%n", "model", "trace", String.join(" ", SYSTEMS), seeds);
        for (PaperModel m : PaperModel.values()) {
            for (String tr : List.of("A_S", "B_S", "A_S+O", "B_S+O", "MAF")) {
                if (tr.equals("MAF") && m != PaperModel.GPT_20B) {
                    continue;
                }
                final Arrivals.Mode md = mode;
                Map<String, List<double[]>> lat = new LinkedHashMap<>();
                double[][] p99 = new double[seeds][systems.size()];
                List<Scenario> scs = new ArrayList<>();
                for (int s = 1; s <= seeds; s++) {
                    scs.add(Evaluation.scenario(shared, m, tr, s, md));
                }
                RunResult[][] res = new RunResult[seeds][systems.size()];
                IntStream.range(0, seeds * systems.size()).parallel().forEach(k -> {
                    int s = k / systems.size();
                    int j = k % systems.size();
                    res[s][j] = Simulation.run(scs.get(s), systems.get(j));
                });
                for (int s = 0; s < seeds; s++) {
                    for (int j = 0; j < systems.size(); j++) {
                        lat.computeIfAbsent(systems.get(j).name(), x -> new ArrayList<>()).add(res[s][j].latencies());
                        p99[s][j] = res[s][j].percentile(99);
                    }
                }
                StringBuilder sb = new StringBuilder();
                for (String name : SYSTEMS) {
                    double[] all = lat.get(name).stream().flatMapToDouble(Arrays::stream).sorted().toArray();
                    sb.append(String.format(Locale.ROOT, "%7.1f ", all[(int) Math.ceil(0.99 * all.length) - 1]));
                }
                int ss = idx(systems, "spotserve");
                System.out.printf(Locale.ROOT, "%-9s %-5s | %s| %s %s %s%n", m.displayName(), tr, sb,
                        ratio(p99, idx(systems, "rerouting"), ss), ratio(p99, idx(systems, "reparallelization"), ss),
                        ratio(p99, ss, idx(systems, "spotserve+")));
            }
        }
    }

    private static int idx(List<SystemSpec> l, String name) {
        for (int i = 0; i < l.size(); i++) {
            if (l.get(i).name().equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException(name);
    }

    private static String ratio(double[][] p99, int num, int den) {
        double[] r = new double[p99.length];
        int above = 0;
        for (int s = 0; s < p99.length; s++) {
            r[s] = p99[s][num] / p99[s][den];
            if (r[s] > 1.0001) {
                above++;
            }
        }
        Arrays.sort(r);
        double med = r.length % 2 == 1 ? r[r.length / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
        return String.format(Locale.ROOT, "%5.2fx (%d/%d)", med, above, p99.length);
    }
}
