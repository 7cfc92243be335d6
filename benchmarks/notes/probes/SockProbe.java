import java.io.*;
import java.net.*;

public class SockProbe {
    static double copy(long bytes, boolean timed, int bufIn) throws Exception {
        byte[] buf = new byte[4 << 20];
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread reader = new Thread(() -> {
                try (Socket s = server.accept()) {
                    if (timed) s.setSoTimeout(30_000);
                    InputStream in = bufIn > 0 ? new BufferedInputStream(s.getInputStream(), bufIn) : s.getInputStream();
                    DataInputStream d = new DataInputStream(in);
                    byte[] rb = new byte[8_650_000];
                    long got = 0;
                    while (got < bytes) {
                        int n = (int) Math.min(4 << 20, bytes - got);
                        int off = (int) (got % (rb.length - (4 << 20)));
                        d.readFully(rb, off, n);
                        got += n;
                    }
                    s.getOutputStream().write(1);
                } catch (Exception e) { throw new IllegalStateException(e); }
            });
            reader.start();
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
                long t0 = System.nanoTime();
                OutputStream out = s.getOutputStream();
                for (long sent = 0; sent < bytes; sent += buf.length) out.write(buf, 0, (int) Math.min(buf.length, bytes - sent));
                s.getInputStream().read();
                double sec = (System.nanoTime() - t0) / 1e9;
                reader.join();
                return bytes / sec / 1e6;
            }
        }
    }
    public static void main(String[] a) throws Exception {
        long bytes = 94_900_000L;
        for (int r = 0; r < 6; r++) {
            System.out.printf("plain %.0f MB/s, timed %.0f MB/s, timed+buffered64K %.0f MB/s, plain+buffered %.0f MB/s%n",
                copy(bytes, false, 0), copy(bytes, true, 0), copy(bytes, true, 64 << 10), copy(bytes, false, 64 << 10));
        }
    }
}
