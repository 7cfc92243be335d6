package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.eval.Arrivals;
import io.spotserve.bench.eval.Evaluation;
import io.spotserve.bench.eval.RunResult;
import io.spotserve.bench.eval.Scenario;
import io.spotserve.clock.ForwardStep;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.PaperModel;
import io.spotserve.trace.TraceEvent;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The real engine on the evaluation's simulated cloud: exact latencies on a constant fleet, a preemption served
 * without losing a request, determinism on a real trace, and the model / step-price translations — on the paper's
 * measured T4 profiles and real traces.
 */
class EngineRunTest {
    private static final Path SHARED = Evaluation.locateShared();

    private static CostModel cost(PaperModel m) throws IOException {
        return CostModel.of(m, LatencyProfile.read(SHARED.resolve("profiles/T4-4x/" + m.profileName() + ".json")));
    }

    @ParameterizedTest
    @EnumSource(PaperModel.class)
    void theLlamaShapedConfigHoldsThePaperModelsBytes(PaperModel m) {
        LlamaConfig c = EngineRun.config(m.shape());
        long ours = total(ModelContext.of("llama", c));
        long paper = total(ModelContext.of(m.shape()));
        assertTrue(Math.abs(ours - paper) < 0.01 * paper, m + ": " + ours + " vs " + paper + " bytes");
        for (int shards : new int[] {1, 2, 4, 8}) {
            assertEquals(0, c.hiddenDim() % shards, "hidden " + c.hiddenDim() + " splits " + shards + " ways");
        }
        assertEquals(m.shape().layers(), c.layers());
        assertEquals(m.shape().vocab(), c.vocabSize());
    }

    @Test
    void stepsArePricedByTheCostModelWithTheBestMicroBatching() throws IOException {
        CostModel cost = cost(PaperModel.GPT_20B);
        CostModelStepTime price = new CostModelStepTime(cost);
        // 3 decoding sequences are priced as a batch of 4, with the cheapest micro-batching the profile has
        double decode = Double.POSITIVE_INFINITY;
        for (int mb = 1; mb <= 4; mb *= 2) {
            decode = Math.min(decode, cost.decodeStepSeconds(2, 8, 4, mb));
        }
        assertEquals(seconds(decode), price.of(new ForwardStep(2, 8, 0, 0, 3)));
        double prefill = Double.POSITIVE_INFINITY;
        for (int mb = 1; mb <= 2; mb *= 2) {
            prefill = Math.min(prefill, cost.prefillSeconds(2, 8, 2, mb, 512));
        }
        prefill += cost.embedSeconds(2);
        assertEquals(seconds(prefill), price.of(new ForwardStep(2, 8, 2, 1024, 0)));
        // a request joining a decoding batch: the step pays both
        assertEquals(seconds(prefill).plus(seconds(decode)), price.of(new ForwardStep(2, 8, 2, 1024, 3)));
    }

    /** One warm instance, one request: prompt step (first token) + 127 decode steps, exactly; cost = 300 s of spot. */
    @Test
    void aLoneRequestTakesThePrefillAndItsDecodeStepsExactly() throws IOException {
        PaperModel m = PaperModel.OPT_6_7B;
        CostModel cost = cost(m);
        Scenario sc = new Scenario(m, cost, "one", List.of(TraceEvent.add(Duration.ZERO, "node-0")), 300, false,
                new double[] {10}, 0.1, false, 6, Scenario.Params.paper());
        RunResult r = EngineRun.run(sc);
        assertEquals(1, r.completed());
        RunResult.Request q = r.requests().get(0);
        CostModelStepTime price = new CostModelStepTime(cost);
        // Algorithm 1 at 0.1 req/s on one instance: P1M4 (the only shape that fits 4 T4s)
        Duration prefill = price.of(new ForwardStep(1, 4, 1, 512, 0));
        Duration decode = price.of(new ForwardStep(1, 4, 0, 0, 1));
        assertEquals(10 + secondsOf(prefill), q.firstToken(), 1e-6);
        assertEquals(10 + secondsOf(prefill.plus(decode.multipliedBy(127))), q.finish(), 1e-6);
        assertEquals(128, q.outputTokens());
        assertEquals(0, q.restarts());
        assertEquals(300 * 1.9 / 3600, r.usd(), 1e-9);
        assertEquals(300, r.spotInstanceSeconds(), 1e-9);
    }

