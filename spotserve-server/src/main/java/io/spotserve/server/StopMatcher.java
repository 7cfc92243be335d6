package io.spotserve.server;

import java.util.List;

/**
 * Finds the first stop sequence in streamed text. Text that might be the start of a stop sequence is held back
 * until the next piece shows whether it is, so nothing past a stop sequence is ever released.
 */
final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    StopMatcher(List<String> stops) {
        this.stops = List.copyOf(stops);
    }

    /** Takes the next piece of text; returns what can be released now (the text before a stop sequence, if one completes). */
    String accept(String piece) {
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
    boolean stopped() {
        return stopped;
    }

    /** At the end of generation: the held-back text, which turned out not to start a stop sequence. */
    String flush() {
        String out = pending.toString();
        pending.setLength(0);
        return out;
    }
}
