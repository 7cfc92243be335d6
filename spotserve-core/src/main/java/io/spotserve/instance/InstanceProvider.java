package io.spotserve.instance;

import java.util.function.Consumer;

/**
 * The cloud, as the serving engine sees it: the SPI a host application implements for its provider (or the
 * bundled {@code LocalInstanceProvider} and {@code TraceInstanceProvider}).
 *
 * <p>The provider reports every membership change as an {@link InstanceEvent}; the engine's instance
 * manager decides what to ask for. Following Algorithm 1 of the paper, capacity is requested from spot and
 * on-demand markets together (the provider decides how to fill a request) and released on-demand first.
 * Providers may deliver duplicate, late or unknown-instance events; the engine tolerates them.
 */
public interface InstanceProvider extends AutoCloseable {

    /**
     * Starts delivering events to {@code listener}. The instances that already exist are reported as
     * {@link InstanceEvent.Acquired} events. Called once by the engine.
     */
    void start(Consumer<InstanceEvent> listener);

    /**
     * Asks for {@code count} more instances. They arrive later as {@link InstanceEvent.Acquired} events
     * (the launch time is the acquisition grace period T⁺ of the paper); a provider that cannot satisfy the
     * request delivers fewer.
     */
    void requestOnDemand(int count);

    /** Gives an instance back to the cloud; the provider confirms with a {@link InstanceEvent.Terminated}. */
    void release(String instanceId);

    /** Stops delivering events and releases what the provider itself holds. */
    @Override
    void close();
}
