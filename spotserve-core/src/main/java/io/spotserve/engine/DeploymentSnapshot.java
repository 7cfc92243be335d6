package io.spotserve.engine;

import io.spotserve.plan.Deployment;
import java.util.Map;

/**
 * The current deployment as the planning core sees it ({@link Deployment}: live positions and each pipeline's
 * in-flight batches), with the request behind each batch, so the migration finds a kept batch's request by its
 * batch id instead of decoding an id from text.
 *
 * @param deployment what the device mapper plans from
 * @param requests   the request of each in-flight batch, by {@link io.spotserve.plan.InflightBatch#id()}
 */
record DeploymentSnapshot(Deployment deployment, Map<String, LiveRequest> requests) {
    DeploymentSnapshot {
        requests = Map.copyOf(requests);
    }
}
