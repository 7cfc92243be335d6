package io.spotserve.worker;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Starts the gRPC servers of this module: bound where asked (loopback by default), authenticated, bounded. */
final class Servers {
    /** HTTP/2 flow-control window: two slice chunks in flight, so a stream never waits on window updates. */
    static final int FLOW_CONTROL_WINDOW = 2 * Wire.CHUNK_BYTES + (1 << 16);
    private Servers() {
    }

    static Server start(InetSocketAddress bind, WireSecurity security, int maxMessageBytes, String name,
                        List<BindableService> services) throws IOException {
        NettyServerBuilder b = NettyServerBuilder.forAddress(bind, security.serverCredentials())
                .maxInboundMessageSize(maxMessageBytes)
                .maxInboundMetadataSize(16 << 10)
                .flowControlWindow(FLOW_CONTROL_WINDOW)
                .permitKeepAliveTime(5, TimeUnit.SECONDS)
                .permitKeepAliveWithoutCalls(true);
        for (BindableService s : services) {
            b.addService(s);
        }
        b.intercept(security.interceptor(name)); // every call, to every service, is checked first
        return b.build().start();
    }

    static void stop(Server server) {
        if (server == null) {
            return;
        }
        server.shutdownNow();
        try {
            server.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Parses host:port (IPv6 hosts in brackets). */
    static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new IllegalArgumentException("expected HOST:PORT, got '" + hostPort + "'");
        }
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("port of '" + hostPort + "' is not a number");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port " + port + " outside [0, 65535]");
        }
        return new InetSocketAddress(host, port);
    }
}
