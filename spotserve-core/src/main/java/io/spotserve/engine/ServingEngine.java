package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.clock.VirtualClock;
import io.spotserve.clock.SimulatedClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightSource;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.plan.ReconfigurationPlanner;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/**
 * SpotServe's serving engine (DESIGN.md §1–§2): accepts generation requests, runs them with iteration-level
 * batching on pipelines built from the instances an {@link InstanceProvider} reports, and keeps serving while
 * instances come and go. Every membership change re-parallelizes through the planning core: the device mapper
 * keeps as much context as possible on its devices, the rest (weights and KV caches) is migrated between device
 * arenas in the migration planner's order, and interrupted requests resume at their committed step with their
 * migrated KV cache — or, when it is lost (no grace), recompute from their committed tokens. Either way a
 * request's output is exactly what an uninterrupted run would have produced.
 *
 * <p>One engine thread owns all mutable state; {@link #submit} and the provider's events only enqueue
 * commands. All timing reads the {@link EngineClock} (a {@link VirtualClock} makes a run deterministic and
 * instant; a {@link SimulatedClock} prices each pipeline's steps and each reconfiguration's copies, so the same engine
 * replays a paper-scale workload, with {@link #submit(GenerationRequest, Duration) dated arrivals}). The engine
 * installs no signal handlers and never calls {@code System.exit}.
 *
 * <pre>{@code
 * try (ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider).build()) {
 *     Completion c = engine.submit(GenerationRequest.of("Once upon a time", 64)).join();
 * }
 * }</pre>
 */
public final class ServingEngine implements AutoCloseable {
    private final EngineLoop loop;

    private ServingEngine(EngineLoop loop) {
        this.loop = loop;
    }

    /** A builder; {@link Builder#model} and {@link Builder#instances} are required. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Submits a request.
     *
     * @return a future completed exactly once: with the {@link Completion}, or exceptionally with a
     *         {@link RequestFailedException} (deadline, close). Cancelling the future cancels the request.
     * @throws IllegalArgumentException  if the prompt has tokens outside the vocabulary, or prompt length plus
     *                                   maxNewTokens exceeds the model's seq_len (message names the values)
     * @throws RequestRejectedException  if the admission queue is full or the engine is closing
     */
    public CompletableFuture<Completion> submit(GenerationRequest request) {
        return loop.submit(request, null, null);
    }

    /**
     * Submits a request that arrives at engine-clock time {@code arrival}: the engine holds it until then (it counts
     * against the admission queue from now). This replays a recorded or generated workload on a
     * {@link SimulatedClock} deterministically — hand over every arrival up front while the clock is
     * {@link SimulatedClock#hold() held}. An arrival already past is taken as now.
     *
     * @throws IllegalArgumentException see {@link #submit(GenerationRequest)}
     * @throws RequestRejectedException see {@link #submit(GenerationRequest)}
     */
    public CompletableFuture<Completion> submit(GenerationRequest request, Duration arrival) {
        return loop.submit(request, null, Objects.requireNonNull(arrival, "arrival"));
    }

    /**
     * Submits a request whose tokens are streamed to {@code subscriber} as they are committed.
     * {@code onSubscribe} is called before this method returns; demand ({@code request(n)}) is honoured;
     * {@code onComplete} follows the last token, {@code onError} a failure. Cancelling the subscription
     * cancels the request. Signals may arrive on the engine thread: subscribers must not block.
     *
     * @throws IllegalArgumentException see {@link #submit(GenerationRequest)}
     * @throws RequestRejectedException see {@link #submit(GenerationRequest)}
     */
    public CompletableFuture<Completion> submit(GenerationRequest request, Flow.Subscriber<? super Token> subscriber) {
        return loop.submit(request, new TokenPublisher(Objects.requireNonNull(subscriber, "subscriber")), null);
    }

    /** A snapshot of the engine's metrics. */
    public EngineMetrics metrics() {
        return loop.metrics();
    }

    /** The pipelines in use right now, e.g. {@code [P1M2@[local-0], P1M2@[local-1]]}. */
    public String configuration() {
        return loop.configurationDescription();
    }

    /** The tokenizer prompts are encoded with, or null for a model given without one ({@link Builder#model(WeightSource)}). */
    public Tokenizer tokenizer() {
        return loop.tokenizer;
    }

    /** The model's context length (seq_len): prompt tokens plus {@code maxNewTokens} may not exceed it. */
    public int contextLength() {
        return loop.contextLength();
    }

    /** The clock the engine runs on. */
    public EngineClock clock() {
        return loop.clock;
    }

