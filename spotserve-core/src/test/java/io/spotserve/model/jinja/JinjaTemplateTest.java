package io.spotserve.model.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.ChatMessage;
import io.spotserve.model.ChatTemplate;
import java.time.Clock;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Errors, limits and the chat-template entry point (the rendering itself is checked against the reference). */
@Timeout(60)
class JinjaTemplateTest {
    static String render(String t, Map<String, ?> vars) {
        return JinjaTemplate.parse(t).render(vars);
    }

    static JinjaException fails(String t) {
        return assertThrows(JinjaException.class, () -> render(t, Map.of()));
    }

    @Test
    void unsupportedConstructsNameTheConstructAndPosition() {
        JinjaException e = fails("line one\n  {% call foo() %}x{% endcall %}");
        assertEquals(JinjaException.Kind.SYNTAX, e.kind());
        assertTrue(e.getMessage().contains("{% call %}"), e.getMessage());
        assertTrue(e.getMessage().contains("at 2:"), e.getMessage());

        e = fails("{% for x in y %}never closed");
        assertTrue(e.getMessage().contains("{% for %} is never closed") && e.getMessage().contains("at 1:4"),
                e.getMessage());
        e = fails("ok {{ 1 + }}");
        assertTrue(e.getMessage().contains("at 1:11") && e.getMessage().contains("'}}'"), e.getMessage());
        e = fails("{{ x is divisibleby(3) }}");
        assertTrue(e.getMessage().contains("tests with arguments"), e.getMessage());
        e = fails("{{ 'unterminated }}");
        assertTrue(e.getMessage().contains("string literal is never closed"), e.getMessage());
        e = fails("{# open comment");
        assertTrue(e.getMessage().contains("comment"), e.getMessage());
        e = fails("{{ f(*args) }}");
        assertTrue(e.getMessage().contains("unpacking"), e.getMessage());
        e = fails("{% break %}");
        assertTrue(e.getMessage().contains("outside a for loop"), e.getMessage());
    }

    @Test
    void renderErrorsNameTheProblemAndPosition() {
        JinjaException e = fails("\n\n   {{ 'a' | frobnicate }}");
        assertEquals(JinjaException.Kind.RENDER, e.kind());
        assertTrue(e.getMessage().contains("unknown filter 'frobnicate'") && e.getMessage().contains("at 3:"),
                e.getMessage());
        e = fails("{{ missing + 1 }}");
        assertTrue(e.getMessage().contains("undefined"), e.getMessage());
        e = fails("{{ 1 // 0 }}");
        assertTrue(e.getMessage().contains("division by zero"), e.getMessage());
        e = fails("{{ x is frob }}");
        assertTrue(e.getMessage().contains("unknown test 'is frob'"), e.getMessage());
        e = fails("{% set x.y = 1 %}");
        assertTrue(e.getMessage().contains("only of a namespace()"), e.getMessage());
    }

    @Test
    void raiseExceptionCarriesTheTemplatesMessage() {
        JinjaException e = fails("{{ raise_exception('Only user and assistant roles are supported!') }}");
        assertEquals(JinjaException.Kind.RAISED, e.kind());
        assertEquals("Only user and assistant roles are supported!", e.detail());
        assertTrue(e.getMessage().contains("rejected the conversation"), e.getMessage());
    }

    @Test
    void workIsBounded() {
        JinjaTemplate.Limits small = new JinjaTemplate.Limits(1000, 100_000, Clock.systemUTC());
        JinjaException e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse(
                "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", small).render(Map.of()));
        assertEquals(JinjaException.Kind.LIMIT, e.kind());
        assertTrue(e.getMessage().contains("steps"), e.getMessage());
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse(
                "{% for i in range(500) %}xxxxx{% endfor %}", small).render(Map.of()));
        assertTrue(e.getMessage().contains("output longer than 1000"), e.getMessage());
        // doubling a string grows past the cap long before memory is at risk
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse(
                "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                small).render(Map.of()));
        assertEquals(JinjaException.Kind.LIMIT, e.kind());
        // copying a big string again and again costs steps in proportion to its size
        JinjaTemplate.Limits roomy = new JinjaTemplate.Limits(4 << 20, 1_000_000, Clock.systemUTC());
        long t0 = System.nanoTime();
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("{% set ns = namespace(s='ab') %}"
                + "{% for i in range(19) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{% for i in range(1000000) %}"
                + "{% set y = ns.s ~ i %}{% endfor %}", roomy).render(Map.of()));
        assertEquals(JinjaException.Kind.LIMIT, e.kind());
        assertTrue(e.getMessage().contains("more than 1000000 evaluation steps"), e.getMessage());
        assertTrue(System.nanoTime() - t0 < 30_000_000_000L, "stopped long before a million 1 MiB copies");
        e = assertThrows(JinjaException.class, () -> render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                Map.of()));
        assertTrue(e.getMessage().contains("nests more than"), e.getMessage());
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("{{ range(100000) }}", small)
                .render(Map.of()));
        assertTrue(e.getMessage().contains("range() of more than 1000"), e.getMessage());
    }

    @Test
    void chatTemplateEntryPointSetsTheStandardVariables() {
        String src = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m['content'] }}{% endfor %}"
                + "{% if add_generation_prompt %}<assistant>{% endif %}{{ tools is none }}";
        Map<String, Object> extra = new HashMap<>();
        extra.put("bos_token", "<s>");
        ChatTemplate t = ChatTemplate.jinja(src, extra);
        assertEquals("<s><user>hi<assistant>true", t.render(List.of(new ChatMessage("user", "hi"))));
        extra.put("add_generation_prompt", false);
        assertEquals("<s><system>s<user>u", ChatTemplate.jinja(src, extra)
                .render(List.of(new ChatMessage("system", "s"), new ChatMessage("user", "u"))).replace("true", ""));
        assertThrows(JinjaException.class, () -> ChatTemplate.jinja("{% if %}", Map.of()));
    }

    @Test
    void variablesOfUnsupportedTypesAreRejectedClearly() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> render("{{ x }}", Map.of("x", new Object())));
        assertTrue(e.getMessage().contains("java.lang.Object"), e.getMessage());
        assertEquals("1 2.5 [1, 2] {\"a\": null}", render("{{ i }} {{ d }} {{ l }} {{ m }}", Map.of("i", 1, "d", 2.5,
                "l", new int[0].length == 0 ? List.of(1, 2) : List.of(), "m", new HashMap<>(java.util.Collections
                        .singletonMap("a", null)))));
    }
}
