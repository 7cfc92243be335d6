package io.spotserve.exec;

import io.spotserve.plan.DeviceId;

/**
 * One accelerator (or CPU stand-in) with a fixed memory capacity: the unit the device mapper places and the
 * migration planner's memory bound refers to (SpotServe §3.4, U_max).
 *
 * <p>Every weight slice and KV-cache slice a pipeline position holds is allocated from its device's arena;
 * an allocation that would exceed the capacity fails with {@link DeviceMemoryException} and changes nothing.
 */
public interface Device {
    /** The physical device this arena stands for. */
    DeviceId id();

    /** Bytes this device can hold. */
    long capacityBytes();

    /** Bytes currently allocated (weights and KV caches of every position placed here). */
    long usedBytes();

    /** Bytes still free. */
    default long freeBytes() {
        return capacityBytes() - usedBytes();
    }
}
