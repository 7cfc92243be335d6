package io.spotserve.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The instance manager's rule for the fleet size N_t (SpotServe §3.2, Algorithm 1 lines 6–10): given the instances
 * Algorithm 1 wants ({@link Decision#targetInstances()}, the spare pool included) and the fleet, how many on-demand
 * instances to ask for and which instances to release, in order. One rule for the engine's {@code InstanceManager} and
 * the evaluation's simulator and on-demand schedule. Pure and stateless.
 *
 * <p>The rule:
 * <ol>
 *   <li><b>N_t</b> counts every instance that is neither noticed nor leaving — launching ones included (SpotServe §3.2:
 *       "newly allocated instances are included, to-be-preempted ones excluded") — plus asks not yet granted
 *       ({@code outstanding}). The caller passes only such instances as {@code members}.</li>
 *   <li><b>Ask</b> when N_t &lt; target: {@code min(target, maxInstances) − N_t} on-demand instances (on-demand, as they are
 *       granted at once; the cloud adds spot ones on its own). Nothing is released in the same step.</li>
 *   <li><b>Release</b> when the members alone exceed the target: {@code members − target} at most. Asks not yet granted
 *       count toward N_t for asking but not for releasing — there is no instance to hand back yet, and releasing a
 *       working one for one still launching would lower capacity for the launch; a surplus they cause is released
 *       once they arrive.</li>
 *   <li><b>Order</b>: on-demand first (SpotServe: they cost more), and within them those that lose least: launching
 *       ones (nothing on them yet), then idle ones, then those hosting part of the configuration — which are released
 *       only after the context is migrated off them ({@link Release#migrateFirst()}: never release a hosting instance
 *       before). Then, where the caller allows it ({@code releaseSpot}), idle spot instances — never a spot instance
 *       that hosts or launches. Within each class, in the members' order (oldest first when the caller lists them in
 *       acquisition order).</li>
 * </ol>
 */
public final class FleetPlan {
    /** What an instance is doing now, as far as a release goes. */
    public enum State {
        /** Granted or acquired but not yet part of the configuration: nothing on it to lose. */
        LAUNCHING,
        /** Usable and hosting no position of the configuration. */
        IDLE,
        /** Hosting positions of the configuration: its context must be migrated off before it goes. */
        HOSTING
    }

    /**
     * One instance of N_t.
     *
     * @param id       the instance's name
     * @param onDemand whether it is an on-demand instance (else spot)
     * @param state    what it is doing
     */
    public record Member(String id, boolean onDemand, State state) {
        public Member {
            Objects.requireNonNull(id, "id");
            Objects.requireNonNull(state, "state");
        }
    }

    /**
     * One instance to release.
     *
     * @param id           the instance
     * @param migrateFirst it hosts part of the configuration: move its context off, then release it (the caller treats
     *                     it as a preemption notice it gives itself)
     */
    public record Release(String id, boolean migrateFirst) {
    }

    /**
     * The instance manager's step.
     *
     * @param ask      on-demand instances to request (0 when releasing)
     * @param releases instances to release, in order
     */
    public record Step(int ask, List<Release> releases) {
        public Step {
            releases = List.copyOf(releases);
        }

        /** Whether the step changes nothing. */
        public boolean isEmpty() {
            return ask == 0 && releases.isEmpty();
        }
    }

    private FleetPlan() {
    }

    /**
     * The step for a fleet.
     *
     * @param target       instances wanted (Algorithm 1's target, spare pool included); must be &gt;= 0
     * @param members      instances counted in N_t (neither noticed nor leaving), in acquisition order
     * @param outstanding  on-demand asks not yet granted as instances; must be &gt;= 0
     * @param maxInstances most instances the fleet may hold ({@link Integer#MAX_VALUE}: no cap)
     * @param releaseSpot  whether idle spot instances beyond the target are released (the engine when it plans; the
     *                     evaluation's fleets keep the trace's spot instances, as the paper's artifact does)
     * @throws IllegalArgumentException for a negative target, outstanding count or cap
     */
    public static Step plan(int target, List<Member> members, int outstanding, int maxInstances, boolean releaseSpot) {
        Objects.requireNonNull(members, "members");
        if (target < 0 || outstanding < 0 || maxInstances < 0) {
            throw new IllegalArgumentException("target, outstanding asks and the instance cap must be >= 0, were "
                    + target + ", " + outstanding + ", " + maxInstances);
        }
        long held = (long) members.size() + outstanding;
        long wanted = Math.min(target, maxInstances);
        if (wanted > held) {
            return new Step((int) (wanted - held), List.of());
        }
        int surplus = members.size() - target;
        List<Release> releases = new ArrayList<>();
        for (int rank = 0; rank < 4 && releases.size() < surplus; rank++) {
            for (Member m : members) {
                if (releases.size() < surplus && rank(m, releaseSpot) == rank) {
                    releases.add(new Release(m.id(), m.state() == State.HOSTING));
                }
            }
        }
        return new Step(0, releases);
    }

    /**
     * Release class of {@code m}: 0 launching on-demand, 1 idle on-demand, 2 hosting on-demand, 3 idle spot (when
     * spot may be released); -1 never released.
     */
    static int rank(Member m, boolean releaseSpot) {
        if (m.onDemand()) {
            return m.state().ordinal();
        }
        return releaseSpot && m.state() == State.IDLE ? 3 : -1;
    }
}
