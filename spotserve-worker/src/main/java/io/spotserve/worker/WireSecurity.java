package io.spotserve.worker;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Objects;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the controller, its workers and the workers among themselves authenticate each other: a shared token
 * (sent as {@code authorization: Bearer ...}, compared in constant time), mutual TLS (every side presents a
 * certificate signed by the cluster's CA and requires one from its peer), or both. There is no unauthenticated
 * mode: whatever listens refuses a caller that cannot prove itself, with one log line, and answers nothing.
 */
public final class WireSecurity {
    private static final Logger LOG = LoggerFactory.getLogger(WireSecurity.class);
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private final byte[] token;
    private final Path cert;
    private final Path key;
    private final Path ca;

    private WireSecurity(byte[] token, Path cert, Path key, Path ca) {
        this.token = token;
        this.cert = cert;
        this.key = key;
        this.ca = ca;
    }

    /**
     * A shared token: every caller must present exactly these bytes.
     *
     * @throws IllegalArgumentException if the token is shorter than 16 characters or not printable ASCII
     */
    public static WireSecurity token(String token) {
        Objects.requireNonNull(token, "token");
        String t = token.strip();
        if (t.length() < 16) {
            throw new IllegalArgumentException("the shared token must have at least 16 characters, got " + t.length());
        }
        for (int i = 0; i < t.length(); i++) {
            char ch = t.charAt(i);
            if (ch < 0x21 || ch > 0x7e) {
                throw new IllegalArgumentException("the shared token must be printable ASCII without spaces; character "
                        + i + " is not");
            }
        }
        return new WireSecurity(t.getBytes(StandardCharsets.US_ASCII), null, null, null);
    }

    /** A shared token read from a file (surrounding whitespace ignored). */
    public static WireSecurity tokenFile(Path file) throws IOException {
        return token(Files.readString(file, StandardCharsets.US_ASCII));
    }

    /**
     * Mutual TLS: this side's certificate chain and PKCS#8 private key (PEM), and the CA (PEM) every peer's
     * certificate must be signed by.
     */
    public static WireSecurity mutualTls(Path certChain, Path privateKey, Path trustedCa) {
        return new WireSecurity(null, requireReadable(certChain), requireReadable(privateKey), requireReadable(trustedCa));
    }

    /** This configuration with a shared token required in addition (token over mTLS). */
    public WireSecurity withToken(String sharedToken) {
        return new WireSecurity(token(sharedToken).token, cert, key, ca);
    }

    private static Path requireReadable(Path p) {
        Objects.requireNonNull(p, "path");
        if (!Files.isReadable(p)) {
            throw new IllegalArgumentException("cannot read " + p.toAbsolutePath());
        }
        return p;
    }

    boolean usesTls() {
        return cert != null;
    }

    ServerCredentials serverCredentials() throws IOException {
        if (!usesTls()) {
            return InsecureServerCredentials.create();
        }
        return TlsServerCredentials.newBuilder().keyManager(cert.toFile(), key.toFile()).trustManager(ca.toFile())
                .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE).build();
    }

    ChannelCredentials channelCredentials() throws IOException {
        ChannelCredentials base = usesTls()
                ? TlsChannelCredentials.newBuilder().keyManager(cert.toFile(), key.toFile()).trustManager(ca.toFile()).build()
                : InsecureChannelCredentials.create();
        return token == null ? base : CompositeChannelCredentials.create(base, new BearerToken(token));
    }

    /** The server-side check of the shared token (a pass-through when only mTLS is used). */
    ServerInterceptor interceptor(String serverName) {
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                               ServerCallHandler<Q, R> next) {
                if (token != null && !tokenMatches(headers.get(AUTHORIZATION))) {
                    LOG.warn("{} refused an unauthenticated call to {} from {}: missing or wrong shared token",
                            serverName, call.getMethodDescriptor().getFullMethodName(),
                            call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
                    call.close(Status.UNAUTHENTICATED.withDescription("missing or wrong shared token"), new Metadata());
                    return new ServerCall.Listener<>() {
                    };
                }
                return next.startCall(call, headers);
            }
        };
    }

    private boolean tokenMatches(String header) {
        byte[] presented = header != null && header.startsWith("Bearer ")
                ? header.substring(7).getBytes(StandardCharsets.US_ASCII) : new byte[0];
        return MessageDigest.isEqual(presented, token); // constant time in the presented bytes
    }

    private static final class BearerToken extends CallCredentials {
        private final String value;

        BearerToken(byte[] token) {
            this.value = "Bearer " + new String(token, StandardCharsets.US_ASCII);
        }

        @Override
        public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
            Metadata m = new Metadata();
            m.put(AUTHORIZATION, value);
            applier.apply(m);
        }
    }

    @Override
    public String toString() {
        return "WireSecurity[" + (token != null ? "token" : "") + (token != null && usesTls() ? "+" : "")
                + (usesTls() ? "mTLS" : "") + "]";
    }
}
