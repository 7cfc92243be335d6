package io.spotserve.instance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.clock.VirtualClock;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The instance manager's side of Algorithm 1's Δ (SpotServe §3.2): both bundled providers launch on-demand
 * instances on {@code requestOnDemand(n)} and confirm {@code release(id)} with a termination, dated on the engine
 * clock, next to the spot events of the real trace.
 */
class OnDemandProvidersTest {
    private static final InstanceType SPOT = new InstanceType("g4dn.12xlarge", 4, 15L << 30, 1.9, InstanceType.Market.SPOT);
    private static final InstanceType ON_DEMAND = SPOT.on(InstanceType.Market.ON_DEMAND, 3.9);

    @Test
    void traceProviderLaunchesOnDemandBesideTheRealTraceAndConfirmsReleases() throws IOException {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        TraceInstanceProvider p = TraceInstanceProvider.read(
                SharedData.file("traces/spotserve/trace_seg/trace_0304_real.txt"), SPOT, Duration.ofSeconds(30), 1.0,
                clock, ON_DEMAND);
        List<InstanceEvent> seen = new CopyOnWriteArrayList<>();
        p.start(seen::add);
        int traceEvents = seen.size();
        assertEquals(p.events().size(), traceEvents, "every trace event is handed over at start");
        clock.advance(Duration.ofSeconds(90));
        p.requestOnDemand(2);
        assertEquals(traceEvents + 2, seen.size());
        Set<String> ids = new HashSet<>();
        for (InstanceEvent e : seen.subList(traceEvents, seen.size())) {
            InstanceEvent.Acquired a = (InstanceEvent.Acquired) e;
            assertEquals(InstanceType.Market.ON_DEMAND, a.instance().type().market());
            assertEquals(Duration.ofSeconds(90), a.at());
            assertTrue(ids.add(a.instanceId()), "fresh id " + a.instanceId());
            for (InstanceEvent t : seen.subList(0, traceEvents)) {
                assertTrue(!t.instanceId().equals(a.instanceId()), "on-demand id clashes with trace node " + a.instanceId());
            }
        }
        String first = ids.iterator().next();
        p.release(first);
        InstanceEvent last = seen.get(seen.size() - 1);
        assertEquals(new InstanceEvent.Terminated(first, Duration.ofSeconds(90)), last);
        assertThrows(IllegalArgumentException.class, () -> p.requestOnDemand(-1));
        p.close();
    }

    @Test
    void localProviderTracksLiveInstancesThroughRequestsAndReleases() {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider p = new LocalInstanceProvider(clock, ON_DEMAND);
        List<InstanceEvent> seen = new ArrayList<>();
        p.add(SPOT);
        p.start(seen::add);
        p.requestOnDemand(3);
        assertEquals(4, p.live().size());
        long onDemand = p.live().stream().filter(i -> !i.type().preemptible()).count();
        assertEquals(3, onDemand);
        String victim = p.live().get(2).id();
        p.release(victim);
        assertEquals(3, p.live().size());
        assertTrue(seen.contains(new InstanceEvent.Terminated(victim, clock.now())), seen.toString());
        p.release(victim); // a second release of the same instance is ignored
        assertEquals(1, seen.stream().filter(e -> e instanceof InstanceEvent.Terminated).count());
        assertThrows(IllegalArgumentException.class, () -> p.requestOnDemand(-2));
        p.close();
    }
}
