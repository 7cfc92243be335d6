package io.spotserve.exec.cpu;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Fp16WeightsContract;

/** Runs {@link Fp16WeightsContract} on the CPU executor, which keeps fp16-rounded weights in floats. */
class CpuFp16WeightsTest extends Fp16WeightsContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }

    @Override
    protected int storedBytesPerFp16Weight() {
        return Float.BYTES;
    }
}
