package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyPeerAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TensorReducer;
import io.spotserve.exec.spi.AbstractPipeline;
import io.spotserve.exec.spi.GroupReduce;
import java.util.List;
import java.util.Objects;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The GPU pipeline: P × M {@link CudaShard}s with the CPU pipeline's semantics (same sharding, slice layout,
 * validation and error messages). Per layer every shard of a stage computes its partial output on its GPU;
 * the stage's lead shard (m = 0) sums the partials in shard order into an accumulator and adds it to the
 * residual stream (the all-reduce; device-to-device copies, peer copies across GPUs), then broadcasts the
 * stream back to the other shards. The stream is handed to the next stage's lead the same way. A partial pipeline
 * ({@link io.spotserve.exec.Executor#createStages}: a worker's stages of a pipeline that spans workers) runs one
 * stage per call, its residual stream entering and leaving through host memory; a part of a tensor group split over
 * workers ({@link io.spotserve.exec.Executor#createShardGroup}) also sums its partials with the other parts' through
 * the caller's {@link TensorReducer}, in host memory, at every reduce point.
 */
final class CudaPipeline extends AbstractPipeline<CudaShard> {
    private final CudaExecutor executor;
    /** Captured step graphs when every position is on one GPU (null: kernel by kernel). */
    private final StepGraphs graphs;
    /** A split group's host copies of its hosted shards' partials ({@link #computeGroupStage}), or null. */
    private float[][] hostPartials;

    CudaPipeline(CudaExecutor executor, ShardLayout layout, List<CudaDevice> devices, int maxBatch) {
        this(executor, layout, new IndexRange(0, layout.stages()), devices, maxBatch);
    }

    /**
     * A pipeline hosting the positions of stages {@code hosted} only (all M shards of each; {@code devices}
     * stage-major from its first stage): a worker's part of a pipeline whose stages run in other processes. Its steps
     * ({@link #computeStage}) take the residual stream from the host and hand it back there.
     */
    CudaPipeline(CudaExecutor executor, ShardLayout layout, IndexRange hosted, List<CudaDevice> devices, int maxBatch) {
        this(executor, layout, hosted, new IndexRange(0, layout.shards()), devices, maxBatch);
    }

    /**
     * A pipeline hosting shards {@code group} of stages {@code hosted} only ({@code devices} stage-major from its first
     * position): a worker's part of a tensor group split over workers. Its steps ({@link #computeGroupStage}) sum
     * the group's partials through the caller's reducer, in host memory, at every reduce point.
     */
    CudaPipeline(CudaExecutor executor, ShardLayout layout, IndexRange hosted, IndexRange group,
                 List<CudaDevice> devices, int maxBatch) {
        super(layout, maxBatch, positions(executor, layout, hosted, group, devices, maxBatch),
                executor.options().weights());
        this.executor = executor;
        CudaContext only = null;
        boolean oneGpu = true;
        for (CudaShard[] stage : shards) {
            if (stage == null) {
                continue;
            }
            for (CudaShard s : stage) {
                only = only == null ? s.ctx : only;
                oneGpu &= s.ctx == only;
            }
        }
        // across GPUs the hand-offs synchronise the host between streams, which a graph cannot capture; a partial
        // pipeline's steps start and end in host memory (the hidden state), one stage at a time
        this.graphs = oneGpu && !partial() ? new StepGraphs(only) : null;
    }

    private static CudaShard[][] positions(CudaExecutor executor, ShardLayout layout, IndexRange hosted,
                                           IndexRange group, List<CudaDevice> devices, int maxBatch) {
        if (layout.config().normEps() != io.spotserve.model.LlamaConfig.DEFAULT_NORM_EPS) {
            // the rmsnorm kernels add run.c's 1e-5 as a constant; rope theta and scaling arrive via the table
            throw new IllegalArgumentException("the CUDA executor supports rms_norm_eps 1e-5 only, the model has "
                    + layout.config().normEps() + "; use the CPU executor for this model");
        }
        float[] rope = ropeTable(layout.config());
        CudaShard[][] shards = new CudaShard[layout.stages()][];
        try {
            for (int p = hosted.from(); p < hosted.to(); p++) {
                shards[p] = new CudaShard[group.length()];
                for (int i = 0; i < group.length(); i++) {
                    shards[p][i] = new CudaShard(executor, layout, p, group.from() + i,
                            devices.get((p - hosted.from()) * group.length() + i), rope, maxBatch);
                }
            }
        } catch (RuntimeException e) {
            for (CudaShard[] stage : shards) {
                if (stage == null) {
                    continue;
                }
                for (CudaShard s : stage) {
                    if (s != null) {
                        s.close();
                    }
                }
            }
            throw e;
        }
        return shards;
    }

    /**
     * Device-to-device migration of one slice from position (stage, shard) here to position (dstStage, dstShard)
     * of {@code dst}: the same effect as {@code dst.importSlice(dstStage, dstShard, exportSlice(stage, shard,
     * slice))} but the floats go storage → staging buffer on this GPU → (peer copy) → staging on the
     * destination GPU → storage, never through the host.
     */
    ContextSlice copySliceTo(int stage, int shard, ContextSlice slice, CudaPipeline dst, int dstStage, int dstShard) {
        CudaShard s = position(stage, shard);
        CudaShard d = dst.position(dstStage, dstShard);
        Objects.requireNonNull(slice, "slice");
        if (!dst.c.equals(c)) {
            throw new IllegalArgumentException("destination pipeline is for model " + dst.c + ", this one for " + c);
        }
        slice.validate(c);
        if (!s.holds(slice, filledLength(slice))) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not hold " + slice);
        }
        if (!d.owns(slice)) {
            throw new IllegalArgumentException("position (stage " + dstStage + ", shard " + dstShard + ") of "
                    + dst.layout + " does not own " + slice);
        }
        long elements = slice.floats(c);
        int eb = s.elementBytes(slice); // fp16 weights travel as halves between GPUs
        try (DeviceBuffer staging = CudaDevice.raw(null, s.ctx, elements, eb)) {
            s.transferDevice(slice, staging, false);
            if (d.ctx == s.ctx) {
                d.transferDevice(slice, staging, true);
            } else {
                try (DeviceBuffer remote = CudaDevice.raw(null, d.ctx, elements, eb)) {
                    copyBytes(d, remote.ptr, s, staging.ptr, elements * eb);
                    d.transferDevice(slice, remote, true);
                }
            }
        }
        dst.imported(slice);
        return slice;
    }

    // ------------------------------------------------------------------ forward

    @Override
    protected void compute(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        int rows = 0;
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
                rows = s.bind(seqs, tokens, positions, count, logits); // the same count on every position
            }
        }
        CudaShard[] last = shards[shards.length - 1];
        int logitsRows = rows;
        Runnable launches = () -> launch(count, logitsRows);
        boolean replayed = false;
        if (graphs != null && executor.graphsAllowed()) { // the property is read per step: benchmarks compare both
            CudaShard lead = shards[0][0];
            // also rejects a context too long for attention before anything is captured
            int shared = Launch.attention(count, 1, lead.longest(), lead.ctx.attentionSharedLimit()).sharedBytes();
            replayed = graphs.run(new StepGraphs.Key(count, logitsRows, shared), storageVersion(), launches);
        }
        if (!replayed) {
            launches.run();
        }
        for (CudaShard s : last) {
            s.gatherLogits(logits, logitsRows);
        }
    }

    private long storageVersion() {
        long v = 0;
        for (CudaShard[] stage : shards) {
            if (stage == null) {
                continue;
            }
            for (CudaShard s : stage) {
                v += s.storageVersion(); // each only grows, so the sum changes whenever one does
            }
        }
        return v;
    }

    /**
     * Graph statistics for tests: {captures, replays}, or null when this pipeline cannot use graphs (it spans
     * GPUs, or the driver refused a capture).
     */
    long[] graphStats() {
        return graphs == null || graphs.disabled() ? null : new long[] {graphs.captures(), graphs.replays()};
    }

    /** Every kernel and device copy of one step, asynchronous on the GPUs' streams. */
    private void launch(int count, int logitsRows) {
        long n = (long) count * c.dim();
        embed(shards[0], n);
        for (int p = 0; p < shards.length; p++) {
            CudaShard[] stage = shards[p];
            layers(stage, p, n, null);
            if (p + 1 < shards.length) {
                CudaShard next = shards[p + 1][0];
                copy(next, next.x.ptr, stage[0], stage[0].x.ptr, n); // activation hand-off to the next stage
                broadcast(shards[p + 1], n);
            }
        }
        for (CudaShard s : shards[shards.length - 1]) {
            s.launchLogits(logitsRows);
        }
    }

    /**
     * One hosted stage of a step whose other stages run elsewhere: the residual stream enters from {@code hidden}
     * (stage 0: the embedding instead), runs the stage's layers, and leaves to {@code hidden} (the last stage: the
     * logits instead), in host memory, as the worker hands it on. The same kernels in the same order as
     * {@link #launch}, so the floats equal a whole pipeline's.
     */
    @Override
    protected void computeStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                float[][] logits) {
        stageStep(stage, seqs, tokens, positions, count, hidden, logits, null);
    }

    /**
     * One hosted stage of a step for a part of a tensor group split over pipelines: as {@link #computeStage}, but at
     * each reduce point the hosted shards' partials go to host memory, {@code reduce} returns the sum over all M shards
     * (in shard order, as the whole pipeline's lead adds them) and it is added to the residual stream on the GPU, so
     * every part, and the whole pipeline, end each layer with the same floats. A failing reducer leaves
     * {@code hidden} untouched.
     */
    @Override
    protected void computeGroupStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                     float[][] logits, GroupReduce reduce) {
        stageStep(stage, seqs, tokens, positions, count, hidden, logits, reduce);
    }

    /** One stage of a step; {@code reduce} is null when this pipeline holds every shard of the stage. */
    private void stageStep(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                           float[][] logits, GroupReduce reduce) {
        CudaShard[] here = shards[stage];
        int rows = 0;
        for (CudaShard s : here) {
            rows = s.bind(seqs, tokens, positions, count, logits);
        }
        long n = (long) count * c.dim();
        CudaShard lead = here[0];
        if (stage == 0 && reduce == null) {
            embed(here, n);
        } else if (stage == 0) {
            embedSplit(here, reduce);
        } else {
            lead.ctx.makeCurrent();
            // a synchronous copy on the legacy stream, ordered with the shards' (blocking) streams
            cuMemcpyHtoD(lead.x.ptr, Pointer.to(hidden), n * Float.BYTES);
            broadcast(here, n);
        }
        layers(here, stage, n, reduce);
        if (stage + 1 < layout.stages()) {
            lead.ctx.makeCurrent();
            cuMemcpyDtoH(Pointer.to(hidden), lead.x.ptr, n * Float.BYTES); // waits for the stage's kernels
        } else {
            for (CudaShard s : here) {
                s.launchLogits(rows); // a part of a split group fills its own shards' vocabulary columns only
            }
            for (CudaShard s : here) {
                s.gatherLogits(logits, rows);
            }
        }
    }

    /**
     * Stage 0's embedding for a split group: each hosted shard's vocabulary rows (zeros for the other shards' tokens)
     * summed with the other parts' through {@code reduce}, into the lead's residual stream, then copied to every
     * hosted shard.
     */
    private void embedSplit(CudaShard[] first, GroupReduce reduce) {
        int n = reduce.floats();
        for (CudaShard s : first) {
            s.embed(s.part);
        }
        float[] sum = reduce.allReduce(new TensorReducer.Point(0, -1, TensorReducer.Kind.EMBEDDING),
                download(first, n));
        // the whole pipeline clears x and adds the sum: the same floats (a -0.0 row becomes +0.0 there too)
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = 0.0f + sum[i];
        }
        CudaShard lead = first[0];
        lead.ctx.makeCurrent();
        cuMemcpyHtoD(lead.x.ptr, Pointer.to(x), (long) n * Float.BYTES);
        broadcast(first, n);
    }

    /**
     * Copies each hosted shard's partial ({@code n} floats) into this pipeline's host buffers (allocated once, at
     * maxBatch), after the shard's kernels.
     */
    private float[][] download(CudaShard[] stage, int n) {
        if (hostPartials == null) {
            hostPartials = new float[stage.length][maxBatch * c.dim()];
        }
        for (int i = 0; i < stage.length; i++) {
            stage[i].ctx.makeCurrent();
            cuMemcpyDtoH(Pointer.to(hostPartials[i]), stage[i].part.ptr, (long) n * Float.BYTES);
        }
        return hostPartials;
    }

    /**
     * The sum of a stage's partials added to its residual stream, then copied to every shard: in-process on the lead
     * ({@link #reduceInto}), or for a split group through {@code reduce} (its sum over all M shards onto the lead's
     * accumulator, then x += sum there: the whole pipeline's last add).
     */
    private void reducePoint(CudaShard[] stage, int p, int layer, TensorReducer.Kind kind, long n, GroupReduce reduce) {
        if (reduce == null) {
            reduceInto(stage, n);
        } else {
            float[] sum = reduce.allReduce(new TensorReducer.Point(p, layer, kind), download(stage, reduce.floats()));
            CudaShard lead = stage[0];
            lead.ctx.makeCurrent();
            cuMemcpyHtoD(lead.reduced.ptr, Pointer.to(sum), n * Float.BYTES);
            lead.ctx.launch("add_inplace", Launch.elementwise(n), lead.x.ptr, lead.reduced.ptr, Math.toIntExact(n));
        }
        broadcast(stage, n);
    }

    /** Stage 0's embedding of the bound tokens into the lead's residual stream, then copied to every shard. */
    private void embed(CudaShard[] first, long n) {
        if (first.length == 1) {
            first[0].embed(first[0].x);
        } else {
            // each shard gathers its vocabulary rows (zeros elsewhere); the sum assembles the embedding exactly
            CudaShard lead = first[0];
            lead.ctx.makeCurrent();
            cuMemsetD32Async(lead.x.ptr, 0, n, lead.ctx.stream);
            for (CudaShard s : first) {
                s.embed(s.part);
            }
            reduceInto(first, n);
        }
        broadcast(first, n);
    }

    /**
     * The layers of stage {@code p} on its shards' residual streams (all equal on entry, all equal on exit); {@code
     * reduce} as in {@link #reducePoint}.
     */
    private void layers(CudaShard[] stage, int p, long n, GroupReduce reduce) {
        int first = stage[0].pl.layers.from();
        int nl = stage[0].pl.layers.length();
        for (int l = 0; l < nl; l++) {
            for (CudaShard s : stage) {
                s.attention(l);
            }
            reducePoint(stage, p, first + l, TensorReducer.Kind.ATTENTION, n, reduce);
            for (CudaShard s : stage) {
                s.ffn(l);
            }
            reducePoint(stage, p, first + l, TensorReducer.Kind.FFN, n, reduce);
        }
    }

    /**
     * The all-reduce on the stage's lead shard: x += (part_0 + part_1 + ... ) summed in shard order, as the CPU
     * pipeline does, so the float results agree in order.
     */
    private void reduceInto(CudaShard[] stage, long n) {
        if (stage.length == 1) {
            return; // the only shard's wo / w2 product added itself into the residual stream
        }
        CudaShard lead = stage[0];
        Launch.Config cfg = Launch.elementwise(n);
        int count = Math.toIntExact(n);
        copy(lead, lead.reduced.ptr, lead, lead.part.ptr, n);
        for (int m = 1; m < stage.length; m++) {
            CudaShard s = stage[m];
            CUdeviceptr src = s.part.ptr;
            if (s.ctx != lead.ctx) {
                copy(lead, lead.xbTemp(), s, s.part.ptr, n); // bring the partial over first (peer copy)
                src = lead.xbTemp();
            }
            lead.ctx.makeCurrent();
            lead.ctx.launch("add_inplace", cfg, lead.reduced.ptr, src, count);
        }
        lead.ctx.launch("add_inplace", cfg, lead.x.ptr, lead.reduced.ptr, count);
    }

    /** Copies the lead shard's residual stream to every other shard of the stage. */
    private void broadcast(CudaShard[] stage, long n) {
        for (int m = 1; m < stage.length; m++) {
            copy(stage[m], stage[m].x.ptr, stage[0], stage[0].x.ptr, n);
        }
    }

    /** Device-to-device copy of {@code floats} floats, ordered after everything already issued on both GPUs. */
    private static void copy(CudaShard dstShard, CUdeviceptr dst, CudaShard srcShard, CUdeviceptr src, long floats) {
        copyBytes(dstShard, dst, srcShard, src, floats * Float.BYTES);
    }

    /** Device-to-device copy of {@code bytes} bytes, ordered after everything already issued on both GPUs. */
    private static void copyBytes(CudaShard dstShard, CUdeviceptr dst, CudaShard srcShard, CUdeviceptr src,
                                  long bytes) {
        if (dstShard.ctx == srcShard.ctx) {
            dstShard.ctx.makeCurrent();
            cuMemcpyDtoDAsync(dst, src, bytes, dstShard.ctx.stream);
        } else {
            srcShard.ctx.makeCurrent();
            srcShard.ctx.sync();
            dstShard.ctx.makeCurrent();
            cuMemcpyPeerAsync(dst, dstShard.ctx.context, src, srcShard.ctx.context, bytes, dstShard.ctx.stream);
            dstShard.ctx.sync(); // the source GPU may overwrite src right after
        }
    }

    @Override
    protected void onClose() {
        if (graphs != null) {
            graphs.close();
        }
        executor.closed(this);
    }

    @Override
    public String toString() {
        return "CudaPipeline[" + layout + ", " + executor.name() + "]";
    }
}
