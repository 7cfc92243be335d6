package io.spotserve.examples;

import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.ModelFormatException;
import io.spotserve.model.jinja.JinjaException;
import io.spotserve.server.SpotServeServer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code serve}: an OpenAI-compatible HTTP endpoint on a model (the bundled stories260K unless {@code --model}),
 * served by local spot instances, until the process is stopped (Ctrl-C). Prints the base URL on stdout once it
 * listens. Chat messages go through the model's own chat template when it ships one (GGUF
 * {@code tokenizer.chat_template}, Hugging Face {@code tokenizer_config.json}), else the plain one;
 * {@code --chat-template} overrides either.
 *
 * <pre>
 * java -jar spotserve-examples.jar serve [--port 8080] [--host 127.0.0.1] [--instances 2] [--gpus 2]
 *     [--model PATH [--tokenizer PATH]] [--chat-template FILE|plain] [--api-key KEY] [--model-name NAME]
 * curl http://127.0.0.1:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 40}'
 * </pre>
 * The API key may also come from the environment variable {@code SPOTSERVE_API_KEY}.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "Serves a model (default: the bundled one) on local spot instances behind an OpenAI-compatible HTTP API "
        + "(/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics) until stopped.")
final class ServeHttpCommand implements Callable<Integer> {
    private static final String NAME = "serve";

    @Option(names = "--port", paramLabel = "N", description = "port (default 8080; 0 = any free port)")
    int port = 8080;
    @Option(names = "--host", paramLabel = "ADDR", description = "address to bind (default 127.0.0.1: this machine only)")
    String host = "127.0.0.1";
    @Mixin
    LocalInstances local = new LocalInstances();
    @Option(names = "--api-key", paramLabel = "KEY",
            description = "require Authorization: Bearer KEY (default: $SPOTSERVE_API_KEY, else none)")
    String apiKey = System.getenv("SPOTSERVE_API_KEY");
    @Option(names = "--model-name", paramLabel = "NAME",
            description = "model id clients use (default: stories260K, or the --model file's name)")
    String modelName;
    @Mixin
    ModelOptions modelOptions = new ModelOptions();
    @Option(names = "--chat-template", paramLabel = "FILE|plain",
            description = "a Jinja2 chat template file to use instead of the model's, or 'plain' (default: the "
                    + "model's own template if it ships one, else plain)")
    String chatTemplate;

    private final PrintStream out;
    private final CountDownLatch stop = new CountDownLatch(1);
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean running;

    ServeHttpCommand(PrintStream out) {
        this.out = out;
    }

    /** Asks a running {@code serve} to shut down and waits until it has (the JVM's shutdown hook calls it). */
    void stop() throws InterruptedException {
        stop.countDown();
        if (running) {
            stopped.await();
        }
    }

    @Override
    public Integer call() throws Exception {
        running = true;
        try {
            return serve();
        } finally {
            stopped.countDown();
        }
    }

    private int serve() throws Exception {
        Ranges.within(NAME, "--port", port, 0, 65535);
        if (apiKey != null && apiKey.isBlank()) {
            throw new UsageException(NAME + ": --api-key must not be blank");
        }
        ModelFiles files = modelOptions.load(NAME);
        LlamaConfig shape = files.weights().config();
        Path model = modelOptions.model;
        String name = modelName != null ? modelName : model == null ? "stories260K"
                : model.getFileName().toString().replaceFirst("\\.gguf$", "");
        SpotServeServer.Builder builder = SpotServeServer.builder().host(host).port(port).modelName(name)
                .apiKey(apiKey);
        String templateNote = chatTemplate(files, builder);
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = local.launch(NAME, shape, 8, clock).provider();
        try (ServingEngine engine = ServingEngine.builder().model(files.weights(), files.tokenizer())
                .instances(provider).clock(clock).build();
             SpotServeServer server = builder.engine(engine).build().start()) {
            out.println("serving " + name + " at " + server.baseUri() + (apiKey != null ? " (API key required)"
                    : "") + " with " + templateNote + "; stop with Ctrl-C");
            out.flush();
            stop.await();
        }
        return 0;
    }

    /** Sets the builder's chat template from --chat-template or the model; says which one in words. */
    private String chatTemplate(ModelFiles files, SpotServeServer.Builder builder) throws IOException,
            UsageException {
        Optional<ModelChatTemplate> own;
        try {
            own = files.source() == null ? Optional.empty() : files.source().chatTemplate();
        } catch (ModelFormatException e) {
            throw new UsageException(NAME + ": chat template of --model: " + e.getMessage());
        }
        if ("plain".equals(chatTemplate)) {
            builder.chatTemplate(ChatTemplate.plain());
            return "the plain chat template";
        }
        if (chatTemplate != null) {
            Path file = Path.of(chatTemplate);
            if (!Files.isRegularFile(file)) {
                throw new UsageException(NAME + ": --chat-template " + chatTemplate + " is neither a file nor 'plain'");
            }
            Map<String, Object> tokens = new HashMap<>();
            tokens.put("bos_token", own.map(ModelChatTemplate::bosToken).orElse(""));
            tokens.put("eos_token", own.map(ModelChatTemplate::eosToken).orElse(""));
            try {
                builder.chatTemplate(ChatTemplate.jinja(Files.readString(file), tokens));
            } catch (JinjaException e) {
                throw new UsageException(NAME + ": --chat-template " + chatTemplate + ": " + e.getMessage());
            }
            return "the chat template of " + file.getFileName();
        }
        if (own.isPresent()) {
            try {
                builder.model(files.source());
            } catch (JinjaException e) {
                throw new UsageException(NAME + ": the chat template of --model cannot be used (" + e.getMessage()
                        + "); pass --chat-template FILE or plain");
            }
            return "the model's chat template";
        }
        return "the plain chat template (the model ships none)";
    }
}
