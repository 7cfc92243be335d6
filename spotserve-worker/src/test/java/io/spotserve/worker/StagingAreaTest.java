package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The worker's staging area: bounded, single use on send, freed on release, timeout and fence. */
class StagingAreaTest {
    private final AtomicLong now = new AtomicLong();
    private final StagingArea area = new StagingArea(100, Duration.ofSeconds(10), now::get);
    private static final ByteString H = ByteString.copyFromUtf8("h");

    @Test
    void aStageBeyondTheCapacityIsRefusedAndStagesNothing() {
        long a = area.put(H, new byte[60]);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> area.put(H, new byte[41]));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().contains("41 bytes asked, 60 of 100 bytes staged"),
                e.getStatus().getDescription());
        assertEquals(60, area.usedBytes());
        assertEquals(1, area.size());
        long b = area.put(H, new byte[40]); // exactly full
        assertEquals(100, area.usedBytes());
        assertTrue(a != b);
    }

    @Test
    void aSentSliceIsUsedUpAndAReleasedOneIsGone() {
        byte[] data = {1, 2, 3};
        long h = area.put(H, data);
        assertArrayEquals(data, area.get(h).data());
        assertEquals(1, area.size(), "get leaves it staged");
        assertArrayEquals(data, area.take(h).data());
        assertEquals(0, area.usedBytes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> area.take(h));
        assertTrue(e.getMessage().contains("staged slice " + h + " is not on this worker"), e.getMessage());
        long g = area.put(H, data);
        assertTrue(area.release(g));
        assertFalse(area.release(g), "a second release finds nothing");
        assertEquals(0, area.usedBytes());
    }

    @Test
    void slicesNobodySendsAreFreedAfterTheTimeoutAndAFenceFreesEverything() {
        area.put(H, new byte[10]);
        now.addAndGet(Duration.ofSeconds(5).toNanos());
        long young = area.put(H, new byte[20]);
        assertEquals(0, area.sweep());
        now.addAndGet(Duration.ofSeconds(5).toNanos());
        assertEquals(1, area.sweep(), "the first one is 10 s old");
        assertEquals(20, area.usedBytes());
        assertEquals(20, area.get(young).data().length);
        area.put(H, new byte[30]);
        area.clear();
        assertEquals(0, area.usedBytes());
        assertEquals(0, area.size());
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StagingArea(-1, Duration.ofSeconds(1), now::get));
        assertThrows(IllegalArgumentException.class, () -> new StagingArea(1, Duration.ZERO, now::get));
    }
}