    /** The instance serving the requests is preempted: the engine migrates them inside the grace period, nothing lost. */
    @Test
    void aPreemptionLosesNoRequestAndNoProgress() throws IOException {
        Scenario sc = preemption(60);
        double[] arrivals = sc.arrivals();
        RunResult r = EngineRun.run(sc);
        assertEquals(arrivals.length, r.completed(), r.requests().toString());
        assertTrue(r.requests().stream().allMatch(q -> q.outputTokens() == 128), r.requests().toString());
        assertTrue(r.reconfigurations().stream().anyMatch(x -> x.reason().contains("notice spot-0")
                && x.t() >= 70 && x.t() < 100), r.reconfigurations().toString());
        assertTrue(r.reconfigurations().stream().mapToLong(RunResult.Reconfiguration::bytesReloaded).sum()
                <= r.reconfigurations().get(0).bytesReloaded(), "only the start reads weights from storage: "
                + r.reconfigurations());
        assertEquals(0, r.requests().stream().mapToInt(RunResult.Request::restarts).sum(), r.requests().toString());
        // billing: node-0 100 s, node-1 until the last request finished (>= the trace end of 400 s)
        assertEquals(100 + r.endSeconds(), r.spotInstanceSeconds(), 1e-6);
    }

    /**
     * The same preemption under the paper's baselines built into the engine: Rerouting recomputes only the requests of
     * the lost instance and keeps the survivor as it is; Reparallelization reloads every weight from storage and
     * recomputes every running request; neither reacts before the instance is gone.
     */
    @Test
    void theBaselinesInTheEngineRecomputeInsteadOfMigrating() throws IOException {
        Scenario sc = preemption(80);
        double[] arrivals = sc.arrivals();
        RunResult ours = EngineRun.run(sc, EngineRun.Variant.SPOTSERVE);
        RunResult rer = EngineRun.run(sc, EngineRun.Variant.REROUTING);
        RunResult rep = EngineRun.run(sc, EngineRun.Variant.REPARALLELIZATION);
        assertEquals("rerouting-engine", rer.system());
        assertEquals("reparallelization-engine", rep.system());
        for (RunResult r : List.of(ours, rer, rep)) {
            assertEquals(arrivals.length, r.completed(), r.system());
            assertTrue(r.requests().stream().allMatch(q -> q.outputTokens() == 128), r.system());
        }
        int oursRestarts = ours.requests().stream().mapToInt(RunResult.Request::restarts).sum();
        int rerRestarts = rer.requests().stream().mapToInt(RunResult.Request::restarts).sum();
        int repRestarts = rep.requests().stream().mapToInt(RunResult.Request::restarts).sum();
        assertEquals(0, oursRestarts);
        assertTrue(rerRestarts > 0 && rerRestarts < repRestarts, rerRestarts + " vs " + repRestarts);
        // the baselines re-plan at the removal (100 s, once the step in flight has ended), ours inside the grace period
        RunResult.Reconfiguration rerAt = after(rer, 1);
        RunResult.Reconfiguration repAt = after(rep, 1);
        assertTrue(rerAt.t() >= 100 && rerAt.t() < 101, rer.reconfigurations().toString());
        assertTrue(repAt.t() >= 100 && repAt.t() < 101, rep.reconfigurations().toString());
        assertTrue(after(ours, 1).t() < 100, ours.reconfigurations().toString());
        // Reparallelization reads the whole surviving replica from storage again; Rerouting keeps it
        assertTrue(repAt.bytesReloaded() > 0, repAt.toString());
        assertEquals(0, rerAt.bytesReloaded(), rerAt.toString());
        assertEquals(0, rerAt.bytesMoved(), rerAt.toString());
        // (no latency claim here: with the doomed pipeline idle at the notice, ours moves off at once and serves the
        // 30 s grace period on one pipeline, while Rerouting uses both until the removal — see notes/evaluation.md)
    }

    /**
     * OPT-6.7B on two warm instances; node-0 leaves at 100 s (noticed at 70 s); 24 requests every 0.5 s from
     * {@code firstArrival}.
     */
    private static Scenario preemption(double firstArrival) throws IOException {
        PaperModel m = PaperModel.OPT_6_7B;
        List<TraceEvent> events = List.of(TraceEvent.add(Duration.ZERO, "node-0", "node-1"),
                TraceEvent.remove(Duration.ofSeconds(100), "node-0"));
        double[] arrivals = new double[24];
        for (int i = 0; i < arrivals.length; i++) {
            arrivals[i] = firstArrival + i * 0.5;
        }
        return new Scenario(m, cost(m), "preempt", events, 400, false, arrivals, 0.4, false, 6,
                Scenario.Params.paper());
    }

    private static RunResult.Reconfiguration after(RunResult r, int index) {
        assertTrue(r.reconfigurations().size() > index, r.reconfigurations().toString());
        return r.reconfigurations().get(index);
    }

