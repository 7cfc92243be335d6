package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpy2DUnaligned;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.PipelinePosition;
import io.spotserve.exec.spi.WeightCoverage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUDA_MEMCPY2D;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUmemorytype;

/**
 * One pipeline position (stage, shard) on its GPU: weight and KV buffers allocated from its
 * {@link CudaDevice} arena in the {@link PositionLayout} layout, the bookkeeping of which slices it holds (as
 * the CPU executor's StageShard), per-step scratch buffers, and the kernel launches of its share of every
 * layer. Partial outputs of wo and w2 are left in {@link #part} for the pipeline's all-reduce.
 */
final class CudaShard implements PipelinePosition, AutoCloseable {
    private record Kv(DeviceBuffer data, int capacity) {
    }

    final CudaExecutor executor;
    final CudaDevice device;
    final CudaContext ctx;
    final PositionLayout pl;
    final int stage;
    final int shard;
    final int maxBatch;
    private final boolean aliasClassifier;

    private final WeightCoverage coverage;
    private final DeviceBuffer[] layerW;
    private DeviceBuffer embedding;
    private DeviceBuffer classifier;
    private DeviceBuffer finalNorm;
    private final Map<Long, Kv> kv = new HashMap<>();

    // scratch: activations of the current step (not arena-accounted, like the CPU executor's)
    private final List<DeviceBuffer> scratch = new ArrayList<>();
    final DeviceBuffer x;       // residual stream replica [maxBatch][dim]
    final DeviceBuffer part;    // partial wo / w2 output [maxBatch][dim]
    final DeviceBuffer reduced; // all-reduce accumulator [maxBatch][dim]
    private final DeviceBuffer xb;
    private final DeviceBuffer qkv;
    private final DeviceBuffer att;
    private final DeviceBuffer h13;
    private final DeviceBuffer hb;
    private final DeviceBuffer logits;
    private final DeviceBuffer rope;
    private final DeviceBuffer tokens;  // int[maxBatch]
    private final DeviceBuffer pos;     // int[maxBatch]
    private final DeviceBuffer caps;    // int[maxBatch]
    private final DeviceBuffer rowMap;  // int[maxBatch]
    private final DeviceBuffer caches;  // u64[maxBatch] (two floats each)
    private int batch;
    private int longest;

