package io.spotserve.exec;

import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.List;

/**
 * The data plane of one serving engine (DESIGN.md §2.5): it creates devices with a memory capacity and
 * builds inference pipelines (P stages × M shards) on them. Implementations: the pure-Java CPU executor
 * (always available) and, behind the same interface, CUDA. Obtained from an {@link ExecutorProvider}.
 *
 * <p>Closing the executor releases its worker threads; pipelines must be closed first (or are unusable after).
 */
public interface Executor extends AutoCloseable {
    /** Short name of the implementation ("cpu-vector", "cpu-scalar", "cuda", ...). */
    String name();

    /** Options this executor runs with. */
    ExecutorOptions options();

    /**
     * Bytes one weight takes in this executor's device memory (the real size that sharding, migration and the
     * planner's memory model count): 4 by default — the CPU executor computes fp16-precision weights from floats —
     * and 2 where fp16 weights are stored as halves (CUDA).
     */
    default int storedBytesPerWeight() {
        return Float.BYTES;
    }

    /**
     * {@link #storedBytesPerWeight()} exactly, for formats of a fractional size: 1.0625 for the CPU executor with
     * {@link WeightPrecision#Q8_0} weights (34 bytes per 32 weights), where {@link #storedBytesPerWeight()} must
     * round up to 2. The planner's memory model should use this one ({@link ShardLayout#weightBytes(int, int,
     * double)}).
     */
    default double storedBytesPerWeightExact() {
        return storedBytesPerWeight();
    }

    /**
     * Whether the M shards of one stage (a tensor group) may sit on devices of different instances. True (the default)
     * where every device can reach every other within a step (one process: the CPU and CUDA executors); false where
     * instances are separate machines and a tensor group reduces inside one instance only (the remote executor, unless
     * its controller was built to let groups span workers, which then exchange partial sums over the network). When
     * false, the engine deploys a tensor degree M only on instances whose device count M divides (the device mapper
     * then keeps each group on one instance), and its Algorithm 1 searches only such M.
     */
    default boolean tensorGroupsSpanInstances() {
        return true;
    }

    /**
     * Creates a device arena of {@code capacityBytes} for physical device {@code id}.
     *
     * @throws IllegalArgumentException if the capacity is negative or the id is already in use
     */
    Device createDevice(DeviceId id, long capacityBytes);

    /**
     * Forgets a device (its instance was released or preempted), so its id can be created again.
     *
     * @throws IllegalStateException if something is still allocated on it
     */
    void destroyDevice(Device device);

    /**
     * Builds an empty pipeline: position (stage p, shard m) lives on {@code devices.get(p * M + m)}; several
     * positions may share a device. Weights are then loaded from a checkpoint or imported slice by slice.
     *
     * @param maxBatch the most sequence positions one {@link Pipeline#forward} call may carry
     * @throws IllegalArgumentException if the device list does not have P·M entries or a device belongs to
     *                                  another executor
     */
    Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch);

    /**
     * Builds an empty <em>partial</em> pipeline hosting only the positions of {@code stages} (a worker process
     * holding some stages of a pipeline whose other stages live elsewhere): position (stage p, shard m) with p in
     * {@code stages} lives on {@code devices.get((p - stages.from()) * M + m)}. It runs with
     * {@link Pipeline#forwardStage}; {@link Pipeline#forward} needs every stage and refuses. Weights, slices and
     * sequences work as on a full pipeline, for the hosted positions only.
     *
     * @throws IllegalArgumentException      if the stage range is empty or outside the layout, or the device list
     *                                       does not have one entry per hosted position
     * @throws UnsupportedOperationException if this executor cannot run stages separately (the default)
     */
    default Pipeline createStages(ShardLayout layout, IndexRange stages, List<? extends Device> devices, int maxBatch) {
        throw new UnsupportedOperationException(name() + " cannot build partial pipelines (stages " + stages + ")");
    }

    /**
     * Builds an empty pipeline hosting the positions of shards {@code shards} of stages {@code stages} only: one tensor
     * group split over several pipelines (instances), each hosting some of the M shards of the same stages. Position
     * (stage p, shard m) lives on {@code devices.get((p - stages.from()) * shards.length() + (m - shards.from()))}.
     * With all M shards it is {@link #createStages}. A strict subset runs with
     * {@link Pipeline#forwardStage(int, long[], int[], int[], int, float[], float[][], TensorReducer)}, the caller's
     * reducer summing the partials of all groups; weights, slices and sequences work as on a full pipeline, for the
     * hosted positions only.
     *
     * @throws IllegalArgumentException      if a range is empty or outside the layout, or the device list does not
     *                                       have one entry per hosted position; nothing is created then
     * @throws UnsupportedOperationException if this executor cannot split tensor groups (the default)
     */
    default Pipeline createShardGroup(ShardLayout layout, IndexRange stages, IndexRange shards,
                                      List<? extends Device> devices, int maxBatch) {
        throw new UnsupportedOperationException(name() + " cannot split tensor groups (stages " + stages + ", shards "
                + shards + ")");
    }

    /**
     * Moves one slice from position (fromStage, fromShard) of {@code from} into position (toStage, toShard) of
     * {@code to} and returns the imported slice: the unit of context migration (SpotServe §3.3). The default
     * stages the bytes here ({@link Pipeline#exportSlice} then {@link Pipeline#importSlice}); an executor whose
     * positions live in other processes overrides it to stream the bytes directly between them.
     *
     * @throws IllegalArgumentException as {@link Pipeline#exportSlice} / {@link Pipeline#importSlice}; nothing
     *                                  changes at the target then
     */
    default ContextSlice transfer(Pipeline from, int fromStage, int fromShard, ContextSlice slice,
                                  Pipeline to, int toStage, int toShard) {
        return to.importSlice(toStage, toShard, from.exportSlice(fromStage, fromShard, slice));
    }

    /**
     * Moves several slices of one position into one position of another pipeline, in order, as {@link #transfer} does
     * each; returns the slices imported. The default moves them one by one. An executor that says
     * {@link #batchesTransfers} streams them in one go (export, wire and import of consecutive slices overlap).
     *
     * @throws IllegalArgumentException as {@link #transfer}; the slices before the refused one were imported
     */
    default List<ContextSlice> transferAll(Pipeline from, int fromStage, int fromShard, List<ContextSlice> slices,
                                           Pipeline to, int toStage, int toShard) {
        List<ContextSlice> out = new ArrayList<>(slices.size());
        for (ContextSlice s : slices) {
            out.add(transfer(from, fromStage, fromShard, s, to, toStage, toShard));
        }
        return out;
    }

    /**
     * Whether {@link #transferAll} of consecutive slices between the same two positions is markedly cheaper than one
     * {@link #transfer} each: true for executors whose positions live in other processes, where one call and one
     * stream replace a round trip and an idle wire per slice. The engine's migrations then send the weight pieces that
     * cross instances straight from their old positions, several units per call (see ContextMigration), instead of
     * staging them one by one. False by default.
     */
    default boolean batchesTransfers() {
        return false;
    }

    @Override
    void close();
}