    /**
     * Stops accepting requests, lets queued and running ones finish within the drain timeout (on the engine
     * clock; the rest fail with {@link RequestFailedException.Reason#ENGINE_CLOSED}), closes every pipeline,
     * releases every instance to the provider and, if the engine created it, closes the executor. Blocks until
     * done; idempotent.
     */
    @Override
    public void close() {
        loop.close();
    }

    /** Configures a {@link ServingEngine}. */
    public static final class Builder {
        WeightSource weights;
        Tokenizer tokenizer;
        InstanceProvider provider;
        Executor executor;
        EngineClock clock;
        int stages = 1;
        int shards = 1;
        int maxBatch = 8;
        int maxBatchTokens = 64;
        int admissionGroup = 1;
        ReconfigurationMode reconfigurationMode = ReconfigurationMode.MIGRATE;
        int queueCapacity = 1024;
        int targetInstances;
        boolean fallbackLayouts = true;
        Duration drainTimeout = Duration.ofSeconds(30);
        CostModel costModel;
        ParallelConfigOptimizer optimizer;
        ReconfigurationPlanner reconfigurationPlanner = ReconfigurationPlanner.kuhnMunkres();
        ParallelConfigOptimizer.Builder optimizerSettings;
        Duration replanInterval = Duration.ofSeconds(30);
        long hostKvBudget = 256L << 20;
        double minimumArrivalRate;
        Duration startupBeforeLoad;
        Duration startupAfterLoad;

        private Builder() {
        }

        /** The model: real weights and the tokenizer that goes with them (vocabulary sizes must agree). */
        public Builder model(ModelWeights checkpoint, Tokenizer tokenizer) {
            this.weights = WeightSource.of(Objects.requireNonNull(checkpoint, "checkpoint"));
            this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
            return this;
        }

        /**
         * A model given only by where its weights come from, without a tokenizer: requests must then carry
         * {@link GenerationRequest#promptTokens() prompt tokens} and completions have no text. This is how the engine
         * runs a paper-size model on a timing-only executor for simulation (the source then yields that executor's
         * weight payloads); with {@code WeightSource.of(checkpoint)} it serves real weights token by token.
         */
        public Builder model(WeightSource weights) {
            this.weights = Objects.requireNonNull(weights, "weights");
            this.tokenizer = null;
            return this;
        }

        /** Where instances come from; the engine calls {@code start} on it once. */
        public Builder instances(InstanceProvider provider) {
            this.provider = Objects.requireNonNull(provider, "provider");
            return this;
        }

        /**
         * The executor devices and pipelines are created with; the caller keeps ownership. Default: a new one
         * from {@link ExecutorProvider#best()}, closed with the engine.
         */
        public Builder executor(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor");
            return this;
        }

        /** The engine clock; default {@link SystemEngineClock}. */
        public Builder clock(EngineClock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * Shape of each pipeline: P stages × M tensor shards (default 1 × 1). D, the number of pipelines,
         * follows from the devices available.
         */
        public Builder parallelism(int stages, int shards) {
            if (stages < 1 || shards < 1) {
                throw new IllegalArgumentException("parallelism needs stages >= 1 and shards >= 1, was P=" + stages
                        + ", M=" + shards);
            }
            this.stages = stages;
            this.shards = shards;
            return this;
        }

        /** B: most requests one pipeline runs at once (continuous batching); default 8. */
        public Builder maxBatch(int b) {
            if (b < 1) {
                throw new IllegalArgumentException("maxBatch must be >= 1, was " + b);
            }
            this.maxBatch = b;
            return this;
        }

        /** Most token positions (prefill chunks plus decodes) in one forward step; default 64. */
        public Builder maxBatchTokens(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("maxBatchTokens must be >= 1, was " + n);
            }
            this.maxBatchTokens = n;
            return this;
        }

        /**
         * The fewest queued requests admitted together into a pipeline that is already decoding; an idle pipeline
         * takes whatever waits. Default 1: a request joins as soon as a slot is free (lowest latency at light load).
         * On GPUs a joining prompt's prefill stalls the whole decoding batch for its duration, so under bursts
         * joining in groups (e.g. B/2) pays one stall for many requests; B is SpotServe's request-level batching
         * (a batch is only refilled when it is empty).
         */
        public Builder admissionGroup(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("admissionGroup must be >= 1, was " + n);
            }
            this.admissionGroup = n;
            return this;
        }

        /**
         * How context crosses a reconfiguration: {@link ReconfigurationMode#MIGRATE} (default, SpotServe) or one of
         * the paper's baselines, for comparisons on the same engine.
         */
        public Builder reconfigurationMode(ReconfigurationMode mode) {
            this.reconfigurationMode = Objects.requireNonNull(mode, "mode");
            return this;
        }

