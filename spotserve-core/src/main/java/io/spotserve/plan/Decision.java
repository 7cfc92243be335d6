package io.spotserve.plan;

import java.util.Objects;
import java.util.Optional;

/**
 * The outcome of Algorithm 1 (SpotServe §2.3) for one step: the next configuration C_{t+1} with its estimates,
 * and the instance change Δ = #Instances(C_{t+1}) + spare − N_t the instance manager should carry out —
 * allocate Δ (spot and on-demand requested together) or release −Δ, on-demand first.
 *
 * @param choice             the chosen configuration; empty when no configuration is feasible on the GPUs searched
 * @param meetsArrivalRate   true when φ(C) reaches the arrival rate (line 3); false for the max-throughput
 *                           fallback (line 5) or when nothing is feasible
 * @param arrivalRate        α_t the decision was made for, requests per second
 * @param availableInstances N_t
 * @param instancesNeeded    ceil(D·P·M / GPUs per instance); 0 without a choice
 * @param targetInstances    instancesNeeded + spare pool (N_t without a choice)
 * @param delta              targetInstances − N_t
 * @param allocate           max(Δ, 0): instances to request (spot and on-demand together)
 * @param releaseOnDemand    on-demand instances to release (released first)
 * @param releaseSpot        spot instances to release once no on-demand one is left to release
 * @param policy             the optimizer policy that decided
 * @param reason             one line saying why
 */
public record Decision(Optional<ConfigEstimate> choice, boolean meetsArrivalRate, double arrivalRate,
                       int availableInstances, int instancesNeeded, int targetInstances, int delta, int allocate,
                       int releaseOnDemand, int releaseSpot, ParallelConfigOptimizer.Policy policy, String reason) {
    public Decision {
        Objects.requireNonNull(choice, "choice");
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(reason, "reason");
    }

    /** The chosen configuration. @throws java.util.NoSuchElementException when none is feasible */
    public ParallelConfig config() {
        return choice.orElseThrow().config();
    }

    /** Instances released in total (−Δ when Δ &lt; 0). */
    public int release() {
        return releaseOnDemand + releaseSpot;
    }
}
