package io.spotserve.plan;

import java.io.Serializable;

/**
 * Migration traffic of one instance, the input of the T_mig estimate (SpotServe §4: T_mig ≈ the busiest
 * instance's inter-instance bytes over the network bandwidth, plus its intra-instance bytes over the
 * local link, plus a constant).
 *
 * @param sentBytes          bytes this instance sends to other instances
 * @param receivedBytes      bytes it receives from other instances
 * @param intraInstanceBytes bytes copied between its own GPUs
 * @param reloadedBytes      bytes it must load from the checkpoint (no live replica)
 */
public record InstanceTraffic(long sentBytes, long receivedBytes, long intraInstanceBytes, long reloadedBytes)
        implements Serializable {
    /** No traffic. */
    public static final InstanceTraffic NONE = new InstanceTraffic(0, 0, 0, 0);

    InstanceTraffic plus(long sent, long received, long intra, long reloaded) {
        return new InstanceTraffic(sentBytes + sent, receivedBytes + received, intraInstanceBytes + intra,
                reloadedBytes + reloaded);
    }

    /** max(sent, received): what a full-duplex NIC must carry. */
    public long networkBytes() {
        return Math.max(sentBytes, receivedBytes);
    }
}
