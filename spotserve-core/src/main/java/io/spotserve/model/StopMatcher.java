package io.spotserve.model;

import java.util.List;

/**
 * Finds the first stop sequence in streamed text. Text that might be the start of a stop sequence is held back
 * until the next piece shows whether it is, so nothing past a stop sequence is ever released. Used by front ends
 * that stream generated text (the engine itself knows no stop sequences): on {@link #stopped()} they cancel the
 * request.
 */
public final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    /** A matcher for {@code stops} (none empty). */
    public StopMatcher(List<String> stops) {
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop sequences must not be empty");
            }
        }
        this.stops = List.copyOf(stops);
    }

    /** Takes the next piece of text; returns what can be released now (the text before a stop sequence, if one completes). */
    public String accept(String piece) {
        if (stopped) {
            return "";
        }
        pending.append(piece);
        int first = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (first < 0 || i < first)) {
                first = i;
            }
        }
        if (first >= 0) {
            stopped = true;
            String out = pending.substring(0, first);
            pending.setLength(0);
            return out;
        }
        int hold = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, pending.length()); k > hold; k--) {
                if (pending.toString().regionMatches(pending.length() - k, s, 0, k)) {
                    hold = k;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        return out;
    }

    /** Whether a stop sequence was found. */
    public boolean stopped() {
        return stopped;
    }

    /** At the end of generation: the held-back text, which turned out not to start a stop sequence. */
    public String flush() {
        String out = pending.toString();
        pending.setLength(0);
        return out;
    }
}
