package io.spotserve.exec.cpu;

import io.spotserve.exec.DeviceArenaContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/** Runs the executor contract {@link DeviceArenaContract} on the CPU executor. */
class CpuDeviceArenaTest extends DeviceArenaContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
