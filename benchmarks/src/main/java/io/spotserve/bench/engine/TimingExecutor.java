package io.spotserve.bench.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightSource;
import io.spotserve.exec.spi.AbstractExecutor;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.util.List;
import java.util.Objects;

/**
 * A timing-only data plane for simulating the serving engine at paper scale (SpotServe §6: OPT-6.7B, GPT-20B,
 * LLaMA-30B on 4-GPU spot instances): the real {@code ServingEngine} keeps its whole control plane (capacity checks,
 * device mapping, weight and KV-cache migration, reloads, iteration-level batching) while this executor holds no
 * floats. Devices are byte-accounting arenas charged exactly what the CPU executor would allocate (a whole weight
 * unit on its first piece, {@code capacity × layers × kv heads × head size × 2 × 4} bytes of KV per position of an
 * opened sequence, one shared array for embedding and a shared classifier); pipelines record which weight pieces and
 * how many KV positions each position holds; a forward step only validates and advances the sequences. Step time is
 * not modelled here: the engine's clock prices each step ({@code EngineClock.computed(ForwardStep)}).
 *
 * <p>Slices travel as small descriptors (no floats); {@link #weights(LlamaConfig)} is the weight source the engine
 * cold-loads and reloads from. Imports also accept the float format of other executors (its header is read), and
 * {@code loadWeights(checkpoint)} charges the whole model when the checkpoint's shape matches.
 *
 * <p>A forward step writes {@code 1f} at {@link #SPIKE_TOKEN} of every non-null logits row and nothing else (no
 * zeroing of vocab-size rows on the hot path): rows must arrive zeroed or holding only earlier spikes of this
 * executor, and greedy sampling then picks {@link #SPIKE_TOKEN}. One step costs O(entries).
 */
public final class TimingExecutor extends AbstractExecutor<TimingDevice, TimingPipeline> {
    /** The token every computed logits row points at (the first token after unk, BOS and EOS). */
    public static final int SPIKE_TOKEN = 3;

    /** An executor with no worker threads and no SIMD (there is nothing to compute). */
    public TimingExecutor() {
        super(new ExecutorOptions(1, false), TimingDevice.class);
    }

    /**
     * The weight source of timing pipelines for a model of shape {@code config}: every weight slice of the model
     * encoded as a descriptor, so the engine can cold-load and reload a model that exists only as a shape.
     */
    public static WeightSource weights(LlamaConfig config) {
        return new DescriptorWeights(config);
    }

    @Override
    public String name() {
        return "timing";
    }

    @Override
    protected TimingDevice newDevice(DeviceId id, long capacityBytes) {
        return new TimingDevice(this, id, capacityBytes);
    }

    @Override
    protected TimingPipeline newPipeline(ShardLayout layout, List<TimingDevice> devices, int maxBatch) {
        if (layout.config().vocabSize() <= SPIKE_TOKEN) {
            throw new IllegalArgumentException("vocab_size " + layout.config().vocabSize() + " has no token "
                    + SPIKE_TOKEN + " to sample; the timing executor needs vocab_size > " + SPIKE_TOKEN);
        }
        return new TimingPipeline(this, layout, devices, maxBatch);
    }

    void closed(TimingPipeline pipeline) {
        pipelineClosed(pipeline);
    }

    @Override
    public String toString() {
        return "TimingExecutor";
    }

    /** Weight slices of a model shape, as timing descriptors. */
    private record DescriptorWeights(LlamaConfig config) implements WeightSource {
        DescriptorWeights {
            Objects.requireNonNull(config, "config");
        }

        @Override
        public byte[] encode(ContextSlice slice) {
            Objects.requireNonNull(slice, "slice");
            if (slice instanceof ContextSlice.KvCache) {
                throw new IllegalArgumentException(slice + " is cache context; a weight source supplies only weights");
            }
            return SliceDescriptor.encode(config, slice);
        }
    }
}
