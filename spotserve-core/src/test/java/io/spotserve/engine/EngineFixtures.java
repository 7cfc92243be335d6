package io.spotserve.engine;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.Sampler;
import io.spotserve.exec.SamplingParams;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.BooleanSupplier;
import java.util.function.IntToDoubleFunction;

/** Shared test material: the real stories260K model, and run.c-style solo generation as the oracle. */
final class EngineFixtures {
    static final LlamaCheckpoint CHECKPOINT;
    static final Tokenizer TOKENIZER;
    /** 2 devices of 32 MiB each: roomy for stories260K with B = 4 full-length sequences. */
    static final InstanceType SPOT = new InstanceType("local.2x", 2, 32L << 20, 1.9, InstanceType.Market.SPOT);
    static final InstanceType ON_DEMAND = SPOT.on(InstanceType.Market.ON_DEMAND, 3.9);

    static {
        try {
            CHECKPOINT = LlamaCheckpoint.load(SharedData.stories260K());
            TOKENIZER = Tokenizer.load(SharedData.tok512(), CHECKPOINT.config().vocabSize());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private EngineFixtures() {
    }

    static Executor executor() {
        return new CpuExecutor(ExecutorOptions.defaults().withThreads(2));
    }

    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day", "Tom had a red ball. He", "The sun was"};

    /** Seeded requests: prompts from a small list, lengths 4..maxNew, greedy unless {@code sampled} picks otherwise. */
    static List<GenerationRequest> requests(long seed, int count, int maxNew, boolean withSampled) {
        Random rnd = new Random(seed);
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            GenerationRequest.Builder b = GenerationRequest.builder().prompt(PROMPTS[rnd.nextInt(PROMPTS.length)])
                    .maxNewTokens(4 + rnd.nextInt(maxNew - 3));
            if (withSampled && rnd.nextBoolean()) {
                b.temperature(0.5f + rnd.nextFloat()).topP(rnd.nextBoolean() ? 1f : 0.9f).seed(1 + rnd.nextInt(1000));
            }
            out.add(b.build());
        }
        return out;
    }

    /**
     * The oracle: the request run alone on an unsharded pipeline, one position per forward call, exactly like
     * run.c's loop (prompt tokens forced, then sample; BOS ends the text).
     */
    static synchronized int[] solo(GenerationRequest request) {
        int[] prompt = request.prompt() != null ? TOKENIZER.encode(request.prompt(), true, false) : request.promptTokens();
        Pipeline p = soloPipeline();
        Sampler sampler = new Sampler(request.sampling());
        p.openSequence(7, prompt.length + request.maxNewTokens());
        try {
            List<Integer> out = new ArrayList<>();
            int token = prompt[0];
            for (int pos = 0; ; pos++) {
                float[] logits = p.decode(new long[] {7}, new int[] {token}, new int[] {pos})[0];
                if (pos < prompt.length - 1) {
                    token = prompt[pos + 1];
                    continue;
                }
                int next = sampler.sample(logits);
                if (next == Tokenizer.BOS) {
                    break;
                }
                out.add(next);
                if (out.size() == request.maxNewTokens()) {
                    break;
                }
                token = next;
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        } finally {
            p.closeSequence(7);
        }
    }

    private static Pipeline solo;

    private static Pipeline soloPipeline() {
        if (solo == null) {
            Executor ex = executor();
            Device d = ex.createDevice(new DeviceId("solo", 0), 1L << 30);
            solo = ex.createPipeline(ShardLayout.of(CHECKPOINT.config(), 1, 1), List.of(d), 1);
            solo.loadWeights(CHECKPOINT);
        }
        return solo;
    }

    /**
     * Bytes by which a real migration may exceed the device mapper's byte model: the executor's layer slices carry
     * the two RMSNorm vectors whole (they are replicated on every tensor shard), while the mapper counts a 1/M
     * share per shard. At most one extra copy per layer piece: pipelines × layers × (pieces per layer ≤ M_old · M_new).
     */
    static long replicatedNormSlack(int oldShards, int newShards, int newPipelines) {
        return (long) newPipelines * CHECKPOINT.config().layers() * oldShards * newShards * 2L
                * CHECKPOINT.config().dim() * Float.BYTES;
    }

    static SamplingParams greedy() {
        return SamplingParams.greedy();
    }

    /**
     * Serves {@code requests} on one {@link #SPOT} instance (P1M2, batch 4, a virtual clock at 1 MB/s, so the migration
     * spans virtual time while steps take 1 ms) and acquires instance "b" once the first request has committed two
     * tokens; checks every output against its solo run and that none failed, and returns the reconfiguration that took
     * "b" in. {@code serving} gets the first instance's id before anything runs.
     */
    static Reconfiguration growOntoB(Executor executor, List<GenerationRequest> requests,
                                     java.util.function.Consumer<String> serving) {
        io.spotserve.clock.VirtualClock clock = new io.spotserve.clock.VirtualClock(java.time.Duration.ofMillis(1),
                java.time.Duration.ZERO, 1_000_000);
        io.spotserve.instance.LocalInstanceProvider provider = new io.spotserve.instance.LocalInstanceProvider(clock,
                ON_DEMAND);
        serving.accept(provider.add(SPOT).id());
        List<java.util.concurrent.CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(1, 2).maxBatch(4).build()) {
            submitThen(engine, requests, futures, 2, () -> provider.deliver(new io.spotserve.instance.InstanceEvent
                    .Acquired(new io.spotserve.instance.Instance("b", SPOT), clock.now())));
            for (int i = 0; i < requests.size(); i++) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(solo(requests.get(i)), futures.get(i).join()
                        .tokens(), "request " + i);
            }
            org.junit.jupiter.api.Assertions.assertEquals(0, engine.metrics().failed());
            return engine.metrics().reconfigurations().stream().filter(r -> r.reason().contains("acquired b"))
                    .findFirst().orElseThrow(() -> new AssertionError("no growth: " + engine.metrics()
                            .reconfigurations()));
        }
    }

