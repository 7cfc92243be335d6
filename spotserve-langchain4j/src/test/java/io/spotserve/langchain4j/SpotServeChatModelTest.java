package io.spotserve.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.service.AiServices;
import io.spotserve.testing.SharedData;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.ChatMessage;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelSource;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The LangChain4j models on the real stories260K model, against the engine's own greedy output. */
@Timeout(120)
class SpotServeChatModelTest {
    static ServingEngine engine;
    static SpotServeChatModel model;
    static SpotServeStreamingChatModel streaming;
    static LlamaCheckpoint checkpoint;
    static Tokenizer tokenizer;

    @BeforeAll
    static void start() throws IOException {
        checkpoint = LlamaCheckpoint.load(SharedData.file("models/stories260K.bin"));
        tokenizer = Tokenizer.load(SharedData.file("models/tok512.bin"), checkpoint.config().vocabSize());
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(new InstanceType("local.2x", 2, 64L << 20, 1.9, InstanceType.Market.SPOT));
        engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider).clock(clock).maxBatch(4).build();
        model = SpotServeChatModel.builder().engine(engine).build();
        streaming = SpotServeChatModel.builder().engine(engine).buildStreaming();
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    /** The engine's greedy text for the plain template's rendering of {@code messages}. */
    static String direct(int tokens, ChatMessage... messages) {
        return engine.submit(GenerationRequest.of(ChatTemplate.plain().render(List.of(messages)), tokens)).join().text();
    }

    /** Collects what a streaming handler hears. */
    static final class Collector implements StreamingChatResponseHandler {
        final List<String> partials = new ArrayList<>();
        final CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public void onPartialResponse(String partialResponse) {
            calls.incrementAndGet();
            partials.add(partialResponse);
        }

        @Override
        public void onCompleteResponse(ChatResponse r) {
            calls.incrementAndGet();
            done.complete(r);
        }

        @Override
        public void onError(Throwable t) {
            calls.incrementAndGet();
            done.completeExceptionally(t);
        }
    }

    @Test
    void chatAnswersWithTheEnginesTextFinishReasonAndUsage() {
        String expected = direct(30, new ChatMessage("system", "Be brief."), new ChatMessage("user", "A dog"));
        ChatResponse r = model.chat(ChatRequest.builder().messages(SystemMessage.from("Be brief."), UserMessage.from("A dog"))
                .maxOutputTokens(30).build());
        assertEquals(expected, r.aiMessage().text());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(30, r.tokenUsage().outputTokenCount());
        assertEquals(r.tokenUsage().inputTokenCount() + 30, r.tokenUsage().totalTokenCount());
        assertEquals("spotserve", r.modelName());
    }

    @Test
    void theModelsOwnChatTemplateIsTheDefaultAndASetOneWins(@TempDir Path dir) throws IOException {
        Path gguf = dir.resolve("stories-chat.gguf");
        GgufWriter.write(gguf, checkpoint, tokenizer, TensorType.F32, "{{ bos_token }}{% for m in messages %}"
                + "<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}");
        ModelSource source = ModelSource.open(gguf);
        String prompt = source.chatTemplate().orElseThrow().bosToken() + "<|system|>Be brief.<|user|>A dog<|assistant|>";
        io.spotserve.engine.Completion expected = engine.submit(GenerationRequest.of(prompt, 12)).join();
        ChatRequest request = ChatRequest.builder().messages(SystemMessage.from("Be brief."), UserMessage.from("A dog"))
                .maxOutputTokens(12).build();
        ChatResponse r = SpotServeChatModel.builder().engine(engine).model(source).build().chat(request);
        assertEquals(expected.text(), r.aiMessage().text());
        assertEquals(tokenizer.encode(prompt, true, false).length, r.tokenUsage().inputTokenCount());
        ChatResponse plain = SpotServeChatModel.builder().engine(engine).model(source).chatTemplate(ChatTemplate.plain())
                .build().chat(request);
        assertEquals(direct(12, new ChatMessage("system", "Be brief."), new ChatMessage("user", "A dog")),
                plain.aiMessage().text());
    }

