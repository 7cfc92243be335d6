/**
 * SpotServe-J core: the serving engine, the planning core (Algorithm 1, the device mapper, the migration planner,
 * the interruption arranger), instance providers, model formats and the embedded CPU executor.
 *
 * <p>What a host application touches is exported: the engine and its clocks ({@code engine}), the planners it may
 * replace ({@code plan}), instances ({@code instance}), models and tokenizers ({@code model}), traces
 * ({@code trace}) and the executor API ({@code exec}, with the CPU executor in {@code exec.cpu}). The base classes
 * executor implementations share ({@code exec.spi}) are exported only to our executor modules.
 */
module io.spotserve.core {
    requires org.slf4j;
    requires com.google.gson;
    requires java.management; // ExecutorProfiler reads per-thread CPU time
    // The Vector API kernels run when the application starts with --add-modules jdk.incubator.vector (the fast-path
    // launcher adds it); the CPU executor then adds the read edge itself. Not declared here, not even as
    // "requires static": every module compiled against core would resolve the incubator module and warn.

    exports io.spotserve.clock;
    exports io.spotserve.engine;
    exports io.spotserve.exec;
    exports io.spotserve.exec.cpu;
    exports io.spotserve.instance;
    exports io.spotserve.model;
    exports io.spotserve.model.jinja;
    exports io.spotserve.plan;
    exports io.spotserve.trace;
    exports io.spotserve.exec.spi to io.spotserve.cuda, io.spotserve.worker;

    uses io.spotserve.exec.ExecutorProvider;
    provides io.spotserve.exec.ExecutorProvider with io.spotserve.exec.cpu.CpuExecutorProvider;
}