    CudaShard(CudaExecutor executor, ShardLayout layout, int stage, int shard, CudaDevice device, float[] ropeTable,
              int maxBatch) {
        this.executor = executor;
        this.device = device;
        this.ctx = device.context;
        this.pl = new PositionLayout(layout, stage, shard);
        this.stage = stage;
        this.shard = shard;
        this.maxBatch = maxBatch;
        this.coverage = new WeightCoverage(layout, stage, shard);
        this.aliasClassifier = coverage.aliasClassifier();
        layerW = new DeviceBuffer[pl.layers.length()];
        try {
            int dim = pl.dim;
            x = scratch((long) maxBatch * dim);
            part = scratch((long) maxBatch * dim);
            reduced = scratch((long) maxBatch * dim);
            xb = scratch((long) maxBatch * dim);
            qkv = scratch((long) maxBatch * pl.qkvRows);
            att = scratch((long) maxBatch * pl.qDim);
            h13 = scratch((long) maxBatch * 2 * pl.f);
            hb = scratch((long) maxBatch * pl.f);
            logits = pl.last ? scratch((long) maxBatch * pl.vocab.length()) : null;
            rope = scratch(ropeTable.length);
            cuMemcpyHtoD(rope.ptr, Pointer.to(ropeTable), (long) ropeTable.length * Float.BYTES);
            tokens = scratch(maxBatch);
            pos = scratch(maxBatch);
            caps = scratch(maxBatch);
            rowMap = scratch(maxBatch);
            caches = scratch(2L * maxBatch);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private DeviceBuffer scratch(long floats) {
        DeviceBuffer b = CudaDevice.raw(null, ctx, floats);
        scratch.add(b);
        return b;
    }

    // ------------------------------------------------------------------ ownership and coverage

    @Override
    public CudaDevice device() {
        return device;
    }

    @Override
    public WeightCoverage coverage() {
        return coverage;
    }

    @Override
    public int kvCapacity(long sequence) {
        Kv entry = kv.get(sequence);
        return entry == null ? -1 : entry.capacity;
    }

    /** Bytes that importing {@code slice} would newly allocate on the device. */
    @Override
    public long allocationBytes(ContextSlice slice) {
        long rows = (long) pl.vocab.length() * pl.dim * Float.BYTES;
        if (slice instanceof ContextSlice.Embedding) {
            return embedding == null ? rows : 0;
        } else if (slice instanceof ContextSlice.Classifier) {
            boolean present = aliasClassifier ? embedding != null : classifier != null;
            return present ? 0 : rows;
        } else if (slice instanceof ContextSlice.FinalNorm) {
            return finalNorm == null ? (long) pl.dim * Float.BYTES : 0;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            return layerW[w.layer() - pl.layers.from()] == null ? pl.layerFloats * Float.BYTES : 0;
        }
        return 0;
    }

    // ------------------------------------------------------------------ import / export

    /**
     * Copies a slice between its canonical floats and this position's GPU storage (host↔device). Importing
     * allocates missing storage first (which may throw, changing nothing). The caller checked owns / holds.
     */
    @Override
    public void transfer(ContextSlice slice, float[] canon, boolean importing) {
        transfer(slice, canon, null, importing);
    }

    /**
     * As {@link #transfer(ContextSlice, float[], boolean)} with the canonical floats in a device buffer on this
     * position's GPU (device-to-device migration: no host round trip).
     */
    void transferDevice(ContextSlice slice, DeviceBuffer canon, boolean importing) {
        transfer(slice, null, canon, importing);
    }

    private void transfer(ContextSlice slice, float[] hostCanon, DeviceBuffer devCanon, boolean importing) {
        ctx.makeCurrent();
        DeviceBuffer target = storage(slice, importing);
        int capacity = slice instanceof ContextSlice.KvCache k ? kv.get(k.sequence()).capacity : 0;
        for (PositionLayout.Copy cp : pl.copies(slice, capacity)) {
            DeviceBuffer buf = cp.target() == PositionLayout.Target.LAYER ? layerW[cp.localLayer()] : target;
            if (hostCanon != null) {
                copy(buf, cp, hostCanon, importing);
            } else {
                copyDevice(buf, cp, devCanon, importing);
            }
        }
        if (importing) {
            coverage.mark(slice);
        }
    }

    /** One strided device↔device copy between storage and a canonical staging buffer on the same GPU. */
    private static void copyDevice(DeviceBuffer buf, PositionLayout.Copy cp, DeviceBuffer canon, boolean importing) {
        CUDA_MEMCPY2D m = new CUDA_MEMCPY2D();
        long width = (long) cp.width() * Float.BYTES;
        m.WidthInBytes = width;
        m.Height = cp.height();
        CUdeviceptr store = buf.at(cp.storeOffset());
        CUdeviceptr staged = canon.at(cp.canonOffset());
        long storePitch = cp.height() == 1 ? width : cp.storePitch() * Float.BYTES;
        long stagedPitch = cp.height() == 1 ? width : (long) cp.canonPitch() * Float.BYTES;
        m.srcMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
        m.dstMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
        if (importing) {
            m.srcDevice = staged;
            m.srcPitch = stagedPitch;
            m.dstDevice = store;
            m.dstPitch = storePitch;
        } else {
            m.srcDevice = store;
            m.srcPitch = storePitch;
            m.dstDevice = staged;
            m.dstPitch = stagedPitch;
        }
        cuMemcpy2DUnaligned(m);
    }

    private DeviceBuffer storage(ContextSlice slice, boolean importing) {
        String where = " of stage " + stage + " shard " + shard;
        if (slice instanceof ContextSlice.Embedding) {
            if (importing && embedding == null) {
                embedding = device.allocate("token embedding rows " + pl.vocab + where, (long) pl.vocab.length() * pl.dim);
                if (aliasClassifier) {
                    classifier = embedding;
                }
            }
            return embedding;
        } else if (slice instanceof ContextSlice.Classifier) {
            if (importing && classifier == null) {
                classifier = device.allocate((aliasClassifier ? "token embedding / classifier rows " : "classifier rows ")
                        + pl.vocab + where, (long) pl.vocab.length() * pl.dim);
                if (aliasClassifier) {
                    embedding = classifier;
                }
            }
            return classifier;
        } else if (slice instanceof ContextSlice.FinalNorm) {
            if (importing && finalNorm == null) {
                finalNorm = device.allocate("final norm" + where, pl.dim);
            }
            return finalNorm;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - pl.layers.from();
            if (importing && layerW[l] == null) {
                layerW[l] = device.allocate("layer " + w.layer() + " heads " + pl.heads + " hidden " + pl.hidden + where,
                        pl.layerFloats);
            }
            return layerW[l];
        } else {
            return kv.get(((ContextSlice.KvCache) slice).sequence()).data;
        }
    }

    /** One strided host↔device copy; synchronous, so the host array may be reused on return. */
    private static void copy(DeviceBuffer buf, PositionLayout.Copy cp, float[] canon, boolean importing) {
        long width = (long) cp.width() * Float.BYTES;
        Pointer host = Pointer.to(canon).withByteOffset((long) cp.canonOffset() * Float.BYTES);
        CUdeviceptr dev = buf.at(cp.storeOffset());
        if (cp.height() == 1) {
            if (importing) {
                cuMemcpyHtoD(dev, host, width);
            } else {
                cuMemcpyDtoH(host, dev, width);
            }
            return;
        }
        CUDA_MEMCPY2D m = new CUDA_MEMCPY2D();
        m.WidthInBytes = width;
        m.Height = cp.height();
        long hostPitch = (long) cp.canonPitch() * Float.BYTES;
        long devPitch = cp.storePitch() * Float.BYTES;
        if (importing) {
            m.srcMemoryType = CUmemorytype.CU_MEMORYTYPE_HOST;
            m.srcHost = host;
            m.srcPitch = hostPitch;
            m.dstMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
            m.dstDevice = dev;
            m.dstPitch = devPitch;
        } else {
            m.srcMemoryType = CUmemorytype.CU_MEMORYTYPE_DEVICE;
            m.srcDevice = dev;
            m.srcPitch = devPitch;
            m.dstMemoryType = CUmemorytype.CU_MEMORYTYPE_HOST;
            m.dstHost = host;
            m.dstPitch = hostPitch;
        }
        cuMemcpy2DUnaligned(m); // our pitches are not cuMemAllocPitch ones
    }

    // ------------------------------------------------------------------ release

    @Override
    public void release(ContextSlice slice) {
        coverage.unmark(slice);
        if (slice instanceof ContextSlice.Embedding) {
            if (!aliasClassifier || !coverage.anyClassifier()) {
                free(embedding);
                embedding = null;
                if (aliasClassifier) {
                    classifier = null;
                }
            }
        } else if (slice instanceof ContextSlice.Classifier) {
            if (!aliasClassifier) {
                free(classifier);
                classifier = null;
            } else if (!coverage.anyEmbedding()) {
                free(embedding);
                embedding = null;
                classifier = null;
            }
        } else if (slice instanceof ContextSlice.FinalNorm) {
            free(finalNorm);
            finalNorm = null;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - pl.layers.from();
            free(layerW[l]);
            layerW[l] = null;
        }
    }

    private static void free(DeviceBuffer b) {
        if (b != null) {
            b.close();
        }
    }

    // ------------------------------------------------------------------ sequences

    @Override
    public void reserveSequence(long id, int capacity, String what) {
        kv.put(id, new Kv(device.allocate(what, pl.kvFloats(capacity)), capacity));
    }

    @Override
    public void removeSequence(long id) {
        Kv entry = kv.remove(id);
        if (entry != null) {
            entry.data.close();
        }
    }

    // ------------------------------------------------------------------ forward pass

    /** Uploads the step's per-entry data: positions, KV cache addresses and capacities (and tokens on stage 0). */
    void bind(long[] sequences, int[] tokenIds, int[] positions, int count) {
        ctx.makeCurrent();
        int[] capOf = new int[count];
        long[] addr = new long[count];
        int lng = 0;
        for (int b = 0; b < count; b++) {
            Kv entry = kv.get(sequences[b]);
            capOf[b] = entry.capacity;
            addr[b] = address(entry.data);
            lng = Math.max(lng, positions[b] + 1);
        }
        cuMemcpyHtoD(pos.ptr, Pointer.to(positions), (long) count * Integer.BYTES);
        cuMemcpyHtoD(caps.ptr, Pointer.to(capOf), (long) count * Integer.BYTES);
        cuMemcpyHtoD(caches.ptr, Pointer.to(addr), (long) count * Long.BYTES);
        if (pl.first) {
            cuMemcpyHtoD(tokens.ptr, Pointer.to(tokenIds), (long) count * Integer.BYTES);
        }
        batch = count;
        longest = lng;
    }

    /** The raw device address of a buffer (what the kernels receive in their cache-pointer arrays). */
    private static long address(DeviceBuffer b) {
        return DeviceAddress.of(b.ptr);
    }

    /** Stage 0: this shard's embedding rows of the step's tokens into {@code out} (zeros for other shards' tokens). */
    void embed(DeviceBuffer out) {
        ctx.makeCurrent();
        ctx.launch("embed", Launch.perRow(batch), out.ptr, embedding.ptr, tokens.ptr, pl.vocab.from(),
                pl.vocab.length(), pl.dim);
    }

    /** Attention of local layer {@code l} on {@link #x}; this shard's partial wo output into {@link #part}. */
    void attention(int l) {
        ctx.makeCurrent();
        DeviceBuffer w = layerW[l];
        int n = batch;
        ctx.launch("rmsnorm", Launch.perRow(n), xb.ptr, pl.dim, x.ptr, pl.dim, w.at(0), pl.dim);
        executor.gemv(ctx, w.at(pl.offQkv), pl.dim, pl.qkvRows, xb.ptr, pl.dim, n, qkv.ptr, pl.qkvRows);
        ctx.launch("rope_store", Launch.perRow(n), qkv.ptr, pl.qkvRows, pl.qDim, pl.kvDim, pl.hs, rope.ptr, pos.ptr,
                caches.ptr, caps.ptr, l);
        ctx.launch("attention", Launch.attention(n, pl.hq, longest), qkv.ptr, pl.qkvRows, att.ptr, pl.qDim, pl.kvDim,
                pl.hs, pl.c.kvGroupSize(), pos.ptr, caches.ptr, caps.ptr, l, (float) Math.sqrt(pl.hs));
        executor.gemv(ctx, w.at(pl.offWo), pl.qDim, pl.dim, att.ptr, pl.qDim, n, part.ptr, pl.dim);
    }

    /** SwiGLU FFN of local layer {@code l} on {@link #x}; this shard's partial w2 output into {@link #part}. */
    void ffn(int l) {
        ctx.makeCurrent();
        DeviceBuffer w = layerW[l];
        int n = batch;
        int f = pl.f;
        ctx.launch("rmsnorm", Launch.perRow(n), xb.ptr, pl.dim, x.ptr, pl.dim, w.at(pl.dim), pl.dim);
        executor.gemv(ctx, w.at(pl.offW13), pl.dim, 2 * f, xb.ptr, pl.dim, n, h13.ptr, 2 * f);
        ctx.launch("swiglu", Launch.elementwise((long) f * n), h13.ptr, hb.ptr, f, n);
        executor.gemv(ctx, w.at(pl.offW2), f, pl.dim, hb.ptr, f, n, part.ptr, pl.dim);
    }

    /** Last stage: final norm and this shard's classifier rows for entries with an output, gathered into them. */
    void logits(float[][] out) {
        ctx.makeCurrent();
        int[] map = new int[batch];
        int k = 0;
        for (int b = 0; b < batch; b++) {
            map[b] = out[b] != null ? k++ : -1;
        }
        if (k == 0) {
            return;
        }
        int v = pl.vocab.length();
        cuMemcpyHtoD(rowMap.ptr, Pointer.to(map), (long) batch * Integer.BYTES);
        ctx.launch("rmsnorm_select", Launch.perRow(batch), xb.ptr, x.ptr, finalNorm.ptr, pl.dim, rowMap.ptr);
        executor.gemv(ctx, classifier.ptr, pl.dim, v, xb.ptr, pl.dim, k, logits.ptr, v);
        float[] host = new float[k * v];
        cuMemcpyDtoH(Pointer.to(host), logits.ptr, (long) k * v * Float.BYTES);
        for (int b = 0; b < batch; b++) {
            if (map[b] >= 0) {
                System.arraycopy(host, map[b] * v, out[b], pl.vocab.from(), v);
            }
        }
    }

    int batch() {
        return batch;
    }

    /** A [maxBatch][dim] scratch area free between kernels of the all-reduce (the norm output buffer). */
    CUdeviceptr xbTemp() {
        return xb.ptr;
    }

    @Override
    public void releaseAll() {
        close();
    }

    /** Frees every weight, KV and scratch buffer of this position. */
    @Override
    public void close() {
        for (Long id : kv.keySet().toArray(new Long[0])) {
            removeSequence(id);
        }
        for (int l = 0; l < layerW.length; l++) {
            free(layerW[l]);
            layerW[l] = null;
        }
        free(embedding);
        if (classifier != embedding) {
            free(classifier);
        }
        free(finalNorm);
        embedding = null;
        classifier = null;
        finalNorm = null;
        coverage.clear();
        for (DeviceBuffer b : scratch) {
            b.close();
        }
        scratch.clear();
    }
}
