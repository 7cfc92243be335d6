package io.spotserve.model.jinja;

import java.util.List;

/** The syntax tree of a template: statements (what renders) and expressions (what evaluates). */
sealed interface Node {
    /** Where the node starts in the preprocessed text (for error positions). */
    int pos();

    // ---- statements ----

    /** Literal text. */
    record Text(int pos, String text) implements Node {
    }

    /** {@code {{ expression }}}. */
    record Output(int pos, Node expression) implements Node {
    }

    /** {@code {% if %}...{% elif %}...{% else %}...{% endif %}} (an elif is a nested If in {@code otherwise}). */
    record If(int pos, Node test, List<Node> then, List<Node> otherwise) implements Node {
    }

    /** {@code {% for target in iterable [if filter] %}...{% else %}...{% endfor %}}. */
    record For(int pos, Node target, Node iterable, Node filter, List<Node> body, List<Node> otherwise)
            implements Node {
    }

    /** {@code {% set target = value %}} or the block form {@code {% set target %}body{% endset %}}. */
    record Set(int pos, Node target, Node value, List<Node> body) implements Node {
    }

    /** {@code {% macro name(params) %}body{% endmacro %}}; params are Names or Keyword (with a default). */
    record Macro(int pos, String name, List<Node> params, List<Node> body) implements Node {
    }

    /** {@code {% filter name(args) %}body{% endfilter %}}. */
    record FilterBlock(int pos, Filter filter, List<Node> body) implements Node {
    }

    /** {@code {% break %}}. */
    record Break(int pos) implements Node {
    }

    /** {@code {% continue %}}. */
    record Continue(int pos) implements Node {
    }

    // ---- expressions ----

    /** A string, integer, float literal (value is String, Long or Double). */
    record Literal(int pos, Object value) implements Node {
    }

    /** A variable. */
    record Name(int pos, String name) implements Node {
    }

    /** {@code [a, b]}. */
    record ListLiteral(int pos, List<Node> items) implements Node {
    }

    /** {@code (a, b)} or {@code a, b}. */
    record TupleLiteral(int pos, List<Node> items) implements Node {
    }

    /** {@code {k: v, ...}}. */
    record DictLiteral(int pos, List<Node> keys, List<Node> values) implements Node {
    }

    /** {@code object.name} ({@code computed} false) or {@code object[key]}. */
    record Member(int pos, Node object, Node key, boolean computed) implements Node {
    }

    /** {@code object[start:stop:step]} (absent parts are null). */
    record Slice(int pos, Node object, Node start, Node stop, Node step) implements Node {
    }

    /** {@code callee(args)}; args may contain Keyword nodes. */
    record Call(int pos, Node callee, List<Node> args) implements Node {
    }

    /** {@code name=value} in a call or a macro's parameter list. */
    record Keyword(int pos, String name, Node value) implements Node {
    }

    /** {@code operand | name(args)}; args null when written without parentheses. */
    record Filter(int pos, Node operand, String name, List<Node> args) implements Node {
    }

    /** {@code operand is [not] name}. */
    record Test(int pos, Node operand, String name, boolean negate) implements Node {
    }

    /** {@code not x}, {@code -x}, {@code +x}. */
    record Unary(int pos, String op, Node operand) implements Node {
    }

    /** {@code left op right} (arithmetic, comparison, {@code and}, {@code or}, {@code in}, {@code not in}, {@code ~}). */
    record Binary(int pos, String op, Node left, Node right) implements Node {
    }

    /** {@code a if test else b}; without else, {@code otherwise} is null (undefined when the test fails). */
    record Conditional(int pos, Node test, Node then, Node otherwise) implements Node {
    }
}
