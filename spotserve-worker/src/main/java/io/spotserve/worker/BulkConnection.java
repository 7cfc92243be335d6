package io.spotserve.worker;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;

/**
 * One bulk-socket connection's byte I/O ({@link BulkTransfer}): the protocol's small fields through data streams, the
 * slice bytes straight between the kernel and a caller's buffer. A plain TCP socket with a channel moves slice bytes
 * with the channel, so a direct buffer goes to and from the kernel with no copy in between (the socket streams copy
 * every byte through a temporary direct buffer); a TLS socket has no channel and moves them through its streams. Every
 * read fails with {@link SocketTimeoutException} after {@code timeoutMs} without a byte. One thread at a time.
 */
abstract class BulkConnection implements AutoCloseable {
    /** The connection over {@code s}: by its channel when it has one (plain TCP), else by its streams (TLS). */
    static BulkConnection of(Socket s, int timeoutMs) throws IOException {
        s.setTcpNoDelay(true);
        return s.getChannel() != null ? new Channel(s.getChannel(), timeoutMs) : new Streams(s, timeoutMs);
    }

    /** The protocol's fields (big-endian); reads no further than asked. */
    abstract DataInputStream in();

    /** The protocol's fields; buffered, flushed before slice bytes go and by {@link #flush}. */
    abstract DataOutputStream out();

    /** A buffer for slice bytes read here: direct for a channel, on the heap for streams. */
    abstract ByteBuffer allocate(int size);

    /** Reads exactly {@code len} bytes into {@code b} at index {@code off} (its position and limit stay). */
    abstract void readFully(ByteBuffer b, int off, int len) throws IOException;

    /** Writes bytes {@code [off, off + len)} of {@code b} (by index) after the fields written so far. */
    abstract void write(ByteBuffer b, int off, int len) throws IOException;

    /**
     * Writes one chunk: {@code len} and {@code crc} (two big-endian ints), then bytes {@code [off, off + len)} of
     * {@code b} (by index), after the fields written so far; the same bytes as {@code out().writeInt(len);
     * out().writeInt(crc); write(b, off, len)}.
     */
    void writeChunk(int len, int crc, ByteBuffer b, int off) throws IOException {
        out().writeInt(len);
        out().writeInt(crc);
        write(b, off, len);
    }

    /** Reads 8 bytes as a big-endian long; the same as {@code in().readLong()}. */
    long readLong() throws IOException {
        return in().readLong();
    }

    /** Whether the peer has sent something (or closed) that was not read yet; never blocks. */
    abstract boolean readable() throws IOException;

    /** Reads and drops what the peer still sends, until its end of stream or a second of silence. */
    abstract void drain();

    /**
     * Waits up to {@code waitMs} for the peer to send something (or close); false after that silence. Only for a
     * connection kept open between transfers (plain TCP); streams answer false at once.
     */
    abstract boolean awaitReadable(int waitMs) throws IOException;

    final void flush() throws IOException {
        out().flush();
    }

    /** Releases what the connection holds besides the socket (whose owner closes it). */
    @Override
    public abstract void close();

    /** Plain TCP: a non-blocking channel and a selector for the stall timeout. */
    private static final class Channel extends BulkConnection {
        private final SocketChannel ch;
        private final Selector selector;
        private final SelectionKey key;
        private final int timeoutMs;
        private final DataInputStream in;
        private final DataOutputStream out;
        /** A chunk's length and CRC, written with its bytes in one gathering write; a field read in one read. */
        private final ByteBuffer head = ByteBuffer.allocateDirect(Long.BYTES);
        private final ByteBuffer[] frame = new ByteBuffer[2];

