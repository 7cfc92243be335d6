package io.spotserve.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.StagedSlice;
import io.spotserve.exec.spi.AbstractPipeline;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelSource;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import io.spotserve.worker.proto.CreateStagesRequest;
import io.spotserve.worker.proto.GroupMember;
import io.spotserve.worker.proto.Hop;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.LoadSliceRequest;
import io.spotserve.worker.proto.LoadWeightsRequest;
import io.spotserve.worker.proto.PipelineRef;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SendStagedRequest;
import io.spotserve.worker.proto.SequenceRequest;
import io.spotserve.worker.proto.StagedRef;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.SliceRequest;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * A pipeline whose stages live in worker processes: consecutive stages on one worker form a segment, a partial
 * pipeline there ({@code Executor.createStages}). A step enters at the first segment's worker, which hands the
 * activations to the next segment's worker, and so on; the last returns the logits up the chain. The controller
 * mirrors the sequences' filled lengths (the workers check them again).
 */
final class RemotePipeline implements Pipeline {
    /**
     * A run of consecutive stages held by one worker as its partial pipeline {@code id}: all M shards of them, or
     * shards {@code shards} when a stage's tensor group is split over several workers (one segment per member).
     */
    record Segment(RemoteInstanceProvider.WorkerLink worker, long id, IndexRange stages, IndexRange shards) {
        PositionRef position(int stage, int shard) {
            return PositionRef.newBuilder().setPipeline(id).setStage(stage).setShard(shard).build();
        }
    }

    final RemoteExecutor executor;
    private final ShardLayout layout;
    private final LlamaConfig c;
    private final List<RemoteDevice> devices;
    private final int maxBatch;
    private final List<Segment> segments;
    /** The segments by stage group, in stage order: one segment each, or a split group's members in shard order. */
    private final List<List<Segment>> levels;
    private final java.util.concurrent.atomic.AtomicLong nextStep = new java.util.concurrent.atomic.AtomicLong(1);
    private final List<RemoteInstanceProvider.WorkerLink> workers;
    private final Map<Long, int[]> sequences = new LinkedHashMap<>(); // id -> {capacity, length}
    private boolean closed;
    /** The step link to the first stage's worker. */
    private final CachedLink steps = new CachedLink();
    /** The step link to the last stage's worker that collects the logits (chains over several workers only). */
    private final CachedLink collects = new CachedLink();

    /**
     * Whether a chain over several workers has its last stage's worker keep the logits for the controller to collect
     * over its own step socket (one hop fewer for the step's largest payload) instead of relaying them back through
     * every earlier worker; {@code -Dspotserve.worker.relayLogits=true} turns it off (for A/B measurements).
     */
    static volatile boolean directLogits = !Boolean.getBoolean("spotserve.worker.relayLogits");

    private RemotePipeline(RemoteExecutor executor, ShardLayout layout, List<RemoteDevice> devices, int maxBatch,
                           List<Segment> segments, List<List<Segment>> levels) {
        this.executor = executor;
        this.layout = layout;
        this.c = layout.config();
        this.devices = devices;
        this.maxBatch = maxBatch;
        this.segments = segments;
        this.levels = levels;
        Set<RemoteInstanceProvider.WorkerLink> ws = new LinkedHashSet<>();
        for (Segment s : segments) {
            ws.add(s.worker());
        }
        this.workers = List.copyOf(ws);
    }

