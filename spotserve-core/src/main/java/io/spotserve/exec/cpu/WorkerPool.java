package io.spotserve.exec.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A small fixed pool for data-parallel loops (matrix rows, attention heads), owned by one executor.
 *
 * <p>Why not the ForkJoin common pool or an ExecutorService: a decode step issues a few dozen short
 * parallel loops (tens of microseconds each); queue hand-off and future allocation would cost as much as the
 * work. Workers spin briefly, then park, waiting for the next job; the calling thread runs chunk 0 itself.
 * Jobs are strictly sequential: {@link #parallelFor} returns only when every chunk is done, and callers from
 * different threads (two pipelines driven by two engine threads) take turns. Bodies must not call back into
 * the pool.
 */
final class WorkerPool implements AutoCloseable {
    /** The body of a parallel loop: process indices {@code [from, to)} as worker {@code worker}. */
    interface Body {
        void run(int worker, int from, int to);
    }

    /** Busy-wait iterations (about 50-100 µs) before a waiting thread parks. */
    private static final int SPINS = 2_000;

    private static final class Job {
        final Body body;
        final int n;
        final int chunks;
        final AtomicInteger pending;
        final Thread caller = Thread.currentThread();
        volatile Throwable failure;

        Job(Body body, int n, int chunks) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
            this.pending = new AtomicInteger(chunks - 1);
        }

        void runChunk(int c) {
            int from = (int) ((long) n * c / chunks);
            int to = (int) ((long) n * (c + 1) / chunks);
            body.run(c, from, to);
        }
    }

    private final int threads;
    private final Thread[] workers;
    private volatile Job job;
    private volatile boolean closed;
    private Thread owner;

    WorkerPool(int threads, String name) {
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int index = i + 1;
            Thread t = new Thread(() -> loop(index), name + "-" + index);
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    /** Number of workers, the caller included. */
    int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, n)} split into contiguous chunks, one per worker; single-threaded when
     * {@code parallel} is false (the work is too small to pay for the hand-off).
     */
    synchronized void parallelFor(int n, boolean parallel, Body body) {
        if (n <= 0) {
            return;
        }
        int chunks = parallel ? Math.min(threads, n) : 1;
        if (chunks == 1) {
            body.run(0, 0, n);
            return;
        }
        if (closed) {
            throw new IllegalStateException("worker pool is closed");
        }
        Job j = new Job(body, n, chunks);
        job = j;
        for (int i = 0; i < chunks - 1; i++) {
            LockSupport.unpark(workers[i]);
        }
        Throwable mine = null;
        try {
            j.runChunk(0);
        } catch (Throwable t) {
            mine = t;
        }
        int spins = 0;
        while (j.pending.get() != 0) {
            if (++spins < SPINS) {
                Thread.onSpinWait();
            } else {
                LockSupport.park(this); // the last worker to finish unparks us
            }
        }
        Throwable failure = mine != null ? mine : j.failure;
        if (failure instanceof RuntimeException e) {
            throw e;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
    }

    private void loop(int index) {
        Job seen = null;
        while (!closed) {
            Job j = job;
            if (j == null || j == seen) {
                int spins = 0;
                while ((j = job) == seen && !closed) {
                    if (++spins < SPINS) {
                        Thread.onSpinWait();
                    } else {
                        LockSupport.park(this);
                    }
                }
                if (closed) {
                    return;
                }
            }
            seen = j;
            if (index < j.chunks) {
                try {
                    j.runChunk(index);
                } catch (Throwable t) {
                    j.failure = t;
                } finally {
                    if (j.pending.decrementAndGet() == 0) {
                        LockSupport.unpark(j.caller);
                    }
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : workers) {
            LockSupport.unpark(t);
        }
    }
}
