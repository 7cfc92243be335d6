package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.plan.FleetPlan.Member;
import io.spotserve.plan.FleetPlan.Release;
import io.spotserve.plan.FleetPlan.State;
import io.spotserve.plan.FleetPlan.Step;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FleetPlanTest {
    private static Member od(String id, State s) {
        return new Member(id, true, s);
    }

    private static Member spot(String id, State s) {
        return new Member(id, false, s);
    }

    @Test
    void asksForTheMissingInstancesCountingLaunchingOnesAndOutstandingAsks() {
        List<Member> fleet = List.of(spot("s0", State.HOSTING), spot("s1", State.LAUNCHING), od("o0", State.IDLE));
        assertEquals(new Step(3, List.of()), FleetPlan.plan(7, fleet, 1, Integer.MAX_VALUE, true));
        assertEquals(new Step(1, List.of()), FleetPlan.plan(7, fleet, 1, 5, true), "the cap bounds the ask");
        assertEquals(new Step(0, List.of()), FleetPlan.plan(7, fleet, 1, 4, true));
        assertTrue(FleetPlan.plan(4, fleet, 1, Integer.MAX_VALUE, true).isEmpty(), "N_t = 4 meets the target");
    }

    @Test
    void releasesOnDemandFirstLaunchingThenIdleThenHostingAfterMigration() {
        List<Member> fleet = List.of(od("o0", State.HOSTING), spot("s0", State.IDLE), od("o1", State.IDLE),
                spot("s1", State.HOSTING), od("o2", State.LAUNCHING), od("o3", State.IDLE));
        Step s = FleetPlan.plan(1, fleet, 0, Integer.MAX_VALUE, true);
        assertEquals(List.of(new Release("o2", false), new Release("o1", false), new Release("o3", false),
                new Release("o0", true), new Release("s0", false)), s.releases(), "the hosting spot instance stays");
        assertEquals(List.of(new Release("o2", false), new Release("o1", false), new Release("o3", false),
                new Release("o0", true)), FleetPlan.plan(1, fleet, 0, Integer.MAX_VALUE, false).releases(),
                "without spot releases only on-demand ones go");
        assertEquals(List.of(new Release("o2", false)), FleetPlan.plan(5, fleet, 0, Integer.MAX_VALUE, true).releases());
    }

    @Test
    void outstandingAsksDoNotMakeAWorkingInstanceGo() {
        List<Member> fleet = List.of(od("o0", State.IDLE), od("o1", State.IDLE));
        assertTrue(FleetPlan.plan(2, fleet, 3, Integer.MAX_VALUE, true).isEmpty(), "N_t = 5 > 2, yet nothing to hand back");
        assertEquals(List.of(new Release("o0", false)), FleetPlan.plan(1, fleet, 3, Integer.MAX_VALUE, true).releases());
    }

    @Test
    void badInputIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> FleetPlan.plan(-1, List.of(), 0, 1, true));
        assertThrows(IllegalArgumentException.class, () -> FleetPlan.plan(1, List.of(), -1, 1, true));
        assertThrows(IllegalArgumentException.class, () -> FleetPlan.plan(1, List.of(), 0, -1, true));
    }

    /**
     * Property: against a brute-force statement of the rule over random fleets. Ask = the shortfall of N_t (members and
     * outstanding asks) to min(target, cap), and nothing released then; otherwise the release set is, among every set
     * of releasable members of the largest size up to the members' surplus, the one that releases the cheapest classes
     * first (compared as sorted (class, position) lists), listed in that order; hosting instances migrate first.
     */
    @Test
    void matchesABruteForceStatementOfTheRule() {
        Random rnd = new Random(12);
        State[] states = State.values();
        for (int trial = 0; trial < 3000; trial++) {
            int n = rnd.nextInt(9);
            List<Member> fleet = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fleet.add(new Member("i" + i, rnd.nextBoolean(), states[rnd.nextInt(states.length)]));
            }
            int target = rnd.nextInt(11);
            int outstanding = rnd.nextInt(3);
            int cap = rnd.nextInt(4) == 0 ? rnd.nextInt(12) : Integer.MAX_VALUE;
            boolean spotToo = rnd.nextBoolean();
            Step got = FleetPlan.plan(target, fleet, outstanding, cap, spotToo);
            String what = fleet + " target " + target + " outstanding " + outstanding + " cap " + cap + " spot " + spotToo;
            int wanted = Math.min(target, cap);
            int ask = Math.max(0, wanted - n - outstanding);
            assertEquals(ask, got.ask(), what);
            if (ask > 0) {
                assertTrue(got.releases().isEmpty(), what);
                continue;
            }
            assertEquals(bruteForceReleases(fleet, target, spotToo), got.releases(), what);
        }
    }

    private static List<Release> bruteForceReleases(List<Member> fleet, int target, boolean spotToo) {
        int n = fleet.size();
        List<Integer> best = null;
        int bestSize = -1;
        for (int mask = 0; mask < (1 << n); mask++) {
            List<Integer> keys = new ArrayList<>();
            boolean ok = true;
            for (int i = 0; i < n && ok; i++) {
                if ((mask & (1 << i)) != 0) {
                    int cls = releaseClass(fleet.get(i), spotToo);
                    ok = cls >= 0;
                    keys.add(cls * 100 + i);
                }
            }
            if (!ok || keys.size() > Math.max(0, n - target)) {
                continue;
            }
            keys.sort(null);
            if (keys.size() > bestSize || (keys.size() == bestSize && lexLess(keys, best))) {
                best = keys;
                bestSize = keys.size();
            }
        }
        List<Release> out = new ArrayList<>();
        for (int k : best) {
            Member m = fleet.get(k % 100);
            out.add(new Release(m.id(), m.state() == State.HOSTING));
        }
        return out;
    }

    /** The rule's classes, written out: which instances may go and in which order. */
    private static int releaseClass(Member m, boolean spotToo) {
        if (m.onDemand()) {
            return switch (m.state()) {
                case LAUNCHING -> 0;
                case IDLE -> 1;
                case HOSTING -> 2;
            };
        }
        return spotToo && m.state() == State.IDLE ? 3 : -1;
    }

    private static boolean lexLess(List<Integer> a, List<Integer> b) {
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i).equals(b.get(i))) {
                return a.get(i) < b.get(i);
            }
        }
        return false;
    }
}