    static RemotePipeline create(RemoteExecutor executor, ShardLayout layout, List<RemoteDevice> devices, int maxBatch) {
        int m = layout.shards();
        // per stage, its members: runs of consecutive shards on one worker
        List<List<Map.Entry<RemoteInstanceProvider.WorkerLink, IndexRange>>> parts = new ArrayList<>();
        for (int p = 0; p < layout.stages(); p++) {
            // (a worker holding two runs, e.g. shards 0 and 2 of 4, hosts two members, each its own partial pipeline)
            List<Map.Entry<RemoteInstanceProvider.WorkerLink, IndexRange>> ms = new ArrayList<>();
            int from = 0;
            for (int s = 1; s <= m; s++) {
                RemoteInstanceProvider.WorkerLink w = devices.get(p * m + from).worker;
                if (s == m || devices.get(p * m + s).worker != w) {
                    ms.add(Map.entry(w, new IndexRange(from, s)));
                    from = s;
                }
            }
            parts.add(ms);
        }
        List<List<Segment>> levels = new ArrayList<>();
        int from = 0;
        for (int p = 1; p <= layout.stages(); p++) {
            if (p == layout.stages() || !parts.get(p).equals(parts.get(from))) {
                List<Segment> level = new ArrayList<>();
                for (Map.Entry<RemoteInstanceProvider.WorkerLink, IndexRange> e : parts.get(from)) {
                    level.add(new Segment(e.getKey(), executor.newPipelineId(), new IndexRange(from, p), e.getValue()));
                }
                levels.add(List.copyOf(level));
                from = p;
            }
        }
        List<Segment> segments = new ArrayList<>();
        for (List<Segment> level : levels) {
            segments.addAll(level);
        }
        RemotePipeline pipeline = new RemotePipeline(executor, layout, devices, maxBatch, List.copyOf(segments),
                List.copyOf(levels));
        List<Segment> made = new ArrayList<>();
        try {
            for (List<Segment> level : levels) {
                for (Segment s : level) {
                    CreateStagesRequest.Builder r = CreateStagesRequest.newBuilder().setPipeline(s.id())
                            .setModel(Wire.shape(layout.config())).addAllStageLayers(layout.stageLayers())
                            .setShards(m).setFirstStage(s.stages().from()).setEndStage(s.stages().to())
                            .setMaxBatch(maxBatch);
                    if (level.size() > 1) {
                        r.setFirstShard(s.shards().from()).setEndShard(s.shards().to());
                        for (Segment g : level) {
                            r.addGroup(GroupMember.newBuilder().setAddress(g.worker().address).setPipeline(g.id())
                                    .setFirstShard(g.shards().from()).setEndShard(g.shards().to()));
                        }
                    }
                    for (int p = s.stages().from(); p < s.stages().to(); p++) {
                        for (int sh = s.shards().from(); sh < s.shards().to(); sh++) {
                            r.addDevices(Wire.ref(devices.get(p * m + sh).id));
                        }
                    }
                    executor.call(List.of(s.worker()), s.worker(), ch -> WorkerGrpc.newBlockingStub(ch)
                            .withDeadlineAfter(30, TimeUnit.SECONDS).createStages(r.build()));
                    made.add(s);
                }
            }
        } catch (RuntimeException e) {
            for (Segment s : made) {
                pipeline.closeSegment(s);
            }
            throw e;
        }
        return pipeline;
    }

    /** The segment hosting shard 0 of {@code stage} (the only one unless the stage's group is split). */
    Segment segmentOf(int stage) {
        return segmentOf(stage, 0);
    }

