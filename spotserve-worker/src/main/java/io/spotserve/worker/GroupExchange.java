package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.TensorReducer;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.GroupMember;
import io.spotserve.worker.proto.PartialsMessage;
import io.spotserve.worker.proto.PeerGrpc;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The all-reduce of tensor groups split over worker processes, on one worker: the split groups it hosts, and a
 * bounded mailbox of the partials its group peers sent, matched by (pipeline, step id, {@link TensorReducer.Point},
 * sender's shards). At each reduce point a member sends its shards' partials to every other member and waits for
 * theirs, then sums all M in global shard order (as {@link TensorReducer#addInShardOrder}): every member gets the
 * one-process floats. A member sends to each peer member on one long-lived link, opened on first use and again after
 * it failed: raw frames on the peer worker's step socket ({@link PartialsSocket}) when it has one, else a
 * {@code Peer/PartialsStream} (mTLS, raw sockets off, the socket unreachable); {@code Peer/Partials} takes a single
 * message. Whatever way they come, partials pass the same checks and bounds into the same mailbox. A failed link to a
 * peer (it died, or refused a message), a cancelled step (the controller gave up: a worker was declared dead) or
 * {@link #WAIT_MS} without the peer's partials fail the step at once.
 */
final class GroupExchange {
    /** How long a member waits for a peer's partials at one point. */
    static final long WAIT_MS = 30_000;
    /** Mailbox bounds: entries and bytes held at once (a refused deposit is RESOURCE_EXHAUSTED). */
    static final int MAX_ENTRIES = 4096;
    static final long MAX_BYTES = 64L << 20;
    /** Partials nobody took within this time (their step failed elsewhere) are dropped. */
    static final long EXPIRE_NANOS = TimeUnit.SECONDS.toNanos(60);

    /**
     * A split group this worker hosts a member of.
     *
     * @param self      this member's pipeline id
     * @param members   all members in shard order, this one included
     * @param shards    M, the group's shard count
     * @param maxFloats the most floats one partial may carry (maxBatch x dim)
     */
    record Group(long self, List<GroupMember> members, int shards, int maxFloats) {
        Group {
            members = List.copyOf(members);
            int next = 0;
            int mine = 0;
            for (GroupMember m : members) {
                if (m.getFirstShard() != next || m.getEndShard() <= m.getFirstShard()) {
                    throw new IllegalArgumentException("group members must cover shards [0, " + shards + ") in "
                            + "order with non-empty ranges; got " + ranges(members));
                }
                next = m.getEndShard();
                if (m.getPipeline() == self) {
                    mine++;
                }
            }
            if (next != shards || mine != 1 || members.size() < 2) {
                throw new IllegalArgumentException("a split group needs >= 2 members covering [0, " + shards
                        + ") with this pipeline (" + self + ") once; got " + ranges(members));
            }
        }

        int index() {
            for (int i = 0; i < members.size(); i++) {
                if (members.get(i).getPipeline() == self) {
                    return i;
                }
            }
            throw new IllegalStateException("unreachable");
        }

        private static String ranges(List<GroupMember> ms) {
            List<String> out = new ArrayList<>();
            for (GroupMember m : ms) {
                out.add(m.getPipeline() + "@" + m.getAddress() + "[" + m.getFirstShard() + ", " + m.getEndShard() + ")");
            }
            return out.toString();
        }
    }

    private record Key(long pipeline, long step, int stage, int layer, int kind, int firstShard) {
    }

    /** A peer's partials for one point: {@code count × n} floats, shard-major (a pooled array). */
    private record Entry(float[] flat, long at, long bytes) {
    }

    /** Where a member's partials go to one peer member: a {@link PartialsSocket}, or a gRPC stream. */
    interface PartialsLink {
        /**
         * Sends this member's partials of one point ({@code partials[i]} of shard {@code shards.from() + i}, {@code n}
         * floats each) for the receiver's pipeline {@code pipeline}.
         *
         * @throws StatusRuntimeException the link's failure (it is broken from then on)
         */
        void send(long pipeline, long step, TensorReducer.Point point, IndexRange shards, float[][] partials, int n);

        /** The link's failure, or null while it works. */
        StatusRuntimeException failure();

        void close();
    }

    /** A long-lived {@code Peer/PartialsStream} from one of this worker's members to one peer member (the fallback). */
    private final class StreamLink implements PartialsLink {
        private ClientCallStreamObserver<PartialsMessage> out; // guarded by this link
        private volatile StatusRuntimeException failed;

        void fail(StatusRuntimeException e) {
            if (failed == null) {
                failed = e;
            }
            wake();
        }

        @Override
        public synchronized void send(long pipeline, long step, TensorReducer.Point point, IndexRange shards,
                                      float[][] partials, int n) {
            if (failed != null) {
                throw failed;
            }
            int count = shards.length();
            ByteString.Output packed = ByteString.newOutput(count * n * Float.BYTES);
            try {
                for (int i = 0; i < count; i++) {
                    Wire.floats(partials[i], n).writeTo(packed);
                }
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
            out.onNext(PartialsMessage.newBuilder().setPipeline(pipeline).setStepId(step).setStage(point.stage())
                    .setLayer(point.layer()).setKind(point.kind().ordinal()).setFirstShard(shards.from())
                    .setEndShard(shards.to()).setN(n).setFloats(packed.toByteString()).build());
        }

        @Override
        public StatusRuntimeException failure() {
            return failed;
        }

        @Override
        public synchronized void close() {
            if (failed == null) {
                failed = Status.CANCELLED.withDescription("partials stream closed").asRuntimeException();
                out.onCompleted();
            }
        }
    }

    private record LinkKey(long self, long peer) {
    }

    private static final TensorReducer.Kind[] KINDS = TensorReducer.Kind.values();
    /** Pooled partial arrays kept per length, at most this many in all. */
    private static final int POOL_ARRAYS = 64;

    private final Function<String, ManagedChannel> peers;
    private final Runnable checkLive;
    private final Map<LinkKey, PartialsLink> links = new ConcurrentHashMap<>();
    private final Map<Long, Group> groups = new ConcurrentHashMap<>();
    private final Map<Key, Entry> box = new HashMap<>(); // guarded by this
    private long boxBytes; // guarded by this
    private final Map<Integer, ArrayDeque<float[]>> pool = new HashMap<>(); // guarded by this
    private int pooled; // guarded by this
    private final AtomicLong socketSends = new AtomicLong();
    private final AtomicLong streamSends = new AtomicLong();

    /**
     * @param peers     the channel to a peer worker's address
     * @param checkLive the worker's liveness check (throws once it is fenced), run before a socket frame is kept
     */
    GroupExchange(Function<String, ManagedChannel> peers, Runnable checkLive) {
        this.peers = peers;
        this.checkLive = checkLive;
    }

    void register(Group g) {
        groups.put(g.self(), g);
    }

    private synchronized void wake() {
        notifyAll(); // a member waiting on a peer's partials sees the failed link now
    }

    /**
     * The open link from member {@code self} to {@code peer}, a new one if there is none or it failed: the peer
     * worker's step socket when it has one and it can be reached, else a {@code Peer/PartialsStream}.
     */
    private PartialsLink link(long self, GroupMember peer) {
        LinkKey k = new LinkKey(self, peer.getPipeline());
        PartialsLink l = links.get(k);
        if (l != null && l.failure() == null) {
            return l;
        }
        PartialsLink fresh = PartialsSocket.open(peers.apply(peer.getAddress()), peer.getAddress(), this::wake);
        if (fresh == null) {
            fresh = stream(peer);
        }
        PartialsLink old = links.put(k, fresh);
        if (old != null) {
            old.close();
        }
        return fresh;
    }

    private StreamLink stream(GroupMember peer) {
        StreamLink fresh = new StreamLink();
        Context previous = Context.ROOT.attach(); // the stream outlives the step that opens it
        try {
            synchronized (fresh) {
                fresh.out = (ClientCallStreamObserver<PartialsMessage>) PeerGrpc.newStub(peers.apply(peer.getAddress()))
                        .partialsStream(new StreamObserver<Ack>() {
                            @Override
                            public void onNext(Ack a) {
                            }

                            @Override
                            public void onError(Throwable t) {
                                Status st = Status.fromThrowable(t);
                                fresh.fail(st.withDescription("partials stream to " + peer.getAddress() + " failed: "
                                        + st.getCode() + " " + st.getDescription()).asRuntimeException());
                            }

                            @Override
                            public void onCompleted() {
                                fresh.fail(Status.UNAVAILABLE.withDescription("partials stream to "
                                        + peer.getAddress() + " ended").asRuntimeException());
                            }
                        });
            }
        } finally {
            Context.ROOT.detach(previous);
        }
        return fresh;
    }

    private void closeLinks(java.util.function.LongPredicate self) {
        for (Map.Entry<LinkKey, PartialsLink> e : links.entrySet()) {
            if (self.test(e.getKey().self()) && links.remove(e.getKey(), e.getValue())) {
                e.getValue().close();
            }
        }
    }

    /** Forgets the group of pipeline {@code id}, its links and the partials waiting for it. */
    void remove(long id) {
        closeLinks(x -> x == id);
        removeGroup(id);
    }

    private synchronized void removeGroup(long id) {
        groups.remove(id);
        box.entrySet().removeIf(e -> {
            if (e.getKey().pipeline() == id) {
                boxBytes -= e.getValue().bytes();
                return true;
            }
            return false;
        });
    }

    void clear() {
        closeLinks(x -> true);
        clearGroups();
    }

    private synchronized void clearGroups() {
        groups.clear();
        box.clear();
        boxBytes = 0;
    }

    Group group(long pipeline) {
        return groups.get(pipeline);
    }

    /** Partials waiting now (tests). */
    synchronized int waiting() {
        return box.size();
    }

    /** Partials messages this worker's members sent so far over step sockets and over gRPC streams. */
    long[] sends() {
        return new long[] {socketSends.get(), streamSends.get()};
    }

    /** Checks and keeps a peer's partials for its step; refuses (nothing kept) anything that does not fit. */
    void deposit(PartialsMessage m) {
        int count = check(m.getPipeline(), m.getStepId(), m.getStage(), m.getLayer(), m.getKind(), m.getFirstShard(),
                m.getEndShard(), m.getN(), m.getFloats().size());
        float[] flat = buffer(count * m.getN());
        Wire.floats(m.getFloats(), flat, 0, count * m.getN());
        keep(m.getPipeline(), m.getStepId(), m.getStage(), m.getLayer(), m.getKind(), m.getFirstShard(), flat,
                m.getFloats().size());
    }

    /** The socket's side of {@link #deposit}: the same checks, then the same mailbox. */
    PartialsSocket.Inbox inbox() {
        return new PartialsSocket.Inbox() {
            @Override
            public int check(long pipeline, long step, int stage, int layer, int kind, int first, int end, int n,
                             long bytes) {
                checkLive.run();
                return GroupExchange.this.check(pipeline, step, stage, layer, kind, first, end, n, bytes);
            }

            @Override
            public float[] buffer(int floats) {
                return GroupExchange.this.buffer(floats);
            }

            @Override
            public void keep(long pipeline, long step, int stage, int layer, int kind, int first, float[] flat,
                             long bytes) {
                checkLive.run();
                GroupExchange.this.keep(pipeline, step, stage, layer, kind, first, flat, bytes);
            }
        };
    }

    /**
     * Checks a peer's partials (before their floats are read): a split group here, the sender's range another
     * member's, a known point, 1 ≤ n ≤ maxBatch × dim, exactly (end − first) × n floats.
     *
     * @return how many partials they are
     */
    private int check(long pipeline, long step, int stage, int layer, int kind, int first, int end, int n, long bytes) {
        Group g = groups.get(pipeline);
        if (g == null) {
            throw new IllegalArgumentException("pipeline " + pipeline + " is not a split tensor group here");
        }
        GroupMember from = null;
        for (GroupMember x : g.members()) {
            if (x.getPipeline() != g.self() && x.getFirstShard() == first && x.getEndShard() == end) {
                from = x;
            }
        }
        if (from == null) {
            throw new IllegalArgumentException("shards [" + first + ", " + end + ") are no other member's of the group "
                    + "of pipeline " + pipeline);
        }
        if (kind < 0 || kind >= KINDS.length) {
            throw new IllegalArgumentException("unknown reduce point kind " + kind);
        }
        new TensorReducer.Point(stage, layer, KINDS[kind]); // checks
        int count = end - first;
        if (n < 1 || n > g.maxFloats()) {
            throw new IllegalArgumentException("partials of " + n + " floats outside [1, " + g.maxFloats() + "]");
        }
        if (bytes != (long) count * n * Float.BYTES) {
            throw new IllegalArgumentException("partials carry " + bytes + " bytes, expected " + count + " x " + n
                    + " floats");
        }
        return count;
    }

    /** Keeps checked partials; refuses a second copy of the same ones, or any beyond the mailbox's bounds. */
    private synchronized void keep(long pipeline, long step, int stage, int layer, int kind, int first, float[] flat,
                                   long bytes) {
        Key k = new Key(pipeline, step, stage, layer, kind, first);
        expire();
        if (box.containsKey(k)) {
            throw new IllegalArgumentException("partials for step " + step + " at " + stage + "/" + layer + "/" + kind
                    + " from shard " + first + " already arrived");
        }
        if (box.size() >= MAX_ENTRIES || boxBytes + bytes > MAX_BYTES) {
            throw new StatusRuntimeException(Status.RESOURCE_EXHAUSTED.withDescription("partials mailbox full ("
                    + box.size() + " entries, " + boxBytes + " bytes)"));
        }
        box.put(k, new Entry(flat, System.nanoTime(), bytes));
        boxBytes += bytes;
        notifyAll();
    }

    /** An array of exactly {@code floats} floats, from the pool when one is there. */
    private synchronized float[] buffer(int floats) {
        ArrayDeque<float[]> free = pool.get(floats);
        if (free != null && !free.isEmpty()) {
            pooled--;
            return free.pop();
        }
        return new float[floats];
    }

    /** Returns an array taken from the mailbox (nobody else holds it) to the pool. */
    private synchronized void recycle(float[] a) {
        if (pooled < POOL_ARRAYS) {
            pool.computeIfAbsent(a.length, x -> new ArrayDeque<>()).push(a);
            pooled++;
        }
    }

    private void expire() {
        long now = System.nanoTime();
        for (Iterator<Map.Entry<Key, Entry>> it = box.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Key, Entry> e = it.next();
            if (now - e.getValue().at() > EXPIRE_NANOS) {
                boxBytes -= e.getValue().bytes();
                it.remove();
            }
        }
    }

    /** Drops what is left of step {@code step} of pipeline {@code pipeline} (it ended, either way). */
    synchronized void endStep(long pipeline, long step) {
        box.entrySet().removeIf(e -> {
            if (e.getKey().pipeline() == pipeline && e.getKey().step() == step) {
                boxBytes -= e.getValue().bytes();
                return true;
            }
            return false;
        });
    }

    /**
     * The reducer of one step of member {@code g}: sends this member's partials to the others, sums all M.
     *
     * @param sent counts the bytes of partials this worker sends
     */
    TensorReducer reducer(Group g, long step, AtomicLong sent) {
        List<GroupMember> others = new ArrayList<>();
        for (GroupMember m : g.members()) {
            if (m.getPipeline() != g.self()) {
                others.add(m);
            }
        }
        // for each global shard: the index in others of its member (-1: this member's own)
        int[] memberOf = new int[g.shards()];
        java.util.Arrays.fill(memberOf, -1);
        for (int i = 0; i < others.size(); i++) {
            for (int s = others.get(i).getFirstShard(); s < others.get(i).getEndShard(); s++) {
                memberOf[s] = i;
            }
        }
        return new TensorReducer() {
            private final PartialsLink[] out = new PartialsLink[others.size()];
            private final float[][] got = new float[others.size()][];
            private float[] acc = new float[0];

            @Override
            public float[] allReduce(Point point, IndexRange shards, float[][] partials, int n) {
                int count = shards.length();
                for (int i = 0; i < out.length; i++) {
                    if (out[i] == null) { // opened at the step's first point, kept for its others
                        out[i] = link(g.self(), others.get(i));
                    }
                    out[i].send(others.get(i).getPipeline(), step, point, shards, partials, n);
                    (out[i] instanceof PartialsSocket ? socketSends : streamSends).incrementAndGet();
                    sent.addAndGet((long) count * n * Float.BYTES);
                }
                for (int i = 0; i < out.length; i++) {
                    GroupMember m = others.get(i);
                    got[i] = take(new Key(g.self(), step, point.stage(), point.layer(), point.kind().ordinal(),
                            m.getFirstShard()), m, out, point);
                }
                if (acc.length < n) {
                    acc = new float[n];
                }
                // ((P0 + P1) + P2) + ... in global shard order, as TensorReducer.addInShardOrder sums
                for (int s = 0; s < memberOf.length; s++) {
                    float[] src;
                    int off;
                    if (memberOf[s] < 0) {
                        src = partials[s - shards.from()];
                        off = 0;
                    } else {
                        src = got[memberOf[s]];
                        off = (s - others.get(memberOf[s]).getFirstShard()) * n;
                    }
                    if (s == 0) {
                        System.arraycopy(src, off, acc, 0, n);
                    } else {
                        for (int j = 0; j < n; j++) {
                            acc[j] += src[off + j];
                        }
                    }
                }
                for (int i = 0; i < got.length; i++) {
                    recycle(got[i]);
                    got[i] = null;
                }
                return acc;
            }
        };
    }

    private float[] take(Key k, GroupMember from, PartialsLink[] sends, TensorReducer.Point point) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        Context ctx = Context.current();
        synchronized (this) {
            while (true) {
                Entry e = box.remove(k);
                if (e != null) {
                    boxBytes -= e.bytes();
                    return e.flat();
                }
                for (PartialsLink l : sends) {
                    StatusRuntimeException failed = l.failure();
                    if (failed != null) {
                        throw Status.fromThrowable(failed).withDescription("at " + point + ": "
                                + failed.getStatus().getDescription()).asRuntimeException();
                    }
                }
                if (ctx.isCancelled()) {
                    throw Status.CANCELLED.withDescription("step cancelled while waiting for the partials of "
                            + from.getAddress() + " at " + point).asRuntimeException();
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw Status.DEADLINE_EXCEEDED.withDescription("no partials from group peer " + from.getAddress()
                            + " at " + point + " within " + WAIT_MS + " ms").asRuntimeException();
                }
                try {
                    wait(Math.min(20, Math.max(1, TimeUnit.NANOSECONDS.toMillis(left))));
                } catch (InterruptedException x) {
                    Thread.currentThread().interrupt();
                    throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
                }
            }
        }
    }

    static IndexRange shards(GroupMember m) {
        return new IndexRange(m.getFirstShard(), m.getEndShard());
    }
}
