package io.spotserve.examples;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.function.Function;
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
        if (args.length > 0 && args[0].equals("generate")) {
            KernelWarmUp.startEarly(); // the Vector API's start-up and the first compilations beside picocli's
        }
        CommandLine cl = commands(args, System.out, System.err);
        CommandLine serveLine = cl.getSubcommands().get("serve");
        if (serveLine != null && serveLine.getCommand() instanceof ServeHttpCommand serve) {
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

    /** Every sub-command by name (its {@code @Command} name), in the order the help lists them. */
    private static final Map<String, Function<PrintStream, Object>> COMMANDS = commandTable();

    private static Map<String, Function<PrintStream, Object>> commandTable() {
        Map<String, Function<PrintStream, Object>> m = new LinkedHashMap<>();
        m.put("generate", GenerateCommand::new);
        m.put("replay", ReplayCommand::new);
        m.put("plan", PlanCommand::new);
        m.put("profile", ProfileCommand::new);
        m.put("serve-demo", ServeCommand::new);
        m.put("serve", ServeHttpCommand::new);
        m.put("convert", ConvertCommand::new);
        return Collections.unmodifiableMap(m);
    }

    /** The command line with every sub-command, writing results to {@code out} and errors to {@code err}. */
    static CommandLine commands(PrintStream out, PrintStream err) {
        return build(COMMANDS.keySet(), out, err);
    }

    /**
     * The command line for {@code args}: when the first argument names a sub-command, only that one (picocli reads
     * each registered command's annotations by reflection, a cost at every start-up; parsing, help and errors of a
     * sub-command do not involve the others), otherwise every sub-command (the top level's help and errors list them).
     */
    static CommandLine commands(String[] args, PrintStream out, PrintStream err) {
        if (args.length > 0 && COMMANDS.containsKey(args[0])) {
            return build(List.of(args[0]), out, err);
        }
        return commands(out, err);
    }

    private static CommandLine build(Collection<String> names, PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new Top());
        for (String name : names) {
            cl.addSubcommand(COMMANDS.get(name).apply(out)); // named by its @Command
        }
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
        return commands(args, out, err).execute(args);
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
