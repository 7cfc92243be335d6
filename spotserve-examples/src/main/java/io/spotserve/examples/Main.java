package io.spotserve.examples;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Command-line entry point of the examples jar: {@code java -jar spotserve-examples.jar <command> [options]}.
 * Only this class may exit the JVM; commands return an exit code.
 */
public final class Main {
    /** A sub-command: takes its arguments, writes results to {@code out}, returns an exit code. */
    interface Command {
        int run(String[] args, PrintStream out) throws Exception;
    }

    static Map<String, Command> commands() {
        Map<String, Command> commands = new LinkedHashMap<>();
        commands.put("generate", new GenerateCommand());
        commands.put("replay", new ReplayCommand());
        commands.put("plan", new PlanCommand());
        commands.put("profile", new ProfileCommand());
        commands.put("serve-demo", new ServeCommand());
        return commands;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        Map<String, Command> commands = commands();
        if (args.length == 0 || !commands.containsKey(args[0])) {
            err.println((args.length == 0 ? "missing command" : "unknown command '" + args[0] + "'")
                    + "; expected one of " + commands.keySet());
            return 2;
        }
        try {
            return commands.get(args[0]).run(Arrays.copyOfRange(args, 1, args.length), out);
        } catch (UsageException e) {
            err.println(e.getMessage());
            return 2;
        } catch (Exception e) {
            err.println("error: " + e.getMessage());
            return 1;
        }
    }
}
