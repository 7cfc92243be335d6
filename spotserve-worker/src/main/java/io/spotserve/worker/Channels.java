package io.spotserve.worker;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/** Client channels to other processes, one per address, all authenticated by the same {@link WireSecurity}. */
final class Channels implements AutoCloseable {
    private final WireSecurity security;
    private final int maxMessageBytes;
    private final Map<String, ManagedChannel> open = new ConcurrentHashMap<>();

    Channels(WireSecurity security, int maxMessageBytes) {
        this.security = security;
        this.maxMessageBytes = maxMessageBytes;
    }

    /** The channel to {@code address} (host:port), opened on first use. */
    ManagedChannel to(String address) {
        return open.computeIfAbsent(address, this::create);
    }

    /**
     * A new channel to {@code address} with the same credentials and limits as {@link #to}'s, not kept here: the
     * caller shuts it down.
     */
    ManagedChannel create(String address) {
        try {
            return NettyChannelBuilder.forTarget(address, security.channelCredentials())
                    .maxInboundMessageSize(maxMessageBytes).flowControlWindow(Servers.FLOW_CONTROL_WINDOW).build();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the TLS material for a channel to " + address, e);
        }
    }

    /** Closes the channel to {@code address} (its process is gone). */
    void forget(String address) {
        ManagedChannel c = open.remove(address);
        if (c != null) {
            c.shutdownNow();
        }
    }

    @Override
    public void close() {
        for (ManagedChannel c : open.values()) {
            c.shutdownNow();
        }
        for (ManagedChannel c : open.values()) {
            try {
                c.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        open.clear();
    }
}
