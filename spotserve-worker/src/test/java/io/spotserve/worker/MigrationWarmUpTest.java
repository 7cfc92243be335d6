package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.plan.DeviceId;
import java.net.InetAddress;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A worker's migration warm-up moves whole rounds of its model's weight slices within its bounds, stops early once its
 * speed levels off, and leaves no device (hence no pipeline or slice) behind: the same device ids can be created again
 * and come back empty.
 */
class MigrationWarmUpTest {
    private static long roundBytes() {
        long n = 0;
        for (ContextSlice s : ShardLayout.of(MigrationWarmUp.MODEL, 1, 1).weightSlices(0, 0)) {
            n += SliceFormat.encodedLength(MigrationWarmUp.MODEL, s);
        }
        return n;
    }

    @Test
    void movesWholeRoundsWithinItsBoundsAndLeavesNothingBehind() {
        try (Executor ex = new CpuExecutor(ExecutorOptions.defaults().withThreads(1))) {
            long round = roundBytes();
            // bytes bound: stops at the first round that reaches it
            MigrationWarmUp.Result one = MigrationWarmUp.run(ex, Duration.ofSeconds(30), 1);
            assertEquals(1, one.rounds(), one.toString());
            assertEquals(round, one.bytes(), "a round moves every weight slice of the warm-up model once");
            // no bytes bound: ends when the speed levels off (or at the time bound), in whole rounds
            MigrationWarmUp.Result r = MigrationWarmUp.run(ex, Duration.ofSeconds(30), Long.MAX_VALUE);
            assertEquals(r.rounds() * round, r.bytes(), r.toString());
            assertTrue(r.rounds() >= MigrationWarmUp.LEVEL_ROUNDS + 1, "levelling off takes a best round and "
                    + MigrationWarmUp.LEVEL_ROUNDS + " more: " + r);
            assertTrue(r.took().compareTo(Duration.ofSeconds(30)) < 0, "it levelled off well before 30 s: " + r);
            // time bound: a zero-length window still runs one round
            MigrationWarmUp.Result t = MigrationWarmUp.run(ex, Duration.ofNanos(1), Long.MAX_VALUE);
            assertEquals(1, t.rounds(), t.toString());
            assertNothingLeft(ex);
        }
    }

    @Test
    void throughItsOwnBulkSocketMovesTheSameRoundsAndLeavesNothingBehind() throws Exception {
        try (Executor ex = new CpuExecutor(ExecutorOptions.defaults().withThreads(1))) {
            long round = roundBytes();
            InetAddress loopback = InetAddress.getLoopbackAddress();
            // every slice through ticket, sender, socket and receiver: the bytes the sender reports were imported
            MigrationWarmUp.Result one = MigrationWarmUp.run(ex, Duration.ofSeconds(30), 1, loopback);
            assertEquals(1, one.rounds(), one.toString());
            assertEquals(round, one.bytes(), "a round sends every weight slice of the warm-up model once");
            MigrationWarmUp.Result r = MigrationWarmUp.run(ex, Duration.ofSeconds(30), 3 * round, loopback);
            assertEquals(3, r.rounds(), r.toString());
            assertEquals(3 * round, r.bytes(), r.toString());
            assertNothingLeft(ex);
        }
    }

    private static void assertNothingLeft(Executor ex) {
        for (int g = 0; g < 2; g++) {
            Device d = ex.createDevice(new DeviceId("migration-warm-up", g), 1 << 20);
            assertEquals(0, d.usedBytes(), "the warm-up's device " + g + " was destroyed with everything on it");
            ex.destroyDevice(d);
        }
    }
}
