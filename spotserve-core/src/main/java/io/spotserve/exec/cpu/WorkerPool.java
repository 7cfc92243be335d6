package io.spotserve.exec.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A small fixed pool for data-parallel loops (matrix rows, attention heads), owned by one executor.
 *
 * <p>Why not the ForkJoin common pool or an ExecutorService: a decode step issues a few dozen short
 * parallel loops (tens of microseconds each); queue hand-off and future allocation would cost as much as the
 * work. A loop is cut into a few chunks per thread that the caller and the workers claim from a shared
 * counter, so a worker the OS has descheduled delays nothing: the caller simply claims its chunks. Waiting
 * threads spin briefly, then park.
 *
 * <p>Loops are strictly sequential: {@link #parallelFor} returns only when every chunk is done, and callers
 * from different threads (two pipelines stepped side by side) take turns on the workers; a loop run on the caller
 * alone (one thread, or work too small to share) takes no turn. Bodies must not call back into the pool.
 */
final class WorkerPool implements AutoCloseable {
    /** The body of a parallel loop: process indices {@code [from, to)} on thread {@code worker} (0 = caller). */
    interface Body {
        void run(int worker, int from, int to);
    }

    /** Busy-wait iterations (about 50-100 µs) before a waiting thread parks. */
    private static final int SPINS = 2_000;
    /** Chunks per thread: small enough to balance around a slow thread, large enough to amortise a claim. */
    private static final int CHUNKS_PER_THREAD = 4;

    private static final class Job {
        final Body body;
        final int n;
        final int chunks;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final Thread caller = Thread.currentThread();
        volatile Throwable failure;

        Job(Body body, int n, int chunks) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
        }

        /** Claims and runs chunks until none is left; the thread finishing the last one wakes the caller. */
        void work(int worker) {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                try {
                    body.run(worker, (int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks));
                } catch (Throwable t) {
                    failure = t;
                }
                if (done.incrementAndGet() == chunks && Thread.currentThread() != caller) {
                    LockSupport.unpark(caller);
                }
            }
        }
    }

    private final int threads;
    private final Thread[] workers;
    private volatile Job job;
    private volatile boolean closed;
    /** Set by {@link #rest}: waiting helpers park at once until the next loop instead of spinning. */
    private volatile boolean resting;

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

    /**
     * Tells the helpers that no loop follows soon (this process's stages of a step ended and the step goes on in
     * another process): they park at once instead of spinning up to {@link #SPINS} for the next loop, so they leave
     * the cores to whoever runs next (the next stage's worker process on the same machine). The next loop wakes them.
     * A whole pipeline in one process does not call it: its next step usually starts within the spin.
     */
    void rest() {
        resting = true;
    }

    /** Number of threads, the caller included (worker indices are {@code [0, threads)}). */
    int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, n)} in contiguous chunks on all threads; on the caller alone when
     * {@code parallel} is false (the work is too small to pay for the hand-off).
     */
    void parallelFor(int n, boolean parallel, Body body) {
        if (n <= 0) {
            return;
        }
        if (!parallel || threads == 1 || n == 1) {
            body.run(0, 0, n); // on the caller alone: pipelines on other threads need not wait for it
            return;
        }
        runShared(n, body);
    }

    private synchronized void runShared(int n, Body body) {
        if (closed) {
            throw new IllegalStateException("worker pool is closed");
        }
        Job j = new Job(body, n, Math.min(n, threads * CHUNKS_PER_THREAD));
        resting = false;
        job = j;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        j.work(0);
        int spins = 0;
        while (j.done.get() != j.chunks) {
            if (++spins < SPINS) {
                Thread.onSpinWait();
            } else {
                LockSupport.park(this); // the thread finishing the last chunk unparks us
            }
        }
        Throwable failure = j.failure;
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
            Job j;
            int spins = 0;
            while ((j = job) == seen && !closed) {
                if (++spins < SPINS && !resting) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = j;
            j.work(index);
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
