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
 * bounded mailbox of the partials its group peers sent ({@code Peer/PartialsStream}: one long-lived stream per member
 * pair, opened on first use and again after it failed; or {@code Peer/Partials}), matched by (pipeline, step id,
 * {@link TensorReducer.Point}, sender's shards). At each reduce point a member sends its shards' partials to every
 * other member and waits for theirs, then sums all M in global shard order ({@link TensorReducer#addInShardOrder}):
 * every member gets the one-process floats. A failed stream to a peer (it died, or refused a message), a cancelled
 * step (the controller gave up: a worker was declared dead) or {@link #WAIT_MS} without the peer's partials fail the
 * step at once.
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

    private record Entry(float[][] partials, long at, long bytes) {
    }

    /** A long-lived {@code Peer/PartialsStream} from one of this worker's members to one peer member. */
    private final class Link {
        private ClientCallStreamObserver<PartialsMessage> out; // guarded by this link
        private volatile StatusRuntimeException failed;

        void fail(StatusRuntimeException e) {
            if (failed == null) {
                failed = e;
            }
            synchronized (GroupExchange.this) {
                GroupExchange.this.notifyAll(); // a member waiting on this peer's partials sees it now
            }
        }

        synchronized void send(PartialsMessage m) {
            if (failed != null) {
                throw failed;
            }
            out.onNext(m);
        }

        synchronized void close() {
            if (failed == null) {
                failed = Status.CANCELLED.withDescription("partials stream closed").asRuntimeException();
                out.onCompleted();
            }
        }
    }

    private record LinkKey(long self, long peer) {
    }

    private final Function<String, ManagedChannel> peers;
    private final Map<LinkKey, Link> links = new ConcurrentHashMap<>();
    private final Map<Long, Group> groups = new ConcurrentHashMap<>();
    private final Map<Key, Entry> box = new HashMap<>(); // guarded by this
    private long boxBytes; // guarded by this

    GroupExchange(Function<String, ManagedChannel> peers) {
        this.peers = peers;
    }

    void register(Group g) {
        groups.put(g.self(), g);
    }

    /** The open stream from member {@code self} to {@code peer}, a new one if there is none or it failed. */
    private Link link(long self, GroupMember peer) {
        LinkKey k = new LinkKey(self, peer.getPipeline());
        Link l = links.get(k);
        if (l != null && l.failed == null) {
            return l;
        }
        Link fresh = new Link();
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
        Link old = links.put(k, fresh);
        if (old != null) {
            old.close();
        }
        return fresh;
    }

    private void closeLinks(java.util.function.LongPredicate self) {
        for (Map.Entry<LinkKey, Link> e : links.entrySet()) {
            if (self.test(e.getKey().self()) && links.remove(e.getKey(), e.getValue())) {
                e.getValue().close();
            }
        }
    }

    /** Forgets the group of pipeline {@code id}, its streams and the partials waiting for it. */
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

    /** Checks and keeps a peer's partials for its step; refuses (nothing kept) anything that does not fit. */
    void deposit(PartialsMessage m) {
        Group g = groups.get(m.getPipeline());
        if (g == null) {
            throw new IllegalArgumentException("pipeline " + m.getPipeline() + " is not a split tensor group here");
        }
        GroupMember from = null;
        for (GroupMember x : g.members()) {
            if (x.getPipeline() != g.self() && x.getFirstShard() == m.getFirstShard()
                    && x.getEndShard() == m.getEndShard()) {
                from = x;
            }
        }
        if (from == null) {
            throw new IllegalArgumentException("shards [" + m.getFirstShard() + ", " + m.getEndShard() + ") are no "
                    + "other member's of the group of pipeline " + m.getPipeline());
        }
        if (m.getKind() < 0 || m.getKind() >= TensorReducer.Kind.values().length) {
            throw new IllegalArgumentException("unknown reduce point kind " + m.getKind());
        }
        new TensorReducer.Point(m.getStage(), m.getLayer(), TensorReducer.Kind.values()[m.getKind()]); // checks
        int count = m.getEndShard() - m.getFirstShard();
        if (m.getN() < 1 || m.getN() > g.maxFloats()) {
            throw new IllegalArgumentException("partials of " + m.getN() + " floats outside [1, " + g.maxFloats() + "]");
        }
        if (m.getFloats().size() != (long) count * m.getN() * Float.BYTES) {
            throw new IllegalArgumentException("partials carry " + m.getFloats().size() + " bytes, expected " + count
                    + " x " + m.getN() + " floats");
        }
        float[][] ps = new float[count][m.getN()];
        for (int i = 0; i < count; i++) {
            Wire.floats(m.getFloats().substring(i * m.getN() * Float.BYTES, (i + 1) * m.getN() * Float.BYTES), ps[i], 0,
                    m.getN());
        }
        Key k = new Key(m.getPipeline(), m.getStepId(), m.getStage(), m.getLayer(), m.getKind(), m.getFirstShard());
        long bytes = m.getFloats().size();
        synchronized (this) {
            expire();
            if (box.containsKey(k)) {
                throw new IllegalArgumentException("partials for step " + m.getStepId() + " at " + m.getStage() + "/"
                        + m.getLayer() + "/" + m.getKind() + " from shard " + m.getFirstShard() + " already arrived");
            }
            if (box.size() >= MAX_ENTRIES || boxBytes + bytes > MAX_BYTES) {
                throw new StatusRuntimeException(Status.RESOURCE_EXHAUSTED.withDescription("partials mailbox full ("
                        + box.size() + " entries, " + boxBytes + " bytes)"));
            }
            box.put(k, new Entry(ps, System.nanoTime(), bytes));
            boxBytes += bytes;
            notifyAll();
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
        return (point, shards, partials, n) -> {
            int count = shards.length();
            ByteString.Output packed = ByteString.newOutput(count * n * Float.BYTES);
            try {
                for (int i = 0; i < count; i++) {
                    Wire.floats(partials[i], n).writeTo(packed);
                }
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
            ByteString payload = packed.toByteString();
            List<Link> sends = new ArrayList<>();
            List<GroupMember> others = new ArrayList<>();
            for (GroupMember m : g.members()) {
                if (m.getPipeline() == g.self()) {
                    continue;
                }
                others.add(m);
                PartialsMessage msg = PartialsMessage.newBuilder().setPipeline(m.getPipeline()).setStepId(step)
                        .setStage(point.stage()).setLayer(point.layer()).setKind(point.kind().ordinal())
                        .setFirstShard(shards.from()).setEndShard(shards.to()).setN(n).setFloats(payload).build();
                Link l = link(g.self(), m);
                l.send(msg);
                sends.add(l);
                sent.addAndGet(payload.size());
            }
            float[][] all = new float[g.shards()][];
            for (int i = 0; i < count; i++) {
                all[shards.from() + i] = partials[i];
            }
            for (GroupMember m : others) {
                float[][] ps = take(new Key(g.self(), step, point.stage(), point.layer(), point.kind().ordinal(),
                        m.getFirstShard()), m, sends, point);
                for (int i = 0; i < ps.length; i++) {
                    all[m.getFirstShard() + i] = ps[i];
                }
            }
            float[] acc = java.util.Arrays.copyOf(all[0], n);
            TensorReducer.addInShardOrder(acc, java.util.Arrays.copyOfRange(all, 1, all.length), n);
            return acc;
        };
    }

    private float[][] take(Key k, GroupMember from, List<Link> sends, TensorReducer.Point point) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        Context ctx = Context.current();
        synchronized (this) {
            while (true) {
                Entry e = box.remove(k);
                if (e != null) {
                    boxBytes -= e.bytes();
                    return e.partials();
                }
                for (Link l : sends) {
                    StatusRuntimeException failed = l.failed;
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
