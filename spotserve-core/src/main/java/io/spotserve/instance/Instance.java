package io.spotserve.instance;

import java.util.Objects;

/**
 * One cloud instance as the engine knows it: a stable id and its type. Ids are never reused by a provider,
 * so an event for an id the engine has forgotten is recognisably stale.
 */
public record Instance(String id, InstanceType type) {
    public Instance {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(type, "type");
        if (id.isBlank()) {
            throw new IllegalArgumentException("instance id must not be blank");
        }
    }
}
