package io.spotserve.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Migration planner of SpotServe §3.4 (Algorithm 2): turns a {@link DeviceMapping} into an ordered plan —
 * the KV cache of all layers first (so decode progress is safe as early as possible), then the weights unit
 * by unit in a memory-optimized order under a per-instance buffer cap U_max, with a start marker for each
 * new stage as soon as its context is complete.
 *
 * <p>Memory model: an instance's buffer use is its extra memory over what it held before migration. A
 * step first receives its bytes (use grows by the bytes arriving at the instance), then its senders and
 * receivers free the old slices of that unit they no longer need. The use after a set of units is
 * therefore independent of their order; only the transient peaks depend on it.
 *
 * <p>Order: first the paper's MemOptMigPlanner — take units in sequential order when their step fits
 * under U_max, postpone the others, then repeatedly take the postponed unit whose step has the smallest
 * maximum instance use. When that greedy order exceeds U_max, an exact search finds an order with the
 * minimum possible peak (units whose memory effect is identical are interchangeable, so the search runs over
 * counts per equivalence class: for real models a few thousand states). If even that peak exceeds U_max,
 * {@link MigrationInfeasibleException} names the cap and the minimum feasible one.
 */
public final class MigrationPlanner {
    /** Largest exact-search state space we explore. */
    static final long MAX_STATES = 1L << 22;

    private MigrationPlanner() {
    }

    /**
     * Plans the migration of {@code mapping} with per-instance buffer cap {@code bufferCapBytes}.
     *
     * @throws IllegalArgumentException      if the cap is negative
     * @throws MigrationInfeasibleException if no order keeps every instance within the cap
     */
    public static MigrationPlan plan(DeviceMapping mapping, long bufferCapBytes) {
        if (bufferCapBytes < 0) {
            throw new IllegalArgumentException("buffer cap U_max must be >= 0 bytes, was " + bufferCapBytes);
        }
        Units u = new Units(mapping);
        long[] kvPeak = new long[u.n];
        long[] start = new long[u.n];
        u.apply(u.kv, start, kvPeak);
        List<Integer> order = greedy(u, start, bufferCapBytes);
        long[] peak = replay(u, order);
        long worst = max(peak);
        if (worst > bufferCapBytes) {
            Search s = exact(u, start, max(kvPeak));
            if (!s.exact || s.peak > bufferCapBytes) {
                throw new MigrationInfeasibleException(bufferCapBytes, s.exact ? s.peak : worst, s.exact);
            }
            order = s.order;
            peak = replay(u, order);
        }
        return assemble(mapping, u, order, peak, bufferCapBytes);
    }

    /** Algorithm 2, MemOptMigPlanner: sequential when it fits, then min-max for the postponed units. */
    static List<Integer> greedy(Units u, long[] start, long cap) {
        long[] use = start.clone();
        List<Integer> order = new ArrayList<>();
        List<Integer> postponed = new ArrayList<>();
        for (int i = 0; i < u.items.size(); i++) {
            if (u.stepPeak(i, use) <= cap) {
                u.apply(u.items.get(i), use, null);
                order.add(i);
            } else {
                postponed.add(i);
            }
        }
        while (!postponed.isEmpty()) {
            int best = -1;
            long bestPeak = Long.MAX_VALUE;
            for (int i : postponed) {
                long p = u.stepPeak(i, use);
                if (p < bestPeak) {
                    bestPeak = p;
                    best = i;
                }
            }
            u.apply(u.items.get(best), use, null);
            order.add(best);
            postponed.remove(Integer.valueOf(best));
        }
        return order;
    }

    /** Result of the exact minimum-peak search. */
    record Search(List<Integer> order, long peak, boolean exact) {
    }

