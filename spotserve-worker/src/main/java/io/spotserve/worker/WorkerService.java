package io.spotserve.worker;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.CreateDeviceRequest;
import io.spotserve.worker.proto.CreateStagesRequest;
import io.spotserve.worker.proto.DeviceRef;
import io.spotserve.worker.proto.DeviceState;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.LoadSliceRequest;
import io.spotserve.worker.proto.LoadWeightsRequest;
import io.spotserve.worker.proto.OpenBulkRequest;
import io.spotserve.worker.proto.PartialsMessage;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.PipelineRef;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.PositionStateReply;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SendSliceRequest;
import io.spotserve.worker.proto.SendSlicesRequest;
import io.spotserve.worker.proto.SendStagedRequest;
import io.spotserve.worker.proto.SequenceRequest;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.SliceRequest;
import io.spotserve.worker.proto.StagedRef;
import io.spotserve.worker.proto.StagingState;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.nio.ByteBuffer;
import java.util.function.Function;

/**
 * What a worker process serves: the executor SPI over its own devices (Worker service, for the controller) and
 * the data plane between workers (Peer service). This class holds the parts and the worker's life cycle (registered,
 * fenced); the RPCs live in {@link WorkerControl} (devices, pipelines, weights, sequences), {@link SliceMoves}
 * (migration slices) and {@link StepCalls} (steps and a split group's partials), and the two gRPC services below
 * hand each call to its part. Every request is checked before anything changes; a refused request leaves the worker
 * as it was.
 */
final class WorkerService {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(WorkerService.class);
    /** Trailer keys carrying a {@link DeviceMemoryException}'s numbers back to the controller. */
    static final Metadata.Key<String> MEMORY = Metadata.Key.of("spotserve-device-memory", Metadata.ASCII_STRING_MARSHALLER);

    private final WorkerState state = new WorkerState();
    /** The step streams to the next stage's workers. */
    private final StepStream.Hops hops;
    /** The tensor groups split over workers that this worker hosts members of, and their partials. */
    private final GroupExchange groups;
    /** Forward steps through the hosted stages (and warm-up calls). */
    private final StageStep steps;
    /** Migration slices exported here and waiting to be sent to their target. */
    private final StagingArea staging;
    private final WorkerControl control;
    private final SliceMoves slices;
    private final StepCalls stepCalls;
    /** The logits this worker's last stages keep for the controller's collects. */
    private final LogitsOutbox outbox;

    WorkerService(Executor executor, int deviceCount, long deviceMemory, Function<String, ManagedChannel> peers,
                  StagingArea staging) {
        this.staging = staging;
        this.hops = new StepStream.Hops(peers);
        this.groups = new GroupExchange(peers, state::checkLive);
        this.outbox = new LogitsOutbox();
        this.steps = new StageStep(state::pipeline, hops, groups, peers, outbox);
        this.control = new WorkerControl(state, executor, deviceCount, deviceMemory, hops, groups, outbox);
        this.slices = new SliceMoves(state, peers, staging);
        this.stepCalls = new StepCalls(state, steps, groups);
    }

    /** Serves and sends bulk transfers through {@code b} from now on. */
    void bulk(BulkTransfer b) {
        slices.bulk(b);
    }

    /** Serves steps over {@code s} from now on ({@code Worker/OpenSteps} issues its tickets). */
    void stepServer(StepServer s) {
        stepCalls.stepServer(s);
    }

    /**
     * Runs one step and answers it, a refusal included (its status in the reply): what the {@code Steps} stream and
     * the step socket send back for each request.
     */
    StepReply answer(StepRequest r) {
        return stepCalls.answerSocket(r);
    }

    /** The bulk socket's imports into the positions hosted here: whole slices, or piece by piece. */
    BulkTransfer.Importer bulkImporter() {
        return slices.importer();
    }

    /** Where the step socket's partials connections deposit what they read. */
    PartialsSocket.Inbox partialsInbox() {
        return groups.inbox();
    }

    /** Logits the controller collected from this worker's last stages so far. */
    long logitsCollected() {
        return outbox.collected();
    }

    /** Partials messages this worker's group members sent so far: {over step sockets, over gRPC streams}. */
    long[] partialsSends() {
        return groups.sends();
    }

    /** Closes the links this worker opened to other workers (it is closing). */
    void closeLinks() {
        hops.closeAll();
        groups.clear();
    }

    /** The instance id the controller gave this worker (devices must be named after it). */
    void registeredAs(String id) {
        state.instanceId = id;
    }

    /** The controller declared this worker dead: drop everything and answer nothing any more. */
    void fence() {
        state.fenced = true;
        StepServer ss = stepCalls.stepServer();
        if (ss != null) {
            ss.closeConnections(); // first: peers see the connection close, not a refusal for a forgotten group
        }
        hops.closeAll();
        groups.clear();
        for (Pipeline p : state.pipelines.values()) {
            synchronized (p) {
                p.close();
            }
        }
        state.pipelines.clear();
        staging.clear();
    }

    /** Frees the staged slices that waited longer than the staging timeout. */
    void sweepStaging() {
        int n = staging.sweep();
        if (n > 0) {
            LOG.warn("{} staged migration slices were never sent; freed after the staging timeout", n);
        }
    }

