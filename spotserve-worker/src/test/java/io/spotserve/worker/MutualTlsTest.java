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
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Mutual TLS with test certificates made by the JDK's keytool ({@code src/test/resources/tls/make-test-certs.sh}:
 * a cluster CA signing a node certificate for 127.0.0.1, and a rogue self-signed one for the same address): a worker with the cluster's certificate registers and keeps
 * its lease; the rogue worker, or a client without a certificate, gets nothing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MutualTlsTest {
    private static Path dir;

    @BeforeAll
    static void certificates() throws Exception {
        dir = Path.of(MutualTlsTest.class.getResource("/tls/cluster-ca.pem").toURI()).getParent();
    }

    private static WireSecurity tls(String node) {
        return WireSecurity.mutualTls(dir.resolve(node + "-node.pem"), dir.resolve(node + "-node.key"),
                dir.resolve("cluster-ca.pem"));
    }

    @Test
    void onlyPeersWithTheClustersCertificateAreServed() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(tls("cluster"))
                .leaseTimeout(Duration.ofMillis(500)).build()) {
            WorkerProcess good = WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(1 << 20)
                    .security(tls("cluster")).executor(new CpuExecutor(new ExecutorOptions(1, false)))
                    .warmUp(50).build();
            try {
                good.start();
                assertEquals(List.of(good.instanceId()), controller.liveWorkers());
                assertTrue(good.warmUpCalls() > 0, "the warm-up runs over mTLS too");
                // a worker whose certificate another CA signed never registers
                WorkerProcess rogue = WorkerProcess.builder().controller(controller.address()).devices(1)
                        .deviceMemory(1 << 20).security(tls("rogue")).registerTimeout(Duration.ofSeconds(1))
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
                Thread.sleep(1200);
                assertEquals(List.of(good.instanceId()), controller.liveWorkers());
            } finally {
                good.close();
            }
        }
    }
}
