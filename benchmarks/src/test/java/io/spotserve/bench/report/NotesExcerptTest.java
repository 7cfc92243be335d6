package io.spotserve.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class NotesExcerptTest {
    @Test
    void takesTheDifferencesSectionUpToTheNextSibling() {
        String notes = "# Eval\n\n## Setup\n\nx\n\n## Why we differ\n\na\n\n#### deep\n\nb\n\n## Next\n\nc\n";
        assertEquals("a\n\n### deep\n\nb", NotesExcerpt.differencesSection(notes));
    }

    @Test
    void withoutSuchASectionTakesTheWholeFileBelowItsTitleWithHeadingsNested() {
        String notes = "# Eval\n\n## Setup\n\nx\n\n```\n# not a heading\n```\n\n### Sub\n";
        assertEquals("## Setup".replace("##", "###") + "\n\nx\n\n```\n# not a heading\n```\n\n#### Sub",
                NotesExcerpt.differencesSection(notes));
    }
}
