package io.spotserve.examples;

import io.spotserve.engine.ServingEngine;
import io.spotserve.engine.SystemEngineClock;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import io.spotserve.server.SpotServeServer;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code serve}: an OpenAI-compatible HTTP endpoint on the bundled stories260K model, served by local spot
 * instances, until the process is stopped (Ctrl-C). Prints the base URL on stdout once it listens.
 *
 * <pre>
 * java -jar spotserve-examples.jar serve [--port 8080] [--host 127.0.0.1] [--instances 2] [--gpus 2]
 *     [--api-key KEY] [--model-name stories260K]
 * curl http://127.0.0.1:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 40}'
 * </pre>
 * The API key may also come from the environment variable {@code SPOTSERVE_API_KEY}.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "Serves the bundled model on local spot instances behind an OpenAI-compatible HTTP API "
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
    @Option(names = "--model-name", paramLabel = "NAME", description = "model id clients use (default stories260K)")
    String modelName = "stories260K";

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
        BundledModel.Extracted files = BundledModel.extracted();
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(files.checkpoint());
        LlamaConfig shape = checkpoint.config();
        Tokenizer tokenizer = Tokenizer.load(files.tokenizer(), shape.vocabSize());
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = local.launch(NAME, shape, 8, clock).provider();
        try (ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider)
                .clock(clock).build();
             SpotServeServer server = SpotServeServer.builder().engine(engine).host(host).port(port)
                     .modelName(modelName).apiKey(apiKey).build().start()) {
            out.println("serving " + modelName + " at " + server.baseUri() + (apiKey != null ? " (API key required)"
                    : "") + "; stop with Ctrl-C");
            out.flush();
            stop.await();
        }
        return 0;
    }
}
