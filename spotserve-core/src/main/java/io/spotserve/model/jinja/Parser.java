package io.spotserve.model.jinja;

import io.spotserve.model.jinja.Token.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Builds the syntax tree from tokens. Operator precedence follows Jinja (lowest first): conditional
 * {@code a if b else c}; {@code or}; {@code and}; {@code not}; comparisons and {@code in}; {@code + - ~};
 * {@code * / // %}; {@code **}; tests {@code is}; filters {@code |}; unary sign; member access, subscripts, slices
 * and calls; literals and names.
 */
final class Parser {
    private static final Set<String> COMPARISONS = Set.of("==", "!=", "<", ">", "<=", ">=");

    private final Source source;
    private final List<Token> tokens;
    private int at;

    private Parser(Source source, List<Token> tokens) {
        this.source = source;
        this.tokens = tokens;
    }

    static List<Node> parse(Source source) {
        Parser p = new Parser(source, Lexer.tokenize(source));
        List<Node> body = p.body(Set.of(), null);
        return body;
    }

    // ---- helpers ----

    private Token peek() {
        return tokens.get(at);
    }

    private Token peek(int ahead) {
        return tokens.get(Math.min(at + ahead, tokens.size() - 1));
    }

    private Token next() {
        Token t = tokens.get(at);
        if (t.kind() != Kind.END) {
            at++;
        }
        return t;
    }

    private JinjaException error(String what, int pos) {
        return new JinjaException(JinjaException.Kind.SYNTAX, what, source.where(pos));
    }

    private Token expectSymbol(String s, String context) {
        Token t = next();
        if (!t.isSymbol(s)) {
            throw error("expected '" + s + "' " + context + ", found " + t.describe(), t.pos());
        }
        return t;
    }

    private void expectClose(String statement) {
        Token t = next();
        if (t.kind() != Kind.CLOSE_STATEMENT) {
            throw error("expected '%}' to end {% " + statement + " %}, found " + t.describe(), t.pos());
        }
    }

    private String expectName(String context) {
        Token t = next();
        if (t.kind() != Kind.NAME) {
            throw error("expected a name " + context + ", found " + t.describe(), t.pos());
        }
        return t.text();
    }

    /** Is the next token {@code {%} followed by one of {@code names}? */
    private boolean atStatement(Set<String> names) {
        return peek().kind() == Kind.OPEN_STATEMENT && peek(1).kind() == Kind.NAME
                && names.contains(peek(1).text());
    }

    // ---- statements ----

    /** Nodes until a statement named in {@code enders} (not consumed) or the end (an error if enders is not empty). */
    private List<Node> body(Set<String> enders, Token opener) {
        List<Node> out = new ArrayList<>();
        while (true) {
            Token t = peek();
            if (t.kind() == Kind.END) {
                if (!enders.isEmpty()) {
                    throw error("{% " + opener.text() + " %} is never closed (expected {% " + String.join(" %} or {% ",
                            new java.util.TreeSet<>(enders)) + " %})", opener.pos());
                }
                return out;
            }
            if (atStatement(enders)) {
                return out;
            }
            switch (t.kind()) {
                case TEXT -> {
                    next();
                    out.add(new Node.Text(t.pos(), t.text()));
                }
                case OPEN_EXPRESSION -> {
                    next();
                    Node e = expression();
                    Token close = next();
                    if (close.kind() != Kind.CLOSE_EXPRESSION) {
                        throw error("expected '}}' to end the expression, found " + close.describe(), close.pos());
                    }
                    out.add(new Node.Output(t.pos(), e));
                }
                case OPEN_STATEMENT -> {
                    next();
                    Node s = statement();
                    if (s != null) {
                        out.add(s);
                    }
                }
                default -> throw error("unexpected " + t.describe(), t.pos());
            }
        }
    }

    /** Consumes {@code {% name %}}. */
    private void end(String name) {
        next(); // {%
        next(); // name
        expectClose(name);
    }

    private Node statement() {
        Token head = peek();
        if (head.kind() != Kind.NAME) {
            throw error("expected a statement name after '{%', found " + head.describe(), head.pos());
        }
        next();
        switch (head.text()) {
            case "if":
                return ifStatement(head);
            case "for":
                return forStatement(head);
            case "set":
                return setStatement(head);
            case "macro":
                return macroStatement(head);
            case "filter": {
                String name = expectName("after {% filter");
                List<Node> args = peek().isSymbol("(") ? arguments() : null;
                expectClose("filter");
                List<Node> b = body(Set.of("endfilter"), head);
                end("endfilter");
                return new Node.FilterBlock(head.pos(), new Node.Filter(head.pos(), null, name, args), b);
            }
            case "break":
                expectClose("break");
                return new Node.Break(head.pos());
            case "continue":
                expectClose("continue");
                return new Node.Continue(head.pos());
            case "generation":
            case "endgeneration":
                // transformers' assistant-mask markers: no output of their own
                expectClose(head.text());
                return null;
            default:
                throw error("unsupported statement {% " + head.text() + " %} (supported: if, for, set, macro, filter,"
                        + " break, continue)", head.pos());
        }
    }

    private Node ifStatement(Token head) {
        Node test = expression();
        expectClose(head.text());
        List<Node> then = body(Set.of("elif", "else", "endif"), head);
        List<Node> otherwise = List.of();
        Token t = peek(1);
        if (t.text().equals("elif")) {
            next(); // {%
            Token elif = next();
            otherwise = List.of(ifStatement(elif));
            return new Node.If(head.pos(), test, then, otherwise);
        }
        if (t.text().equals("else")) {
            next();
            next();
            expectClose("else");
            otherwise = body(Set.of("endif"), head);
        }
        end("endif");
        return new Node.If(head.pos(), test, then, otherwise);
    }

    private Node forStatement(Token head) {
        Node target = primary();
        if (peek().isSymbol(",")) {
            List<Node> items = new ArrayList<>(List.of(target));
            while (peek().isSymbol(",")) {
                next();
                items.add(primary());
            }
            target = new Node.TupleLiteral(target.pos(), items);
        }
        checkTarget(target, "for");
        Token in = next();
        if (!in.isName("in")) {
            throw error("expected 'in' after the loop variable of {% for %}, found " + in.describe(), in.pos());
        }
        Node iterable = orExpression();
        Node filter = null;
        if (peek().isName("if")) {
            next();
            filter = orExpression();
            if (peek().isName("else")) {
                next();
                iterable = new Node.Conditional(iterable.pos(), filter, iterable, expression());
                filter = null;
            }
        }
        if (peek().isName("recursive")) {
            throw error("unsupported: recursive for loops", peek().pos());
        }
        expectClose("for");
        List<Node> loopBody = body(Set.of("else", "endfor"), head);
        List<Node> otherwise = List.of();
        if (peek(1).text().equals("else")) {
            next();
            next();
            expectClose("else");
            otherwise = body(Set.of("endfor"), head);
        }
        end("endfor");
        return new Node.For(head.pos(), target, iterable, filter, loopBody, otherwise);
    }

    private void checkTarget(Node target, String statement) {
        if (target instanceof Node.TupleLiteral t) {
            for (Node n : t.items()) {
                if (!(n instanceof Node.Name)) {
                    throw error("{% " + statement + " %} can only unpack into names", n.pos());
                }
            }
        } else if (!(target instanceof Node.Name)
                && !(statement.equals("set") && target instanceof Node.Member m && !m.computed())) {
            throw error("{% " + statement + " %} needs a name" + (statement.equals("set") ? ", names or ns.attribute"
                    : " or names") + " to assign to", target.pos());
        }
    }

    private Node setStatement(Token head) {
        Node target = sequence();
        checkTarget(target, "set");
        if (peek().isSymbol("=")) {
            next();
            Node value = sequence();
            expectClose("set");
            return new Node.Set(head.pos(), target, value, null);
        }
        expectClose("set");
        List<Node> b = body(Set.of("endset"), head);
        end("endset");
        return new Node.Set(head.pos(), target, null, b);
    }

    private Node macroStatement(Token head) {
        String name = expectName("after {% macro");
        expectSymbol("(", "after the macro name");
        List<Node> params = new ArrayList<>();
        while (!peek().isSymbol(")")) {
            Token p = peek();
            String param = expectName("as a macro parameter");
            if (peek().isSymbol("=")) {
                next();
                params.add(new Node.Keyword(p.pos(), param, expression()));
            } else {
                params.add(new Node.Name(p.pos(), param));
            }
            if (!peek().isSymbol(")")) {
                expectSymbol(",", "between macro parameters");
            }
        }
        next();
        expectClose("macro");
        List<Node> b = body(Set.of("endmacro"), head);
        end("endmacro");
        return new Node.Macro(head.pos(), name, params, b);
    }

    // ---- expressions ----

    /** An expression, or a tuple of them separated by commas (no parentheses). */
    private Node sequence() {
        Node first = expression();
        if (!peek().isSymbol(",")) {
            return first;
        }
        List<Node> items = new ArrayList<>(List.of(first));
        while (peek().isSymbol(",")) {
            next();
            items.add(expression());
        }
        return new Node.TupleLiteral(first.pos(), items);
    }

    Node expression() {
        Node a = orExpression();
        if (peek().isName("if")) {
            next();
            Node test = orExpression();
            Node otherwise = null;
            if (peek().isName("else")) {
                next();
                otherwise = expression();
            }
            return new Node.Conditional(a.pos(), test, a, otherwise);
        }
        return a;
    }

    private Node orExpression() {
        Node left = andExpression();
        while (peek().isName("or")) {
            Token op = next();
            left = new Node.Binary(op.pos(), "or", left, andExpression());
        }
        return left;
    }

    private Node andExpression() {
        Node left = notExpression();
        while (peek().isName("and")) {
            Token op = next();
            left = new Node.Binary(op.pos(), "and", left, notExpression());
        }
        return left;
    }

    private Node notExpression() {
        if (peek().isName("not")) {
            Token op = next();
            return new Node.Unary(op.pos(), "not", notExpression());
        }
        return comparison();
    }

    private Node comparison() {
        Node left = additive();
        while (true) {
            Token t = peek();
            String op;
            if (t.isName("not") && peek(1).isName("in")) {
                next();
                op = "not in";
            } else if (t.isName("in")) {
                op = "in";
            } else if (t.kind() == Kind.SYMBOL && COMPARISONS.contains(t.text())) {
                op = t.text();
            } else {
                return left;
            }
            next();
            left = new Node.Binary(t.pos(), op, left, additive());
        }
    }

    private Node additive() {
        Node left = multiplicative();
        while (peek().isSymbol("+") || peek().isSymbol("-") || peek().isSymbol("~")) {
            Token op = next();
            left = new Node.Binary(op.pos(), op.text(), left, multiplicative());
        }
        return left;
    }

    private Node multiplicative() {
        Node left = power();
        while (peek().isSymbol("*") || peek().isSymbol("/") || peek().isSymbol("//") || peek().isSymbol("%")) {
            Token op = next();
            left = new Node.Binary(op.pos(), op.text(), left, power());
        }
        return left;
    }

    private Node power() {
        Node left = test();
        while (peek().isSymbol("**")) {
            Token op = next();
            left = new Node.Binary(op.pos(), "**", left, test());
        }
        return left;
    }

    private Node test() {
        Node operand = filter();
        while (peek().isName("is")) {
            Token is = next();
            boolean negate = false;
            if (peek().isName("not")) {
                next();
                negate = true;
            }
            String name = expectName("after 'is'");
            if (peek().isSymbol("(")) {
                throw error("tests with arguments ('is " + name + "(...)') are not supported", peek().pos());
            }
            operand = new Node.Test(is.pos(), operand, name, negate);
        }
        return operand;
    }

    private Node filter() {
        Node operand = unary();
        while (peek().isSymbol("|")) {
            Token bar = next();
            String name = expectName("after '|'");
            List<Node> args = peek().isSymbol("(") ? arguments() : null;
            operand = new Node.Filter(bar.pos(), operand, name, args);
        }
        return operand;
    }

    private Node unary() {
        if (peek().isSymbol("-") || peek().isSymbol("+")) {
            Token op = next();
            return new Node.Unary(op.pos(), op.text(), unary());
        }
        return postfix(primary());
    }

    private Node postfix(Node object) {
        while (true) {
            Token t = peek();
            if (t.isSymbol(".")) {
                next();
                Token key = next();
                if (key.kind() == Kind.NAME) {
                    object = new Node.Member(t.pos(), object, new Node.Literal(key.pos(), key.text()), false);
                } else if (key.kind() == Kind.INTEGER) {
                    object = new Node.Member(t.pos(), object, new Node.Literal(key.pos(), Long.parseLong(key.text())),
                            false);
                } else {
                    throw error("expected a name after '.', found " + key.describe(), key.pos());
                }
            } else if (t.isSymbol("[")) {
                next();
                object = subscript(t, object);
            } else if (t.isSymbol("(")) {
                object = new Node.Call(t.pos(), object, arguments());
            } else {
                return object;
            }
        }
    }

    private Node subscript(Token open, Node object) {
        Node[] parts = new Node[3];
        int part = 0;
        boolean slice = false;
        while (!peek().isSymbol("]")) {
            if (peek().isSymbol(":")) {
                next();
                slice = true;
                if (++part > 2) {
                    throw error("a slice has at most three parts (start:stop:step)", open.pos());
                }
            } else {
                if (parts[part] != null) {
                    throw error("expected ']' or ':' in a subscript, found " + peek().describe(), peek().pos());
                }
                parts[part] = expression();
            }
        }
        next();
        if (slice) {
            return new Node.Slice(open.pos(), object, parts[0], parts[1], parts[2]);
        }
        if (parts[0] == null) {
            throw error("empty subscript '[]'", open.pos());
        }
        return new Node.Member(open.pos(), object, parts[0], true);
    }

    /** {@code ( arg, name=value, ... )}. */
    private List<Node> arguments() {
        expectSymbol("(", "to start the arguments");
        List<Node> args = new ArrayList<>();
        while (!peek().isSymbol(")")) {
            if (peek().kind() == Kind.NAME && peek(1).isSymbol("=")) {
                Token name = next();
                next();
                args.add(new Node.Keyword(name.pos(), name.text(), expression()));
            } else if (peek().isSymbol("*") || peek().isSymbol("**")) {
                throw error("argument unpacking (*args, **kwargs) is not supported", peek().pos());
            } else {
                args.add(expression());
            }
            if (!peek().isSymbol(")")) {
                expectSymbol(",", "between arguments");
            }
        }
        next();
        return args;
    }

    private Node primary() {
        Token t = next();
        switch (t.kind()) {
            case STRING: {
                StringBuilder b = new StringBuilder(t.text());
                while (peek().kind() == Kind.STRING) {
                    b.append(next().text());
                }
                return new Node.Literal(t.pos(), b.toString());
            }
            case INTEGER:
                try {
                    return new Node.Literal(t.pos(), Long.parseLong(t.text()));
                } catch (NumberFormatException e) {
                    return new Node.Literal(t.pos(), Double.parseDouble(t.text()));
                }
            case FLOAT:
                return new Node.Literal(t.pos(), Double.parseDouble(t.text()));
            case NAME:
                return new Node.Name(t.pos(), t.text());
            case SYMBOL:
                switch (t.text()) {
                    case "(": {
                        if (peek().isSymbol(")")) {
                            next();
                            return new Node.TupleLiteral(t.pos(), List.of());
                        }
                        Node inner = sequence();
                        expectSymbol(")", "to close '(' opened at " + source.where(t.pos()));
                        return inner;
                    }
                    case "[": {
                        List<Node> items = new ArrayList<>();
                        while (!peek().isSymbol("]")) {
                            items.add(expression());
                            if (!peek().isSymbol("]")) {
                                expectSymbol(",", "between list items");
                            }
                        }
                        next();
                        return new Node.ListLiteral(t.pos(), items);
                    }
                    case "{": {
                        List<Node> keys = new ArrayList<>();
                        List<Node> values = new ArrayList<>();
                        while (!peek().isSymbol("}")) {
                            keys.add(expression());
                            expectSymbol(":", "between a key and its value");
                            values.add(expression());
                            if (!peek().isSymbol("}")) {
                                expectSymbol(",", "between dict entries");
                            }
                        }
                        next();
                        return new Node.DictLiteral(t.pos(), keys, values);
                    }
                    default:
                        break;
                }
                break;
            default:
                break;
        }
        throw error("unexpected " + t.describe() + " in an expression", t.pos());
    }
}
