package io.spotserve.model.jinja;

import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Jinja2 template of the kind models ship as their chat template (Hugging Face {@code tokenizer_config.json}
 * {@code chat_template}, GGUF {@code tokenizer.chat_template}), parsed once and rendered many times. The language
 * is the subset chat templates use: text, {@code {{ }}}, {@code {% if/elif/else %}}, {@code {% for %}} (with
 * {@code loop.*}, an {@code if} filter and {@code else}), {@code {% set %}} (also {@code namespace()} attributes and
 * the block form), {@code {% macro %}}, {@code {% filter %}}, {@code break}/{@code continue}, comments,
 * whitespace control ({@code {%- -%}} and transformers' {@code trim_blocks}/{@code lstrip_blocks}), literals,
 * lists, dicts, tuples, attribute/subscript/slice access, filters, tests, string and dict methods, and the globals
 * {@code raise_exception}, {@code namespace}, {@code range} and {@code strftime_now}. Its output matches
 * {@code @huggingface/jinja}, the implementation transformers.js renders chat templates with (checked by tests on
 * real models' templates).
 *
 * <p>Anything else fails with a {@link JinjaException} naming the construct and its {@code line:column}; so does a
 * render that exceeds its {@link Limits}. Instances are immutable and thread-safe.
 */
public final class JinjaTemplate {
    /**
     * Bounds on one render.
     *
     * @param maxOutputChars the longest output (and longest string or list built along the way)
     * @param maxSteps       the most nodes evaluated (a runaway loop fails instead of hanging)
     * @param clock          what {@code strftime_now} reads (in the clock's zone)
     */
    public record Limits(int maxOutputChars, long maxSteps, Clock clock) {
        /** 4 Mi characters, 10 million steps, the system clock in the default zone. */
        public static final Limits DEFAULT = new Limits(4 << 20, 10_000_000L, Clock.systemDefaultZone());

        public Limits {
            if (maxOutputChars < 1 || maxSteps < 1) {
                throw new IllegalArgumentException("limits must be positive: maxOutputChars=" + maxOutputChars
                        + ", maxSteps=" + maxSteps);
            }
            Objects.requireNonNull(clock, "clock");
        }

        /** These limits with another clock (tests pin {@code strftime_now}). */
        public Limits withClock(Clock c) {
            return new Limits(maxOutputChars, maxSteps, c);
        }
    }

    private final String sourceText;
    private final Source source;
    private final List<Node> body;
    private final Limits limits;

    private JinjaTemplate(String sourceText, Limits limits) {
        this.sourceText = sourceText;
        this.source = Source.of(sourceText);
        this.body = Parser.parse(source);
        this.limits = limits;
    }

    /**
     * Parses {@code source}.
     *
     * @throws JinjaException (kind {@link JinjaException.Kind#SYNTAX}) if it is not a template we can render
     */
    public static JinjaTemplate parse(String source) {
        return parse(source, Limits.DEFAULT);
    }

    /** Parses {@code source}, rendering later within {@code limits}. */
    public static JinjaTemplate parse(String source, Limits limits) {
        return new JinjaTemplate(Objects.requireNonNull(source, "source"), Objects.requireNonNull(limits, "limits"));
    }

    /**
     * Renders with {@code variables} (String, Number, Boolean, List, Map with String keys or null values; chat
     * messages as maps with "role" and "content", as {@link io.spotserve.model.ChatTemplate#jinja} passes them).
     *
     * @throws JinjaException if rendering fails (a type error, an unknown filter, {@code raise_exception}, a limit)
     */
    public String render(Map<String, ?> variables) {
        Scope globals = new Scope(null);
        Globals.install(globals, limits.clock(), limits.maxOutputChars());
        for (Map.Entry<String, ?> e : variables.entrySet()) {
            globals.set(e.getKey(), Values.fromJava(e.getValue()));
        }
        return new Interpreter(source, limits).render(body, globals);
    }

    /** The template's source text. */
    public String source() {
        return sourceText;
    }

    @Override
    public String toString() {
        return "JinjaTemplate[" + sourceText.length() + " chars]";
    }
}
