package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkerPoolTest {
    @Test
    void everyIndexRunsExactlyOnceAcrossManyJobs() {
        try (WorkerPool pool = new WorkerPool(3, "test")) {
            for (int job = 0; job < 2000; job++) {
                int n = 1 + job % 97;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                pool.parallelFor(n, true, (w, from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "job " + job + " index " + i);
                }
            }
        }
    }

    @Test
    void aFailureInAWorkerReachesTheCaller() {
        try (WorkerPool pool = new WorkerPool(2, "test")) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.parallelFor(10, true,
                    (w, from, to) -> {
                        if (from > 0) { // every chunk but the caller's first fails
                            throw new IllegalStateException("chunk " + from);
                        }
                    }));
            assertTrue(e.getMessage().startsWith("chunk "), e.getMessage());
            int[] sum = new int[1];
            pool.parallelFor(4, false, (w, from, to) -> sum[0] += to - from);
            assertEquals(4, sum[0]);
        }
    }
}
