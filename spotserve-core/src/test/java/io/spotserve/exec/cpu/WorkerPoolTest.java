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

    /**
     * A loop the caller runs alone (one thread, or too small to share) takes no turn on the pool: two pipelines
     * stepped from two threads compute at once. Each body waits until the other is inside too; with a lock around
     * every loop the second could not enter and both would time out.
     */
    @Test
    void loopsOnTheCallerAloneRunConcurrently() throws Exception {
        for (int threads : new int[] {1, 2}) {
            try (WorkerPool pool = new WorkerPool(threads, "test")) {
                java.util.concurrent.CountDownLatch inside = new java.util.concurrent.CountDownLatch(2);
                boolean parallel = threads == 2 ? false : true; // threads = 2: a loop too small to share
                java.util.concurrent.Callable<Boolean> loop = () -> {
                    boolean[] met = new boolean[1];
                    pool.parallelFor(8, parallel, (w, from, to) -> {
                        inside.countDown();
                        try {
                            met[0] = inside.await(10, java.util.concurrent.TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    });
                    return met[0];
                };
                java.util.concurrent.ExecutorService two = java.util.concurrent.Executors.newFixedThreadPool(2);
                try {
                    var a = two.submit(loop);
                    var b = two.submit(loop);
                    assertTrue(a.get(30, java.util.concurrent.TimeUnit.SECONDS), "threads = " + threads);
                    assertTrue(b.get(30, java.util.concurrent.TimeUnit.SECONDS), "threads = " + threads);
                } finally {
                    two.shutdownNow();
                }
            }
        }
    }
}
