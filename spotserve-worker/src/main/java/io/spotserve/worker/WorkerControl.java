package io.spotserve.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelSource;
import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.CreateDeviceRequest;
import io.spotserve.worker.proto.CreateStagesRequest;
import io.spotserve.worker.proto.DeviceRef;
import io.spotserve.worker.proto.DeviceState;
import io.spotserve.worker.proto.GroupMember;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.LoadSliceRequest;
import io.spotserve.worker.proto.LoadWeightsRequest;
import io.spotserve.worker.proto.PipelineRef;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.PositionStateReply;
import io.spotserve.worker.proto.SequenceRequest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The controller's RPCs that create and shape what a worker hosts: devices, pipelines (a split tensor group's member
 * included), weights from a checkpoint this worker can read, sequences, and the state of a position. Each checks its
 * request before anything changes.
 */
final class WorkerControl {
    private final WorkerState state;
    private final Executor executor;
    private final int deviceCount;
    private final long deviceMemory;
    private final Map<Path, ModelWeights> checkpoints = new ConcurrentHashMap<>();
    private final StepStream.Hops hops;
    private final GroupExchange groups;

    /** The logits last stages kept for the controller: a closed pipeline's waiting collects fail. */
    private final LogitsOutbox outbox;

    WorkerControl(WorkerState state, Executor executor, int deviceCount, long deviceMemory, StepStream.Hops hops,
                  GroupExchange groups, LogitsOutbox outbox) {
        this.outbox = outbox;
        this.state = state;
        this.executor = executor;
        this.deviceCount = deviceCount;
        this.deviceMemory = deviceMemory;
        this.hops = hops;
        this.groups = groups;
    }

    /**
     * The checkpoint at {@code path} on this machine, loaded once (memory-mapped).
     *
     * @throws StatusRuntimeException NOT_FOUND when it is not a readable file here
     */
    private ModelWeights checkpoint(String path) {
        Path file = Path.of(path).toAbsolutePath().normalize();
        if (!Files.exists(file) || !Files.isReadable(file)) {
            throw new StatusRuntimeException(Status.NOT_FOUND.withDescription("checkpoint " + file
                    + " is not a readable file on this worker"));
        }
        return checkpoints.computeIfAbsent(file, f -> {
            try {
                return ModelSource.open(f); // llama2.c, GGUF or a Hugging Face folder, memory-mapped
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read checkpoint " + f + ": " + e.getMessage(), e);
            }
        });
    }

    void createDevice(CreateDeviceRequest r, StreamObserver<DeviceState> out) {
        state.unary(out, () -> {
            DeviceId id = Wire.id(r.getDevice());
            String instanceId = state.instanceId;
            if (instanceId == null || !instanceId.equals(id.instance())) {
                throw new IllegalArgumentException("device " + id + " is not on this worker (instance "
                        + instanceId + ")");
            }
            if (id.gpu() >= deviceCount) {
                throw new IllegalArgumentException("device index " + id.gpu() + " outside [0, " + deviceCount
                        + ") of this worker");
            }
            if (r.getCapacityBytes() < 0 || r.getCapacityBytes() > deviceMemory) {
                throw new IllegalArgumentException("device capacity " + r.getCapacityBytes() + " outside [0, "
                        + deviceMemory + "] bytes this worker offers per device");
            }
            synchronized (state.devices) {
                Device d = executor.createDevice(id, r.getCapacityBytes());
                state.devices.put(id, d);
                return WorkerState.state(d);
            }
        });
    }