        Channel(SocketChannel ch, int timeoutMs) throws IOException {
            this.ch = ch;
            this.timeoutMs = timeoutMs;
            ch.configureBlocking(false);
            selector = Selector.open();
            key = ch.register(selector, 0);
            in = new DataInputStream(new InputStream() {
                @Override
                public int read() throws IOException {
                    byte[] one = new byte[1];
                    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    return len == 0 ? 0 : readSome(ByteBuffer.wrap(b, off, len), timeoutMs);
                }
            });
            out = new DataOutputStream(new BufferedOutputStream(new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    writeFully(ByteBuffer.wrap(b, off, len));
                }
            }, 256));
        }

        /** Reads at least one byte into {@code dst} (waiting up to {@code waitMs}); -1 at the end of stream. */
        private int readSome(ByteBuffer dst, int waitMs) throws IOException {
            while (true) {
                int n = ch.read(dst);
                if (n != 0) {
                    return n;
                }
                if (!await(SelectionKey.OP_READ, waitMs)) {
                    throw new SocketTimeoutException("no byte for " + waitMs + " ms");
                }
            }
        }

        private void writeFully(ByteBuffer src) throws IOException {
            while (src.hasRemaining()) {
                if (ch.write(src) == 0 && !await(SelectionKey.OP_WRITE, timeoutMs)) {
                    throw new SocketTimeoutException("the peer took no byte for " + timeoutMs + " ms");
                }
            }
        }

        /** Waits until the channel is ready for {@code op}; false after {@code waitMs}. */
        private boolean await(int op, int waitMs) throws IOException {
            key.interestOps(op);
            int ready = selector.select(waitMs);
            selector.selectedKeys().clear();
            return ready > 0;
        }

        @Override
        DataInputStream in() {
            return in;
        }

        @Override
        DataOutputStream out() {
            return out;
        }

        @Override
        ByteBuffer allocate(int size) {
            return ByteBuffer.allocateDirect(size);
        }

        @Override
        void readFully(ByteBuffer b, int off, int len) throws IOException {
            ByteBuffer dst = b.duplicate().limit(off + len).position(off);
            while (dst.hasRemaining()) {
                if (readSome(dst, timeoutMs) < 0) {
                    throw new EOFException("the peer closed the connection");
                }
            }
        }

        @Override
        void write(ByteBuffer b, int off, int len) throws IOException {
            out.flush();
            writeFully(b.duplicate().limit(off + len).position(off));
        }

        /** One system call for the chunk's fields and bytes (not one for the 8 bytes and one for the rest). */
        @Override
        void writeChunk(int len, int crc, ByteBuffer b, int off) throws IOException {
            out.flush();
            head.clear().putInt(len).putInt(crc).flip();
            frame[0] = head;
            frame[1] = b.duplicate().limit(off + len).position(off);
            try {
                while (frame[1].hasRemaining()) {
                    if (ch.write(frame) == 0 && !await(SelectionKey.OP_WRITE, timeoutMs)) {
                        throw new SocketTimeoutException("the peer took no byte for " + timeoutMs + " ms");
                    }
                }
            } finally {
                frame[1] = null;
            }
        }

        /** One read for the 8 bytes where they have arrived (the stream reads a field a byte per system call). */
        @Override
        long readLong() throws IOException {
            head.clear();
            while (head.hasRemaining()) {
                if (readSome(head, timeoutMs) < 0) {
                    throw new EOFException("the peer closed the connection");
                }
            }
            return head.getLong(0);
        }

        @Override
        boolean readable() throws IOException {
            key.interestOps(SelectionKey.OP_READ);
            int ready = selector.selectNow();
            selector.selectedKeys().clear();
            return ready > 0;
        }

        @Override
        boolean awaitReadable(int waitMs) throws IOException {
            return await(SelectionKey.OP_READ, waitMs);
        }

        @Override
        void drain() {
            ByteBuffer sink = ByteBuffer.allocate(64 << 10);
            try {
                while (readSome(sink.clear(), 1000) >= 0) {
                    // dropped
                }
            } catch (IOException ignored) {
                // silence or a reset: give up on it
            }
        }

        @Override
        public void close() {
            try {
                selector.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    /** TLS (no channel): the socket's streams, slice bytes through an array. */
    private static final class Streams extends BulkConnection {
        private final Socket s;
        private final DataInputStream in;
        private final DataOutputStream out;

        Streams(Socket s, int timeoutMs) throws IOException {
            this.s = s;
            s.setSoTimeout(timeoutMs);
            in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 64 << 10));
            out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1024));
        }

        @Override
        DataInputStream in() {
            return in;
        }

        @Override
        DataOutputStream out() {
            return out;
        }

        @Override
        ByteBuffer allocate(int size) {
            return ByteBuffer.allocate(size);
        }

        @Override
        void readFully(ByteBuffer b, int off, int len) throws IOException {
            if (b.hasArray()) {
                in.readFully(b.array(), b.arrayOffset() + off, len);
                return;
            }
            byte[] copy = new byte[Math.min(len, 64 << 10)];
            for (int done = 0; done < len; ) {
                int n = Math.min(copy.length, len - done);
                in.readFully(copy, 0, n);
                b.put(off + done, copy, 0, n);
                done += n;
            }
        }

        @Override
        void write(ByteBuffer b, int off, int len) throws IOException {
            if (b.hasArray()) {
                out.write(b.array(), b.arrayOffset() + off, len);
                return;
            }
            byte[] copy = new byte[Math.min(len, 64 << 10)];
            for (int done = 0; done < len; ) {
                int n = Math.min(copy.length, len - done);
                b.get(off + done, copy, 0, n);
                out.write(copy, 0, n);
                done += n;
            }
        }

        @Override
        boolean readable() throws IOException {
            return in.available() > 0;
        }

        @Override
        boolean awaitReadable(int waitMs) {
            return false;
        }

        @Override
        void drain() {
            try {
                s.setSoTimeout(1000);
                byte[] sink = new byte[64 << 10];
                while (in.read(sink) >= 0) {
                    // dropped
                }
            } catch (IOException ignored) {
                // silence or a reset: give up on it
            }
        }

        @Override
        public void close() {
            // the socket's owner closes it
        }
    }
}
