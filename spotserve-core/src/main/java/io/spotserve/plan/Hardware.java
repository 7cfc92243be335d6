package io.spotserve.plan;

import java.util.Objects;

/**
 * One cloud instance type as the cost model sees it: GPUs per instance, usable memory per GPU, the network
 * between instances (for migration time, SpotServe §4–5) and hourly prices (for monetary cost, §6.2).
 *
 * @param name                     instance type name
 * @param gpusPerInstance          GPUs in one instance
 * @param gpuMemoryBytes           usable memory of one GPU
 * @param networkGbps              bandwidth between instances, Gbit/s
 * @param migrationOverheadSeconds fixed cost added to every migration estimate (the artifact adds 0.5 s)
 * @param spotUsdPerHour           spot price of one instance
 * @param onDemandUsdPerHour       on-demand price of one instance
 */
public record Hardware(String name, int gpusPerInstance, long gpuMemoryBytes, double networkGbps,
                       double migrationOverheadSeconds, double spotUsdPerHour, double onDemandUsdPerHour) {

    /**
     * AWS g4dn.12xlarge as in the paper's evaluation: 4× T4 (15,360 MiB usable each, as nvidia-smi reports),
     * 50 Gbps, spot 1.9 / on-demand 3.9 USD/h, 0.5 s migration constant of the artifact.
     */
    public static final Hardware G4DN_12XLARGE =
            new Hardware("g4dn.12xlarge", 4, 15_360L << 20, 50.0, 0.5, 1.9, 3.9);

    public Hardware {
        Objects.requireNonNull(name, "name");
        if (gpusPerInstance < 1) {
            throw new IllegalArgumentException("gpusPerInstance must be >= 1, was " + gpusPerInstance);
        }
        if (gpuMemoryBytes < 1) {
            throw new IllegalArgumentException("gpuMemoryBytes must be >= 1, was " + gpuMemoryBytes);
        }
        if (!(networkGbps > 0) || Double.isInfinite(networkGbps)) {
            throw new IllegalArgumentException("networkGbps must be finite and > 0, was " + networkGbps);
        }
        nonNegative("migrationOverheadSeconds", migrationOverheadSeconds);
        nonNegative("spotUsdPerHour", spotUsdPerHour);
        nonNegative("onDemandUsdPerHour", onDemandUsdPerHour);
    }

    private static void nonNegative(String field, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(field + " must be finite and >= 0, was " + v);
        }
    }

    /** The same hardware with another number of GPUs per instance. */
    public Hardware withGpusPerInstance(int gpus) {
        return new Hardware(name, gpus, gpuMemoryBytes, networkGbps, migrationOverheadSeconds, spotUsdPerHour,
                onDemandUsdPerHour);
    }
}