    Segment segmentOf(int stage, int shard) {
        checkOpen();
        for (Segment s : segments) {
            if (s.stages().contains(stage) && s.shards().contains(shard)) {
                return s;
            }
        }
        throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") outside P = "
                + layout.stages() + ", M = " + layout.shards());
    }

    private void checkPosition(int stage, int shard) {
        if (stage < 0 || stage >= layout.stages() || shard < 0 || shard >= layout.shards()) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") outside P = "
                    + layout.stages() + ", M = " + layout.shards());
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("pipeline " + layout + " is closed");
        }
    }

    private WorkerGrpc.WorkerBlockingStub stub(io.grpc.ManagedChannel ch, int seconds) {
        return WorkerGrpc.newBlockingStub(ch).withDeadlineAfter(seconds, TimeUnit.SECONDS);
    }

    @Override
    public ShardLayout layout() {
        return layout;
    }

    @Override
    public int maxBatch() {
        return maxBatch;
    }

    @Override
    public Device device(int stage, int shard) {
        checkPosition(stage, shard);
        return devices.get(stage * layout.shards() + shard);
    }

    /** The workers this pipeline runs on, in stage order. */
    List<RemoteInstanceProvider.WorkerLink> workers() {
        return workers;
    }

    @Override
    public void loadWeights(ModelWeights checkpoint) {
        checkOpen();
        if (!checkpoint.config().equals(c)) {
            throw new IllegalArgumentException("checkpoint shape " + checkpoint.config() + " differs from the pipeline's "
                    + c);
        }
        java.nio.file.Path file = openablePath(checkpoint);
        for (Segment s : segments) {
            if (file == null) {
                streamWeights(s, checkpoint); // weights that no worker can open by path are streamed
                continue;
            }
            try {
                executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 120).loadWeights(LoadWeightsRequest
                        .newBuilder().setPipeline(s.id()).setCheckpointPath(file.toAbsolutePath().toString())
                        .build()));
            } catch (IllegalArgumentException e) {
                if (!(e.getCause() instanceof StatusRuntimeException sre) || sre.getStatus().getCode() != Status.Code.NOT_FOUND) {
                    throw e;
                }
                streamWeights(s, checkpoint); // the worker cannot read the file: send the slices ourselves
            }
        }
    }

    private void streamWeights(Segment s, ModelWeights checkpoint) {
        for (int p = s.stages().from(); p < s.stages().to(); p++) {
            for (int m = s.shards().from(); m < s.shards().to(); m++) {
                for (ContextSlice slice : layout.weightSlices(p, m)) {
                    byte[] bytes = SliceFormat.encodeWeights(checkpoint, slice); // Q8_0 files: as blocks
                    executor.push(s.worker(), Wire.chunks(bytes, s.position(p, m)));
                    executor.countRelayed(bytes.length);
                }
            }
        }
    }

    @Override
    public boolean hasAllWeights(int stage, int shard) {
        checkPosition(stage, shard);
        Segment s = segmentOf(stage, shard);
        return executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 10).positionState(s.position(stage, shard)))
                .getHasAllWeights();
    }

    @Override
    public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        checkPosition(stage, shard);
        Segment s = segmentOf(stage, shard);
        byte[] bytes = executor.call(List.of(s.worker()), s.worker(), ch -> {
            Iterator<SliceChunk> it = stub(ch, 120).exportSlice(SliceRequest.newBuilder()
                    .setPosition(s.position(stage, shard)).setSlice(Wire.sliceHeader(slice)).build());
            Wire.Assembly a = new Wire.Assembly();
            while (it.hasNext()) {
                a.add(it.next());
            }
            return a.bytes();
        });
        executor.countRelayed(bytes.length);
        return bytes;
    }

    @Override
    public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
        checkPosition(stage, shard);
        Segment s = segmentOf(stage, shard);
        SliceFormat.peek(c, bytes); // a malformed slice never leaves this process
        ImportReply r = executor.push(s.worker(), Wire.chunks(bytes, s.position(stage, shard)));
        executor.countRelayed(bytes.length);
        ContextSlice slice = Wire.slice(r.getSliceHeader(), c);
        imported(slice);
        return slice;
    }

    /** Stages the slice on the worker holding the position: the bytes stay there until they are sent. */
    @Override
    public StagedSlice stageSlice(int stage, int shard, ContextSlice slice) {
        checkPosition(stage, shard);
        Segment s = segmentOf(stage, shard);
        StagedRef ref = executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 120).stageSlice(SliceRequest
                .newBuilder().setPosition(s.position(stage, shard)).setSlice(Wire.sliceHeader(slice)).build()));
        return new RemoteStagedSlice(executor, s.worker(), ref, slice);
    }

    /**
     * A slice staged on a worker of this executor goes from that worker to the target's directly (bulk socket, else
     * gRPC), or is imported by that worker itself when the target is there; any other staged slice is pushed from
     * the controller.
     */
    @Override
    public ContextSlice importStaged(int stage, int shard, StagedSlice staged) {
        checkPosition(stage, shard);
        if (staged instanceof StagedSlice.FromCheckpoint c && openablePath(c.checkpoint()) != null) {
            ContextSlice loaded = loadFromFile(stage, shard, c.checkpoint(), c.slice());
            if (loaded != null) {
                return loaded;
            }
        }
        if (!(staged instanceof RemoteStagedSlice r) || r.executor != executor) {
            return importSlice(stage, shard, staged.data());
        }
        Segment t = segmentOf(stage, shard);
        boolean local = r.worker == t.worker();
        r.takeForSend();
        SendSliceReply reply = executor.call(List.of(r.worker, t.worker()), r.worker, ch -> stub(ch, 150)
                .sendStaged(SendStagedRequest.newBuilder().setHandle(r.handle).setPeerAddress(t.worker().address)
                        .setTarget(t.position(stage, shard)).setLocal(local).build()));
        if (!local) {
            executor.countPeer(reply);
        }
        imported(r.slice());
        return r.slice();
    }

    /**
     * Has the worker of position (stage, shard) load {@code slice} from the checkpoint file itself; null when it
     * cannot read the file there (the caller streams the slice instead).
     */
    private ContextSlice loadFromFile(int stage, int shard, ModelWeights file, ContextSlice slice) {
        if (!file.config().equals(c)) {
            throw new IllegalArgumentException("checkpoint shape " + file.config() + " differs from the pipeline's " + c);
        }
        Segment t = segmentOf(stage, shard);
        try {
            ImportReply r = executor.call(List.of(t.worker()), t.worker(), ch -> stub(ch, 120).loadSlice(
                    LoadSliceRequest.newBuilder().setPosition(t.position(stage, shard))
                            .setCheckpointPath(openablePath(file).toAbsolutePath().toString())
                            .setSlice(Wire.sliceHeader(slice)).build()));
            ContextSlice done = Wire.slice(r.getSliceHeader(), c);
            imported(done);
            return done;
        } catch (IllegalArgumentException e) {
            if (e.getCause() instanceof StatusRuntimeException sre && sre.getStatus().getCode() == Status.Code.NOT_FOUND
                    && String.valueOf(sre.getStatus().getDescription()).startsWith("checkpoint ")) {
                return null;
            }
            throw e;
        }
    }

    /**
     * Where a worker can open {@code weights} itself with {@link ModelSource#open} (a llama2.c file, a GGUF file or a
     * Hugging Face folder, given the same path on the worker's machine), or null for weights that exist only here.
     */
    static java.nio.file.Path openablePath(ModelWeights weights) {
        if (weights instanceof LlamaCheckpoint f) {
            return f.file();
        }
        if (weights instanceof ModelSource s) {
            return s.path();
        }
        return null;
    }

    /** Mirrors a slice that arrived at one of this pipeline's positions (a KV slice extends its sequence). */
    synchronized void imported(ContextSlice slice) {
        if (slice instanceof ContextSlice.KvCache k) {
            int[] st = sequences.get(k.sequence());
            if (st != null) {
                st[1] = Math.max(st[1], k.length());
            }
        }
    }

    @Override
    public void releaseSlice(int stage, int shard, ContextSlice slice) {
        checkPosition(stage, shard);
        Segment s = segmentOf(stage, shard);
        executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 10).releaseSlice(SliceRequest.newBuilder()
                .setPosition(s.position(stage, shard)).setSlice(Wire.sliceHeader(slice)).build()));
    }

    @Override
    public synchronized void openSequence(long sequence, int capacity) {
        checkOpen();
        if (sequences.containsKey(sequence)) {
            throw new IllegalArgumentException("sequence " + sequence + " is already open");
        }
        List<Segment> done = new ArrayList<>();
        try {
            for (Segment s : segments) {
                executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 10).openSequence(SequenceRequest
                        .newBuilder().setPipeline(s.id()).setSequence(sequence).setCapacity(capacity).build()));
                done.add(s);
            }
        } catch (RuntimeException e) {
            for (Segment s : done) {
                closeSequenceOn(s, sequence);
            }
            throw e;
        }
        sequences.put(sequence, new int[] {capacity, 0});
    }

    private void closeSequenceOn(Segment s, long sequence) {
        if (s.worker().dead) {
            return;
        }
        try {
            executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 10).closeSequence(SequenceRequest.newBuilder()
                    .setPipeline(s.id()).setSequence(sequence).build()));
        } catch (RuntimeException ignored) {
            // best effort: a worker that cannot answer loses the sequence with everything else
        }
    }

    @Override
    public synchronized void closeSequence(long sequence) {
        checkOpen();
        if (sequences.remove(sequence) != null) {
            for (Segment s : segments) {
                closeSequenceOn(s, sequence);
            }
        }
    }

    @Override
    public synchronized Set<Long> sequences() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(sequences.keySet()));
    }

    @Override
    public synchronized int length(long sequence) {
        int[] st = sequences.get(sequence);
        if (st == null) {
            throw new IllegalArgumentException("sequence " + sequence + " is not open");
        }
        return st[1];
    }

    /**
     * The open step link to the first stage's worker over {@code ch} (its step socket, else a step stream), a new one
     * if there is none or it broke.
     */
    private StepLink stepLink(io.grpc.ManagedChannel ch) {
        return steps.over(ch, segments.get(0).worker().address);
    }

    /** A step link kept open across steps: reopened when it broke or the worker's channel changed. */
    private static final class CachedLink {
        private StepLink link;
        private io.grpc.ManagedChannel channel;

        synchronized StepLink over(io.grpc.ManagedChannel ch, String address) {
            if (link == null || link.broken() || channel != ch) {
                if (link != null) {
                    link.close();
                }
                link = StepSocket.open(ch, address);
                channel = ch;
            }
            return link;
        }

        synchronized void close() {
            if (link != null) {
                link.close();
            }
        }
    }

    /** One step on the first stage's worker: over its step link, or a unary call while another thread steps. */
    private StepReply step(io.grpc.ManagedChannel ch, StepRequest request) {
        StepReply viaLink = stepLink(ch).tryStep(request, 60);
        return viaLink != null ? viaLink : stub(ch, 60).forward(request);
    }

    /**
     * One step whose logits come straight from the last stage's worker: a collect goes to its step socket first, then
     * the step runs down the chain (each worker returning only the counts), then the collect's answer is read. Falls
     * back to relaying the logits through the chain when the last worker has no step socket or its link is busy.
     */
    private StepReply collected(StepRequest.Builder r, Segment first, Segment last) {
        long stepId = nextStep.getAndIncrement();
        StepRequest direct = r.setStepId(stepId).setLogitsDirect(true).build();
        StepRequest collect = StepRequest.newBuilder().setPipeline(last.id()).setStepId(stepId).setCollect(true)
                .build();
        return executor.call(workers, first.worker(), ch -> {
            StepLink link = collects.over(executor.channel(last.worker()), last.worker().address);
            StepReply[] counts = new StepReply[1];
            StepReply logits = link instanceof StepSocket socket
                    ? socket.tryStepAround(collect, 60, () -> counts[0] = step(ch, direct)) : null;
            if (logits == null) { // no step socket there, or another thread collects on it: relay them
                return step(ch, r.setLogitsDirect(false).build());
            }
            return counts[0].toBuilder().setLogits(logits.getLogits()).build();
        });
    }

    @Override
    public void forward(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        checkOpen();
        AbstractPipeline.checkBatchArrays(seqs, tokens, positions, count, logits, maxBatch);
        StepRequest.Builder r = StepRequest.newBuilder().setPipeline(segments.get(0).id()).setStage(0);
        synchronized (this) {
            for (int i = 0; i < count; i++) {
                if (!sequences.containsKey(seqs[i])) {
                    throw new IllegalArgumentException("entry " + i + ": sequence " + seqs[i] + " is not open");
                }
                if (logits[i] != null && logits[i].length != c.vocabSize()) {
                    throw new IllegalArgumentException("entry " + i + ": logits array has " + logits[i].length
                            + " floats, expected vocab " + c.vocabSize());
                }
                r.addSequences(seqs[i]).addTokens(tokens[i]).addPositions(positions[i]);
                if (logits[i] != null) {
                    r.addLogitsFor(i);
                }
            }
        }
        StepReply reply;
        if (GroupSteps.split(levels)) {
            reply = GroupSteps.step(executor, workers, levels, r, nextStep.getAndIncrement());
            executor.countReduce(reply.getReduceBytes());
        } else {
            for (Segment s : segments.subList(1, segments.size())) {
                r.addRoute(Hop.newBuilder().setAddress(s.worker().address).setPipeline(s.id())
                        .setFirstStage(s.stages().from()));
            }
            Segment first = segments.get(0);
            Segment lastSegment = segments.get(segments.size() - 1);
            if (segments.size() > 1 && directLogits && r.getLogitsForCount() > 0) {
                reply = collected(r, first, lastSegment);
            } else {
                StepRequest request = r.build();
                reply = executor.call(workers, first.worker(), ch -> step(ch, request));
            }
        }
        GroupSteps.gather(reply, r.getLogitsForList(), c.vocabSize(), logits);
        executor.countActivations(reply.getActivationBytes());
        executor.countStep(reply.getComputeNanos(), reply.getHandlerNanos());
        synchronized (this) {
            for (int b = 0; b < count; b++) {
                int[] st = sequences.get(seqs[b]);
                if (st != null) {
                    st[1] = Math.max(st[1], positions[b] + 1);
                }
            }
        }
    }

    private void closeSegment(Segment s) {
        if (s.worker().dead) {
            return;
        }
        try {
            executor.call(List.of(s.worker()), s.worker(), ch -> stub(ch, 10).closePipeline(PipelineRef.newBuilder()
                    .setPipeline(s.id()).build()));
        } catch (RuntimeException ignored) {
            // a worker that cannot answer frees everything when it dies
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        steps.close();
        collects.close();
        for (Segment s : segments) {
            closeSegment(s);
        }
        sequences.clear();
    }

    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        for (Segment s : segments) {
            parts.add("stages " + s.stages() + (s.shards().length() == layout.shards() ? "" : " shards " + s.shards())
                    + " @ " + s.worker().id);
        }
        return "RemotePipeline[" + layout + ", " + String.join(", ", parts) + "]";
    }
}
