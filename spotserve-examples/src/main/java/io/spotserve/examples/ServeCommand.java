package io.spotserve.examples;

import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Token;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code serve-demo}: serves a few greedy requests with the bundled stories260K model on virtual spot instances
 * (real clock, CPU executor) and, with {@code --preempt-grace-ms G}, preempts the first instance as soon as the
 * first token is streamed. The printed texts are the same with or without the preemption: requests resume on
 * the surviving instances (KV cache moved during the grace period, or recomputed from committed tokens when
 * G is 0).
 *
 * <pre>
 * java -jar spotserve-examples.jar serve-demo [--instances 2] [--gpus 2] [--requests 4] [--tokens 40]
 *     [--preempt-grace-ms G]
 * </pre>
 * Output: one line per request ({@code request i restarts=R: TEXT}), then the reconfigurations and a metrics line.
 */
@Command(name = "serve-demo", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        sortOptions = false, description = "Serves a few greedy requests with the bundled model on local spot "
        + "instances; --preempt-grace-ms preempts one mid-stream. Prints one line per request, the "
        + "reconfigurations and a metrics line.")
final class ServeCommand implements Callable<Integer> {
    private static final String NAME = "serve-demo";
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben", "One day"};

    @Mixin
    LocalInstances local = new LocalInstances();
    @Mixin
    ModelOptions modelOptions = new ModelOptions();
    @Option(names = "--requests", paramLabel = "N", description = "requests to serve (default 4, at most 10000)")
    int requests = 4;
    @Option(names = "--tokens", paramLabel = "N", description = "tokens per request (default 40)")
    int tokens = 40;
    @Option(names = "--preempt-grace-ms", paramLabel = "G",
            description = "preempt the first instance with this grace period when the first token streams")
    Integer preemptGraceMs;

    private final PrintStream out;

    ServeCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() throws Exception {
        Ranges.within(NAME, "--requests", requests, 1, 10_000);
        Ranges.atLeast(NAME, "--tokens", tokens, 1);
        int grace = preemptGraceMs == null ? -1 : Ranges.atLeast(NAME, "--preempt-grace-ms", preemptGraceMs, 0);
        if (grace >= 0 && local.instances < 2) {
            throw new UsageException("serve-demo: --preempt-grace-ms needs --instances >= 2 (someone must survive)");
        }
        ModelFiles files = modelOptions.load(NAME);
        ModelWeights checkpoint = files.weights();
        Tokenizer tokenizer = files.tokenizer();
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstances.Launched launched = local.launch(NAME, checkpoint.config(), 2, clock);
        LocalInstanceProvider provider = launched.provider();
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        AtomicBoolean preempted = new AtomicBoolean(grace < 0);
        try (ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider)
                .clock(clock).maxBatch(2).build()) {
            for (int i = 0; i < requests; i++) {
                GenerationRequest r = GenerationRequest.of(PROMPTS[i % PROMPTS.length], tokens);
                futures.add(engine.submit(r, new Flow.Subscriber<Token>() {
                    @Override
                    public void onSubscribe(Flow.Subscription s) {
                        s.request(Long.MAX_VALUE);
                    }

                    @Override
                    public void onNext(Token t) {
                        if (preempted.compareAndSet(false, true)) {
                            provider.preempt(launched.instances().get(0).id(), Duration.ofMillis(grace));
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                    }

                    @Override
                    public void onComplete() {
                    }
                }));
            }
            for (int i = 0; i < futures.size(); i++) {
                Completion c = futures.get(i).join();
                out.println("request " + i + " restarts=" + c.restarts() + ": " + c.text().replace('\n', ' '));
            }
            EngineMetrics m = engine.metrics();
            for (Reconfiguration r : m.reconfigurations()) {
                out.println("reconfiguration " + r.from() + " -> " + r.to() + " (" + r.reason() + ") loaded="
                        + r.bytesLoaded() + "B migrated=" + r.bytesMigrated() + "B kept=" + r.bytesKept() + "B");
            }
            out.printf("completed=%d tokens=%d restarts=%d migrations=%d migrated_bytes=%d p50_ms=%d p99_ms=%d "
                            + "ttft_p50_ms=%d tokens_per_s=%.1f%n", m.completed(), m.generatedTokens(), m.restarts(),
                    m.migrations(), m.migratedBytes(), m.latency().p50().toMillis(), m.latency().p99().toMillis(),
                    m.timeToFirstToken().p50().toMillis(), m.tokensPerSecond());
        }
        return 0;
    }
}
