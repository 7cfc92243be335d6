import io.spotserve.exec.*;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import java.util.*;

public class MigProbe {
    public static void main(String[] a) throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(java.nio.file.Path.of(System.getProperty("java.io.tmpdir"), "spotserve-bench-25M-seed1.bin"));
        try (CpuExecutor ex = new CpuExecutor(new ExecutorOptions(1, false))) {
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
            Device d1 = ex.createDevice(new DeviceId("a", 0), 512L << 20);
            Device d2 = ex.createDevice(new DeviceId("b", 0), 512L << 20);
            Pipeline from = ex.createPipeline(layout, List.of(d1), 1);
            Pipeline to = ex.createPipeline(layout, List.of(d2), 1);
            from.loadWeights(ckpt);
            List<ContextSlice> slices = layout.weightSlices(0, 0);
            for (int round = 0; round < 6; round++) {
                long exp = 0, imp = 0, crc = 0, bytes = 0;
                for (ContextSlice s : slices) {
                    long t0 = System.nanoTime();
                    byte[] b = from.exportSlice(0, 0, s);
                    long t1 = System.nanoTime();
                    java.util.zip.CRC32C c = new java.util.zip.CRC32C(); c.update(b, 0, b.length);
                    long t2 = System.nanoTime();
                    to.importSlice(0, 0, b);
                    long t3 = System.nanoTime();
                    exp += t1 - t0; crc += t2 - t1; imp += t3 - t2; bytes += b.length;
                    to.releaseSlice(0, 0, s);
                }
                System.out.printf("round %d: %.1f MB export %.0f ms (%.2f GB/s) crc %.0f ms import %.0f ms (%.2f GB/s)%n",
                    round, bytes / 1e6, exp / 1e6, bytes / (double) exp, crc / 1e6, imp / 1e6, bytes / (double) imp);
            }
        }
    }
}