    boolean fenced() {
        return state.fenced;
    }

    /** Opens ({@code true}) or closes the warm-up window in which {@code WarmUp} calls are answered. */
    void warming(boolean on) {
        steps.warming(on);
    }

    /** How many {@code WarmUp} calls this service answered (all of them passed the server's security check). */
    long warmUpServed() {
        return steps.warmUpServed();
    }

    Worker worker() {
        return new Worker();
    }

    Peer peer() {
        return new Peer();
    }

    static StatusRuntimeException error(RuntimeException e) {
        StatusRuntimeException s = Wire.status(e);
        if (e instanceof DeviceMemoryException d) {
            Metadata trailers = new Metadata();
            trailers.put(MEMORY, d.device().instance() + "," + d.device().gpu() + "," + d.requested() + "," + d.used()
                    + "," + d.capacity());
            return s.getStatus().asRuntimeException(trailers);
        }
        return s;
    }

    // ------------------------------------------------------------------ services: each call to its part

    final class Worker extends WorkerGrpc.WorkerImplBase {
        @Override
        public void createDevice(CreateDeviceRequest r, StreamObserver<DeviceState> out) {
            control.createDevice(r, out);
        }

        @Override
        public void destroyDevice(DeviceRef r, StreamObserver<Ack> out) {
            control.destroyDevice(r, out);
        }

        @Override
        public void deviceUsage(DeviceRef r, StreamObserver<DeviceState> out) {
            control.deviceUsage(r, out);
        }

        @Override
        public void createStages(CreateStagesRequest r, StreamObserver<Ack> out) {
            control.createStages(r, out);
        }

        @Override
        public void closePipeline(PipelineRef r, StreamObserver<Ack> out) {
            control.closePipeline(r, out);
        }

        @Override
        public void loadWeights(LoadWeightsRequest r, StreamObserver<Ack> out) {
            control.loadWeights(r, out);
        }

        @Override
        public void loadSlice(LoadSliceRequest r, StreamObserver<ImportReply> out) {
            control.loadSlice(r, out);
        }

        @Override
        public void positionState(PositionRef r, StreamObserver<PositionStateReply> out) {
            control.positionState(r, out);
        }

        @Override
        public void openSequence(SequenceRequest r, StreamObserver<Ack> out) {
            control.openSequence(r, out);
        }

        @Override
        public void closeSequence(SequenceRequest r, StreamObserver<Ack> out) {
            control.closeSequence(r, out);
        }

        @Override
        public StreamObserver<SliceChunk> importSlice(StreamObserver<ImportReply> out) {
            return slices.importSlice(out);
        }

        @Override
        public void exportSlice(SliceRequest r, StreamObserver<SliceChunk> out) {
            slices.exportSlice(r, out);
        }

        @Override
        public void sendSlice(SendSliceRequest r, StreamObserver<SendSliceReply> out) {
            slices.sendSlice(r, out);
        }

        @Override
        public void sendSlices(SendSlicesRequest r, StreamObserver<SendSliceReply> out) {
            slices.sendSlices(r, out);
        }

        @Override
        public void releaseSlice(SliceRequest r, StreamObserver<Ack> out) {
            slices.releaseSlice(r, out);
        }

        @Override
        public void stageSlice(SliceRequest r, StreamObserver<StagedRef> out) {
            slices.stageSlice(r, out);
        }

        @Override
        public void sendStaged(SendStagedRequest r, StreamObserver<SendSliceReply> out) {
            slices.sendStaged(r, out);
        }

        @Override
        public void fetchStaged(StagedRef r, StreamObserver<SliceChunk> out) {
            slices.fetchStaged(r, out);
        }

        @Override
        public void releaseStaged(StagedRef r, StreamObserver<Ack> out) {
            slices.releaseStaged(r, out);
        }

        @Override
        public void stagingUsage(Ack r, StreamObserver<StagingState> out) {
            slices.stagingUsage(r, out);
        }

        @Override
        public void forward(StepRequest r, StreamObserver<StepReply> out) {
            stepCalls.forward(r, out);
        }

        @Override
        public void openSteps(Ack r, StreamObserver<BulkTicket> out) {
            stepCalls.openSteps(r, out);
        }

        @Override
        public StreamObserver<StepRequest> steps(StreamObserver<StepReply> out) {
            return stepCalls.steps(out);
        }
    }

    final class Peer extends PeerGrpc.PeerImplBase {
        @Override
        public void stageForward(StepRequest r, StreamObserver<StepReply> out) {
            stepCalls.stageForward(r, out);
        }

        @Override
        public StreamObserver<SliceChunk> pushSlice(StreamObserver<ImportReply> out) {
            return slices.pushSlice(out);
        }

        @Override
        public void openBulk(OpenBulkRequest r, StreamObserver<BulkTicket> out) {
            slices.openBulk(r, out);
        }

        @Override
        public void warmUp(StepRequest r, StreamObserver<StepReply> out) {
            stepCalls.warmUp(r, out);
        }

        @Override
        public StreamObserver<PartialsMessage> partialsStream(StreamObserver<Ack> out) {
            return stepCalls.partialsStream(out);
        }

        @Override
        public void partials(PartialsMessage r, StreamObserver<Ack> out) {
            stepCalls.partials(r, out);
        }
    }
}