    /**
     * Submits {@code requests} (the first one last) and runs {@code action} on the engine thread when that last one
     * has committed {@code tokens} tokens; returns once it ran. Every request was admitted before the last one (FIFO),
     * so what runs at that point does not depend on how fast the calling thread is, unlike polling
     * {@code metrics().running()}, which can miss short requests that finish first on a loaded machine.
     * {@code futures} receives the futures in request order.
     */
    static void submitThen(ServingEngine engine, List<GenerationRequest> requests,
                           List<java.util.concurrent.CompletableFuture<Completion>> futures, int tokens,
                           Runnable action) {
        java.util.concurrent.CompletableFuture<Void> ran = new java.util.concurrent.CompletableFuture<>();
        List<java.util.concurrent.CompletableFuture<Completion>> rest = new ArrayList<>();
        for (int i = 1; i < requests.size(); i++) {
            rest.add(engine.submit(requests.get(i)));
        }
        futures.add(engine.submit(requests.get(0), new java.util.concurrent.Flow.Subscriber<Token>() {
            private int seen;

            @Override
            public void onSubscribe(java.util.concurrent.Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(Token t) {
                if (++seen == tokens) {
                    try {
                        action.run();
                        ran.complete(null);
                    } catch (RuntimeException e) {
                        ran.completeExceptionally(e);
                    }
                }
            }

            @Override
            public void onError(Throwable t) {
                ran.completeExceptionally(t);
            }

            @Override
            public void onComplete() {
                ran.completeExceptionally(new AssertionError("request 0 finished before its token " + tokens));
            }
        }));
        futures.addAll(rest);
        ran.orTimeout(60, java.util.concurrent.TimeUnit.SECONDS).join();
    }

    /**
     * A cost model of stories260K on {@link #SPOT} instances in which a whole-model step (prefill or decode, any batch
     * up to 8) at tensor parallelism M costs {@code stepMs.applyAsDouble(M)} ms, for M = 1, 2, 4, ... up to
     * {@code maxTensorParallel}; no embedding or stage-boundary cost.
     */
    static CostModel flatCostModel(String name, int maxTensorParallel, IntToDoubleFunction stepMs) {
        int layers = CHECKPOINT.config().layers();
        SortedMap<Integer, SortedMap<Integer, LatencyProfile.LayerTimes>> tables = new TreeMap<>();
        for (int tp = 1; tp <= maxTensorParallel; tp *= 2) {
            double ms = stepMs.applyAsDouble(tp) / layers;
            SortedMap<Integer, LatencyProfile.LayerTimes> row = new TreeMap<>();
            for (int b : new int[] {1, 2, 4, 8}) {
                row.put(b, new LatencyProfile.LayerTimes(ms, ms));
            }
            tables.put(tp, row);
        }
        LatencyProfile flat = new LatencyProfile(name, layers, layers, 1.0, 0, 0, CHECKPOINT.config().dim(),
                maxTensorParallel, 16, List.of(0.0, 0.0, 0.0, 0.0), tables);
        Hardware local = new Hardware("local.2x", SPOT.gpus(), SPOT.memoryPerGpuBytes(), 10.0, 0.0, 1.9, 3.9);
        return CostModel.of(flat, "stories260K", CHECKPOINT.config(), local);
    }

    /** Waits (real time, at most 60 s) until {@code condition} holds; the failure shows the engine's metrics. */
    static void await(BooleanSupplier condition, ServingEngine engine) {
        long until = System.nanoTime() + 60_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) {
                throw new AssertionError("condition not reached in 60 s: " + engine.metrics());
            }
            Thread.onSpinWait();
        }
    }
}
