package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutorProvider;
import io.spotserve.model.LlamaConfig;
import org.junit.jupiter.api.Test;

/**
 * The kernel warm-up of {@code generate}: a model small enough to step in microseconds that takes the real model's
 * kernel branches (head size, query heads per KV head, rows modulo a packed block), and a thread that really steps
 * it until it is closed.
 */
class KernelWarmUpTest {
    @Test
    void theWarmUpModelKeepsWhatPicksTheKernelsBranches() {
        LlamaConfig m25 = new LlamaConfig(512, 1376, 8, 8, 4, 512, 1024, true);
        LlamaConfig llama1b = new LlamaConfig(2048, 8192, 16, 32, 8, 128256, 4096, false);
        LlamaConfig s260k = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true);
        for (LlamaConfig real : new LlamaConfig[] {m25, llama1b, s260k}) {
            LlamaConfig w = KernelWarmUp.shapeOf(real);
            String what = real + " -> " + w;
            assertEquals(real.dim() / real.heads(), w.dim() / w.heads(), what);
            assertEquals(real.heads() / real.kvHeads(), w.heads() / w.kvHeads(), what);
            assertEquals(real.hiddenDim() % 64, w.hiddenDim() % 64, what);
            assertEquals(real.vocabSize() % 64, w.vocabSize() % 64, what);
            assertEquals(1, w.layers(), what);
            assertTrue(w.dim() <= real.dim() && w.hiddenDim() < 128 && w.vocabSize() < 128, what);
        }
        assertEquals(256, KernelWarmUp.shapeOf(m25).dim());
        assertEquals(512, KernelWarmUp.shapeOf(llama1b).dim());
    }

    private static void awaitRounds(KernelWarmUp w, int rounds) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (w.rounds() < rounds && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(w.rounds() >= rounds, w.rounds() + " warm-up sequences in 60 s, expected " + rounds);
    }

    @Test
    void anEarlyWarmUpIsHandedOverOnceAndFollowsItsNewTarget() throws Exception {
        KernelWarmUp.startEarly();
        KernelWarmUp w = KernelWarmUp.takeEarly();
        assertEquals(null, KernelWarmUp.takeEarly());
        assertEquals(ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent(), w != null);
        if (w == null) {
            return;
        }
        try {
            awaitRounds(w, 1);
            // another head size (32) and no grouped-query attention: a new executor and pipeline, still stepping
            w.retarget(ExecutorOptions.defaults().withVector(false), new LlamaConfig(256, 700, 4, 8, 8, 300, 64, true));
            int before = w.rounds();
            awaitRounds(w, before + 2);
        } finally {
            w.close();
        }
    }

    @Test
    void stepsTheSmallModelUntilClosed() throws Exception {
        LlamaConfig m25 = new LlamaConfig(512, 1376, 8, 8, 4, 512, 1024, true);
        for (boolean vector : new boolean[] {true, false}) {
            KernelWarmUp w = KernelWarmUp.start(new CpuExecutorProvider(),
                    ExecutorOptions.defaults().withVector(vector), m25);
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (w.rounds() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            long closing = System.nanoTime();
            w.close();
            assertTrue(w.rounds() >= 2, "vector " + vector + ": " + w.rounds() + " warm-up sequences in 60 s");
            assertTrue(System.nanoTime() - closing < 10_000_000_000L, "close took more than 10 s");
            int after = w.rounds();
            Thread.sleep(50);
            assertEquals(after, w.rounds(), "still stepping after close");
        }
    }
}