    @Test
    void aRealCellIsDeterministic() throws IOException {
        Scenario sc = gpt20bArrivingBefore("B_S", 300);
        double[] early = sc.arrivals();
        RunResult a = EngineRun.run(sc);
        RunResult b = EngineRun.run(sc);
        assertEquals(early.length, a.completed());
        assertEquals(a.requests(), b.requests());
        assertEquals(a.reconfigurations(), b.reconfigurations());
        assertEquals(a.usd(), b.usd());
        // B_S takes two instances away at 120 s (noticed at 90 s): the engine re-plans before they go
        assertTrue(a.reconfigurations().stream().anyMatch(x -> x.reason().contains("notice") && x.t() < 120),
                a.reconfigurations().toString());
    }

    /**
     * Issue 16: GPT-20B B_S opens with a burst (31 requests in the first 10 s). 30 s in, the arrival rate has moved
     * and Algorithm 1 prefers D3P3M4 to the running D2P2M8; the engine used to re-plan then — its pause estimate was
     * still 0 (the warm start pauses nothing) — and every queued request paid the 4.9 s the change took. The gate now
     * prices a change of shape at least at the weight move and makes it only if it lowers the request-seconds of the
     * queue: no workload-triggered change before the preemption notice at 90 s.
     */
    @Test
    void aBurstIsNotStoppedForAChangeOfShape() throws IOException {
        Scenario sc = gpt20bArrivingBefore("B_S", 60);
        double[] early = sc.arrivals();
        RunResult r = EngineRun.run(sc);
        assertEquals(early.length, r.completed());
        assertTrue(early.length > 30, "the opening burst: " + early.length);
        for (RunResult.Reconfiguration x : r.reconfigurations()) {
            if (x.t() > 0 && x.t() < 90) {
                throw new AssertionError("reconfigured during the burst: " + x);
            }
        }
    }

    /**
     * "+O": every engine system runs on the same fleet — the spot trace plus the cell's OnDemandSchedule — so each is
     * billed the schedule's on-demand instance-seconds and holds the same instances at every second (GPT-20B B_S+O,
     * the arrivals of the first 150 s, all served before the trace ends).
     */
    @Test
    void everyEngineSystemGetsTheSameFleetInAMixingCell() throws IOException {
        Scenario sc = gpt20bArrivingBefore("B_S+O", 150);
        double[] early = sc.arrivals();
        double scheduled = io.spotserve.bench.eval.OnDemandSchedule.billedSeconds(
                io.spotserve.bench.eval.OnDemandSchedule.of(sc), sc.endSeconds());
        assertEquals(2370, scheduled, 1e-9, "2 on-demand instances 90-750 s and 90-990 s, 1 from 210 s");
        List<RunResult.TimelineRow> first = null;
        for (EngineRun.Variant v : EngineRun.Variant.values()) {
            RunResult r = EngineRun.run(sc, v);
            assertEquals(early.length, r.completed(), v.system());
            assertEquals(sc.endSeconds(), r.endSeconds(), 1e-9, v.system());
            assertEquals(scheduled, r.onDemandInstanceSeconds(), 1e-6, v.system());
            List<RunResult.TimelineRow> fleet = r.timeline().stream()
                    .map(t -> new RunResult.TimelineRow(t.t(), t.spot(), t.onDemand(), "", 0, 0)).toList();
            if (first == null) {
                first = fleet;
            } else {
                assertEquals(first, fleet, v.system() + " holds another fleet");
            }
        }
    }

    /** GPT-20B on {@code trace} (seed 1, Gamma CV-6) with only the requests that arrive before {@code seconds}. */
    private static Scenario gpt20bArrivingBefore(String trace, double seconds) throws IOException {
        Scenario full = Evaluation.scenario(SHARED, PaperModel.GPT_20B, trace, 1, Arrivals.Mode.PAPER);
        double[] early = Arrays.stream(full.arrivals()).filter(a -> a < seconds).toArray();
        return new Scenario(full.model(), full.costModel(), full.traceName(), full.spotEvents(), full.endSeconds(),
                full.onDemandMixing(), early, full.nominalRate(), full.fluctuating(), full.optimizerCv(),
                full.params());
    }

    private static long total(ModelContext c) {
        return c.layers() * c.layerWeightBytes() + c.embeddingBytes() + c.classifierBytes();
    }

    private static Duration seconds(double s) {
        return Duration.ofNanos(Math.round(s * 1e9));
    }

    private static double secondsOf(Duration d) {
        return d.toNanos() / 1e9;
    }
}
