package io.spotserve.model;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Positional reads of one model file through a per-thread direct buffer of {@value #CHUNK_BYTES} bytes: how
 * weights are read when an executor copies them into its own layout. The bytes pass through the page cache only;
 * reading through a mapping instead leaves every page read resident in the process (counted in its RSS) until the
 * mapping is collected, which on the 25M model doubled the weights' footprint. Thread-safe: reads are positional
 * on one shared channel, opened with the model (so a model stays readable after its file is deleted) and opened
 * again if an interrupted reader closed it.
 */
final class FileReads {
    /** Largest single read, and the size of each thread's buffer. */
    static final int CHUNK_BYTES = 256 * 1024;
    private static final ThreadLocal<ByteBuffer> BUFFER = ThreadLocal.withInitial(
            () -> ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN));

    private final Path file;
    private volatile FileChannel channel;

    /**
     * Opens {@code file} now, so that the model stays readable if the file is deleted or replaced afterwards (as a
     * mapping did). The channel is closed when this object is collected (a {@link FileChannel} closes its descriptor
     * then), with the model that holds it.
     */
    FileReads(Path file) throws IOException {
        this.file = file;
        this.channel = FileChannel.open(file, StandardOpenOption.READ);
    }

    /**
     * Bytes {@code [pos, pos + n)} of the file ({@code n <= CHUNK_BYTES}) in this thread's buffer, little-endian,
     * positioned at 0 with limit {@code n}; valid until this thread's next read.
     *
     * @throws UncheckedIOException if the file cannot be read or ends before {@code pos + n}
     */
    ByteBuffer read(long pos, int n) {
        if (n < 0 || n > CHUNK_BYTES) {
            throw new IllegalArgumentException("read of " + n + " bytes; at most " + CHUNK_BYTES);
        }
        ByteBuffer buf = BUFFER.get();
        buf.clear().limit(n);
        try {
            readFully(buf, pos);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + n + " bytes at " + pos + " of " + file, e);
        }
        return buf.flip();
    }

    private void readFully(ByteBuffer buf, long pos) throws IOException {
        for (int attempt = 0; ; attempt++) {
            FileChannel ch = channel();
            try {
                while (buf.hasRemaining()) {
                    if (ch.read(buf, pos + buf.position()) < 0) {
                        throw new EOFException(file + " ended at byte " + (pos + buf.position()));
                    }
                }
                return;
            } catch (ClosedChannelException e) {
                // an interrupted reader closes a FileChannel for every thread: open a new one once (the interrupted
                // thread itself keeps its interrupt status and fails)
                if (attempt > 0 || Thread.currentThread().isInterrupted()) {
                    throw e;
                }
                synchronized (this) {
                    if (channel == ch) {
                        channel = null;
                    }
                }
            }
        }
    }

    private FileChannel channel() throws IOException {
        FileChannel ch = channel;
        if (ch == null || !ch.isOpen()) {
            synchronized (this) {
                ch = channel;
                if (ch == null || !ch.isOpen()) {
                    // closed when the owning model is collected (a FileChannel closes its descriptor then)
                    ch = FileChannel.open(file, StandardOpenOption.READ);
                    channel = ch;
                }
            }
        }
        return ch;
    }
}
