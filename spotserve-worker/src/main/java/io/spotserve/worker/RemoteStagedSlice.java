package io.spotserve.worker;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.StagedSlice;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.StagedRef;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A slice staged in a worker's staging area ({@code Worker/StageSlice}): the controller holds only its handle. A
 * {@link RemotePipeline} imports it by telling the source worker to send it to the target worker
 * ({@code Worker/SendStaged}, which uses the handle up); {@link #data()} fetches the bytes to the controller for any
 * other target. {@link #release()} frees what is still staged; a worker declared dead freed everything with its
 * process (or its fence), so nothing is sent to it then.
 */
final class RemoteStagedSlice implements StagedSlice {
    final RemoteExecutor executor;
    final RemoteInstanceProvider.WorkerLink worker;
    final long handle;
    private final ContextSlice slice;
    private final long bytes;
    private final AtomicBoolean released = new AtomicBoolean();
    /** Set once a send was asked for: the worker used the handle up, whatever the outcome. */
    private final AtomicBoolean sent = new AtomicBoolean();

    RemoteStagedSlice(RemoteExecutor executor, RemoteInstanceProvider.WorkerLink worker, StagedRef ref,
                      ContextSlice slice) {
        this.executor = executor;
        this.worker = worker;
        this.handle = ref.getHandle();
        this.bytes = ref.getBytes();
        this.slice = slice;
        executor.staged(1);
    }

    @Override
    public ContextSlice slice() {
        return slice;
    }

    @Override
    public long bytes() {
        return bytes;
    }

    /**
     * Marks the handle as used by a send about to be asked for.
     *
     * @throws IllegalStateException if it was released or sent before
     */
    void takeForSend() {
        if (released.get()) {
            throw new IllegalStateException("staged " + slice + " on " + worker.id + " was released");
        }
        if (!sent.compareAndSet(false, true)) {
            throw new IllegalStateException("staged " + slice + " on " + worker.id + " was sent already");
        }
    }

    @Override
    public byte[] data() {
        if (released.get()) {
            throw new IllegalStateException("staged " + slice + " on " + worker.id + " was released");
        }
        if (sent.get()) {
            throw new IllegalStateException("staged " + slice + " on " + worker.id + " was sent already");
        }
        byte[] out = executor.call(List.of(worker), worker, ch -> {
            Iterator<SliceChunk> it = WorkerGrpc.newBlockingStub(ch).withDeadlineAfter(120, TimeUnit.SECONDS)
                    .fetchStaged(StagedRef.newBuilder().setHandle(handle).build());
            Wire.Assembly a = new Wire.Assembly();
            while (it.hasNext()) {
                a.add(it.next());
            }
            return a.bytes();
        });
        executor.countRelayed(out.length);
        return out;
    }

    @Override
    public boolean released() {
        return released.get();
    }

    @Override
    public void release() {
        if (!released.compareAndSet(false, true)) {
            return;
        }
        executor.staged(-1);
        if (sent.get() || worker.dead) {
            return; // used up by its send, or gone with its worker
        }
        try {
            executor.call(List.of(worker), worker, ch -> WorkerGrpc.newBlockingStub(ch)
                    .withDeadlineAfter(10, TimeUnit.SECONDS)
                    .releaseStaged(StagedRef.newBuilder().setHandle(handle).build()));
        } catch (RuntimeException e) {
            // the worker cannot answer: its staging timeout frees the bytes, or its death does
        }
    }

    @Override
    public String toString() {
        return "RemoteStagedSlice[" + slice + " on " + worker.id + " #" + handle + ", " + bytes + " B"
                + (released() ? ", released" : "") + "]";
    }
}
