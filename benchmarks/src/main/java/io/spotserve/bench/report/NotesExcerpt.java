package io.spotserve.bench.report;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Picks the part of the simulator's notes (benchmarks/notes/evaluation.md) that explains the differences
 * from the paper, to nest it under the report's "Why our numbers differ": the section whose heading
 * mentions "differ" (up to the next heading of the same or a higher level), else the whole file without
 * its title; a heading that also mentions "real engine" is not that section (it is the real engine vs the
 * simulator, rendered in its own section of the report). Headings are shifted so the shallowest becomes
 * level 3; fenced code is left alone.
 */
final class NotesExcerpt {
    private static final Pattern HEADING = Pattern.compile("^(#{1,6})\\s+(.*)$");

    private NotesExcerpt() {
    }

    static String differencesSection(String notes) {
        return section(notes, "differ", Markdown.ENGINE_NOTES_KEYWORD, true);
    }

    /**
     * The section whose heading contains {@code keyword} (case-insensitive), headings shifted as above; when none
     * has it: the whole file without its title if {@code wholeIfAbsent}, else null.
     */
    static String section(String notes, String keyword, boolean wholeIfAbsent) {
        return section(notes, keyword, null, wholeIfAbsent);
    }

    /** {@link #section(String, String, boolean)} skipping headings that contain {@code unless} (when not null). */
    static String section(String notes, String keyword, String unless, boolean wholeIfAbsent) {
        List<String> lines = List.of(notes.split("\\R", -1));
        boolean[] fenced = new boolean[lines.size()];
        boolean inFence = false;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).stripLeading().startsWith("```")) {
                inFence = !inFence;
                fenced[i] = true;
            } else {
                fenced[i] = inFence;
            }
        }
        int start = -1;
        int level = 0;
        for (int i = 0; i < lines.size(); i++) {
            Matcher m = HEADING.matcher(lines.get(i));
            String heading = m.matches() ? m.group(2).toLowerCase(java.util.Locale.ROOT) : "";
            if (!fenced[i] && m.matches() && heading.contains(keyword) && (unless == null || !heading.contains(unless))) {
                start = i + 1;
                level = m.group(1).length();
                break;
            }
        }
        List<String> body = new ArrayList<>();
        if (start >= 0) {
            for (int i = start; i < lines.size(); i++) {
                Matcher m = HEADING.matcher(lines.get(i));
                if (!fenced[i] && m.matches() && m.group(1).length() <= level) {
                    break;
                }
                body.add(lines.get(i));
            }
        } else if (!wholeIfAbsent) {
            return null;
        } else {
            boolean titleSkipped = false;
            for (int i = 0; i < lines.size(); i++) {
                Matcher m = HEADING.matcher(lines.get(i));
                if (!titleSkipped && !fenced[i] && m.matches() && m.group(1).length() == 1) {
                    titleSkipped = true;
                    continue;
                }
                body.add(lines.get(i));
            }
        }
        int min = 7;
        List<Boolean> bodyFenced = new ArrayList<>();
        boolean f = false;
        for (String l : body) {
            if (l.stripLeading().startsWith("```")) {
                f = !f;
                bodyFenced.add(true);
                continue;
            }
            bodyFenced.add(f);
            Matcher m = HEADING.matcher(l);
            if (!f && m.matches()) {
                min = Math.min(min, m.group(1).length());
            }
        }
        int shift = min == 7 ? 0 : 3 - min;
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < body.size(); i++) {
            String l = body.get(i);
            Matcher m = HEADING.matcher(l);
            if (!bodyFenced.get(i) && m.matches() && shift != 0) {
                int n = Math.max(1, Math.min(6, m.group(1).length() + shift));
                l = "#".repeat(n) + " " + m.group(2);
            }
            out.append(l).append('\n');
        }
        return out.toString().strip();
    }
}