        /**
         * For the baselines ({@link ReconfigurationMode#REROUTE}, {@link ReconfigurationMode#RESTART}) only: a pipeline
         * a reconfiguration builds from storage starts its own engine instead of pausing the whole engine — it takes
         * requests {@code beforeLoad} + the slowest of its instances' weight reads (the clock's
         * {@link io.spotserve.clock.EngineClock#loadTime}) + {@code afterLoad} after the reconfiguration, while the
         * pipelines left as they are keep serving, new requests included. Not set (default): the reads pause the
         * engine like any copy and a built pipeline serves at once.
         *
         * @throws IllegalArgumentException if either time is negative
         */
        public Builder pipelineStartup(Duration beforeLoad, Duration afterLoad) {
            Objects.requireNonNull(beforeLoad, "beforeLoad");
            Objects.requireNonNull(afterLoad, "afterLoad");
            if (beforeLoad.isNegative() || afterLoad.isNegative()) {
                throw new IllegalArgumentException("pipeline start-up times must be >= 0, were " + beforeLoad + " and "
                        + afterLoad);
            }
            this.startupBeforeLoad = beforeLoad;
            this.startupAfterLoad = afterLoad;
            return this;
        }

        /** Most accepted requests waiting for a pipeline; beyond it submit rejects. Default 1024. */
        public Builder queueCapacity(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("queueCapacity must be >= 1, was " + n);
            }
            this.queueCapacity = n;
            return this;
        }

        /**
         * Instances the engine keeps: it asks the provider for more when fewer are usable (instances under
         * preemption notice do not count) and releases surplus on-demand instances. Default 0: never asks. With
         * {@link #planning}, the most instances Algorithm 1's Δ may bring the fleet to.
         */
        public Builder targetInstances(int n) {
            if (n < 0) {
                throw new IllegalArgumentException("targetInstances must be >= 0, was " + n);
            }
            this.targetInstances = n;
            return this;
        }

        /**
         * Lets SpotServe's planning core drive the engine, priced by {@code costModel} (a profile of the executor that
         * serves, e.g. from {@link io.spotserve.exec.ExecutorProfiler}): Algorithm 1 (§3.2, paper policy, device-memory
         * rule) chooses C = (D, P, M, B) for the usable instances and the arrival rate measured over the last
         * re-planning interval (requests still queued count as arrivals), and its Δ (with a spare pool of 2 instances, as in the paper) requests or releases
         * instances (on-demand first, then idle spot ones) up to {@link #targetInstances}; the interruption arranger
         * (§4.1) decides how many more decode steps doomed pipelines run after a preemption notice. Without it, the
         * engine serves the fixed {@link #parallelism}.
         */
        public Builder planning(CostModel costModel) {
            this.costModel = Objects.requireNonNull(costModel, "costModel");
            return this;
        }

        /** {@link #planning(CostModel)} with an optimizer of your own (policy, tolerance, spare pool, token counts). */
        public Builder planning(CostModel costModel, ParallelConfigOptimizer optimizer) {
            this.costModel = Objects.requireNonNull(costModel, "costModel");
            this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
            this.optimizerSettings = null;
            return this;
        }

        /**
         * {@link #planning(CostModel)} with Algorithm 1 configured by {@code settings} (policy, memory rule, arrival CV,
         * token counts, spare pool): the engine derives two optimizers from a copy — one that may plan up to
         * {@link #targetInstances} more instances (its Δ drives the instance manager) and one limited to the instances
         * at hand without spares (the configuration to run now), as with the default settings.
         */
        public Builder planning(CostModel costModel, ParallelConfigOptimizer.Builder settings) {
            this.costModel = Objects.requireNonNull(costModel, "costModel");
            this.optimizerSettings = Objects.requireNonNull(settings, "settings").copy();
            this.optimizer = null;
            return this;
        }

        /**
         * Host memory for KV caches parked during a grace period when no surviving pipeline can take them (every
         * spot instance leaving at once, or no room in the new configuration): such a request resumes at its
         * committed step when a pipeline is free again instead of recomputing. Default 256 MiB; 0 disables.
         */
        public Builder hostKvBudget(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("hostKvBudget must be >= 0 bytes, was " + bytes);
            }
            this.hostKvBudget = bytes;
            return this;
        }

        /**
         * With {@link #planning}: the least arrival rate (req/s) Algorithm 1 plans for — the service's expected load or
         * SLO throughput, so a quiet spell (or the start, before anything arrived) does not shrink the configuration
         * below what the next burst needs. Default 0: the measured rate only.
         */
        public Builder minimumArrivalRate(double requestsPerSecond) {
            if (!(requestsPerSecond >= 0) || Double.isInfinite(requestsPerSecond)) {
                throw new IllegalArgumentException("minimumArrivalRate must be a finite number >= 0 req/s, was "
                        + requestsPerSecond);
            }
            this.minimumArrivalRate = requestsPerSecond;
            return this;
        }

        /** How often the planner re-checks the arrival rate (and the window it is measured over); default 30 s. */
        public Builder replanInterval(Duration interval) {
            Objects.requireNonNull(interval, "replanInterval");
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("replanInterval must be > 0, was " + interval);
            }
            this.replanInterval = interval;
            return this;
        }

        /**
         * Whether devices too few for a P × M pipeline may still serve with a smaller layout (fewer stages
         * and shards; default true). Without it, leftover devices stay idle. With an executor whose tensor groups
         * stay inside one instance ({@link Executor#tensorGroupsSpanInstances} false: worker processes by default), a
         * layout whose M does not divide an instance's devices falls back the same way.
         */
        public Builder fallbackLayouts(boolean allow) {
            this.fallbackLayouts = allow;
            return this;
        }

        /**
         * The device mapper and migration planner every reconfiguration uses; default
         * {@link ReconfigurationPlanner#kuhnMunkres()} (SpotServe's Kuhn-Munkres mapping and Algorithm 2 order).
         */
        public Builder reconfigurationPlanner(ReconfigurationPlanner planner) {
            this.reconfigurationPlanner = Objects.requireNonNull(planner, "reconfigurationPlanner");
            return this;
        }

        /** How long {@link ServingEngine#close} waits for in-flight work, on the engine clock; default 30 s. */
        public Builder drainTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "drainTimeout");
            if (timeout.isNegative()) {
                throw new IllegalArgumentException("drainTimeout must be >= 0, was " + timeout);
            }
            this.drainTimeout = timeout;
            return this;
        }

        /**
         * Builds and starts the engine (its thread, then the provider).
         *
         * @throws IllegalStateException    if the model or the provider is missing
         * @throws IllegalArgumentException if tokenizer and checkpoint disagree, or P × M does not fit the model
         */
        public ServingEngine build() {
            if (weights == null) {
                throw new IllegalStateException("model(checkpoint, tokenizer) or model(weights) is required");
            }
            if (provider == null) {
                throw new IllegalStateException("instances(provider) is required");
            }
            if (startupBeforeLoad != null && reconfigurationMode == ReconfigurationMode.MIGRATE) {
                throw new IllegalStateException("pipelineStartup models the baselines' engine restarts; it needs "
                        + "reconfigurationMode REROUTE or RESTART, was MIGRATE");
            }
            LlamaConfig config = weights.config();
            if (tokenizer != null && tokenizer.vocabSize() != config.vocabSize()) {
                throw new IllegalArgumentException("tokenizer vocabulary " + tokenizer.vocabSize()
                        + " differs from the checkpoint's vocab_size " + config.vocabSize());
            }
            List<ShardLayout> layouts = new ArrayList<>();
            layouts.add(layout(config, stages, shards));
            if (fallbackLayouts) {
                for (int p = stages; p >= 1; p--) {
                    for (int m = shards; m >= 1; m--) {
                        if (p * m < stages * shards && fits(config, p, m)) {
                            ShardLayout l = layout(config, p, m);
                            if (!layouts.contains(l)) {
                                layouts.add(l);
                            }
                        }
                    }
                }
                layouts.sort((a, b) -> Integer.compare(b.stages() * b.shards(), a.stages() * a.shards()));
            }
            boolean ownsExecutor = executor == null;
            Executor ex = ownsExecutor ? ExecutorProvider.best().create() : executor;
            EngineLoop loop = null;
            try {
                loop = new EngineLoop(this, ex, ownsExecutor, clock != null ? clock : new SystemEngineClock(), layouts);
                loop.start();
            } catch (RuntimeException | Error e) {
                // a failed build leaves nothing running: no engine thread, and the executor it created is closed
                if (loop != null) {
                    loop.abandon();
                } else if (ownsExecutor) {
                    ex.close();
                }
                throw e;
            }
            return new ServingEngine(loop);
        }

        private static boolean fits(LlamaConfig c, int p, int m) {
            return p <= c.layers() && c.heads() % m == 0 && c.kvHeads() % m == 0 && c.hiddenDim() % m == 0
                    && c.vocabSize() >= m;
        }

        /** {@link ShardLayout#split}: even split of the layers, the later stages one layer longer when P does not divide them. */
        static ShardLayout layout(LlamaConfig c, int p, int m) {
            return ShardLayout.split(c, p, m);
        }
    }
}
