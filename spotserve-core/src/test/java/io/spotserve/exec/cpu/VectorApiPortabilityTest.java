package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The CPU kernels are compiled against JDK 17's {@code jdk.incubator.vector}, but users run them on newer JDKs, where
 * the incubating API has changed: JDK 20 removed the byte-array and byte-buffer loads and stores of every vector type
 * ({@code fromByteArray}, {@code intoByteArray}, {@code fromByteBuffer}, {@code intoByteBuffer}) in favour of memory
 * segments. A call to one compiles and passes every test on JDK 17 and fails with {@code NoSuchMethodError} on JDK 21
 * and 25 (the Q8_0 kernel did until session 17). This build runs only JDK 17, so the check reads the compiled
 * classes: no class of this module may name a removed member of a {@code jdk/incubator/vector} class.
 */
class VectorApiPortabilityTest {
    /** Members of the Vector API classes removed after JDK 17 (JDK 20: JEP 438's move to memory segments). */
    private static final List<String> REMOVED = List.of("fromByteArray", "intoByteArray", "fromByteBuffer",
            "intoByteBuffer");

    @Test
    void noCompiledClassCallsAVectorApiMemberThatNewerJdksRemoved() throws Exception {
        Path classes = Path.of(VectorKernels.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> offenders = new ArrayList<>();
        int usingVectorApi = 0;
        try (Stream<Path> files = Files.walk(classes)) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".class"))::iterator) {
                String pool = new String(read(f), StandardCharsets.ISO_8859_1);
                if (!pool.contains("jdk/incubator/vector/")) {
                    continue;
                }
                usingVectorApi++;
                for (String member : REMOVED) {
                    if (pool.contains(member)) {
                        offenders.add(classes.relativize(f) + " names " + member);
                    }
                }
            }
        }
        // the scan must have seen the kernels, or it proves nothing
        assertFalse(usingVectorApi < 3, "found only " + usingVectorApi + " classes using the Vector API under "
                + classes);
        assertEquals(List.of(), offenders, "Vector API members removed in JDK 20 (NoSuchMethodError on JDK 21+); "
                + "load bytes with ByteVector.fromArray and reinterpret instead");
    }

    private static byte[] read(Path f) {
        try {
            return Files.readAllBytes(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
