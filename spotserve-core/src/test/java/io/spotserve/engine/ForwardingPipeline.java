package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.ModelWeights;
import java.util.Set;

/**
 * A pipeline that hands every call to a real one, for test executors that watch or break a few calls (override
 * those). The SPI's composed defaults ({@code stageSlice}, {@code importStaged}, {@code decode}, ...) are not
 * forwarded: they run here and so go through the overridden calls.
 */
abstract class ForwardingPipeline implements Pipeline {
    protected final Pipeline delegate;

    ForwardingPipeline(Pipeline delegate) {
        this.delegate = delegate;
    }

    @Override
    public ShardLayout layout() {
        return delegate.layout();
    }

    @Override
    public WeightPrecision weightPrecision() {
        return delegate.weightPrecision();
    }

    @Override
    public int maxBatch() {
        return delegate.maxBatch();
    }

    @Override
    public Device device(int stage, int shard) {
        return delegate.device(stage, shard);
    }

    @Override
    public void loadWeights(ModelWeights checkpoint) {
        delegate.loadWeights(checkpoint);
    }

    @Override
    public boolean hasAllWeights(int stage, int shard) {
        return delegate.hasAllWeights(stage, shard);
    }

    @Override
    public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        return delegate.exportSlice(stage, shard, slice);
    }

    @Override
    public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
        return delegate.importSlice(stage, shard, bytes);
    }

    @Override
    public void releaseSlice(int stage, int shard, ContextSlice slice) {
        delegate.releaseSlice(stage, shard, slice);
    }

    @Override
    public void openSequence(long sequence, int capacity) {
        delegate.openSequence(sequence, capacity);
    }

    @Override
    public void closeSequence(long sequence) {
        delegate.closeSequence(sequence);
    }

    @Override
    public Set<Long> sequences() {
        return delegate.sequences();
    }

    @Override
    public int length(long sequence) {
        return delegate.length(sequence);
    }

    @Override
    public void forward(long[] sequences, int[] tokens, int[] positions, int count, float[][] logits) {
        delegate.forward(sequences, tokens, positions, count, logits);
    }

    @Override
    public IndexRange hostedStages() {
        return delegate.hostedStages();
    }

    @Override
    public IndexRange hostedShards() {
        return delegate.hostedShards();
    }

    @Override
    public void close() {
        delegate.close();
    }
}
