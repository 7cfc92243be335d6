package io.spotserve.examples;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * Command-line entry point of the examples jar: {@code java -jar spotserve-examples.jar <command> [options]}.
 * Only this class may exit the JVM; commands return an exit code.
 *
 * <p>Options are parsed by picocli: {@code --key value} and {@code --key=value} alike, each option at most once,
 * {@code --help} and {@code --version} on every command. Exit codes: 0 success, 1 a failure while running, 2 a bad
 * argument or a bad input file, reported as one line on stderr prefixed with the command's name.
 *
 * <p>To add a command: a class annotated {@code @Command(name = ..., mixinStandardHelpOptions = true,
 * versionProvider = Main.Version.class)} implementing {@code Callable<Integer>}, registered in {@link #commands}.
 * To add an option: an {@code @Option} field in that class.
 */
public final class Main {
    /** The top level: only picks the sub-command. */
    @Command(name = "spotserve-examples", mixinStandardHelpOptions = true, versionProvider = Version.class,
            description = "SpotServe-J examples: serve an LLM on spot instances, plan, profile, replay traces.",
            synopsisSubcommandLabel = "COMMAND")
    static final class Top implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            throw new ParameterException(spec.commandLine(), "missing command; expected one of "
                    + spec.subcommands().keySet());
        }
    }

    /** The project version from the build (version.properties, filtered by Maven). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            }
            return new String[] {"SpotServe-J " + p.getProperty("version", "unknown") + " (Java "
                    + System.getProperty("java.version") + ")"};
        }
    }

    private Main() {
    }

    public static void main(String[] args) {
        // the fast path by default: without the Vector API module, run the command in a JVM that has it
        var relaunched = FastPathLauncher.relaunchIfNeeded(args);
        if (relaunched.isPresent()) {
            System.exit(relaunched.get());
        }
        CommandLine cl = commands(System.out, System.err);
        if (cl.getSubcommands().get("serve").getCommand() instanceof ServeHttpCommand serve) {
            // Ctrl-C stops the server and the engine cleanly (only a main installs hooks)
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    serve.stop();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "spotserve-shutdown"));
        }
        System.exit(cl.execute(args));
    }

    /** The command line with every sub-command, writing results to {@code out} and errors to {@code err}. */
    static CommandLine commands(PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new Top());
        cl.addSubcommand(new GenerateCommand(out));
        cl.addSubcommand(new ReplayCommand(out));
        cl.addSubcommand(new PlanCommand(out));
        cl.addSubcommand(new ProfileCommand(out));
        cl.addSubcommand(new ServeCommand(out));
        cl.addSubcommand(new ServeHttpCommand(out));
        cl.addSubcommand(new ConvertCommand(out));
        cl.setExpandAtFiles(false); // a prompt may start with '@'
        cl.setOut(new PrintWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8), true));
        cl.setErr(new PrintWriter(new OutputStreamWriter(err, StandardCharsets.UTF_8), true));
        cl.setParameterExceptionHandler((e, args) -> {
            err.println(e.getCommandLine().getCommandName() + ": " + message(e));
            return 2;
        });
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof UsageException) {
                err.println(e.getMessage());
                return 2;
            }
            err.println(commandLine.getCommandName() + ": failed: " + (e.getMessage() != null ? e.getMessage() : e));
            return 1;
        });
        return cl;
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        return commands(out, err).execute(args);
    }

    /** Picocli's message, in the words of the rest of the CLI where picocli's are vaguer. */
    private static String message(ParameterException e) {
        CommandLine cl = e.getCommandLine();
        if (e instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
            String arg = u.getUnmatched().get(0);
            if (cl.getCommandSpec().parent() == null && !arg.startsWith("-")) {
                return "unknown command '" + arg + "'; expected one of " + cl.getSubcommands().keySet();
            }
            String what = arg.startsWith("-") ? "unknown option " + arg.replaceFirst("=.*", "")
                    : "unexpected argument '" + arg + "'";
            return what + "; see " + cl.getCommandName() + " --help";
        }
        return e.getMessage();
    }
}
