package io.spotserve.examples;

import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.RequestRejectedException;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorProfiler;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.TraceInstanceProvider;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceFormatException;
import io.spotserve.trace.TraceReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code replay}: the paper's end-to-end experiment (§6) in miniature. The bundled stories260K model is served
 * on instances that come and go as a real spot availability trace says (default: the paper's trace B_S,
 * {@code traces/trace_0506_real.txt}; {@code --trace A_S} plays {@code trace_0304_real.txt}; both bundled from
 * {@code shared/traces/spotserve/trace_seg}), on the real clock, compressed in time: {@code --speed X} runs X trace
 * seconds per wall second (default 22, so the 1020 s of B_S take about 46 s and the 1320 s of A_S a minute).
 * Requests are greedy, {@code --tokens} new tokens each (default 128, the paper's S_out),
 * prompts from a small fixed list (seeded). Each trace node is a 2-device spot instance (1.9 USD/h; on-demand price
 * 3.9 USD/h, the paper's g4dn prices); a removal comes with a preemption notice {@code --grace} trace seconds ahead.
 *
 * <pre>
 * java -jar spotserve-examples.jar replay [--trace B_S|A_S|PATH] [--speed 22] [--clients 24 | --rate R] [--requests N]
 *     [--tokens 128] [--grace 0.3] [--seed 1] [--fixed | --processes | --workers N]
 *     [--tensor-groups-span-workers]
 * </pre>
 *
 * <p>The defaults are chosen so that a preemption finds requests to interrupt, as in the paper. (0) Trace: B_S
 * removes three of the ten instances it starts with (two at 120 s, one at 240 s), and the configuration serves on
 * those, so every removal catches running requests. A_S removes three instances too, but two of them joined late
 * (node-8 at 360 s, node-10 at 900 s) into a fleet whose configuration needed no more: they are the spare pool (2
 * instances, as in the paper) and host nothing, so only node-3's removal at 1200 s can interrupt a request; 3 of 10
 * default A_S runs on 2026-12-08 interrupted none ({@code benchmarks/notes/replay.md}). Only the trace is
 * compressed: the model's requests take their real time. (1) Load: the paper runs its fleet near its serving capacity
 * (arrival rates just under the required throughput), so its GPUs are decoding when a notice comes. Here the capacity
 * is the CPU's, which depends on the machine and on what else runs on it, so a fixed open-loop rate is either idle (a
 * notice finds nothing running; the earlier default, 0.25 requests per trace second, did) or overloaded. The default
 * load is therefore closed-loop: {@code --clients} 24 clients, each submitting its next request when its last one
 * completes, until the trace ends; 24 are as many as the pipelines any configuration of the 12 instances (24 devices)
 * runs, so the pipelines are busy, and the wall time stays the trace's at any CPU speed. {@code --rate R} gives the
 * open-loop Poisson arrivals (R per trace second) instead. (2) Grace: AWS gives 30 s, about as long as one request of
 * the paper (128 tokens of GPT-20B on T4 GPUs, tens of seconds), less the seconds its migration takes. Compressed like
 * the trace, 30 trace seconds are 1.36 s of wall time, several stories260K requests' worth: every doomed batch finished
 * before its deadline and nothing was interrupted. {@code --grace} scales the notice to the requests instead: its
 * default, 0.3 trace seconds (14 ms at 22x), is shorter than one request's decoding and than a reconfiguration of the
 * fleet (until session 12 it was 1 trace second, 45 ms, then shorter than a request's ~64 ms as the profile priced
 * them; once the CLI decoded 2-3x faster, without its class-data-sharing archive, 2 of 4 default runs interrupted
 * nothing at the trace's removals, the doomed batches finishing inside 45 ms, and 4 of 4 runs at 0.3 interrupted 2 to
 * 4 requests), as the paper's 30 s, less a migration of seconds, are shorter than its longest
 * requests. With 2 trace seconds (91 ms) the arranger, which prices a step at the profile's ~0.5 ms, still let a busy
 * batch finish first in one default run out of three. A notice then leaves less time than the migration takes (the
 * arranger's estimate, twice the smoothed pause of the last reconfigurations, was 70-800 ms in our runs), so the
 * interruption arranger reroutes the doomed pipelines' requests at once and they recompute ({@code
 * interrupted_requests}); requests that a reconfiguration moves (an instance joining, the planner changing the
 * configuration, surplus instances released) resume at their token with their migrated KV cache ({@code
 * resumed_with_cache}); {@code interrupted_by_preemption} counts, of both kinds, the requests of reconfigurations that
 * a notice or a lost instance triggered (alone or together with other changes; a release of our own is not one). {@code
 * wrong_outputs} counts completions that differ from the prompt's greedy solo run (a check that interrupted requests
 * resume exactly). With {@code --processes} there is no planning core: the doomed worker's requests migrate off it at
 * once, and when its SIGKILL at the deadline comes before the migration has finished they recompute.
 *
 * <p>By default the engine is driven by SpotServe's planning core: the bundled model is profiled first (about a
 * second), Algorithm 1 picks (D, P, M, B) for the usable instances and the measured arrival rate and may add
 * on-demand instances (3.9 USD/h) up to 12 — the paper's "+O" setting; the device mapper, migration planner and
 * interruption arranger handle every change. {@code --fixed} serves one P1M2 pipeline per instance instead.
 * Output: a live progress line on stderr, a summary table on stdout and, as the last stdout line, one JSON
 * object. Costs and instance-hours are in trace time (engine-clock hours × speed); latencies are wall time.
 * {@code ondemand_only_cost_usd} prices the same instance-hours at the on-demand price (the paper's baseline).
 * Engine logs are at WARN unless {@code -Dorg.slf4j.simpleLogger.defaultLogLevel} says otherwise.
 *
 * <p>{@code --workers N} serves on real processes instead of the trace: N worker JVMs on this machine (one 32 MiB
 * device each, loopback, a fresh random token), one P1M1 pipeline per worker (no planner: no instance can be added).
 * Once half the requests are submitted and every pipeline runs requests, one worker is SIGKILLed, like a spot VM that
 * disappears without notice; its requests recompute on the others ({@code interrupted_requests}), none is lost. The
 * JSON then also carries {@code workers} and {@code killed_worker}. {@code --tensor-groups-span-workers} (with
 * {@code --workers} or {@code --processes}) serves P1M2 pipelines instead, each tensor group split over two one-device
 * workers ({@code RemoteInstanceProvider.Builder.tensorGroupsSpanWorkers}; a lone worker left over serves P1M1), and
 * the JSON adds {@code network_reduce_bytes}, the partial sums the groups' members sent each other.
 */
@Command(name = "replay", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "Serves the bundled model on instances that come and go as a spot availability trace says, "
        + "compressed in time; prints a summary table and, last, one JSON line.")
final class ReplayCommand implements Callable<Integer> {
    /** The paper's two real trace segments, bundled: {@code --trace A_S} and {@code --trace B_S} (the default). */
    static final java.util.Map<String, String> BUNDLED_TRACES = java.util.Map.of("A_S", "trace_0304_real.txt",
            "B_S", "trace_0506_real.txt");
    /** Default {@code --trace} (the class comment says why B_S). */
    static final String DEFAULT_TRACE = "B_S";
    static final double SPOT_PRICE = 1.9;
    static final double ON_DEMAND_PRICE = 3.9;
    /** Default {@code --grace}, trace seconds (the class comment says why it is not the cloud's 30 s). */
    static final double DEFAULT_GRACE = 0.3;
    /**
     * Default {@code --grace} with {@code --processes}: 1 trace second (45 ms), as before session 12; there the notice
     * travels as a SIGTERM to the worker JVM and on to the controller before anything can move.
     */
    static final double DEFAULT_PROCESS_GRACE = 1;
    /** Longest {@code --grace}: AWS's two-minute spot interruption notice. */
    static final double MAX_GRACE = 120;
    /** Default {@code --clients}. */
    static final int DEFAULT_CLIENTS = 24;
    /** Default {@code --tokens}: the paper's S_out. */
    static final int DEFAULT_TOKENS = 128;
    /**
     * Largest --speed: a 30 s notice then lasts 3 ms of wall time, about one decode step of the bundled model;
     * beyond it preemptions outrun the engine and costs (engine hours × speed) mean nothing.
     */
    static final double MAX_SPEED = 10_000;
    /** Longest wall time a replay may be asked to take (trace or arrivals, whichever ends later). */
    static final Duration MAX_WALL = Duration.ofHours(24);
    private static final String NAME = "replay";
    private static final String LOG_LEVEL = "org.slf4j.simpleLogger.defaultLogLevel";
    private static final String ENGINE_LOG_LEVEL = "org.slf4j.simpleLogger.log.io.spotserve";
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day", "Tom had a red ball. He", "The sun was"};

    /** A quick profile of the executor that will serve, as the planner's cost model (SpotServe §3.2). */
    private static CostModel costModel(ModelWeights checkpoint, String name, InstanceType spot) {
        System.err.println("replay: profiling " + name + " for the planner ...");
        LatencyProfile profile;
        try (Executor executor = ExecutorProvider.best().create()) {
            profile = ExecutorProfiler.builder(executor).promptTokens(16).maxBatch(4).warmup(1).repeats(2)
                    .decodeSteps(4).build().profile(name, checkpoint);
        }
        Hardware local = new Hardware(spot.name(), spot.gpus(), spot.memoryPerGpuBytes(), 10.0, 0.0, SPOT_PRICE,
                ON_DEMAND_PRICE);
        return CostModel.of(profile, name, checkpoint.config(), local);
    }

    @Mixin
    ModelOptions modelOptions = new ModelOptions();
    @Option(names = "--trace", paramLabel = "B_S|A_S|PATH",
            description = "availability trace: the paper's segment B_S (the default) or A_S, both bundled, or a file")
    String traceOption;
    @Option(names = "--speed", paramLabel = "X", description = "trace seconds per wall second (default 22, at most 10000)")
    double speed = 22;
    @Option(names = "--requests", paramLabel = "N", description = "requests to submit (default: as many as arrive "
            + "until the trace ends; 300 with --workers)")
    Integer requests;
    @Option(names = "--clients", paramLabel = "N", description = "closed-loop load (the default, N = 24): N clients, "
            + "each submits its next request when its last one completes, until the trace ends")
    Integer clients;
    @Option(names = "--rate", paramLabel = "R", description = "open-loop load instead: Poisson arrivals per trace "
            + "second (the default with --workers: 0.25)")
    Double rate;
    @Option(names = "--tokens", paramLabel = "N", description = "output tokens per request (default 128, the paper's "
            + "S_out; at most the model's context less the prompt: 500 for stories260K)")
    int tokens = DEFAULT_TOKENS;
    @Option(names = "--grace", paramLabel = "SECONDS", description = "preemption notice of a removal, trace seconds, "
            + "in (0, 120] (default 0.3, 1 with --processes: less than one request, as the paper's 30 s less its "
            + "migration are; see the docs)")
    Double grace;
    @Option(names = "--seed", paramLabel = "S", description = "seed of arrivals and prompts (default 1)")
    int seed = 1;
    @Option(names = "--fixed", description = "one P1M2 pipeline per instance instead of SpotServe's planner")
    boolean fixed;
    @Option(names = "--workers", paramLabel = "N", description = "serve on N local worker JVMs (2..8) instead of the "
            + "trace, and SIGKILL one of them mid-replay")
    int workers;
    @Option(names = "--processes", description = "play the trace on real worker JVMs: each trace node is a worker "
            + "process; a removal SIGTERMs it one grace period ahead (its preemption notice) and SIGKILLs it at the "
            + "removal time, an addition starts a new one")
    boolean processes;
    @Option(names = "--tensor-groups-span-workers", description = "with --workers or --processes: P1M2 pipelines "
            + "whose tensor group spans two one-device worker JVMs (their partial sums go worker to worker at every "
            + "reduce point) instead of one P1M1 pipeline per worker")
    boolean spanWorkers;

    private final PrintStream out;
    /** Requests one pipeline serves at once (the engine's maxBatch). */
    private static final int MAX_BATCH = 4;
    /** Engine-clock time at which the trace started (after the initial workers serve, with --processes). */
    private Duration traceStart = Duration.ZERO;
    /** Most requests one replay submits. */
    private static final int MAX_REQUESTS = 100_000;
    /** Requests to submit at most (the arrivals may stop earlier, at the trace's end). */
    private int total;
    /** Requests that streamed their first token ({@code --workers}: the kill waits until every running one has). */
    private final java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger();
    /** Tokens generated when the kill condition first held (-1: it does not hold). */
    private long killBaseline = -1;

    ReplayCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() throws Exception {
        boolean plan = !fixed;
        // keep the progress line readable: engine INFO logs only when asked for with -D...defaultLogLevel=info
        // (slf4j-simple reads a per-logger level when the logger is created, i.e. when the engine classes load)
        if (System.getProperty(LOG_LEVEL) == null && System.getProperty(ENGINE_LOG_LEVEL) == null) {
            System.setProperty(ENGINE_LOG_LEVEL, "warn");
        }
        checkOptions();
        double graceSeconds = grace != null ? grace : processes ? DEFAULT_PROCESS_GRACE : DEFAULT_GRACE;
        Duration notice = Duration.ofNanos(Math.round(graceSeconds * 1e9));
        if (processes) {
            plan = false; // one P1M1 pipeline per worker: no launcher for the planner's on-demand instances
        }
        if (workers != 0) {
            total = requests != null ? requests : 300;
            if (total <= (pipelines() - 1) * MAX_BATCH) {
                throw new UsageException(NAME + ": --workers " + workers + " needs --requests above " + (pipelines() - 1)
                        * MAX_BATCH + " (" + MAX_BATCH + " per pipeline), so every worker serves requests when one is "
                        + "killed; got " + total);
            }
            plan = false; // no launcher: the planner could not add instances
        }
        // the load: N closed-loop clients (default), or Poisson arrivals at --rate (always with --workers)
        boolean closedLoop = rate == null && workers == 0;
        int clientCount = clients != null ? clients : DEFAULT_CLIENTS;
        double arrivalRate = rate != null ? rate : 0.25;
        AvailabilityTrace trace = workers > 0 ? null : trace(traceOption);
        double traceSeconds = trace == null ? 0 : trace.endTime().toNanos() / 1e9;
        // by default requests arrive until the trace ends, so its last removals find work to interrupt
        boolean untilTraceEnd = trace != null && requests == null;
        if (trace != null) {
            if (untilTraceEnd && !closedLoop && !(arrivalRate * traceSeconds >= 1)) {
                throw new UsageException(String.format(java.util.Locale.ROOT, "%s: --rate %s over the trace's %.0f s "
                        + "would submit about %.3g requests, less than one; raise --rate or give --requests", NAME,
                        arrivalRate, traceSeconds, arrivalRate * traceSeconds));
            }
            if (untilTraceEnd && !closedLoop && arrivalRate * traceSeconds > MAX_REQUESTS) {
                throw new UsageException(String.format(java.util.Locale.ROOT, "%s: --rate %s over the trace's %.0f s "
                        + "would submit about %.0f requests, more than %d; lower --rate or give --requests", NAME,
                        arrivalRate, traceSeconds, arrivalRate * traceSeconds, MAX_REQUESTS));
            }
            total = untilTraceEnd ? MAX_REQUESTS : requests;
        }
        // expected last arrival, trace seconds (closed loop: at most the trace)
        double arrivalSeconds = untilTraceEnd || closedLoop ? traceSeconds : total / arrivalRate;
        double expectedWall = Math.max(traceSeconds, arrivalSeconds) / speed;
        if (expectedWall > MAX_WALL.toSeconds()) {
            throw new UsageException(String.format(java.util.Locale.ROOT, "%s: %s would take about %.3g hours of wall "
                    + "time (%s at --speed %s), more than %d; raise --speed%s", NAME, arrivalSeconds > traceSeconds
                    ? "--requests " + total + " at --rate " + arrivalRate : "the trace", expectedWall / 3600,
                    arrivalSeconds > traceSeconds ? String.format(java.util.Locale.ROOT, "%.3g trace seconds of "
                    + "arrivals", arrivalSeconds) : String.format(java.util.Locale.ROOT, "%.0f trace seconds",
                    traceSeconds), speed, MAX_WALL.toHours(), arrivalSeconds > traceSeconds ? " or --rate" : ""));
        }

        ModelFiles files = modelOptions.load(NAME);
        ModelWeights checkpoint = files.weights();
        Tokenizer tokenizer = files.tokenizer();
        int longestPrompt = 0;
        for (String p : PROMPTS) {
            longestPrompt = Math.max(longestPrompt, tokenizer.encode(p, true, false).length);
        }
        int context = checkpoint.config().seqLen();
        if (longestPrompt + tokens > context) {
            throw new UsageException(NAME + ": --tokens " + tokens + " does not fit " + files.name() + "'s context of "
                    + context + " positions with the longest prompt (" + longestPrompt + " tokens); at most "
                    + (context - longestPrompt));
        }
        double scale = 1 / speed;
        LocalWorkerFleet fleet = null;
        TraceWorkerDriver driver = null;
        java.util.concurrent.atomic.AtomicReference<SystemEngineClock> clockOnceServing =
                new java.util.concurrent.atomic.AtomicReference<>();
        if (processes) {
            // the trace's clock starts once its first nodes serve: worker start-up is not trace time
            fleet = LocalWorkerFleet.open(() -> clockOnceServing.get() == null ? Duration.ZERO
                    : clockOnceServing.get().now(), spanWorkers);
            System.err.println("replay: starting the trace's " + TraceWorkerDriver.initialNodes(trace).size()
                    + " initial nodes as worker JVMs ...");
            try {
                driver = TraceWorkerDriver.startInitial(fleet, trace, scaled(notice, scale), 32L << 20,
                        Duration.ofSeconds(120));
            } catch (IOException | InterruptedException | RuntimeException e) {
                fleet.close();
                throw e;
            }
        }
        InstanceType spot = new InstanceType("local.2x", 2, 32L << 20, SPOT_PRICE, InstanceType.Market.SPOT);
        // profile before the trace's clock starts: the first removals must not pass while the planner is not ready
        CostModel costModel = plan ? costModel(checkpoint, files.name(), spot) : null;
        SystemEngineClock clock = new SystemEngineClock();
        clockOnceServing.set(clock);
        long networkSliceBytes = 0;
        long networkActivationBytes = 0;
        long networkReduceBytes = 0;
        InstanceProvider provider;
        if (fleet != null) {
            provider = fleet.controller(); // the trace plays once the engine serves on the initial workers
        } else if (workers > 0) {
            System.err.println("replay: starting " + workers + " worker JVMs ...");
            fleet = LocalWorkerFleet.start(workers, 32L << 20, clock::now, Duration.ofSeconds(120), spanWorkers);
            provider = fleet.controller();
        } else {
            provider = new TraceInstanceProvider(trace, spot, scaled(notice, scale), scale, clock,
                    plan ? spot.on(InstanceType.Market.ON_DEMAND, ON_DEMAND_PRICE) : null);
        }
        Duration end = trace == null ? Duration.ZERO : scaled(trace.endTime(), scale);
        String killed = null;

        Random rnd = new Random(seed);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        List<String> prompts = new ArrayList<>(); // of each submitted request, to check its output
        int rejected = 0;
        long wallStart = System.nanoTime();
        EngineMetrics m;
        ServingEngine.Builder builder = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider)
                .clock(clock).parallelism(1, 2).maxBatch(MAX_BATCH);
        if (plan) {
            builder.planning(costModel).targetInstances(12).replanInterval(scaled(Duration.ofSeconds(60), scale));
        }
        if (fleet != null) {
            builder.executor(fleet.controller().executor()).parallelism(1, spanWorkers ? 2 : 1);
        }
        // the engine closes first (it releases the workers), then the fleet kills what still runs
        try (LocalWorkerFleet workerFleet = fleet; TraceWorkerDriver trafficDriver = driver;
             ServingEngine engine = builder.build()) {
            Duration origin = Duration.ZERO; // engine-clock time at trace time 0
            if (trafficDriver != null) {
                // worker JVMs take seconds to receive their weights: the trace (and the load) start once they serve
                origin = awaitFirstConfiguration(engine, clock, Duration.ofSeconds(120));
                trafficDriver.play(clock::now, scale, origin);
            }
            Duration start = origin;
            traceStart = origin;
            ReplayProgress progress = new ReplayProgress(() -> clock.now().minus(start), engine, futures, trace, speed);
            double arrival = 0; // trace seconds
            java.util.concurrent.Semaphore idle = new java.util.concurrent.Semaphore(clientCount); // closed loop
            for (int i = 0; i < total; i++) {
                if (closedLoop) {
                    if (!progress.awaitClient(idle, end)) {
                        break; // the trace ended
                    }
                    String prompt = PROMPTS[rnd.nextInt(PROMPTS.length)];
                    try {
                        CompletableFuture<Completion> f = engine.submit(GenerationRequest.of(prompt, tokens));
                        f.whenComplete((c, e) -> idle.release());
                        futures.add(f);
                        prompts.add(prompt);
                    } catch (RequestRejectedException e) {
                        rejected++;
                        idle.release();
                        Thread.sleep(10); // the queue is full: the client retries a little later
                    }
                    continue;
                }
                arrival += -Math.log(1 - rnd.nextDouble()) / arrivalRate;
                if (untilTraceEnd && arrival > traceSeconds) {
                    break;
                }
                String prompt = PROMPTS[rnd.nextInt(PROMPTS.length)];
                GenerationRequest r = GenerationRequest.of(prompt, tokens);
                progress.awaitTime(scaled(Duration.ofNanos(Math.round(arrival * 1e9)), scale));
                try {
                    futures.add(workers > 0 ? engine.submit(r, new FirstToken(started)) : engine.submit(r));
                    prompts.add(prompt);
                } catch (RequestRejectedException e) {
                    rejected++;
                }
                killed = killed != null ? killed : maybeKill(workerFleet, engine, i + 1);
            }
            // let the requests finish and the trace play out, bounded in case something hangs
            Duration last = progress.now().plus(Duration.ofSeconds(120));
            Duration until = end.compareTo(last) > 0 ? end : last;
            while (progress.now().compareTo(until) < 0
                    && (progress.now().compareTo(end) < 0 || !futures.stream().allMatch(CompletableFuture::isDone))) {
                progress.show();
                killed = killed != null ? killed : maybeKill(workerFleet, engine, total);
                Thread.sleep(100);
            }
            progress.show();
            System.err.println();
            m = engine.metrics();
            if (trafficDriver != null && trafficDriver.failure() != null) {
                System.err.println("replay: a worker of the trace could not be started: "
                        + trafficDriver.failure().getMessage());
            }
            if (workerFleet != null) {
                networkSliceBytes = workerFleet.controller().executor().sliceBytes();
                networkActivationBytes = workerFleet.controller().executor().activationBytes();
                networkReduceBytes = workerFleet.controller().executor().reduceBytes();
            }
        }
        double wallSeconds = (System.nanoTime() - wallStart) / 1e9;
        ReplaySummary summary = new ReplaySummary(new ReplaySummary.Load(trace != null ? trace.source()
                : "workers:" + workers, speed, closedLoop, clientCount, arrivalRate, tokens,
                workers > 0 ? 0 : notice.toNanos() / 1e9), wallSeconds, traceStart, m, futures, prompts, rejected,
                SoloOracle.of(checkpoint, tokenizer, List.of(PROMPTS), tokens));
        if (workers > 0) {
            summary.put("workers", workers);
            summary.put("killed_worker", killed);
        }
        if (fleet != null) {
            if (processes) {
                summary.put("worker_processes", fleet.launched());
            }
            summary.put("network_slice_bytes", networkSliceBytes); // weights and KV caches between processes
            summary.put("network_activation_bytes", networkActivationBytes); // stage to stage, worker to worker
            if (spanWorkers) {
                summary.put("network_reduce_bytes", networkReduceBytes); // partial sums within split tensor groups
            }
        }
        summary.print(out, wallSeconds);
        return 0;
    }

    /** The checks of the options alone (before anything is loaded), each with its own message. */
    private void checkOptions() throws UsageException {
        if (!(speed > 0 && speed <= MAX_SPEED)) {
            throw new UsageException(NAME + ": --speed must be in (0, " + (long) MAX_SPEED + "] trace seconds per "
                    + "wall second, was " + speed);
        }
        if (requests != null) {
            Ranges.within(NAME, "--requests", requests, 1, MAX_REQUESTS);
        }
        Ranges.within(NAME, "--tokens", tokens, 1, 4096);
        if (grace != null && !(grace > 0 && grace <= MAX_GRACE)) {
            throw new UsageException(NAME + ": --grace must be in (0, " + (long) MAX_GRACE + "] trace seconds, was "
                    + grace);
        }
        if (rate != null && clients != null) {
            throw new UsageException(NAME + ": --rate (open-loop Poisson arrivals) and --clients (closed loop) are two "
                    + "loads; give one of the two");
        }
        if (rate != null && (!(rate > 0) || Double.isInfinite(rate))) {
            throw new UsageException(NAME + ": --rate must be a positive finite number, was " + rate);
        }
        if (clients != null) {
            Ranges.within(NAME, "--clients", clients, 1, 1000);
        }
        Ranges.atLeast(NAME, "--seed", seed, 0);
        if (processes && workers != 0) {
            throw new UsageException(NAME + ": --processes plays the trace on worker JVMs and --workers replaces the "
                    + "trace with N of them; give one of the two");
        }
        if (spanWorkers && workers == 0 && !processes) {
            throw new UsageException(NAME + ": --tensor-groups-span-workers splits tensor groups over worker JVMs; give "
                    + "it with --workers N or --processes");
        }
        if (workers != 0 && grace != null) {
            throw new UsageException(NAME + ": --workers kills a worker without notice; --grace is the notice of a "
                    + "trace's removals, give it without --workers");
        }
        if (workers != 0) {
            Ranges.within(NAME, "--workers", workers, 2, 8);
            if (traceOption != null) {
                throw new UsageException(NAME + ": --workers replaces the trace (the fleet is the worker JVMs, one of "
                        + "which is killed mid-replay); give --trace or --workers, not both");
            }
            if (clients != null) {
                throw new UsageException(NAME + ": --workers submits open-loop (--rate) so it can kill a worker "
                        + "half-way through the requests; --clients is for a trace");
            }
        }
    }

    private static AvailabilityTrace trace(String option) throws Exception {
        String bundled = BUNDLED_TRACES.get(option == null ? DEFAULT_TRACE : option);
        if (bundled != null) {
            try (Reader in = new InputStreamReader(BundledModel.open("/traces/" + bundled), StandardCharsets.UTF_8)) {
                return TraceReader.parseSegments(in, bundled);
            }
        }
        Path file;
        try {
            file = Path.of(option);
        } catch (java.nio.file.InvalidPathException e) {
            throw new UsageException(NAME + ": --trace " + option + " is neither B_S, A_S nor a file path ("
                    + e.getReason() + ")");
        }
        if (!Files.isRegularFile(file)) {
            throw new UsageException(NAME + ": --trace " + file + " is not a readable file (nor B_S or A_S, the "
                    + "bundled traces)");
        }
        try {
            return TraceReader.read(file);
        } catch (CharacterCodingException e) {
            throw new UsageException(NAME + ": --trace " + file + " is not a text file (not UTF-8); expected an "
                    + "availability trace (segment lines or CSV events)");
        } catch (TraceFormatException | IllegalArgumentException e) {
            throw new UsageException(NAME + ": --trace " + e.getMessage());
        } catch (IOException e) {
            throw new UsageException(NAME + ": --trace " + file + " cannot be read: " + e.getMessage());
        }
    }

    /**
     * {@code replay --workers}: SIGKILLs one worker once half the requests are submitted, more requests run than all
     * pipelines but one can hold (so every pipeline, the victim's included, runs some: {@link #pipelines()} of them,
     * at most {@link #MAX_BATCH} requests each) and every running request has its first token and about four more steps of every pipeline were generated
     * since, so the victim's requests hold computed KV caches; returns its instance id, or null when not yet.
     */
    private String maybeKill(LocalWorkerFleet fleet, ServingEngine engine, int submitted)
            throws IOException, InterruptedException {
        if (fleet == null || workers == 0) {
            return null; // --processes: the trace decides who goes, with a notice
        }
        EngineMetrics m = engine.metrics();
        int running = m.running();
        if (submitted < (total + 1) / 2 || running <= (pipelines() - 1) * MAX_BATCH) {
            killBaseline = -1;
            return null;
        }
        if (killBaseline < 0) {
            killBaseline = m.generatedTokens();
        }
        // every running request has its first token, i.e. a computed cache: a pipeline whose first step is slow (a cold
        // worker JVM) may otherwise hold only admitted requests when others are steps ahead (a fresh-clone run killed
        // such a worker and nothing was interrupted)
        long unfinishedStarted = started.get() - m.completed() - m.failed() - m.cancelled();
        if (m.generatedTokens() < killBaseline + 4L * running || unfinishedStarted < running) {
            return null;
        }
        String id = fleet.killOne(Duration.ofSeconds(30));
        System.err.println();
        System.err.println("replay: killed worker " + id + " (SIGKILL) with " + running + " requests running");
        return id;
    }

    /**
     * Pipelines that {@code --workers} serves on: one per worker, or with {@code --tensor-groups-span-workers} one P1M2
     * per two workers (and a P1M1 on a lone one left over).
     */
    private int pipelines() {
        return spanWorkers ? (workers + 1) / 2 : workers;
    }

    private static Duration scaled(Duration traceTime, double scale) {
        return Duration.ofNanos(Math.round(traceTime.toNanos() * scale));
    }


    /**
     * Waits (at most {@code timeout}) until the engine has deployed its first configuration and returns the engine
     * clock then; fails when it does not come.
     */
    private static Duration awaitFirstConfiguration(ServingEngine engine, SystemEngineClock clock, Duration timeout)
            throws InterruptedException, IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (engine.metrics().reconfigurations().isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new IOException("the engine did not deploy the model on the initial workers within "
                        + timeout.toSeconds() + " s");
            }
            Thread.sleep(20);
        }
        System.err.println("replay: serving on the initial workers; the trace starts");
        return clock.now();
    }





    /** Counts a request once its first token streams. */
    private static final class FirstToken implements java.util.concurrent.Flow.Subscriber<io.spotserve.engine.Token> {
        private final java.util.concurrent.atomic.AtomicInteger started;
        private boolean seen;

        FirstToken(java.util.concurrent.atomic.AtomicInteger started) {
            this.started = started;
        }

        @Override
        public void onSubscribe(java.util.concurrent.Flow.Subscription s) {
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(io.spotserve.engine.Token token) {
            if (!seen) {
                seen = true;
                started.incrementAndGet();
            }
        }

        @Override
        public void onError(Throwable t) {
        }

        @Override
        public void onComplete() {
        }
    }
}
