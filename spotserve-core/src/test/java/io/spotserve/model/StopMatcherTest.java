package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Stop sequences over randomly split text, against a brute-force search of the whole text. */
class StopMatcherTest {
    @Test
    void releasesExactlyTheTextBeforeTheFirstStopSequenceHoweverTheTextIsSplit() {
        Random rnd = new Random(42);
        for (int trial = 0; trial < 5000; trial++) {
            StringBuilder text = new StringBuilder();
            int len = rnd.nextInt(30);
            for (int i = 0; i < len; i++) {
                text.append((char) ('a' + rnd.nextInt(3)));
            }
            List<String> stops = new ArrayList<>();
            for (int s = 1 + rnd.nextInt(3); s > 0; s--) {
                StringBuilder stop = new StringBuilder();
                for (int i = 1 + rnd.nextInt(4); i > 0; i--) {
                    stop.append((char) ('a' + rnd.nextInt(3)));
                }
                stops.add(stop.toString());
            }
            // brute force, piece by piece: stop at the first piece after which the text so far contains a stop
            // sequence; the answer is that text up to the earliest place any stop sequence starts in it
            List<Integer> cuts = new ArrayList<>();
            for (int pos = 0; pos < text.length(); ) {
                int n = Math.min(text.length() - pos, rnd.nextInt(4)); // pieces may be empty
                pos += n;
                cuts.add(pos);
            }
            int first = -1;
            for (int cut : cuts) {
                String seen = text.substring(0, cut);
                for (String s : stops) {
                    int i = seen.indexOf(s);
                    if (i >= 0 && (first < 0 || i < first)) {
                        first = i;
                    }
                }
                if (first >= 0) {
                    break;
                }
            }
            StopMatcher m = new StopMatcher(stops);
            StringBuilder released = new StringBuilder();
            int prev = 0;
            for (int cut : cuts) {
                if (m.stopped()) {
                    break;
                }
                released.append(m.accept(text.substring(prev, cut)));
                prev = cut;
            }
            if (!m.stopped()) {
                released.append(m.flush());
            }
            String expected = first >= 0 ? text.substring(0, first) : text.toString();
            assertEquals(expected, released.toString(), text + " stops " + stops);
            assertEquals(first >= 0, m.stopped(), text + " stops " + stops);
        }
    }
}
