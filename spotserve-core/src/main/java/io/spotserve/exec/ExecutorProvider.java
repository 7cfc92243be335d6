package io.spotserve.exec;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Service-provider interface that makes executors pluggable (DESIGN.md §1: {@code ExecutorProvider.best()}).
 * Implementations register in {@code META-INF/services/io.spotserve.exec.ExecutorProvider}; the CPU provider
 * ships with spotserve-core and is always usable, CUDA adds a higher-ranked one when a GPU is present.
 */
public interface ExecutorProvider {
    /** Short name, e.g. "cpu" or "cuda". */
    String name();

    /** Preference among usable providers: higher wins (CPU is 0). */
    int rank();

    /** Whether this provider can create an executor here (driver present, device visible, ...). */
    boolean isUsable();

    /**
     * Why {@link #isUsable()} is false here (e.g. "libcuda.so.1 not found"), for the fallback log line; only
     * meaningful when it is false.
     */
    default String unusableReason() {
        return "isUsable() returned false";
    }

    /** Creates an executor. */
    Executor create(ExecutorOptions options);

    /** Creates an executor with {@link ExecutorOptions#defaults()}. */
    default Executor create() {
        return create(ExecutorOptions.defaults());
    }

    /** All providers found by {@link ServiceLoader}, highest rank first (usable or not). */
    static List<ExecutorProvider> installed() {
        List<ExecutorProvider> out = new ArrayList<>();
        for (ExecutorProvider p : ServiceLoader.load(ExecutorProvider.class, ExecutorProvider.class.getClassLoader())) {
            out.add(p);
        }
        out.sort(Comparator.comparingInt(ExecutorProvider::rank).reversed().thenComparing(ExecutorProvider::name));
        return List.copyOf(out);
    }

    /**
     * The highest-ranked usable provider.
     *
     * @throws IllegalStateException if none is usable (cannot happen with spotserve-core on the class path)
     */
    static ExecutorProvider best() {
        List<ExecutorProvider> skipped = new ArrayList<>();
        for (ExecutorProvider p : installed()) {
            if (p.isUsable()) {
                if (!skipped.isEmpty()) {
                    // one line naming every better provider that was installed but could not run, and why
                    StringBuilder why = new StringBuilder();
                    for (ExecutorProvider s : skipped) {
                        why.append(why.length() == 0 ? "" : "; ").append('\'').append(s.name()).append("' (rank ")
                                .append(s.rank()).append("): ").append(s.unusableReason());
                    }
                    ProviderLog.LOG.warn("executor provider fallback to '{}': installed but unusable here: {}", p.name(), why);
                }
                return p;
            }
            skipped.add(p);
        }
        throw new IllegalStateException("no usable ExecutorProvider found; expected at least the CPU provider of "
                + "spotserve-core (META-INF/services/" + ExecutorProvider.class.getName() + ")");
    }
}
