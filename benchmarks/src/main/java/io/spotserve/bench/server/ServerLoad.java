package io.spotserve.bench.server;

import com.sun.management.OperatingSystemMXBean;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Token;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.server.SpotServeServer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load test of the OpenAI-compatible server: N concurrent streaming clients on the bundled stories260K model, and
 * the same workload submitted to the engine directly in the same run (same engine, same greedy requests, so the
 * same tokens). Reports tokens/s, time to first token P50/P99 each way, and the server's overhead per token: the
 * wall time and process CPU time per generated token, server minus direct. Rounds alternate direct and server;
 * the medians are reported.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.server.ServerLoad [--clients 64] [--requests 2]
 *     [--tokens 128] [--rounds 3] [--instances 2] [--gpus 2] [--max-batch 32]
 * </pre>
 * Models are read from {@code ../shared/models} (or {@code -Dspotserve.shared.dir}).
 */
public final class ServerLoad {
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben", "One day",
        "Tom had a red ball. He", "The sun was"};

    /** One pass of the workload: per-request TTFT, tokens, wall and CPU time. */
    record Pass(long[] ttftNanos, long tokens, long wallNanos, long cpuNanos) {
        double tokensPerSecond() {
            return tokens / (wallNanos / 1e9);
        }

        double ttftMs(int percentile) {
            long[] s = ttftNanos.clone();
            Arrays.sort(s);
            int idx = Math.max(0, (int) Math.ceil(percentile / 100.0 * s.length) - 1);
            return s[idx] / 1e6;
        }
    }

    private ServerLoad() {
    }

    public static void main(String[] args) throws Exception {
        int clients = 64;
        int requests = 2;
        int tokens = 128;
        int rounds = 3;
        int instances = 2;
        int gpus = 2;
        int maxBatch = 32;
        for (int i = 0; i < args.length; i += 2) {
            int v = Integer.parseInt(args[i + 1]);
            switch (args[i]) {
                case "--clients" -> clients = v;
                case "--requests" -> requests = v;
                case "--tokens" -> tokens = v;
                case "--rounds" -> rounds = v;
                case "--instances" -> instances = v;
                case "--gpus" -> gpus = v;
                case "--max-batch" -> maxBatch = v;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
        Path model = shared.resolve("models/stories260K.bin");
        if (!Files.isRegularFile(model)) {
            throw new IllegalArgumentException(model + " not found; run from the repository root or pass "
                    + "-Dspotserve.shared.dir");
        }
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(model);
        Tokenizer tokenizer = Tokenizer.load(shared.resolve("models/tok512.bin"), checkpoint.config().vocabSize());
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        for (int i = 0; i < instances; i++) {
            provider.add(new InstanceType("local." + gpus + "x", gpus, 256L << 20, 1.9, InstanceType.Market.SPOT));
        }
        double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        try (ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider)
                .clock(clock).maxBatch(maxBatch).queueCapacity(clients * requests * 2).build();
             SpotServeServer server = SpotServeServer.builder().engine(engine).port(0).threads(clients + 8)
                     .build().start()) {
            HttpClient http = HttpClient.newBuilder().executor(Executors.newFixedThreadPool(8)).build();
            // warm-up: the JIT, the pipelines, the connections
            direct(engine, clients, 1, 16);
            served(http, server, clients, 1, 16);
            List<Pass> direct = new ArrayList<>();
            List<Pass> served = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                direct.add(direct(engine, clients, requests, tokens));
                served.add(served(http, server, clients, requests, tokens));
            }
            Pass d = median(direct);
            Pass s = median(served);
            if (d.tokens() != s.tokens()) {
                throw new IllegalStateException("the two passes generated different token counts: " + d.tokens()
                        + " vs " + s.tokens());
            }
            double wallOverheadUs = (s.wallNanos() - d.wallNanos()) / 1e3 / s.tokens();
            double cpuOverheadUs = (s.cpuNanos() - d.cpuNanos()) / 1e3 / s.tokens();
            System.out.printf(Locale.ROOT, "clients=%d requests/client=%d tokens/request=%d rounds=%d (medians), "
                            + "engine %s, load average at start %.2f, %d CPUs%n", clients, requests, tokens, rounds,
                    engine.configuration(), load, Runtime.getRuntime().availableProcessors());
            System.out.println("| path | tokens | tokens/s | TTFT P50 ms | TTFT P99 ms | wall s | process CPU s |");
            System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            row("engine directly", d);
            row("HTTP server (SSE)", s);
            System.out.printf(Locale.ROOT, "server overhead per token: %.1f us wall, %.1f us CPU%n", wallOverheadUs,
                    cpuOverheadUs);
            http.executor().ifPresent(e -> ((ExecutorService) e).shutdownNow());
        }
    }

    private static void row(String name, Pass p) {
        System.out.printf(Locale.ROOT, "| %s | %d | %.0f | %.1f | %.1f | %.2f | %.2f |%n", name, p.tokens(),
                p.tokensPerSecond(), p.ttftMs(50), p.ttftMs(99), p.wallNanos() / 1e9, p.cpuNanos() / 1e9);
    }

    private static Pass median(List<Pass> passes) {
        List<Pass> sorted = new ArrayList<>(passes);
        sorted.sort((a, b) -> Long.compare(a.wallNanos(), b.wallNanos()));
        return sorted.get(sorted.size() / 2);
    }

    private static long cpu() {
        return ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** One request of one client: records its time to first token in {@code ttft[index]} and counts its tokens. */
    @FunctionalInterface
    interface Request {
        void run(int index, long[] ttft, AtomicLong generated) throws Exception;
    }

    /** {@code clients} threads, each running its {@code requests} requests one after another. */
    static Pass pass(int clients, int requests, Request request) throws Exception {
        long[] ttft = new long[clients * requests];
        AtomicLong generated = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long cpu0 = cpu();
        long t0 = System.nanoTime();
        List<CompletableFuture<Void>> all = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int client = c;
            all.add(CompletableFuture.runAsync(() -> {
                for (int r = 0; r < requests; r++) {
                    try {
                        request.run(client * requests + r, ttft, generated);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }
            }, pool));
        }
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(30, TimeUnit.MINUTES);
        long wall = System.nanoTime() - t0;
        long cpu = cpu() - cpu0;
        pool.shutdown();
        return new Pass(ttft, generated.get(), wall, cpu);
    }

    /** Each client submits its requests one after another, streaming, straight to the engine. */
    static Pass direct(ServingEngine engine, int clients, int requests, int tokens) throws Exception {
        return pass(clients, requests, (index, ttft, generated) -> {
            CountDownLatch done = new CountDownLatch(1);
            long start = System.nanoTime();
            engine.submit(GenerationRequest.of(PROMPTS[index % PROMPTS.length], tokens), new Flow.Subscriber<Token>() {
                @Override
                public void onSubscribe(Flow.Subscription s) {
                    s.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(Token t) {
                    if (t.index() == 0) {
                        ttft[index] = System.nanoTime() - start;
                    }
                    generated.incrementAndGet();
                }

                @Override
                public void onError(Throwable t) {
                    done.countDown();
                }

                @Override
                public void onComplete() {
                    done.countDown();
                }
            });
            done.await();
        });
    }

    /** Each client sends its requests one after another as streaming completions over HTTP, reading every event. */
    static Pass served(HttpClient http, SpotServeServer server, int clients, int requests, int tokens) throws Exception {
        URI uri = URI.create(server.baseUri() + "/completions");
        return pass(clients, requests, (index, ttft, generated) -> {
            String body = "{\"model\":\"spotserve\",\"prompt\":\"" + PROMPTS[index % PROMPTS.length]
                    + "\",\"max_tokens\":" + tokens + ",\"temperature\":0,\"stream\":true,"
                    + "\"stream_options\":{\"include_usage\":true}}";
            long start = System.nanoTime();
            HttpResponse<InputStream> resp = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(10))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
            if (resp.statusCode() != 200) {
                throw new IllegalStateException("HTTP " + resp.statusCode() + ": "
                        + new String(resp.body().readAllBytes(), StandardCharsets.UTF_8));
            }
            try (BufferedReader in = new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8))) {
                boolean first = true;
                for (String line; (line = in.readLine()) != null; ) {
                    if (first && line.startsWith("data: {") && line.contains("\"text\":\"")
                            && !line.contains("\"text\":\"\"")) {
                        ttft[index] = System.nanoTime() - start;
                        first = false;
                    }
                    int at = line.indexOf("\"completion_tokens\":");
                    if (at >= 0) {
                        generated.addAndGet(Long.parseLong(line.substring(at + 20).split("[,}]")[0].trim()));
                    }
                }
            }
        });
    }
}