    void destroyDevice(DeviceRef r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            synchronized (state.devices) {
                Device d = state.device(r);
                executor.destroyDevice(d);
                state.devices.remove(d.id());
            }
            return Ack.getDefaultInstance();
        });
    }

    void deviceUsage(DeviceRef r, StreamObserver<DeviceState> out) {
        state.unary(out, () -> WorkerState.state(state.device(r)));
    }

    void createStages(CreateStagesRequest r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            LlamaConfig c = Wire.config(r.getModel());
            ShardLayout layout = ShardLayout.balanced(c, r.getStageLayersList(), r.getShards());
            IndexRange stages = new IndexRange(r.getFirstStage(), r.getEndStage());
            List<Device> ds = new ArrayList<>();
            for (DeviceRef ref : r.getDevicesList()) {
                ds.add(state.device(ref));
            }
            if (r.getMaxBatch() < 1 || r.getMaxBatch() > 4096) {
                throw new IllegalArgumentException("max_batch " + r.getMaxBatch() + " outside [1, 4096]");
            }
            IndexRange shards = r.getFirstShard() == 0 && r.getEndShard() == 0 ? new IndexRange(0, r.getShards())
                    : new IndexRange(r.getFirstShard(), r.getEndShard());
            boolean split = shards.length() != r.getShards();
            GroupExchange.Group group = null;
            if (split) { // checked before anything is built
                group = new GroupExchange.Group(r.getPipeline(), r.getGroupList(), r.getShards(),
                        r.getMaxBatch() * c.dim());
                GroupMember mine = r.getGroup(group.index());
                if (mine.getFirstShard() != shards.from() || mine.getEndShard() != shards.to()) {
                    throw new IllegalArgumentException("this member's group entry " + GroupExchange.shards(mine)
                            + " differs from its hosted shards " + shards);
                }
            } else if (r.getGroupCount() != 0) {
                throw new IllegalArgumentException("a group of all M shards in one worker has no group members");
            }
            synchronized (state.pipelines) {
                if (state.pipelines.containsKey(r.getPipeline())) {
                    throw new IllegalArgumentException("pipeline " + r.getPipeline() + " already exists here");
                }
                state.pipelines.put(r.getPipeline(), split
                        ? executor.createShardGroup(layout, stages, shards, ds, r.getMaxBatch())
                        : executor.createStages(layout, stages, ds, r.getMaxBatch()));
                if (group != null) {
                    groups.register(group);
                }
            }
            return Ack.getDefaultInstance();
        });
    }

    void closePipeline(PipelineRef r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipelines.remove(r.getPipeline());
            hops.close(r.getPipeline());
            groups.remove(r.getPipeline());
            outbox.close(r.getPipeline());
            if (p != null) {
                synchronized (p) {
                    p.close();
                }
            }
            return Ack.getDefaultInstance();
        });
    }

    void loadWeights(LoadWeightsRequest r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipeline(r.getPipeline());
            ModelWeights ck = checkpoint(r.getCheckpointPath());
            synchronized (p) {
                p.loadWeights(ck);
            }
            return Ack.getDefaultInstance();
        });
    }

    void loadSlice(LoadSliceRequest r, StreamObserver<ImportReply> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipeline(r.getPosition().getPipeline());
            ModelWeights ck = checkpoint(r.getCheckpointPath());
            ContextSlice slice = Wire.slice(r.getSlice(), p.config());
            if (!ck.config().equals(p.config())) {
                throw new IllegalArgumentException("checkpoint " + r.getCheckpointPath() + " has shape "
                        + ck.config() + ", the pipeline " + p.config());
            }
            byte[] bytes = io.spotserve.exec.SliceFormat.encodeWeights(ck, slice);
            ContextSlice done;
            synchronized (p) {
                done = p.importSlice(r.getPosition().getStage(), r.getPosition().getShard(), bytes);
            }
            return ImportReply.newBuilder().setSliceHeader(Wire.sliceHeader(done)).setBytes(bytes.length).build();
        });
    }

    void positionState(PositionRef r, StreamObserver<PositionStateReply> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipeline(r.getPipeline());
            synchronized (p) {
                return PositionStateReply.newBuilder().setHasAllWeights(p.hasAllWeights(r.getStage(), r.getShard()))
                        .setDevice(WorkerState.state(p.device(r.getStage(), r.getShard()))).build();
            }
        });
    }

    void openSequence(SequenceRequest r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipeline(r.getPipeline());
            synchronized (p) {
                p.openSequence(r.getSequence(), r.getCapacity());
            }
            return Ack.getDefaultInstance();
        });
    }

    void closeSequence(SequenceRequest r, StreamObserver<Ack> out) {
        state.unary(out, () -> {
            Pipeline p = state.pipeline(r.getPipeline());
            synchronized (p) {
                p.closeSequence(r.getSequence());
            }
            return Ack.getDefaultInstance();
        });
    }
}
