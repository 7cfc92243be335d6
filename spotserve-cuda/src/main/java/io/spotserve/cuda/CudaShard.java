package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpy2DUnaligned;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.HalfFloats;
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
    /** Bytes per stored weight: 2 when the executor keeps fp16 weights as halves, else 4. */
    final int wBytes;
    private final boolean half;
    /** Whether this position is its stage's only shard: wo / w2 then add straight into the residual stream. */
    private final boolean alone;
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
    /**
     * The step's per-entry arguments, uploaded with one host copy per step: int[6 · maxBatch] holding positions |
     * KV capacities | tokens | logits row map | KV-cache addresses (u64, as int pairs; 8-byte aligned).
     */
    private final DeviceBuffer args;
    private final int[] hostArgs;
    private final CUdeviceptr pos;
    private final CUdeviceptr caps;
    private final CUdeviceptr tokens;
    private final CUdeviceptr rowMap;
    private final CUdeviceptr caches;
    private int batch;
    private int longest;
    private long storageVersion;

    CudaShard(CudaExecutor executor, ShardLayout layout, int stage, int shard, CudaDevice device, float[] ropeTable,
              int maxBatch) {
        this.executor = executor;
        this.device = device;
        this.ctx = device.context;
        this.pl = new PositionLayout(layout, stage, shard);
        this.stage = stage;
        this.shard = shard;
        this.maxBatch = maxBatch;
        this.half = CudaExecutor.storesHalves(executor.options().weights());
        this.wBytes = half ? 2 : Float.BYTES;
        this.alone = layout.shards() == 1;
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
            args = scratch(6L * maxBatch);
            hostArgs = new int[6 * maxBatch];
            pos = args.at(0);
            caps = args.at(maxBatch);
            tokens = args.at(2L * maxBatch);
            rowMap = args.at(3L * maxBatch);
            caches = args.at(4L * maxBatch);
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
        long rows = (long) pl.vocab.length() * pl.dim * wBytes;
        if (slice instanceof ContextSlice.Embedding) {
            return embedding == null ? rows : 0;
        } else if (slice instanceof ContextSlice.Classifier) {
            boolean present = aliasClassifier ? embedding != null : classifier != null;
            return present ? 0 : rows;
        } else if (slice instanceof ContextSlice.FinalNorm) {
            return finalNorm == null ? (long) pl.dim * wBytes : 0;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            return layerW[w.layer() - pl.layers.from()] == null ? pl.layerFloats * wBytes : 0;
        }
        return 0;
    }

    /** Bytes per element of the storage of {@code slice}: {@link #wBytes} for weights, 4 for KV caches. */
    int elementBytes(ContextSlice slice) {
        return slice instanceof ContextSlice.KvCache ? Float.BYTES : wBytes;
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
        int eb = elementBytes(slice);
        // fp16 storage: the host side of the copies is the slice's halves (exact: the pipeline rounded the
        // imported values to fp16 already)
        short[] halves = hostCanon != null && eb == 2
                ? (importing ? HalfFloats.toHalves(hostCanon) : new short[hostCanon.length]) : null;
        Pointer host = hostCanon == null ? null : halves != null ? Pointer.to(halves) : Pointer.to(hostCanon);
        for (PositionLayout.Copy cp : pl.copies(slice, capacity)) {
            DeviceBuffer buf = cp.target() == PositionLayout.Target.LAYER ? layerW[cp.localLayer()] : target;
            if (host != null) {
                copy(buf, cp, host, eb, importing);
            } else {
                copyDevice(buf, cp, devCanon, eb, importing);
            }
        }
        if (halves != null && !importing) {
            HalfFloats.toFloats(halves, hostCanon);
        }
        if (importing) {
            coverage.mark(slice);
        }
    }

    /**
     * One strided device↔device copy between storage and a canonical staging buffer on the same GPU; both hold
     * elements of {@code eb} bytes.
     */
    private static void copyDevice(DeviceBuffer buf, PositionLayout.Copy cp, DeviceBuffer canon, int eb,
                                   boolean importing) {
        if (buf.elementBytes != eb || canon.elementBytes != eb) {
            throw new IllegalStateException("slice copy between " + buf.elementBytes + "-byte storage and a "
                    + canon.elementBytes + "-byte staging buffer; expected " + eb + "-byte elements on both sides");
        }
        CUDA_MEMCPY2D m = new CUDA_MEMCPY2D();
        long width = (long) cp.width() * eb;
        m.WidthInBytes = width;
        m.Height = cp.height();
        CUdeviceptr store = buf.at(cp.storeOffset());
        CUdeviceptr staged = canon.at(cp.canonOffset());
        long storePitch = cp.height() == 1 ? width : cp.storePitch() * eb;
        long stagedPitch = cp.height() == 1 ? width : (long) cp.canonPitch() * eb;
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
                embedding = allocateWeights("token embedding rows " + pl.vocab + where, (long) pl.vocab.length() * pl.dim);
                if (aliasClassifier) {
                    classifier = embedding;
                }
            }
            return embedding;
        } else if (slice instanceof ContextSlice.Classifier) {
            if (importing && classifier == null) {
                classifier = allocateWeights((aliasClassifier ? "token embedding / classifier rows " : "classifier rows ")
                        + pl.vocab + where, (long) pl.vocab.length() * pl.dim);
                if (aliasClassifier) {
                    embedding = classifier;
                }
            }
            return classifier;
        } else if (slice instanceof ContextSlice.FinalNorm) {
            if (importing && finalNorm == null) {
                finalNorm = allocateWeights("final norm" + where, pl.dim);
            }
            return finalNorm;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - pl.layers.from();
            if (importing && layerW[l] == null) {
                layerW[l] = allocateWeights("layer " + w.layer() + " heads " + pl.heads + " hidden " + pl.hidden + where,
                        pl.layerFloats);
            }
            return layerW[l];
        } else {
            return kv.get(((ContextSlice.KvCache) slice).sequence()).data;
        }
    }

    /**
     * One strided host↔device copy of {@code eb}-byte elements ({@code canon} points at the slice's canonical
     * elements); synchronous, so the host array may be reused on return.
     */
    private static void copy(DeviceBuffer buf, PositionLayout.Copy cp, Pointer canon, int eb, boolean importing) {
        long width = (long) cp.width() * eb;
        Pointer host = canon.withByteOffset((long) cp.canonOffset() * eb);
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
        long hostPitch = (long) cp.canonPitch() * eb;
        long devPitch = cp.storePitch() * eb;
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

    private void free(DeviceBuffer b) {
        if (b != null) {
            b.close();
            storageVersion++;
        }
    }

    /** Allocates weight storage of {@code elements} stored weights (a new address: graphs must be recaptured). */
    private DeviceBuffer allocateWeights(String what, long elements) {
        DeviceBuffer b = device.allocate(what, elements, wBytes);
        storageVersion++;
        return b;
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

    /**
     * Uploads the step's per-entry data in one host copy: positions, KV capacities and cache addresses, tokens,
     * and which entries want logits ({@code logits[b] != null}; only the last stage reads it).
     *
     * @return the number of entries that want logits
     */
    int bind(long[] sequences, int[] tokenIds, int[] positions, int count, float[][] logits) {
        ctx.makeCurrent();
        int mb = maxBatch;
        int lng = 0;
        int k = 0;
        for (int b = 0; b < count; b++) {
            Kv entry = kv.get(sequences[b]);
            long addr = address(entry.data);
            hostArgs[b] = positions[b];
            hostArgs[mb + b] = entry.capacity;
            hostArgs[2 * mb + b] = tokenIds[b];
            hostArgs[3 * mb + b] = logits[b] != null ? k++ : -1;
            hostArgs[4 * mb + 2 * b] = (int) addr;          // little-endian u64
            hostArgs[4 * mb + 2 * b + 1] = (int) (addr >>> 32);
            lng = Math.max(lng, positions[b] + 1);
        }
        // the whole block (the entries past count are left-overs no kernel reads): ~6 KiB at maxBatch 256
        cuMemcpyHtoD(args.ptr, Pointer.to(hostArgs), (long) hostArgs.length * Integer.BYTES);
        batch = count;
        longest = lng;
        return k;
    }

    /** The raw device address of a buffer (what the kernels receive in their cache-pointer arrays). */
    private static long address(DeviceBuffer b) {
        return DeviceAddress.of(b.ptr);
    }

    /** Stage 0: this shard's embedding rows of the step's tokens into {@code out} (zeros for other shards' tokens). */
    void embed(DeviceBuffer out) {
        ctx.makeCurrent();
        ctx.launch(half ? "embed_h" : "embed", Launch.perRow(batch), out.ptr, embedding.ptr, tokens,
                pl.vocab.from(), pl.vocab.length(), pl.dim);
    }

    /**
     * Attention of local layer {@code l} on {@link #x}. A stage's only shard adds its wo output straight into
     * {@link #x} (the residual add fused into the product); otherwise the partial goes to {@link #part} for the
     * pipeline's all-reduce.
     */
    void attention(int l) {
        ctx.makeCurrent();
        DeviceBuffer w = layerW[l];
        int n = batch;
        ctx.launch(half ? "rmsnorm_h" : "rmsnorm", Launch.perRow(n), xb.ptr, pl.dim, x.ptr, pl.dim, w.at(0), pl.dim);
        executor.gemv(ctx, w.at(pl.offQkv), half, pl.dim, pl.qkvRows, xb.ptr, pl.dim, n, qkv.ptr, pl.qkvRows, false);
        ctx.launch("rope_store", Launch.perRow(n), qkv.ptr, pl.qkvRows, pl.qDim, pl.kvDim, pl.hs, rope.ptr, pos,
                caches, caps, l);
        ctx.launch("attention", Launch.attention(n, pl.hq, longest, ctx.attentionSharedLimit()), qkv.ptr, pl.qkvRows,
                att.ptr, pl.qDim, pl.kvDim, pl.hs, pl.c.kvGroupSize(), pos, caches, caps, l,
                (float) Math.sqrt(pl.hs));
        executor.gemv(ctx, w.at(pl.offWo), half, pl.qDim, pl.dim, att.ptr, pl.qDim, n, alone ? x.ptr : part.ptr,
                pl.dim, alone);
    }

    /** SwiGLU FFN of local layer {@code l} on {@link #x}; the w2 output goes where {@link #attention}'s wo does. */
    void ffn(int l) {
        ctx.makeCurrent();
        DeviceBuffer w = layerW[l];
        int n = batch;
        int f = pl.f;
        ctx.launch(half ? "rmsnorm_h" : "rmsnorm", Launch.perRow(n), xb.ptr, pl.dim, x.ptr, pl.dim, w.at(pl.dim),
                pl.dim);
        executor.gemv(ctx, w.at(pl.offW13), half, pl.dim, 2 * f, xb.ptr, pl.dim, n, h13.ptr, 2 * f, false);
        ctx.launch("swiglu", Launch.elementwise((long) f * n), h13.ptr, hb.ptr, f, n);
        executor.gemv(ctx, w.at(pl.offW2), half, f, pl.dim, hb.ptr, f, n, alone ? x.ptr : part.ptr, pl.dim, alone);
    }

    /** Last stage: final norm and this shard's classifier rows for the {@code k} entries with an output. */
    void launchLogits(int k) {
        if (k == 0) {
            return;
        }
        ctx.makeCurrent();
        int v = pl.vocab.length();
        ctx.launch(half ? "rmsnorm_select_h" : "rmsnorm_select", Launch.perRow(batch), xb.ptr, x.ptr, finalNorm.ptr,
                pl.dim, rowMap);
        executor.gemv(ctx, classifier.ptr, half, pl.dim, v, xb.ptr, pl.dim, k, logits.ptr, v, false);
    }

    /** Last stage, after the step's kernels: copies the {@code k} logits rows into their entries' arrays. */
    void gatherLogits(float[][] out, int k) {
        if (k == 0) {
            return;
        }
        ctx.makeCurrent();
        int v = pl.vocab.length();
        float[] host = new float[k * v];
        cuMemcpyDtoH(Pointer.to(host), logits.ptr, (long) k * v * Float.BYTES);
        for (int b = 0, row = 0; b < batch; b++) {
            if (out[b] != null) {
                System.arraycopy(host, row++ * v, out[b], pl.vocab.from(), v);
            }
        }
    }

    /** The longest context of the bound step (positions + 1). */
    int longest() {
        return longest;
    }

    /** Bumped whenever weight storage is allocated or freed: captured graphs hold storage addresses. */
    long storageVersion() {
        return storageVersion;
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
