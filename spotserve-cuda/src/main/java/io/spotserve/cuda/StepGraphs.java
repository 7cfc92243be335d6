package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import jcuda.CudaException;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CUDA graphs of a single-GPU pipeline's forward step. A decode step of a LLaMA model is a few hundred small
 * kernel launches; issued one by one from Java each costs microseconds of host time, which at batch 1 is more
 * than the GPU needs to stream a layer's weights. So the step's launch sequence is captured once per shape and
 * replayed with one {@code cuGraphLaunch}: everything that changes between steps (tokens, positions, KV-cache
 * addresses, which rows want logits) lives in device arrays uploaded before the launch, and the shape key holds
 * the rest (entries, logits rows, the attention shared-memory bucket). Graphs hold weight addresses, so they are
 * dropped whenever weight storage is allocated or freed (a migration). If the driver refuses capture, the
 * pipeline logs once and runs kernel by kernel from then on.
 */
final class StepGraphs implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StepGraphs.class);
    /** Graphs kept per pipeline (least recently used dropped first). */
    static final int CAPACITY = 32;

    /** The launch shape of one step. */
    record Key(int entries, int logitsRows, int attentionSharedBytes) {
    }

    private final CudaContext ctx;
    private final Map<Key, CUgraphExec> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private long storageVersion = Long.MIN_VALUE;
    private boolean disabled;
    private long captures;
    private long replays;

    StepGraphs(CudaContext ctx) {
        this.ctx = ctx;
    }

    /**
     * Runs the step's launches as the graph of {@code key}, capturing it on first use.
     *
     * @param storageVersion changes whenever weight storage moved (all graphs are dropped then)
     * @param launches       issues the step's kernels and device copies on {@link CudaContext#stream}, nothing
     *                       synchronous
     * @return false if graphs are unusable here: nothing was executed and the caller runs {@code launches} itself
     */
    boolean run(Key key, long storageVersion, Runnable launches) {
        if (disabled) {
            return false;
        }
        if (storageVersion != this.storageVersion) {
            clear();
            this.storageVersion = storageVersion;
        }
        CUgraphExec exec = graphs.get(key);
        if (exec == null) {
            exec = capture(launches);
            if (exec == null) {
                return false;
            }
            graphs.put(key, exec);
            captures++;
            if (graphs.size() > CAPACITY) {
                Iterator<CUgraphExec> eldest = graphs.values().iterator();
                destroy(eldest.next());
                eldest.remove();
            }
        }
        ctx.makeCurrent();
        cuGraphLaunch(exec, ctx.stream);
        replays++;
        return true;
    }

    private CUgraphExec capture(Runnable launches) {
        ctx.makeCurrent();
        try {
            cuStreamBeginCapture(ctx.stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
        } catch (CudaException e) {
            return refuse(e);
        }
        RuntimeException failure = null;
        try {
            launches.run();
        } catch (RuntimeException e) {
            failure = e;
        }
        CUgraph graph = new CUgraph();
        boolean captured = false;
        try {
            cuStreamEndCapture(ctx.stream, graph); // always ends the capture, so the stream is usable again
            captured = true;
        } catch (CudaException e) {
            if (failure == null) {
                failure = e; // e.g. CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: reported only at the end
            }
        }
        try {
            if (failure instanceof CudaException ce && String.valueOf(ce.getMessage()).contains("CAPTURE")) {
                return refuse(ce); // an operation the driver cannot capture
            }
            if (failure != null) {
                throw failure; // bad input (e.g. a context too long for attention) or a real CUDA error
            }
            CUgraphExec exec = new CUgraphExec();
            try {
                cuGraphInstantiate(exec, graph, 0);
            } catch (CudaException e) {
                return refuse(e);
            }
            return exec;
        } finally {
            if (captured) {
                cuGraphDestroy(graph); // the instantiated executable does not need it
            }
        }
    }

    private CUgraphExec refuse(CudaException e) {
        disabled = true;
        clear();
        LOG.warn("CUDA graph capture refused on {} ({}); this pipeline runs its steps kernel by kernel", ctx,
                e.getMessage());
        return null;
    }

    private void destroy(CUgraphExec exec) {
        ctx.makeCurrent();
        cuGraphExecDestroy(exec);
    }

    /** Graphs captured so far (tests and diagnostics). */
    long captures() {
        return captures;
    }

    /** Steps run as a graph so far. */
    long replays() {
        return replays;
    }

    /** Whether capture was refused and steps run kernel by kernel. */
    boolean disabled() {
        return disabled;
    }

    private void clear() {
        for (CUgraphExec e : graphs.values()) {
            destroy(e);
        }
        graphs.clear();
    }

    @Override
    public void close() {
        clear();
    }
}
