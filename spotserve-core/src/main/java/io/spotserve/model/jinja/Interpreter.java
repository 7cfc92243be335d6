package io.spotserve.model.jinja;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders a parsed template: walks statements, evaluates expressions, and bounds the work (every node evaluated
 * counts a step; output, strings and lists are capped; macro recursion is capped), so no template can loop forever or
 * exhaust memory. One interpreter renders once.
 */
final class Interpreter {
    private static final int MAX_CALL_DEPTH = 100;

    private final Source source;
    private final JinjaTemplate.Limits limits;
    private long steps;
    private int depth;

    /** Thrown by {@code {% break %}} and {@code {% continue %}} to the enclosing loop. */
    private static final class LoopControl extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final boolean isBreak;

        LoopControl(boolean isBreak) {
            super(null, null, false, false);
            this.isBreak = isBreak;
        }
    }

    private static final LoopControl BREAK = new LoopControl(true);
    private static final LoopControl CONTINUE = new LoopControl(false);

    Interpreter(Source source, JinjaTemplate.Limits limits) {
        this.source = source;
        this.limits = limits;
    }

    String render(List<Node> body, Scope globals) {
        StringBuilder out = new StringBuilder();
        try {
            block(body, globals, out);
        } catch (LoopControl c) {
            throw new JinjaException(JinjaException.Kind.SYNTAX, (c.isBreak ? "{% break %}" : "{% continue %}")
                    + " outside a for loop", null);
        } catch (StackOverflowError e) {
            throw new JinjaException(JinjaException.Kind.LIMIT, "the template nests too deeply", null);
        }
        return out.toString();
    }

    private JinjaException error(String what, Node at) {
        return new JinjaException(JinjaException.Kind.RENDER, what, source.where(at.pos()));
    }

    private void step(Node at) {
        charge(1, at);
    }

    private void charge(long n, Node at) {
        steps += n;
        if (steps > limits.maxSteps()) {
            throw new JinjaException(JinjaException.Kind.LIMIT, "more than " + limits.maxSteps()
                    + " evaluation steps", source.where(at.pos()));
        }
    }

    /**
     * Fails when a string or list the template builds grows past the output limit, and charges steps in proportion
     * to its size (copying big strings over and over costs steps, not just one each).
     */
    Object checkSize(Object v, Node at) {
        int size = v instanceof String s ? s.length() : v instanceof List<?> l ? l.size() : 0;
        charge(v instanceof String ? size / 256 : size / 16, at);
        if (size > limits.maxOutputChars()) {
            throw new JinjaException(JinjaException.Kind.LIMIT, "a value of more than " + limits.maxOutputChars()
                    + " characters or items", source.where(at.pos()));
        }
        return v;
    }

    private void append(StringBuilder out, String s, Node at) {
        out.append(s);
        if (out.length() > limits.maxOutputChars()) {
            throw new JinjaException(JinjaException.Kind.LIMIT, "output longer than " + limits.maxOutputChars()
                    + " characters", source.where(at.pos()));
        }
    }

    // ---- statements ----

    void block(List<Node> nodes, Scope scope, StringBuilder out) {
        for (Node n : nodes) {
            step(n);
            if (n instanceof Node.Text t) {
                append(out, t.text(), n);
            } else if (n instanceof Node.Output o) {
                Object v = eval(o.expression(), scope);
                if (v != null && !(v instanceof Undefined)) {
                    append(out, Values.render(v), n);
                }
            } else if (n instanceof Node.If i) {
                block(Values.truthy(eval(i.test(), scope)) ? i.then() : i.otherwise(), scope, out);
            } else if (n instanceof Node.For f) {
                forLoop(f, scope, out);
            } else if (n instanceof Node.Set s) {
                Object value = s.value() != null ? eval(s.value(), scope) : renderToString(s.body(), scope);
                assign(s.target(), value, scope, n);
            } else if (n instanceof Node.Macro m) {
                scope.set(m.name(), macro(m, scope));
            } else if (n instanceof Node.FilterBlock fb) {
                String body = renderToString(fb.body(), scope);
                append(out, Values.render(applyFilter(fb.filter(), body, scope)), n);
            } else if (n instanceof Node.Break) {
                throw BREAK;
            } else if (n instanceof Node.Continue) {
                throw CONTINUE;
            } else {
                throw error("unexpected node " + n.getClass().getSimpleName(), n);
            }
        }
    }

    private String renderToString(List<Node> body, Scope scope) {
        StringBuilder b = new StringBuilder();
        block(body, scope, b);
        return b.toString();
    }

    private void assign(Node target, Object value, Scope scope, Node at) {
        if (target instanceof Node.Name n) {
            scope.set(n.name(), value);
        } else if (target instanceof Node.TupleLiteral t) {
            if (!(value instanceof List<?> list)) {
                throw error("cannot unpack " + Values.aTypeName(value) + " into " + t.items().size() + " names", at);
            }
            if (list.size() != t.items().size()) {
                throw error("cannot unpack " + list.size() + " values into " + t.items().size() + " names", at);
            }
            for (int i = 0; i < list.size(); i++) {
                scope.set(((Node.Name) t.items().get(i)).name(), list.get(i));
            }
        } else if (target instanceof Node.Member m) {
            Object object = eval(m.object(), scope);
            if (!(object instanceof Namespace ns)) {
                throw error("cannot set an attribute of " + Values.aTypeName(object)
                        + " (only of a namespace())", at);
            }
            ns.attributes.put((String) ((Node.Literal) m.key()).value(), value);
        }
    }

    private void forLoop(Node.For f, Scope scope, StringBuilder out) {
        Scope loopScope = new Scope(scope);
        Object iterable = eval(f.iterable(), loopScope);
        List<Object> candidates;
        if (iterable instanceof List<?> l) {
            candidates = new ArrayList<>(l);
        } else if (iterable instanceof Map<?, ?> m) {
            candidates = new ArrayList<>(m.keySet());
        } else {
            throw error("cannot loop over " + Values.aTypeName(iterable) + " (a list or dict is needed)", f.iterable());
        }
        List<Object> items = candidates;
        if (f.filter() != null) {
            items = new ArrayList<>();
            for (Object c : candidates) {
                Scope test = new Scope(loopScope);
                bindLoopTarget(f.target(), c, test, f);
                if (Values.truthy(eval(f.filter(), test))) {
                    items.add(c);
                }
            }
        } else if (f.target() instanceof Node.TupleLiteral) {
            for (Object c : candidates) {
                bindLoopTarget(f.target(), c, new Scope(loopScope), f);
            }
        }
        boolean any = false;
        int n = items.size();
        for (int i = 0; i < n; i++) {
            step(f);
            Map<String, Object> loop = new LinkedHashMap<>();
            loop.put("index", (long) i + 1);
            loop.put("index0", (long) i);
            loop.put("revindex", (long) (n - i));
            loop.put("revindex0", (long) (n - i - 1));
            loop.put("first", i == 0);
            loop.put("last", i == n - 1);
            loop.put("length", (long) n);
            loop.put("previtem", i > 0 ? items.get(i - 1) : Undefined.INSTANCE);
            loop.put("nextitem", i < n - 1 ? items.get(i + 1) : Undefined.INSTANCE);
            loopScope.set("loop", loop);
            bindLoopTarget(f.target(), items.get(i), loopScope, f);
            try {
                block(f.body(), loopScope, out);
            } catch (LoopControl c) {
                if (c.isBreak) {
                    break;
                }
                continue;
            }
            any = true;
        }
        if (!any) {
            block(f.otherwise(), loopScope, out);
        }
    }

    private void bindLoopTarget(Node target, Object item, Scope scope, Node at) {
        if (target instanceof Node.Name n) {
            scope.set(n.name(), item);
            return;
        }
        Node.TupleLiteral t = (Node.TupleLiteral) target;
        if (!(item instanceof List<?> l)) {
            throw error("cannot unpack " + Values.aTypeName(item) + " into the loop variables", at);
        }
        if (l.size() != t.items().size()) {
            throw error("cannot unpack " + l.size() + " values into " + t.items().size() + " loop variables", at);
        }
        for (int i = 0; i < l.size(); i++) {
            scope.set(((Node.Name) t.items().get(i)).name(), l.get(i));
        }
    }

    private JinjaFunction macro(Node.Macro m, Scope defining) {
        return (args, kwargs) -> {
            if (++depth > MAX_CALL_DEPTH) {
                depth--;
                throw error("macro " + m.name() + " nests more than " + MAX_CALL_DEPTH + " calls deep", m);
            }
            try {
                Scope s = new Scope(defining);
                if (args.size() > m.params().size()) {
                    throw error("macro " + m.name() + " takes at most " + m.params().size() + " arguments, got "
                            + args.size(), m);
                }
                Map<String, Object> rest = new LinkedHashMap<>(kwargs);
                for (int i = 0; i < m.params().size(); i++) {
                    Node p = m.params().get(i);
                    String name = p instanceof Node.Keyword k ? k.name() : ((Node.Name) p).name();
                    Object v;
                    if (i < args.size()) {
                        v = args.get(i);
                    } else if (rest.containsKey(name)) {
                        v = rest.remove(name);
                    } else if (p instanceof Node.Keyword k) {
                        v = eval(k.value(), s);
                    } else {
                        v = Undefined.INSTANCE;
                    }
                    s.set(name, v);
                }
                if (!rest.isEmpty()) {
                    throw error("macro " + m.name() + " has no parameter '" + rest.keySet().iterator().next() + "'",
                            m);
                }
                return renderToString(m.body(), s);
            } finally {
                depth--;
            }
        };
    }

    // ---- expressions ----

    Object eval(Node n, Scope scope) {
        step(n);
        try {
            return evalNode(n, scope);
        } catch (JinjaException | LoopControl e) {
            throw e;
        } catch (IllegalArgumentException | ArithmeticException | IndexOutOfBoundsException | ClassCastException e) {
            throw error(e.getMessage() != null ? e.getMessage() : e.toString(), n);
        }
    }

    private Object evalNode(Node n, Scope scope) {
        if (n instanceof Node.Literal l) {
            return l.value();
        } else if (n instanceof Node.Name name) {
            return scope.lookup(name.name());
        } else if (n instanceof Node.Member m) {
            Object object = eval(m.object(), scope);
            Object key = m.computed() ? eval(m.key(), scope) : ((Node.Literal) m.key()).value();
            return Members.get(object, key);
        } else if (n instanceof Node.Slice s) {
            Object object = eval(s.object(), scope);
            return Members.slice(object, part(s.start(), scope), part(s.stop(), scope), part(s.step(), scope));
        } else if (n instanceof Node.Call c) {
            Object callee = eval(c.callee(), scope);
            if (!(callee instanceof JinjaFunction fn)) {
                throw error("cannot call " + Values.aTypeName(callee) + describeCallee(c.callee()), n);
            }
            List<Object> args = new ArrayList<>();
            Map<String, Object> kwargs = new LinkedHashMap<>();
            arguments(c.args(), scope, args, kwargs, n);
            return checkSize(Values.fromJava(fn.call(args, kwargs)), n);
        } else if (n instanceof Node.Filter f) {
            return applyFilter(f, eval(f.operand(), scope), scope);
        } else if (n instanceof Node.Test t) {
            Object v = eval(t.operand(), scope);
            return Tests.test(t.name(), v) != t.negate();
        } else if (n instanceof Node.Unary u) {
            Object v = eval(u.operand(), scope);
            if (u.op().equals("not")) {
                return !Values.truthy(v);
            }
            if (!Values.isNumericLike(v)) {
                throw error("unary '" + u.op() + "' needs a number, got " + Values.aTypeName(v), n);
            }
            boolean negate = u.op().equals("-");
            if (v instanceof Double d) {
                return negate ? -d : d;
            }
            long x = v instanceof Boolean b ? (b ? 1 : 0) : (Long) v;
            return negate ? -x : x;
        } else if (n instanceof Node.Binary b) {
            return binary(b, scope);
        } else if (n instanceof Node.Conditional c) {
            if (Values.truthy(eval(c.test(), scope))) {
                return eval(c.then(), scope);
            }
            return c.otherwise() == null ? Undefined.INSTANCE : eval(c.otherwise(), scope);
        } else if (n instanceof Node.ListLiteral l) {
            List<Object> out = new ArrayList<>(l.items().size());
            for (Node item : l.items()) {
                out.add(eval(item, scope));
            }
            return out;
        } else if (n instanceof Node.TupleLiteral t) {
            List<Object> out = new ArrayList<>(t.items().size());
            for (Node item : t.items()) {
                out.add(eval(item, scope));
            }
            return out;
        } else if (n instanceof Node.DictLiteral d) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (int i = 0; i < d.keys().size(); i++) {
                Object key = eval(d.keys().get(i), scope);
                if (!(key instanceof String) && !Values.isNumericLike(key)) {
                    throw error("a dict key must be a string or number, got " + Values.aTypeName(key), d.keys().get(i));
                }
                out.put(Values.text(key), eval(d.values().get(i), scope));
            }
            return out;
        }
        throw error("'" + n.getClass().getSimpleName() + "' cannot be used in an expression", n);
    }

    private static String describeCallee(Node callee) {
        if (callee instanceof Node.Name n) {
            return " ('" + n.name() + "' is not defined as a function)";
        }
        if (callee instanceof Node.Member m && !m.computed()) {
            return " (no method '" + ((Node.Literal) m.key()).value() + "')";
        }
        return "";
    }

    private Object part(Node n, Scope scope) {
        return n == null ? Undefined.INSTANCE : eval(n, scope);
    }

    private void arguments(List<Node> nodes, Scope scope, List<Object> args, Map<String, Object> kwargs, Node at) {
        for (Node a : nodes) {
            if (a instanceof Node.Keyword k) {
                if (kwargs.put(k.name(), eval(k.value(), scope)) != null) {
                    throw error("keyword argument '" + k.name() + "' given twice", a);
                }
            } else {
                if (!kwargs.isEmpty()) {
                    throw error("a positional argument follows a keyword argument", a);
                }
                args.add(eval(a, scope));
            }
        }
    }

    private Object applyFilter(Node.Filter f, Object operand, Scope scope) {
        List<Object> args = new ArrayList<>();
        Map<String, Object> kwargs = new LinkedHashMap<>();
        if (f.args() != null) {
            arguments(f.args(), scope, args, kwargs, f);
        }
        if (operand instanceof List<?> l) {
            charge(l.size() / 16, f);
        }
        try {
            return checkSize(Filters.apply(f.name(), operand, args, kwargs), f);
        } catch (JinjaException e) {
            throw e;
        } catch (IllegalArgumentException | ArithmeticException | ClassCastException e) {
            throw error(e.getMessage() != null ? e.getMessage() : e.toString(), f);
        }
    }

    private Object binary(Node.Binary b, Scope scope) {
        Object left = eval(b.left(), scope);
        switch (b.op()) {
            case "and":
                return Values.truthy(left) ? eval(b.right(), scope) : left;
            case "or":
                return Values.truthy(left) ? left : eval(b.right(), scope);
            default:
                break;
        }
        Object right = eval(b.right(), scope);
        if (right instanceof List<?> l) {
            charge(l.size() / 16, b);
        } else if (right instanceof String s) {
            charge(s.length() / 256, b);
        }
        return checkSize(Operators.apply(b.op(), left, right), b);
    }
}
