package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One serving pipeline of the current configuration, the devices it occupies and the requests it runs. A
 * pipeline that lost a position (its instance terminated) is <em>broken</em>: it no longer computes, but its
 * surviving positions keep their weights so the next reconfiguration can reuse them (SpotServe §3.3).
 */
final class PipelineSlot {
    private static final Logger LOG = LoggerFactory.getLogger(PipelineSlot.class);

    final int id;
    final Pipeline pipeline;
    final List<Device> devices;
    final Set<String> instances = new LinkedHashSet<>();
    final List<LiveRequest> active = new ArrayList<>();
    /** Positions (stage · M + shard) whose device is gone. */
    final Set<Integer> lost = new HashSet<>();
    /** When its last forward step ends on the engine clock (a simulated clock prices steps; otherwise now). */
    java.time.Duration busyUntil = java.time.Duration.ZERO;
    /**
     * When it takes its first requests: a baseline's pipeline built from storage with a start-up time
     * ({@code ServingEngine.Builder#pipelineStartup}) is ready only after its engine started and its weights loaded.
     */
    java.time.Duration readyAt = java.time.Duration.ZERO;
    /** The forward step running on its dispatcher now, or null; its requests and sequences are not touched meanwhile. */
    StepInFlight inFlight;
    private Scratch scratch;
    /** The thread that runs this pipeline's forward steps, so pipelines compute side by side; created on first use. */
    private ExecutorService dispatcher;

    PipelineSlot(int id, Pipeline pipeline, List<Device> devices) {
        this.id = id;
        this.pipeline = pipeline;
        this.devices = List.copyOf(devices);
        for (Device d : devices) {
            instances.add(d.id().instance());
        }
    }

    /** The single thread this pipeline's forward steps run on (one step at a time, in dispatch order). */
    ExecutorService dispatcher() {
        if (dispatcher == null) {
            dispatcher = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "spotserve-pipeline-" + id);
                t.setDaemon(true);
                return t;
            });
        }
        return dispatcher;
    }

    /**
     * Closes the pipeline (freeing its device memory) and stops its dispatcher thread. Never throws: a pipeline whose
     * worker died cannot answer, and its memory went with the process.
     */
    void close() {
        if (dispatcher != null) {
            dispatcher.shutdown();
            dispatcher = null;
        }
        try {
            pipeline.close();
        } catch (RuntimeException e) {
            LOG.warn("closing pipeline {} failed ({}); its storage is given up", describe(), e.toString());
        }
    }

    /** Frees a sequence's KV cache; never throws (a lost device has nothing left to free). */
    void closeSequence(long sequence) {
        try {
            pipeline.closeSequence(sequence);
        } catch (RuntimeException e) {
            LOG.warn("closing sequence {} on pipeline {} failed ({}); its cache is given up", sequence, describe(),
                    e.toString());
        }
    }

    /**
     * Marks the positions whose device is on one of {@code instancesGone} lost: the pipeline is broken from now on
     * (it computes and admits nothing more). Returns how many positions were newly marked.
     */
    int markLost(Set<String> instancesGone) {
        ShardLayout l = pipeline.layout();
        int marked = 0;
        for (int st = 0; st < l.stages(); st++) {
            for (int m = 0; m < l.shards(); m++) {
                if (instancesGone.contains(devices.get(st * l.shards() + m).id().instance())
                        && lost.add(st * l.shards() + m)) {
                    marked++;
                }
            }
        }
        return marked;
    }

    /** Step arrays reused between steps (one pipeline steps on the engine thread only). */
    Scratch scratch(int maxBatch) {
        if (scratch == null || scratch.seqs.length != maxBatch) {
            scratch = new Scratch(maxBatch);
        }
        return scratch;
    }

    /** The arrays of one forward step; logits rows are allocated once per owner index and reused. */
    static final class Scratch {
        final long[] seqs;
        final int[] toks;
        final int[] pos;
        final float[][] logits;
        final LiveRequest[] owners;
        private final List<float[]> rows = new ArrayList<>();

        Scratch(int maxBatch) {
            seqs = new long[maxBatch];
            toks = new int[maxBatch];
            pos = new int[maxBatch];
            logits = new float[maxBatch][];
            owners = new LiveRequest[maxBatch];
        }

        float[] row(int index, int vocab) {
            while (rows.size() <= index) {
                rows.add(new float[vocab]);
            }
            return rows.get(index);
        }
    }

    boolean broken() {
        return !lost.isEmpty();
    }

    /** Whether position (stage, shard) still holds its context. */
    boolean alive(int stage, int shard) {
        return !lost.contains(stage * pipeline.layout().shards() + shard);
    }

    String describe() {
        return "P" + pipeline.layout().stages() + "M" + pipeline.layout().shards() + "@" + instances
                + (broken() ? "(broken)" : "");
    }

    /** KV positions reserved by running requests over what the pipelines hold ({@code batch} × seq_len each). */
    static double kvCacheUsage(List<PipelineSlot> slots, int batch, int seqLen) {
        if (slots.isEmpty()) {
            return 0;
        }
        long reserved = 0;
        for (PipelineSlot s : slots) {
            for (LiveRequest r : s.active) {
                reserved += r.prompt.length + r.request.maxNewTokens();
            }
        }
        return Math.min(1.0, reserved / ((double) slots.size() * batch * seqLen));
    }

    /** Requests running on the pipelines. */
    static int running(List<PipelineSlot> slots) {
        int n = 0;
        for (PipelineSlot s : slots) {
            n += s.active.size();
        }
        return n;
    }
}