    /**
     * Minimum bottleneck path over "how many units of each class are done" (Dijkstra with max instead of +).
     */
    static Search exact(Units u, long[] start, long kvPeak) {
        // classes of units with identical (received, freed) vectors; members in sequential order
        Map<String, List<Integer>> byKey = new LinkedHashMap<>();
        for (int i = 0; i < u.items.size(); i++) {
            Item it = u.items.get(i);
            byKey.computeIfAbsent(Arrays.toString(it.recv) + Arrays.toString(it.freed), k -> new ArrayList<>()).add(i);
        }
        List<List<Integer>> classes = new ArrayList<>(byKey.values());
        int k = classes.size();
        long[] radix = new long[k];
        long states = 1;
        for (int c = 0; c < k; c++) {
            radix[c] = states;
            states = Math.multiplyExact(states, classes.get(c).size() + 1L);
            if (states > MAX_STATES) {
                return new Search(null, Long.MAX_VALUE, false);
            }
        }
        long[] best = new long[(int) states];
        int[] via = new int[(int) states];
        Arrays.fill(best, Long.MAX_VALUE);
        best[0] = kvPeak;
        PriorityQueue<long[]> queue = new PriorityQueue<>((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
        queue.add(new long[] {kvPeak, 0});
        long full = states - 1;
        long[] use = new long[u.n];
        while (!queue.isEmpty()) {
            long[] top = queue.poll();
            long s = top[1];
            if (top[0] > best[(int) s]) {
                continue;
            }
            if (s == full) {
                break;
            }
            System.arraycopy(start, 0, use, 0, u.n);
            for (int c = 0; c < k; c++) {
                long cnt = (s / radix[c]) % (classes.get(c).size() + 1);
                Item rep = u.items.get(classes.get(c).get(0));
                for (int j = 0; j < u.n; j++) {
                    use[j] += cnt * (rep.recv[j] - rep.freed[j]);
                }
            }
            for (int c = 0; c < k; c++) {
                long cnt = (s / radix[c]) % (classes.get(c).size() + 1);
                if (cnt == classes.get(c).size()) {
                    continue;
                }
                long b = Math.max(top[0], u.stepPeak(classes.get(c).get(0), use));
                long t = s + radix[c];
                if (b < best[(int) t]) {
                    best[(int) t] = b;
                    via[(int) t] = c;
                    queue.add(new long[] {b, t});
                }
            }
        }
        List<Integer> classSeq = new ArrayList<>();
        for (long s = full; s != 0; s -= radix[via[(int) s]]) {
            classSeq.add(0, via[(int) s]);
        }
        int[] taken = new int[k];
        List<Integer> order = new ArrayList<>();
        for (int c : classSeq) {
            order.add(classes.get(c).get(taken[c]++));
        }
        return new Search(order, best[(int) full], true);
    }

    static long[] replay(Units u, List<Integer> order) {
        long[] use = new long[u.n];
        long[] peak = new long[u.n];
        u.apply(u.kv, use, peak);
        for (int i : order) {
            u.apply(u.items.get(i), use, peak);
        }
        return peak;
    }

    static long max(long[] a) {
        long m = 0;
        for (long v : a) {
            m = Math.max(m, v);
        }
        return m;
    }

    private static MigrationPlan assemble(DeviceMapping mapping, Units u, List<Integer> order, long[] peak, long cap) {
        List<MigrationPlan.Migrate> migrates = new ArrayList<>();
        if (!u.kv.isEmpty()) {
            migrates.add(u.kv.step);
        }
        for (int i : order) {
            migrates.add(u.items.get(i).step);
        }
        // the last migrate step that delivers to each new (pipeline, stage)
        Map<DeviceId, Position> newPos = new HashMap<>();
        mapping.placement().forEach((p, d) -> newPos.put(d, p));
        Map<Position, Integer> lastStep = new TreeMap<>((a, b) -> a.pipeline() != b.pipeline()
                ? Integer.compare(a.pipeline(), b.pipeline()) : Integer.compare(a.stage(), b.stage()));
        for (Position p : mapping.placement().keySet()) {
            lastStep.putIfAbsent(new Position(p.pipeline(), p.stage(), 0), -1);
        }
        for (int s = 0; s < migrates.size(); s++) {
            for (Transfer t : migrates.get(s).transfers()) {
                Position p = newPos.get(t.target());
                lastStep.put(new Position(p.pipeline(), p.stage(), 0), s);
            }
        }
        List<MigrationPlan.Step> steps = new ArrayList<>();
        for (int s = -1; s < migrates.size(); s++) {
            if (s >= 0) {
                steps.add(migrates.get(s));
            }
            for (Map.Entry<Position, Integer> e : lastStep.entrySet()) {
                if (e.getValue() == s) {
                    steps.add(new MigrationPlan.StartStage(e.getKey().pipeline(), e.getKey().stage()));
                }
            }
        }
        List<ContextUnit> units = new ArrayList<>();
        migrates.forEach(m -> units.add(m.unit()));
        Map<String, Long> peaks = new TreeMap<>();
        for (int j = 0; j < u.n; j++) {
            peaks.put(u.instances.get(j), peak[j]);
        }
        return new MigrationPlan(steps, units, peaks, cap);
    }

    /** One unit's step and its per-instance memory effect. */
    static final class Item {
        final MigrationPlan.Migrate step;
        final long[] recv;
        final long[] freed;

        Item(MigrationPlan.Migrate step, long[] recv, long[] freed) {
            this.step = step;
            this.recv = recv;
            this.freed = freed;
        }

        boolean isEmpty() {
            return step.transfers().isEmpty() && step.releases().isEmpty();
        }
    }

    /** The units of a mapping with per-instance received and freed bytes. */
    static final class Units {
        final List<String> instances;
        final int n;
        final Item kv;
        final List<Item> items = new ArrayList<>();

        Units(DeviceMapping m) {
            TreeSet<String> names = new TreeSet<>();
            m.placement().values().forEach(d -> names.add(d.instance()));
            m.frees().keySet().forEach(d -> names.add(d.instance()));
            m.transfers().forEach(t -> {
                names.add(t.target().instance());
                if (t.source() != null) {
                    names.add(t.source().instance());
                }
            });
            instances = new ArrayList<>(names);
            n = instances.size();
            Map<String, Integer> index = new HashMap<>();
            for (int j = 0; j < n; j++) {
                index.put(instances.get(j), j);
            }
            TreeMap<ContextUnit, List<Transfer>> transfers = new TreeMap<>();
            TreeMap<ContextUnit, List<MigrationPlan.Release>> releases = new TreeMap<>();
            for (Transfer t : m.transfers()) {
                transfers.computeIfAbsent(t.slice().unit(), x -> new ArrayList<>()).add(t);
            }
            m.frees().forEach((d, list) -> list.forEach(s ->
                    releases.computeIfAbsent(s.unit(), x -> new ArrayList<>()).add(new MigrationPlan.Release(d, s))));
            TreeSet<ContextUnit> all = new TreeSet<>(transfers.keySet());
            all.addAll(releases.keySet());
            Item kvItem = item(ContextUnit.KV, transfers, releases, index);
            for (ContextUnit unit : all) {
                if (!unit.equals(ContextUnit.KV)) {
                    items.add(item(unit, transfers, releases, index));
                }
            }
            kv = kvItem;
        }

        private Item item(ContextUnit unit, Map<ContextUnit, List<Transfer>> transfers,
                          Map<ContextUnit, List<MigrationPlan.Release>> releases, Map<String, Integer> index) {
            List<Transfer> ts = transfers.getOrDefault(unit, List.of());
            List<MigrationPlan.Release> rs = releases.getOrDefault(unit, List.of());
            long[] recv = new long[n];
            long[] freed = new long[n];
            ts.forEach(t -> recv[index.get(t.target().instance())] += t.bytes());
            rs.forEach(r -> freed[index.get(r.device().instance())] += r.slice().bytes());
            return new Item(new MigrationPlan.Migrate(unit, ts, rs), recv, freed);
        }

        /** Highest instance use while step {@code i} is in flight, starting from {@code use}. */
        long stepPeak(int i, long[] use) {
            Item it = items.get(i);
            long p = Long.MIN_VALUE;
            for (int j = 0; j < n; j++) {
                p = Math.max(p, use[j] + it.recv[j]);
            }
            return p;
        }

        /** Applies a step to {@code use}; records transient peaks in {@code peak} when given. */
        void apply(Item it, long[] use, long[] peak) {
            for (int j = 0; j < n; j++) {
                use[j] += it.recv[j];
                if (peak != null) {
                    peak[j] = Math.max(peak[j], use[j]);
                }
                use[j] -= it.freed[j];
            }
        }
    }
}
