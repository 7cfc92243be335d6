package io.spotserve.examples;

import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.engine.SystemEngineClock;
import io.spotserve.engine.Token;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;

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
final class ServeCommand implements Main.Command {
    private static final List<String> OPTIONS = List.of("instances", "gpus", "requests", "tokens", "preempt-grace-ms");
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben", "One day"};

    @Override
    public int run(String[] args, PrintStream out) throws Exception {
        Map<String, String> opts = parse(args);
        int instances = integer(opts, "instances", 2, 1);
        int gpus = integer(opts, "gpus", 2, 1);
        int requests = integer(opts, "requests", 4, 1);
        int tokens = integer(opts, "tokens", 40, 1);
        int grace = opts.containsKey("preempt-grace-ms") ? integer(opts, "preempt-grace-ms", 0, 0) : -1;
        if (grace >= 0 && instances < 2) {
            throw new UsageException("serve-demo: --preempt-grace-ms needs --instances >= 2 (someone must survive)");
        }
        BundledModel.Extracted files = BundledModel.extracted();
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(files.checkpoint());
        Tokenizer tokenizer = Tokenizer.load(files.tokenizer(), checkpoint.config().vocabSize());
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        InstanceType type = new InstanceType("local." + gpus + "x", gpus, 64L << 20, 1.9, InstanceType.Market.SPOT);
        List<Instance> launched = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            launched.add(provider.add(type));
        }
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
                            provider.preempt(launched.get(0).id(), Duration.ofMillis(grace));
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

    private static Map<String, String> parse(String[] args) throws UsageException {
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) {
                throw new UsageException("serve-demo: expected --option value pairs, got '" + a + "'; options are --"
                        + String.join(" --", OPTIONS));
            }
            String key = a.substring(2);
            if (!OPTIONS.contains(key)) {
                throw new UsageException("serve-demo: unknown option --" + key + "; options are --"
                        + String.join(" --", OPTIONS));
            }
            opts.put(key, args[++i]);
        }
        return opts;
    }

    private static int integer(Map<String, String> opts, String key, int dflt, int min) throws UsageException {
        String v = opts.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            int n = Integer.parseInt(v);
            if (n < min) {
                throw new UsageException("serve-demo: --" + key + " must be >= " + min + ", was " + n);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException("serve-demo: --" + key + " must be an integer, was '" + v + "'");
        }
    }
}
