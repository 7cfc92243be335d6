package io.spotserve.examples;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Makes {@code java -jar spotserve-examples.jar ...} run the CPU executor's Vector API kernels without any flag:
 * when the JVM was started without the {@code jdk.incubator.vector} module, the main re-launches itself once in
 * a child JVM with {@code --add-modules jdk.incubator.vector} (and the parent's own JVM options), forwarding
 * standard input, output, error and the exit code.
 *
 * <p>Why a re-launch: the module must be in the boot layer, which only the command line decides, and a jar
 * manifest cannot add it. The README's commands go through the {@code spotserve} script at the repository root,
 * which starts one JVM with the same options as the child here (its test checks that they stay in step); the
 * re-launch keeps plain {@code java -jar} on the fast path too, at the cost of a second JVM (0.1–0.2 s of start-up
 * and ≈ 45 MB on the 2-core benchmark machine).
 *
 * <p>Class-data sharing, off unless {@code -Dspotserve.cds=true}: measured on the 25M model (1 thread, quiet, session
 * 12), a child mapping the archive decoded at 85 tok/s against 195–270 without it (whole {@code generate} 3.4 s
 * against 1.4–2.0 s), far more than the archive saves at start-up. When on, the child uses a dynamic AppCDS archive
 * of the classes a run loads, kept beside the
 * jar ({@code spotserve-examples.jsa}, or in {@code java.io.tmpdir} when that folder is read-only). The first
 * run without an archive writes it at exit ({@code -XX:ArchiveClassesAtExit}, into a temporary file renamed
 * into place once a JVM has mapped it ({@link #mappable}), so concurrent first runs never see a half-written archive);
 * later runs map it
 * ({@code -XX:SharedArchiveFile}), which shortens start-up. An archive older than the jar (rebuilt) is
 * written anew. Only for class paths made of jar files (the JVM refuses to archive with class folders); the child
 * gets them as absolute paths, since the archive records its class path and is silently unusable from another
 * folder when that was relative. The script shares the archive. Picocli's classes (class file version 49) are never
 * archived by JDK 17.
 *
 * <p>Unless the command line picks a collector, the child uses the serial collector with a small young generation
 * (see {@link #heapOptions}).
 *
 * <p>Opt-outs: {@code -Dspotserve.relaunch=false} (then the scalar kernels run and the executor logs one WARN
 * line saying how to enable the fast path), {@code -Dspotserve.cds=true} (the archive, above). A JVM that already has
 * the module never re-launches.
 */
final class FastPathLauncher {
    static final String MODULE = "jdk.incubator.vector";
    /** Set in the child so that it never re-launches again. */
    static final String RELAUNCHED = "spotserve.relaunched";

    private FastPathLauncher() {
    }

    /**
     * Runs the command in a child JVM with the Vector API module when this JVM lacks it; returns the child's
     * exit code, or empty when this JVM should run the command itself.
     */
    static Optional<Integer> relaunchIfNeeded(String[] args) {
        if (ModuleLayer.boot().findModule(MODULE).isPresent()
                || Boolean.getBoolean(RELAUNCHED)
                || "false".equalsIgnoreCase(System.getProperty("spotserve.relaunch"))) {
            return Optional.empty();
        }
        Optional<String> java = ProcessHandle.current().info().command();
        String given = System.getProperty("java.class.path");
        if (java.isEmpty() || given == null || given.isEmpty()) {
            return Optional.empty(); // cannot tell how we were started: run here (scalar, with the WARN line)
        }
        String classPath = absolute(given);
        List<String> cmd = new ArrayList<>();
        cmd.add(java.get());
        cmd.add("--add-modules");
        cmd.add(MODULE);
        cmd.add("-D" + RELAUNCHED + "=true");
        List<String> inherited = ManagementFactory.getRuntimeMXBean().getInputArguments();
        cmd.addAll(heapOptions(inherited));
        cmd.addAll(JIT_OPTIONS);
        cmd.addAll(unsafeOptions(Runtime.version().feature(), inherited));
        for (String a : inherited) {
            if (!a.startsWith("-XX:SharedArchiveFile") && !a.startsWith("-XX:ArchiveClassesAtExit")) {
                cmd.add(a);
            }
        }
        Path archive = null;
        Path pending = null;
        if ("true".equalsIgnoreCase(System.getProperty("spotserve.cds")) && onlyJars(classPath)) {
            archive = archivePath(classPath);
            if (archive != null && Files.isRegularFile(archive) && newerThanClassPath(archive, classPath)) {
                cmd.add("-XX:SharedArchiveFile=" + archive);
                cmd.add("-Xlog:cds=off");
                cmd.add("-Xlog:cds+dynamic=off");
            } else if (archive != null) {
                pending = archive.resolveSibling(archive.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
                cmd.add("-XX:ArchiveClassesAtExit=" + pending);
                cmd.add("-Xlog:cds=off");
                cmd.add("-Xlog:cds+dynamic=off");
            }
        }
        cmd.add("-cp");
        cmd.add(classPath);
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        Process child;
        try {
            child = new ProcessBuilder(cmd).inheritIO().start();
        } catch (IOException e) {
            return Optional.empty();
        }
        Thread reaper = new Thread(child::destroy, "spotserve-relaunch-reaper");
        Runtime.getRuntime().addShutdownHook(reaper);
        int code;
        try {
            code = child.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            child.destroy();
            code = 130;
        }
        try {
            Runtime.getRuntime().removeShutdownHook(reaper);
        } catch (IllegalStateException ignored) {
            // shutting down already
        }
        if (pending != null) {
            try {
                if (code == 0 && Files.size(pending) > 0 && mappable(java.get(), pending, classPath)) {
                    Files.move(pending, archive, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException ignored) {
                // another run may have won the race; the archive is an optimisation only
            } finally {
                try {
                    Files.deleteIfExists(pending);
                } catch (IOException ignored) {
                    // nothing to clean
                }
            }
        }
        return Optional.of(code);
    }

    /**
     * JIT options of the child (and of the {@code spotserve} script, which must stay in step): the CPU executor's
     * methods reach the C1 and C2 compilers after a tenth of the usual invocation and loop counts. Until C2 has
     * compiled them, the Vector API kernels run in the interpreter or in C1 code where every vector operation
     * allocates; on the 25M model that was the larger part of the gap between {@code generate}'s first token and its
     * steady state. Only this package, so the compile queue is not flooded with the rest of the JDK (lowering every
     * threshold did not help). {@code quiet}: the JVM would otherwise echo the command on standard output.
     */
    static final List<String> JIT_OPTIONS = List.of("-XX:CompileCommand=quiet",
            "-XX:CompileCommand=CompileThresholdScaling,io.spotserve.exec.cpu.*::*,0.1");

    /** Lets libraries use {@code sun.misc.Unsafe}'s memory access without a warning (JEP 498, JDK 24 and later). */
    static final String UNSAFE_ALLOW = "--sun-misc-unsafe-memory-access=allow";

    /**
     * The child's (and the script's) option for {@code sun.misc.Unsafe}: from JDK 24 on the JVM prints four warning
     * lines when a library first uses its memory access, and protobuf-java (the worker transport's messages, loaded by
     * {@code replay --processes} and the remote executor) does. {@link #UNSAFE_ALLOW} on JDK {@code feature} ≥ 24
     * unless the user gave that option a value; none before (JDK 17-22 refuse the option and do not start).
     */
    static List<String> unsafeOptions(int feature, List<String> inherited) {
        if (feature < 24) {
            return List.of();
        }
        for (String a : inherited) {
            if (a.startsWith("--sun-misc-unsafe-memory-access")) {
                return List.of();
            }
        }
        return List.of(UNSAFE_ALLOW);
    }

    /**
     * The collector and heap options the child adds to the inherited ones: unless a collector was chosen, the
     * serial collector (a CLI run holds one model and short-lived garbage: the heap, and the peak RSS, stay near
     * the live size, about half of G1's on the 25M model, and it starts faster), and with it, unless the young
     * generation was sized, {@code -Xmn8m}: the default young generation is a third of the initial heap (1/64 of
     * the machine's memory, 128 MB on 24 GB), and the decode steps' short-lived garbage touches all of it before
     * the first collection, which showed as ≈ 100 MB of peak RSS on the 25M model; the weights are allocated
     * straight in the old generation either way.
     */
    static List<String> heapOptions(List<String> inherited) {
        List<String> add = new ArrayList<>();
        boolean collectorChosen = inherited.stream().anyMatch(a -> a.matches("-XX:[+-]Use\\w*GC"));
        if (!collectorChosen) {
            add.add("-XX:+UseSerialGC");
            boolean youngSized = inherited.stream().anyMatch(a -> a.startsWith("-Xmn") || a.startsWith("-XX:NewSize")
                    || a.startsWith("-XX:MaxNewSize") || a.startsWith("-XX:NewRatio"));
            if (!youngSized) {
                add.add("-Xmn8m");
            }
        }
        return add;
    }

    /**
     * The class path with every entry made absolute: the archive records the class path it was written with and a
     * JVM started in another folder cannot use one written with relative entries (it silently runs without it).
     */
    static String absolute(String classPath) {
        String sep = System.getProperty("path.separator");
        StringBuilder out = new StringBuilder();
        for (String entry : classPath.split(java.util.regex.Pattern.quote(sep), -1)) {
            if (out.length() > 0) {
                out.append(sep);
            }
            out.append(entry.isEmpty() ? entry : Path.of(entry).toAbsolutePath().normalize().toString());
        }
        return out.toString();
    }

    /**
     * Whether a JVM started with this archive and class path gets past start-up ({@code -Xshare:on ... -version} in a
     * child, at most 60 s): JDK 17 dies of SIGBUS mapping a truncated archive (say, written to a full disk), and a
     * crash of every later run would be far worse than no archive.
     */
    static boolean mappable(String java, Path archive, String classPath) {
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", MODULE));
        cmd.addAll(heapOptions(List.of()));
        cmd.addAll(List.of("-Xshare:on", "-XX:SharedArchiveFile=" + archive, "-Xlog:cds=off", "-Xlog:cds+dynamic=off",
                "-XX:ErrorFile=" + (System.getProperty("os.name").startsWith("Windows") ? "NUL" : "/dev/null"),
                "-cp", classPath, "-version"));
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Whether every class path entry is a jar file (the JVM refuses to archive with class folders). */
    static boolean onlyJars(String classPath) {
        for (String entry : classPath.split(System.getProperty("path.separator"))) {
            if (!entry.endsWith(".jar") || !Files.isRegularFile(Path.of(entry))) {
                return false;
            }
        }
        return true;
    }

    /** Whether the archive was written after every jar of the class path (a rebuilt jar makes it stale). */
    private static boolean newerThanClassPath(Path archive, String classPath) {
        try {
            long made = Files.getLastModifiedTime(archive).toMillis();
            for (String entry : classPath.split(System.getProperty("path.separator"))) {
                Path p = Path.of(entry);
                if (Files.exists(p) && Files.getLastModifiedTime(p).toMillis() > made) {
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Where the archive for this class path lives: beside the jar when the class path is one writable jar,
     * otherwise in the temp folder under a name derived from the class path; null when no place is writable.
     */
    static Path archivePath(String classPath) {
        String sep = System.getProperty("path.separator");
        if (!classPath.contains(sep) && classPath.endsWith(".jar")) {
            Path jar = Path.of(classPath).toAbsolutePath();
            Path dir = jar.getParent();
            String name = jar.getFileName().toString();
            if (dir != null && Files.isWritable(dir)) {
                return dir.resolve(name.substring(0, name.length() - 4) + ".jsa");
            }
        }
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        if (!Files.isWritable(tmp)) {
            return null;
        }
        String key = Integer.toHexString((classPath + System.getProperty("java.version")).hashCode());
        return tmp.resolve("spotserve-" + key + ".jsa");
    }
}
