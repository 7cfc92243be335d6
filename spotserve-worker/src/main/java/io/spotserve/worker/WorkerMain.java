package io.spotserve.worker;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.worker.notice.AwsSpotNotices;
import io.spotserve.worker.notice.AzureScheduledEvents;
import io.spotserve.worker.notice.CloudNotice;
import io.spotserve.worker.notice.GcpPreemptionNotices;
import io.spotserve.worker.notice.NoticeWatcher;
import java.net.URI;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code java -jar spotserve-worker.jar --controller HOST:PORT --devices N --device-memory BYTES
 * [--notices aws|gcp|azure|signal] [--token-file F | --tls-cert C --tls-key K --tls-ca A]}: one worker per cloud
 * instance. Other options: {@code --listen HOST:PORT} (default 127.0.0.1:0), {@code --advertise HOST},
 * {@code --executor NAME} (default {@code ExecutorProvider.best()}), {@code --threads N} (kernel threads per
 * pipeline, default all available processors; give fewer when several workers share a machine), {@code --weights
 * fp32|fp16|q8_0} (how the devices keep matrix weights, default fp32: a Q8_0 model is dequantized unless q8_0; the
 * controller plans with what the worker says at registration), {@code --notice-grace SECONDS} (for
 * {@code signal}, default 30), {@code --warm-up CALLS} (warm-up calls to its own server before registering, 0 =
 * off, default {@value WorkerProcess#DEFAULT_WARM_UP_CALLS}), {@code --warm-up-time SECONDS} (their wall-time bound,
 * default 1.5), {@code --migration-warm-up SECONDS} (moving a small random model between scratch pipelines before
 * registering, so the first migration into this worker runs compiled code; 0 = off, default 1), {@code
 * --bulk-transfer on|off} (slices to other workers, forward steps, and a split tensor
 * group's partials, over ticketed TCP sockets instead of gRPC streams, default on; never under mTLS), {@code --staging-memory BYTES} (migration slices
 * staged on this worker at once, waiting for their send to the target worker; default devices x device memory), {@code
 * --staging-timeout SECONDS} (a staged slice nobody sends is freed then, default 120), {@code --metadata-url URL} (the notice
 * watcher's base URL), {@code --azure-vm NAME}. Exit codes: 0 closed, 2 bad arguments or refused by the
 * controller, 3 fenced (the controller declared this worker dead).
 */
public final class WorkerMain {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerMain.class);

    private WorkerMain() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        WorkerProcess.Builder b = WorkerProcess.builder();
        String notices = null;
        Duration grace = Duration.ofSeconds(30);
        String metadataUrl = null;
        String azureVm = null;
        Path tokenFile = null;
        Path cert = null;
        Path key = null;
        Path ca = null;
        String executorName = null;
        Integer threads = null;
        WeightPrecision weights = null;
        int warmUpCalls = WorkerProcess.DEFAULT_WARM_UP_CALLS;
        Duration warmUpTime = WorkerProcess.DEFAULT_WARM_UP_TIME;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("--help") || a.equals("-h")) {
                    System.out.println(usage());
                    return 0;
                }
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--controller" -> b.controller(v);
                    case "--devices" -> b.devices(Integer.parseInt(v));
                    case "--device-memory" -> b.deviceMemory(bytes(v));
                    case "--notices" -> notices = v.toLowerCase(Locale.ROOT);
                    case "--notice-grace" -> grace = Duration.ofMillis(Math.round(Double.parseDouble(v) * 1000));
                    case "--metadata-url" -> metadataUrl = v;
                    case "--azure-vm" -> azureVm = v;
                    case "--token-file" -> tokenFile = Path.of(v);
                    case "--tls-cert" -> cert = Path.of(v);
                    case "--tls-key" -> key = Path.of(v);
                    case "--tls-ca" -> ca = Path.of(v);
                    case "--listen" -> b.bind(Servers.address(v));
                    case "--advertise" -> b.advertise(v);
                    case "--label" -> b.label(v);
                    case "--executor" -> executorName = v;
                    case "--threads" -> threads = Integer.parseInt(v);
                    case "--weights" -> weights = WeightPrecision.parse(v);
                    case "--bulk-transfer" -> b.bulkTransfer(switch (v) {
                        case "on" -> true;
                        case "off" -> false;
                        default -> throw new IllegalArgumentException("--bulk-transfer takes on or off, got " + v);
                    });
                    case "--staging-memory" -> b.stagingMemory(bytes(v));
                    case "--staging-timeout" -> b.stagingTimeout(Duration.ofMillis(Math.round(Double.parseDouble(v)
                            * 1000)));
                    case "--warm-up" -> warmUpCalls = Integer.parseInt(v);
                    case "--warm-up-time" -> warmUpTime = Duration.ofMillis(Math.round(Double.parseDouble(v) * 1000));
                    case "--migration-warm-up" -> b.migrationWarmUp(Duration.ofMillis(Math.round(
                            Double.parseDouble(v) * 1000)));
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            WireSecurity security;
            if (cert != null || key != null || ca != null) {
                if (cert == null || key == null || ca == null) {
                    throw new IllegalArgumentException("mTLS needs all of --tls-cert, --tls-key and --tls-ca");
                }
                security = WireSecurity.mutualTls(cert, key, ca);
                if (tokenFile != null) {
                    security = security.withToken(java.nio.file.Files.readString(tokenFile));
                }
            } else if (tokenFile != null) {
                security = WireSecurity.tokenFile(tokenFile);
            } else {
                throw new IllegalArgumentException("give --token-file or --tls-cert/--tls-key/--tls-ca: a worker never "
                        + "runs unauthenticated");
            }
            b.security(security);
            b.warmUp(warmUpCalls, warmUpTime);
            if (threads != null && threads < 1) {
                throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
            }
            if (executorName != null || threads != null || weights != null) {
                ExecutorOptions options = ExecutorOptions.defaults();
                if (threads != null) {
                    options = options.withThreads(threads);
                }
                if (weights != null) {
                    options = options.withWeights(weights);
                }
                b.executor((executorName != null ? provider(executorName) : ExecutorProvider.best()).create(options));
            }
            if (notices != null && !notices.matches("aws|gcp|azure|signal")) {
                throw new IllegalArgumentException("--notices must be aws, gcp, azure or signal, got " + notices);
            }
        } catch (java.io.IOException | RuntimeException e) {
            System.err.println("spotserve-worker: " + e.getMessage() + "\n" + usage());
            return 2;
        }
        WorkerProcess worker;
        try {
            worker = b.build().start();
        } catch (java.io.IOException | RuntimeException e) {
            LOG.error("worker could not start: {}", e.getMessage());
            return 2;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(worker::close, "spotserve-worker-shutdown"));
        if ("signal".equals(notices)) {
            Duration g = grace;
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"), sig -> onSigterm(worker, g));
        } else if (notices != null) {
            NoticeWatcher w = watcher(notices, metadataUrl, azureVm);
            Thread t = new Thread(() -> watch(worker, w), "spotserve-notices-" + w.name());
            t.setDaemon(true);
            t.start();
        }
        try {
            String why = worker.terminated().get();
            return why.equals("closed") ? 0 : 3;
        } catch (InterruptedException | ExecutionException e) {
            return 0;
        }
    }

    /** SIGTERM with --notices signal: forward a notice, keep serving through the grace period, then leave. */
    private static void onSigterm(WorkerProcess worker, Duration grace) {
        Thread t = new Thread(() -> {
            LOG.warn("SIGTERM: forwarding a preemption notice with {} ms grace", grace.toMillis());
            worker.notice("signal", grace, "SIGTERM");
            try {
                Thread.sleep(grace.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            worker.close();
        }, "spotserve-sigterm");
        t.setDaemon(true);
        t.start();
    }

    private static NoticeWatcher watcher(String kind, String url, String azureVm) {
        return switch (kind) {
            case "aws" -> url == null ? new AwsSpotNotices()
                    : new AwsSpotNotices(URI.create(url), Duration.ofSeconds(5), Clock.systemUTC());
            case "gcp" -> url == null ? new GcpPreemptionNotices()
                    : new GcpPreemptionNotices(URI.create(url), GcpPreemptionNotices.SPOT_GRACE, Duration.ofSeconds(1));
            case "azure" -> url == null ? new AzureScheduledEvents(azureVm)
                    : new AzureScheduledEvents(URI.create(url), azureVm, Duration.ofSeconds(1), Clock.systemUTC());
            default -> throw new IllegalArgumentException(kind);
        };
    }

    private static void watch(WorkerProcess worker, NoticeWatcher w) {
        while (!worker.terminated().isDone()) {
            try {
                CloudNotice n = w.await();
                worker.notice(n.source(), n.grace(), n.detail());
                return;
            } catch (InterruptedException e) {
                return;
            } catch (java.io.IOException | RuntimeException e) {
                LOG.warn("{} notice watcher: {}; retrying in 5 s", w.name(), e.getMessage());
                try {
                    Thread.sleep(5000);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /** The installed executor provider named {@code name} ("cpu", "cuda"), which must be usable here. */
    private static ExecutorProvider provider(String name) {
        for (ExecutorProvider p : ExecutorProvider.installed()) {
            if (p.name().equals(name)) {
                if (!p.isUsable()) {
                    throw new IllegalArgumentException("executor '" + name + "' is not usable here: " + p.unusableReason());
                }
                return p;
            }
        }
        throw new IllegalArgumentException("no executor provider named '" + name + "' is installed");
    }

    /** A byte count with an optional k/m/g suffix (powers of 1024). */
    static long bytes(String v) {
        String s = v.trim().toLowerCase(Locale.ROOT);
        long mult = 1;
        if (s.endsWith("k") || s.endsWith("m") || s.endsWith("g")) {
            mult = switch (s.charAt(s.length() - 1)) {
                case 'k' -> 1L << 10;
                case 'm' -> 1L << 20;
                default -> 1L << 30;
            };
            s = s.substring(0, s.length() - 1);
        }
        return Math.multiplyExact(Long.parseLong(s), mult);
    }

    static String usage() {
        return "usage: java -jar spotserve-worker.jar --controller HOST:PORT --devices N --device-memory BYTES[k|m|g]\n"
                + "         [--notices aws|gcp|azure|signal] [--notice-grace SECONDS] [--metadata-url URL] "
                + "[--azure-vm NAME]\n"
                + "         (--token-file F | --tls-cert C --tls-key K --tls-ca A [--token-file F])\n"
                + "         [--listen HOST:PORT (default 127.0.0.1:0)] [--advertise HOST] [--label NAME]\n"
                + "         [--executor cpu|cuda (default: the best usable)] [--threads N (kernel threads per pipeline, "
                + "default: the available processors)] [--weights fp32|fp16|q8_0 (how the devices keep matrix weights; "
                + "q8_0 keeps a Q8_0 model's int8 blocks, default fp32)]\n"
                + "         [--warm-up CALLS (calls to its own server before registering, 0 = off, default "
                + WorkerProcess.DEFAULT_WARM_UP_CALLS + ")] [--warm-up-time SECONDS (default 1.5)]\n"
                + "         [--migration-warm-up SECONDS (the migration path, before registering; 0 = off, default 1)]\n"
                + "         [--bulk-transfer on|off (slices, steps and partials over ticketed sockets, default on)]\n"
                + "         [--staging-memory BYTES[k|m|g] (migration slices staged here at once, default devices x "
                + "device memory)]\n"
                + "         [--staging-timeout SECONDS (a staged slice nobody sends is freed then, default 120)]";
    }
}
