package io.spotserve.server;

import io.spotserve.testing.SharedData;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** The shared stories260K model served on local spot instances on the real clock, as the tests' engines. */
final class TestModel {
    static final LlamaCheckpoint CHECKPOINT;
    static final Tokenizer TOKENIZER;
    static final InstanceType SPOT = new InstanceType("local.2x", 2, 64L << 20, 1.9, InstanceType.Market.SPOT);

    static {
        try {
            CHECKPOINT = LlamaCheckpoint.load(SharedData.file("models/stories260K.bin"));
            TOKENIZER = Tokenizer.load(SharedData.file("models/tok512.bin"), CHECKPOINT.config().vocabSize());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** An engine, its provider and the instances launched on it. */
    record Served(ServingEngine engine, LocalInstanceProvider provider, List<Instance> instances) implements AutoCloseable {
        @Override
        public void close() {
            engine.close();
        }
    }

    static Served engine(int instances, UnaryOperator<ServingEngine.Builder> settings) {
        return engine(CHECKPOINT, TOKENIZER, instances, settings);
    }

    /** An engine on another model (same instance setup). */
    static Served engine(ModelWeights model, Tokenizer tokenizer, int instances,
                         UnaryOperator<ServingEngine.Builder> settings) {
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        List<Instance> launched = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            launched.add(provider.add(SPOT));
        }
        ServingEngine engine = settings.apply(ServingEngine.builder().model(model, tokenizer).instances(provider)
                .clock(clock)).build();
        return new Served(engine, provider, launched);
    }

    private TestModel() {
    }
}
