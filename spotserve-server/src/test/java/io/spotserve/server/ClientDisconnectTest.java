package io.spotserve.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.spotserve.clock.EngineClock;
import io.spotserve.clock.ForwardStep;
import io.spotserve.clock.SystemEngineClock;
import java.time.Duration;
import java.util.Iterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A streaming client that goes away cancels its request in the engine. The engine runs on a paced real clock (each
 * forward step keeps its pipeline busy for {@link #STEP}, like a slower accelerator), so the request cannot finish
 * on its own before the server notices the closed connection: the story the model writes for this prompt ends
 * after about 200 tokens, which takes at least 200 x 8 ms here, while the server notices within a few writes.
 */
@Timeout(120)
class ClientDisconnectTest {
    private static final Duration STEP = Duration.ofMillis(8);
    private static final String KEY = "disconnect-key";

    /** Real time whose pipelines stay busy for {@link #STEP} after each step. */
    private static final class PacedClock implements EngineClock {
        private final SystemEngineClock real = new SystemEngineClock();

        @Override
        public Duration now() {
            return real.now();
        }

        @Override
        public void awaitUntil(Duration deadline, Object monitor) throws InterruptedException {
            real.awaitUntil(deadline, monitor);
        }

        @Override
        public boolean isRealTime() {
            return true;
        }

        @Override
        public Duration computed(ForwardStep step) {
            return STEP;
        }
    }

    @Test
    void clientThatDisconnectsMidStreamCancelsItsRequest() throws Exception {
        try (TestModel.Served served = TestModel.engine(2, b -> b.maxBatch(4).clock(new PacedClock()));
             SpotServeServer server = SpotServeServer.builder().engine(served.engine()).port(0).apiKey(KEY).build()
                     .start()) {
            OpenAIClient client = SpotServeServerTest.client(server, KEY);
            long cancelledBefore = served.engine().metrics().cancelled();
            long tokensBefore = served.engine().metrics().generatedTokens();
            try (StreamResponse<Completion> stream = client.completions().createStreaming(CompletionCreateParams
                    .builder().model("spotserve").prompt("Once upon a time").maxTokens(450).temperature(0.0).build())) {
                Iterator<Completion> it = stream.stream().iterator();
                assertTrue(it.hasNext());
                it.next();
            } // closes the connection after the first chunk
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (served.engine().metrics().cancelled() == cancelledBefore && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(cancelledBefore + 1, served.engine().metrics().cancelled(), "the request was cancelled");
            assertEquals(0, served.engine().metrics().completed(), "the request did not run to its end");
            long generated = served.engine().metrics().generatedTokens() - tokensBefore;
            assertTrue(generated < 450, "generation stopped early: " + generated + " tokens");
        }
    }
}