    @Test
    void streamingPartialsAddUpToTheCompleteResponse() throws Exception {
        String expected = direct(40, new ChatMessage("user", "Once upon a time"));
        Collector c = new Collector();
        streaming.chat(ChatRequest.builder().messages(UserMessage.from("Once upon a time")).maxOutputTokens(40).build(), c);
        ChatResponse r = c.done.get(60, TimeUnit.SECONDS);
        assertTrue(c.partials.size() > 1, c.partials.toString());
        assertEquals(expected, String.join("", c.partials));
        assertEquals(expected, r.aiMessage().text());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        Thread.sleep(100);
        assertEquals(c.partials.size() + 1, c.calls.get(), "nothing after the complete response");
    }

    @Test
    void stopSequencesCutTheTextStreamingOrNot() throws Exception {
        String full = direct(60, new ChatMessage("user", "The little dog"));
        String stop = full.substring(full.length() / 2, full.length() / 2 + 3);
        String before = full.substring(0, full.indexOf(stop));
        ChatRequest request = ChatRequest.builder().messages(UserMessage.from("The little dog")).maxOutputTokens(60)
                .stopSequences(List.of(stop)).build();
        ChatResponse r = model.chat(request);
        assertEquals(before, r.aiMessage().text());
        assertEquals(FinishReason.STOP, r.finishReason());
        Collector c = new Collector();
        streaming.chat(request, c);
        assertEquals(before, c.done.get(60, TimeUnit.SECONDS).aiMessage().text());
        assertEquals(before, String.join("", c.partials));
    }

    @Test
    void errorsReachTheCallerOrTheHandler() throws Exception {
        ChatRequest tooLong = ChatRequest.builder().messages(UserMessage.from("a b c ".repeat(400))).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.chat(tooLong));
        assertTrue(e.getMessage().contains("context is 512"), e.getMessage());
        Collector c = new Collector();
        streaming.chat(tooLong, c);
        Exception failed = assertThrows(Exception.class, () -> c.done.get(30, TimeUnit.SECONDS));
        assertInstanceOf(IllegalArgumentException.class, failed.getCause());

        ChatRequest tools = ChatRequest.builder().messages(UserMessage.from("hi"))
                .toolSpecifications(ToolSpecification.builder().name("clock").description("time").build()).build();
        assertThrows(UnsupportedFeatureException.class, () -> model.chat(tools));
        Collector t = new Collector();
        streaming.chat(tools, t);
        Exception unsupported = assertThrows(Exception.class, () -> t.done.get(30, TimeUnit.SECONDS));
        assertInstanceOf(UnsupportedFeatureException.class, unsupported.getCause());
    }

    @Test
    void cancellingTheStreamingHandleCancelsTheRequestAndSilencesTheHandler() throws Exception {
        long cancelledBefore = engine.metrics().cancelled();
        List<String> partials = new ArrayList<>();
        AtomicInteger after = new AtomicInteger();
        streaming.chat(ChatRequest.builder().messages(UserMessage.from("Once upon a time")).maxOutputTokens(400).build(),
                new StreamingChatResponseHandler() {
                    @Override
                    public void onPartialResponse(PartialResponse p, PartialResponseContext context) {
                        synchronized (partials) {
                            if (!partials.isEmpty()) {
                                after.incrementAndGet();
                            }
                            partials.add(p.text());
                        }
                        context.streamingHandle().cancel();
                    }

                    @Override
                    public void onCompleteResponse(ChatResponse r) {
                        after.incrementAndGet();
                    }

                    @Override
                    public void onError(Throwable t) {
                        after.incrementAndGet();
                    }
                });
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (engine.metrics().cancelled() == cancelledBefore && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(cancelledBefore + 1, engine.metrics().cancelled());
        Thread.sleep(300);
        assertEquals(1, partials.size(), partials.toString());
        assertEquals(0, after.get(), "no callback after cancel");
    }

    /** A LangChain4j AI service backed by our model. */
    interface Storyteller {
        String tell(String opening);
    }

    @Test
    void aiServicesUseTheModel() {
        Storyteller teller = AiServices.create(Storyteller.class, SpotServeChatModel.builder().engine(engine).build());
        String answer = teller.tell("Lily and Ben");
        // no max tokens: the model writes until it ends the story or fills its context
        String expected = direct(512 - engine.tokenizer().encode(ChatTemplate.plain().render(
                List.of(new ChatMessage("user", "Lily and Ben"))), true, false).length, new ChatMessage("user", "Lily and Ben"));
        assertEquals(expected, answer);
    }
}
