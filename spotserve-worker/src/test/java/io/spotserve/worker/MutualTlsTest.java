package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.worker.proto.ControllerGrpc;
import io.spotserve.worker.proto.HeartbeatRequest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Mutual TLS with certificates made by the JDK's keytool (a cluster CA and a rogue CA, each signing a node
 * certificate for 127.0.0.1): a worker with the cluster's certificate registers; one signed by another CA, or a
 * client without a certificate, gets nothing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MutualTlsTest {
    private static Path dir;

    @BeforeAll
    static void makeCertificates() throws Exception {
        dir = Path.of("target", "tls");
        Files.createDirectories(dir);
        for (String ca : new String[] {"cluster", "rogue"}) {
            Path caStore = dir.resolve(ca + "-ca.p12");
            Path nodeStore = dir.resolve(ca + "-node.p12");
            Files.deleteIfExists(caStore);
            Files.deleteIfExists(nodeStore);
            keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + ca
                    + "-ca", "-ext", "bc:c", "-validity", "2", "-keystore", caStore.toString());
            keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", caStore.toString(), "-file",
                    dir.resolve(ca + "-ca.pem").toString());
            keytool("-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname",
                    "CN=" + ca + "-node", "-validity", "2", "-keystore", nodeStore.toString());
            keytool("-certreq", "-alias", "node", "-keystore", nodeStore.toString(), "-file",
                    dir.resolve(ca + "-node.csr").toString());
            keytool("-gencert", "-rfc", "-alias", "ca", "-keystore", caStore.toString(), "-infile",
                    dir.resolve(ca + "-node.csr").toString(), "-outfile", dir.resolve(ca + "-node.pem").toString(),
                    "-ext", "san=ip:127.0.0.1,dns:localhost", "-ext", "eku=serverAuth,clientAuth", "-validity", "2");
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(nodeStore)) {
                ks.load(in, "changeit".toCharArray());
            }
            Key key = ks.getKey("node", "changeit".toCharArray()); // PKCS#8 DER
            Files.writeString(dir.resolve(ca + "-node.key"), "-----BEGIN PRIVATE KEY-----\n"
                    + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(key.getEncoded())
                    + "\n-----END PRIVATE KEY-----\n");
        }
    }

    private static void keytool(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("-storetype", "PKCS12", "-storepass", "changeit", "-noprompt"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "keytool " + args[0] + ": " + out);
    }

    private static WireSecurity tls(String node, String trustedCa) {
        return WireSecurity.mutualTls(dir.resolve(node + "-node.pem"), dir.resolve(node + "-node.key"),
                dir.resolve(trustedCa + "-ca.pem"));
    }

    @Test
    void onlyPeersWithTheClustersCertificateAreServed() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(tls("cluster", "cluster"))
                .build()) {
            WorkerProcess good = WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(1 << 20)
                    .security(tls("cluster", "cluster")).executor(new CpuExecutor(new ExecutorOptions(1, false)))
                    .build();
            try {
                good.start();
                assertEquals(List.of(good.instanceId()), controller.liveWorkers());
                // a worker whose certificate another CA signed never registers
                WorkerProcess rogue = WorkerProcess.builder().controller(controller.address()).devices(1)
                        .deviceMemory(1 << 20).security(tls("rogue", "cluster")).registerTimeout(Duration.ofSeconds(1))
                        .executor(new CpuExecutor(new ExecutorOptions(1, false))).build();
                assertThrows(IllegalStateException.class, rogue::start);
                assertEquals(1, controller.liveWorkers().size());
                // a client with no certificate at all gets nothing from the controller or the worker
                for (String address : List.of(controller.address(), good.address())) {
                    ManagedChannel anonymous = Grpc.newChannelBuilder(address, TlsChannelCredentials.newBuilder()
                            .trustManager(dir.resolve("cluster-ca.pem").toFile()).build()).build();
                    try {
                        assertThrows(StatusRuntimeException.class, () -> ControllerGrpc.newBlockingStub(anonymous)
                                .withDeadlineAfter(5, TimeUnit.SECONDS).heartbeat(HeartbeatRequest.newBuilder()
                                        .setInstanceId(good.instanceId()).build()));
                    } finally {
                        anonymous.shutdownNow();
                    }
                }
                // the good worker's lease is still renewed over mTLS
                Thread.sleep(2500);
                assertEquals(List.of(good.instanceId()), controller.liveWorkers());
            } finally {
                good.close();
            }
        }
    }
}
