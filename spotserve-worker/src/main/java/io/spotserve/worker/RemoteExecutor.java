package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.CreateDeviceRequest;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.OpenBulkRequest;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SendSliceRequest;
import io.spotserve.worker.proto.SendSlicesRequest;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.SliceRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The executor SPI over worker processes: devices are the registered workers' devices, a pipeline's stages run
 * in the workers that hold them. Activations go worker to worker (the controller sends tokens to the first
 * stage's worker and gets the logits back from it); a tensor group (the M shards of one stage) inside one worker
 * reduces in-process, one split over several workers exchanges its partial sums worker to worker at each reduce point
 * (the engine chooses such layouts only when {@link #tensorGroupsSpanInstances()} says so). {@link #transfer} streams
 * slices worker to worker. A call that touches a worker declared dead, or whose connection fails, throws
 * {@link DeviceLostException}; a result that arrives from a worker declared dead in the meantime is discarded the same
 * way. Migration moves are staged on the source worker
 * ({@code Pipeline.stageSlice}) and streamed from there to the target worker ({@code Pipeline.importStaged}); a
 * staged slice whose worker died fails its import with {@link DeviceLostException}.
 *
 * <p>Bytes that cross the wire are counted: {@link #sliceBytes()} (weights and KV slices in SliceFormat, whichever
 * processes they moved between; split into {@link #peerSliceBytes()} worker to worker and {@link #relayedSliceBytes()}
 * through the controller) and {@link #activationBytes()} (residual streams between stages).
 */
public final class RemoteExecutor implements Executor {
    private final RemoteInstanceProvider provider;
    private final Channels channels;
    private final AtomicLong nextPipeline = new AtomicLong(1);
    private final AtomicLong peerBytes = new AtomicLong();
    private final AtomicLong relayedBytes = new AtomicLong();
    private final AtomicLong peerSlices = new AtomicLong();
    private final AtomicLong peerCalls = new AtomicLong();
    private final AtomicLong staged = new AtomicLong();
    private final AtomicLong activationBytes = new AtomicLong();
    private final AtomicLong reduceBytes = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong stepComputeNanos = new AtomicLong();
    private final AtomicLong stepHandlerNanos = new AtomicLong();

    RemoteExecutor(RemoteInstanceProvider provider, Channels channels) {
        this.provider = provider;
        this.channels = channels;
    }

    /**
     * What the provider was built with ({@link RemoteInstanceProvider.Builder#tensorGroupsSpanWorkers}, default
     * false): false keeps a tensor group inside one worker, where it reduces in-process, and the engine places each
     * group on one instance; true lets the engine split a group over several workers, whose members then exchange
     * their partial sums worker to worker at every reduce point. Pipelines of either kind run on this executor
     * whatever it says ({@link #createPipeline} takes any placement); it only steers the engine's planner.
     */
    @Override
    public boolean tensorGroupsSpanInstances() {
        return provider.tensorGroupsSpanWorkers();
    }

    @Override
    public String name() {
        return "remote";
    }

    @Override
    public ExecutorOptions options() {
        return ExecutorOptions.defaults();
    }

    /**
     * The most bytes one matrix weight takes on any live worker (each worker's executor says it at registration: 4 for
     * fp32, 2 for fp16 halves, 1.0625 for Q8_0 blocks), so the planner never under-counts a worker; 4 while no worker
     * is live. It changes as workers come and go: the engine's planner reads it at every decision.
     */
    @Override
    public double storedBytesPerWeightExact() {
        return provider.bytesPerWeight(Float.BYTES);
    }

    /** {@link #storedBytesPerWeightExact()} rounded up to whole bytes. */
    @Override
    public int storedBytesPerWeight() {
        return (int) Math.ceil(storedBytesPerWeightExact());
    }

    /**
     * Bytes of weight and KV slices moved over the network so far (SliceFormat, headers included): {@link
     * #peerSliceBytes()} plus {@link #relayedSliceBytes()}.
     */
    public long sliceBytes() {
        return peerBytes.get() + relayedBytes.get();
    }

    /** Bytes of slices that went from one worker to another directly (migration moves, {@link #transfer}). */
    public long peerSliceBytes() {
        return peerBytes.get();
    }

    /**
     * Bytes of slices that passed through the controller: exported to it or imported from it (weights streamed
     * from the controller's checkpoint, KV caches parked in its memory, slices staged elsewhere).
     */
    public long relayedSliceBytes() {
        return relayedBytes.get();
    }

    /** Slices staged on workers by this executor's pipelines and not released yet. */
    public long stagedSlices() {
        return staged.get();
    }

    /** Bytes of activations handed from stage to stage between workers so far. */
    public long activationBytes() {
        return activationBytes.get();
    }

    /** Counts slices sent worker to worker by their sender's reply. */
    void countPeer(SendSliceReply r) {
        peerBytes.addAndGet(r.getBytes());
        peerSlices.addAndGet(r.getSlices());
        peerCalls.incrementAndGet();
    }

    /**
     * Worker-to-worker moves so far, each one call to the source worker carrying one or more of the
     * {@link #peerSlices} ({@link #transferAll} and the engine's batched migrations carry several).
     */
    public long peerTransfers() {
        return peerCalls.get();
    }

    /**
     * Slices that went worker to worker so far; each carries {@link io.spotserve.exec.SliceFormat#HEADER_BYTES} of
     * header besides its payload in {@link #peerSliceBytes()}.
     */
    public long peerSlices() {
        return peerSlices.get();
    }

    /** What the staging area of live worker {@code instance} holds now (tests, diagnostics). */
    io.spotserve.worker.proto.StagingState stagingUsage(String instance) {
        RemoteInstanceProvider.WorkerLink w = provider.live(instance);
        if (w == null) {
            throw new IllegalArgumentException(instance + " is not a live worker");
        }
        return call(List.of(w), w, ch -> WorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                .stagingUsage(io.spotserve.worker.proto.Ack.getDefaultInstance()));
    }

    void countRelayed(long bytes) {
        relayedBytes.addAndGet(bytes);
    }

    void staged(int delta) {
        staged.addAndGet(delta);
    }

    /** Forward steps run on workers so far (one per pipeline step, whatever the number of workers it crosses). */
    public long steps() {
        return steps.get();
    }

    /**
     * Nanoseconds the workers spent in their stages' forward passes over all {@link #steps()} (summed over the workers
     * of each step): beside the steps' wall time on the caller's side, what the network and the hand-offs cost.
     */
    public long stepComputeNanos() {
        return stepComputeNanos.get();
    }

    /**
     * Nanoseconds the workers spent handling the steps, from the handler's start to its reply, calls to the next
     * worker excluded (summed over the workers of each step): {@link #stepComputeNanos()} plus decoding, checking
     * and encoding.
     */
    public long stepHandlerNanos() {
        return stepHandlerNanos.get();
    }

    void countStep(long computeNanos, long handlerNanos) {
        steps.incrementAndGet();
        stepComputeNanos.addAndGet(computeNanos);
        stepHandlerNanos.addAndGet(handlerNanos);
    }

    void countActivations(long bytes) {
        activationBytes.addAndGet(bytes);
    }

    /**
     * Bytes of partial outputs the members of tensor groups split over workers sent each other at their reduce points
     * so far (summed over senders and receivers: each member sends its shards' partials to every other member).
     */
    public long reduceBytes() {
        return reduceBytes.get();
    }

    void countReduce(long bytes) {
        reduceBytes.addAndGet(bytes);
    }

    /** The channel to worker {@code w} (calls on it must run inside {@link #call}). */
    ManagedChannel channel(RemoteInstanceProvider.WorkerLink w) {
        return channels.to(w.address);
    }

    long newPipelineId() {
        return nextPipeline.getAndIncrement();
    }

    @Override
    public Device createDevice(DeviceId id, long capacityBytes) {
        Objects.requireNonNull(id, "id");
        RemoteInstanceProvider.WorkerLink w = provider.live(id.instance());
        if (w == null) {
            throw new IllegalArgumentException("device " + id + ": instance " + id.instance() + " is not a live worker");
        }
        call(List.of(w), w, ch -> WorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                .createDevice(CreateDeviceRequest.newBuilder().setDevice(Wire.ref(id)).setCapacityBytes(capacityBytes)
                        .build()));
        return new RemoteDevice(this, id, capacityBytes, w);
    }

    @Override
    public void destroyDevice(Device device) {
        RemoteDevice d = own(device);
        if (d.worker.dead) {
            return; // its memory went with its process
        }
        call(List.of(d.worker), d.worker, ch -> WorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                .destroyDevice(Wire.ref(d.id)));
    }

    RemoteDevice own(Device device) {
        if (!(device instanceof RemoteDevice d) || d.executor != this) {
            throw new IllegalArgumentException("device " + device + " was not created by this remote executor");
        }
        return d;
    }

    @Override
    public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(devices, "devices");
        int positions = layout.stages() * layout.shards();
        if (devices.size() != positions) {
            throw new IllegalArgumentException(layout + " has " + positions + " positions but " + devices.size()
                    + " devices were given (stage-major: index = stage * M + shard)");
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, was " + maxBatch);
        }
        List<RemoteDevice> own = new ArrayList<>();
        for (Device d : devices) {
            own.add(own(d));
        }
        return RemotePipeline.create(this, layout, own, maxBatch);
    }

    @Override
    public ContextSlice transfer(Pipeline from, int fromStage, int fromShard, ContextSlice slice, Pipeline to,
                                 int toStage, int toShard) {
        if (!(from instanceof RemotePipeline src) || !(to instanceof RemotePipeline dst) || src.executor != this
                || dst.executor != this) {
            return Executor.super.transfer(from, fromStage, fromShard, slice, to, toStage, toShard);
        }
        RemotePipeline.Segment s = src.segmentOf(fromStage, fromShard);
        RemotePipeline.Segment t = dst.segmentOf(toStage, toShard);
        SendSliceReply r = call(List.of(s.worker(), t.worker()), s.worker(), ch -> WorkerGrpc.newBlockingStub(ch)
                .withDeadlineAfter(150, TimeUnit.SECONDS).sendSlice(SendSliceRequest.newBuilder()
                        .setSource(SliceRequest.newBuilder().setPosition(s.position(fromStage, fromShard))
                                .setSlice(Wire.sliceHeader(slice)))
                        .setPeerAddress(t.worker().address).setTarget(t.position(toStage, toShard)).build()));
        if (s.worker() != t.worker()) {
            countPeer(r);
        }
        dst.imported(slice);
        return slice;
    }

    /**
     * Moves several slices of one position to one position of another pipeline, as {@link #transfer} does each, in
     * one call to the source worker: over the bulk socket it exports slice i+1 while slice i travels and the receiver
     * imports slice i while it reads slice i+1 (at most two slices in memory on each side). Slices that fall back to
     * the in-process default (pipelines of other executors) move one by one.
     *
     * @return the slices moved, in order
     * @throws IllegalArgumentException as {@link #transfer}; if the receiver refused a slice, the ones before it in
     *                                  {@code slices} were imported (the message says how many)
     */
    @Override
    public List<ContextSlice> transferAll(Pipeline from, int fromStage, int fromShard, List<ContextSlice> slices,
                                          Pipeline to, int toStage, int toShard) {
        Objects.requireNonNull(slices, "slices");
        if (!(from instanceof RemotePipeline src) || !(to instanceof RemotePipeline dst) || src.executor != this
                || dst.executor != this) {
            List<ContextSlice> out = new ArrayList<>();
            for (ContextSlice s : slices) {
                out.add(transfer(from, fromStage, fromShard, s, to, toStage, toShard));
            }
            return out;
        }
        if (slices.isEmpty()) {
            return List.of();
        }
        if (slices.size() > BulkTransfer.MAX_SLICES_PER_TICKET) { // one call carries at most what one ticket names
            List<ContextSlice> out = new ArrayList<>(slices.size());
            for (int i = 0; i < slices.size(); i += BulkTransfer.MAX_SLICES_PER_TICKET) {
                out.addAll(transferAll(from, fromStage, fromShard, slices.subList(i, Math.min(slices.size(),
                        i + BulkTransfer.MAX_SLICES_PER_TICKET)), to, toStage, toShard));
            }
            return out;
        }
        RemotePipeline.Segment s = src.segmentOf(fromStage, fromShard);
        RemotePipeline.Segment t = dst.segmentOf(toStage, toShard);
        SendSlicesRequest.Builder req = SendSlicesRequest.newBuilder().setPosition(s.position(fromStage, fromShard))
                .setPeerAddress(t.worker().address).setTarget(t.position(toStage, toShard));
        for (ContextSlice slice : slices) {
            req.addSlices(Wire.sliceHeader(slice));
        }
        BulkTicket ticket = ticketFor(s.worker(), t.worker(), req.getTarget(), req.getSlicesList());
        if (ticket != null) {
            req.setTicket(ticket);
        }
        SendSliceReply r = call(List.of(s.worker(), t.worker()), s.worker(), ch -> WorkerGrpc.newBlockingStub(ch)
                .withDeadlineAfter(150L + 10L * slices.size(), TimeUnit.SECONDS).sendSlices(req.build()));
        if (s.worker() != t.worker()) {
            countPeer(r);
            long now = System.nanoTime();
            if (pairTransfers.size() >= PAIRS_KEPT) { // pairs of workers long gone or idle: forget them
                pairTransfers.values().removeIf(last -> now - last >= KEPT_NANOS);
            }
            pairTransfers.put(pair(s.worker(), t.worker()), now);
        }
        for (ContextSlice slice : slices) {
            dst.imported(slice);
        }
        return List.copyOf(slices);
    }

    /**
     * True: one {@link #transferAll} call streams consecutive slices worker to worker without a round trip each, so the
     * engine's migrations send the pieces that cross workers in batches. The system property
     * {@code spotserve.worker.batchTransfers=false} turns that off (every piece is then staged at its source and sent
     * alone, as before; for comparisons).
     */
    @Override
    public boolean batchesTransfers() {
        return BATCH_TRANSFERS;
    }

    private static final boolean BATCH_TRANSFERS = !"false".equals(System.getProperty("spotserve.worker.batchTransfers"));

    /**
     * Whether {@link #transferAll} asks the target for the bulk ticket itself, over the channel it already holds, when
     * the source has not sent to that target lately; {@code spotserve.worker.controllerTickets=false} turns it off
     * (the source then asks, as before; for comparisons).
     */
    private static final boolean CONTROLLER_TICKETS =
            !"false".equals(System.getProperty("spotserve.worker.controllerTickets"));

    /**
     * A source that sent to a target this recently still keeps its bulk connection ({@link BulkTransfer#KEEP_MS},
     * halved for margin): no ticket is fetched for it. A ticket fetched for a pair whose connection is still kept goes
     * unused and expires ({@link BulkTransfer#TICKET_LIFETIME_MS}); at most one per pair per this interval.
     */
    private static final long KEPT_NANOS = TimeUnit.MILLISECONDS.toNanos(BulkTransfer.KEEP_MS / 2);

    /** Pairs remembered before the idle ones are dropped (a fleet's churn adds pairs with new epochs). */
    private static final int PAIRS_KEPT = 1024;
    /** Workers without a bulk socket remembered before the memory is cleared (asking again costs one call each). */
    private static final int WITHOUT_BULK_KEPT = 4096;

    /** Source→target pairs (with epochs) and when a transfer between them last ended ({@link System#nanoTime}). */
    private final Map<String, Long> pairTransfers = new ConcurrentHashMap<>();
    /** Workers (with epochs) that answered {@code OpenBulk} with UNIMPLEMENTED: no bulk socket, nothing to fetch. */
    private final Set<String> withoutBulk = ConcurrentHashMap.newKeySet();
    private final AtomicLong controllerTickets = new AtomicLong();

    /** A worker's identity in these memories: its id and epoch (a worker that re-registers is another one). */
    private static String key(RemoteInstanceProvider.WorkerLink w) {
        return w.id + "#" + w.epoch;
    }

    private static String pair(RemoteInstanceProvider.WorkerLink from, RemoteInstanceProvider.WorkerLink to) {
        return key(from) + ">" + key(to);
    }

    /**
     * The bulk ticket for a transfer of {@code headers} into {@code target} on {@code to}, obtained here over the
     * controller's channel to {@code to} (already open: the controller created the target's pipeline) when {@code from}
     * has not sent to {@code to} within {@link #KEPT_NANOS}; null otherwise, or when {@code to} has no bulk socket or
     * the call failed (the source then asks for one itself, and reports any real refusal).
     */
    private BulkTicket ticketFor(RemoteInstanceProvider.WorkerLink from, RemoteInstanceProvider.WorkerLink to,
                                 PositionRef target, List<ByteString> headers) {
        if (!CONTROLLER_TICKETS || from == to || withoutBulk.contains(key(to))) {
            return null;
        }
        Long last = pairTransfers.get(pair(from, to));
        if (last != null && System.nanoTime() - last < KEPT_NANOS) {
            return null;
        }
        try {
            BulkTicket t = call(List.of(to), to, ch -> PeerGrpc.newBlockingStub(ch).withDeadlineAfter(10,
                    TimeUnit.SECONDS).openBulk(OpenBulkRequest.newBuilder().setTarget(target).addAllSlices(headers)
                    .build()));
            controllerTickets.incrementAndGet();
            return t;
        } catch (RuntimeException e) {
            if (e.getCause() instanceof StatusRuntimeException sre
                    && sre.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                if (withoutBulk.size() >= WITHOUT_BULK_KEPT) {
                    withoutBulk.clear();
                }
                withoutBulk.add(key(to));
            }
            return null;
        }
    }

    /** How many bulk tickets {@link #transferAll} obtained from targets itself (the sources asked for none of them). */
    public long controllerTickets() {
        return controllerTickets.get();
    }

    /**
     * Runs {@code rpc} against {@code target} inside its cancellable context; every worker in {@code involved}
     * must be live before and after, else the call counts as lost.
     */
    <T> T call(List<RemoteInstanceProvider.WorkerLink> involved, RemoteInstanceProvider.WorkerLink target,
               Function<ManagedChannel, T> rpc) {
        requireLive(involved, null);
        // the call is cancelled as soon as any worker it involves is declared dead (a step waiting on a hung
        // downstream stage fails then, not at its deadline)
        Context.CancellableContext ctx = Context.ROOT.withCancellation();
        Context.CancellationListener onDeath = dead -> ctx.cancel(dead.cancellationCause());
        for (RemoteInstanceProvider.WorkerLink w : involved) {
            w.calls.addListener(onDeath, Runnable::run);
        }
        T result;
        try {
            result = ctx.call(() -> rpc.apply(channels.to(target.address)));
        } catch (StatusRuntimeException e) {
            throw translate(e, involved);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        } finally {
            for (RemoteInstanceProvider.WorkerLink w : involved) {
                w.calls.removeListener(onDeath);
            }
            ctx.cancel(null);
        }
        requireLive(involved, null); // a worker declared dead meanwhile: its result is not used
        return result;
    }

    private void requireLive(List<RemoteInstanceProvider.WorkerLink> involved, Throwable cause) {
        List<DeviceId> lost = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        for (RemoteInstanceProvider.WorkerLink w : involved) {
            if (w.dead) {
                names.add(w.id + " (epoch " + w.epoch + ")");
                for (int g = 0; g < w.devices; g++) {
                    lost.add(new DeviceId(w.id, g));
                }
            }
        }
        if (!lost.isEmpty()) {
            throw new DeviceLostException(lost, "worker " + String.join(", ", names) + " was declared dead; its "
                    + "devices and everything on them are lost", cause);
        }
    }

    private RuntimeException translate(StatusRuntimeException e, List<RemoteInstanceProvider.WorkerLink> involved) {
        Status s = e.getStatus();
        String msg = s.getDescription() == null ? s.getCode().toString() : s.getDescription();
        switch (s.getCode()) {
            case INVALID_ARGUMENT:
            case NOT_FOUND:
                return new IllegalArgumentException(msg, e);
            case FAILED_PRECONDITION:
            case UNAUTHENTICATED:
            case PERMISSION_DENIED:
                return new IllegalStateException(msg, e);
            case UNIMPLEMENTED:
                return new UnsupportedOperationException(msg, e);
            case RESOURCE_EXHAUSTED: {
                String m = e.getTrailers() == null ? null : e.getTrailers().get(WorkerService.MEMORY);
                if (m != null) {
                    String[] f = m.split(",");
                    if (f.length == 5) {
                        try {
                            return new DeviceMemoryException(new DeviceId(f[0], Integer.parseInt(f[1])),
                                    "a request to worker (" + msg + ")", Long.parseLong(f[2]), Long.parseLong(f[3]),
                                    Long.parseLong(f[4]));
                        } catch (IllegalArgumentException ignored) {
                            // fall through: a malformed trailer is reported as the status itself
                        }
                    }
                }
                return new IllegalStateException(msg, e);
            }
            default: {
                // UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, INTERNAL...: a process or its connection is gone
                requireLive(involved, e);
                if (involved.size() > 1 && provider.awaitDeath(involved)) {
                    // a step relayed through several workers fails on all of them when one dies: only the one the
                    // provider declares dead (at once for a dropped connection, within the lease for a hung one)
                    // is lost, so an engine keeps serving on the others
                    requireLive(involved, e);
                }
                List<DeviceId> all = new ArrayList<>();
                for (RemoteInstanceProvider.WorkerLink w : involved) {
                    for (int g = 0; g < w.devices; g++) {
                        all.add(new DeviceId(w.id, g));
                    }
                }
                return new DeviceLostException(all, "a call to workers " + names(involved) + " failed with "
                        + s.getCode() + " (" + msg + "); treating their devices as lost", e);
            }
        }
    }

    private static String names(List<RemoteInstanceProvider.WorkerLink> ws) {
        List<String> out = new ArrayList<>();
        for (RemoteInstanceProvider.WorkerLink w : ws) {
            out.add(w.id);
        }
        return out.toString();
    }

    /** Streams chunks to a client-streaming import (the controller's own bytes) and waits for the answer. */
    ImportReply push(RemoteInstanceProvider.WorkerLink w, List<SliceChunk> chunks) {
        return call(List.of(w), w, ch -> {
            CompletableFuture<ImportReply> done = Wire.streamChunks(
                    WorkerGrpc.newStub(ch).withDeadlineAfter(120, TimeUnit.SECONDS)::importSlice, chunks,
                    () -> Status.INTERNAL.withDescription("worker answered nothing").asRuntimeException());
            try {
                return done.get(130, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
            } catch (ExecutionException e) {
                throw e.getCause() instanceof StatusRuntimeException sre ? sre
                        : Status.INTERNAL.withCause(e.getCause()).asRuntimeException();
            } catch (TimeoutException e) {
                throw Status.DEADLINE_EXCEEDED.withDescription("slice import timed out").asRuntimeException();
            }
        });
    }

    @Override
    public void close() {
        // the channels belong to the provider; pipelines close themselves
    }

    @Override
    public String toString() {
        return "RemoteExecutor[" + provider.address() + "]";
    }
}
