package io.spotserve.model.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Binary operators (all but the short-circuit {@code and}/{@code or}): arithmetic on integers and floats, string
 * concatenation with {@code +} and {@code ~}, list concatenation, comparisons, equality and membership. Where
 * Python's Jinja and the reference implementation agree, so do we; mixing none or undefined into arithmetic fails.
 */
final class Operators {
    private Operators() {
    }

    static Object apply(String op, Object left, Object right) {
        switch (op) {
            case "==":
                return Values.looseEquals(left, right);
            case "!=":
                return !Values.looseEquals(left, right);
            default:
                break;
        }
        if (Values.isNumber(left) && Values.isNumber(right) && !op.equals("~") && !op.equals("**")) {
            Object r = arithmetic(op, left, right);
            if (r != null) {
                return r;
            }
        } else if (left instanceof Undefined || right instanceof Undefined) {
            if (right instanceof Undefined && (op.equals("in") || op.equals("not in"))) {
                return op.equals("not in");
            }
            if (op.equals("~") && left != null && right != null) {
                return Values.text(left) + Values.text(right);
            }
            throw new IllegalArgumentException("cannot apply '" + op + "' to an undefined value ("
                    + Values.typeName(left) + " " + op + " " + Values.typeName(right) + ")");
        } else if (left == null || right == null) {
            throw new IllegalArgumentException("cannot apply '" + op + "' to none (" + Values.typeName(left) + " "
                    + op + " " + Values.typeName(right) + ")");
        } else if (op.equals("~")) {
            return Values.text(left) + Values.text(right);
        } else if (op.equals("**") && Values.isNumericLike(left) && Values.isNumericLike(right)) {
            return power(left, right);
        } else if (left instanceof List<?> a && right instanceof List<?> b && op.equals("+")) {
            List<Object> out = new ArrayList<>(a);
            out.addAll(b);
            return out;
        } else if (right instanceof List<?> list && (op.equals("in") || op.equals("not in"))) {
            boolean member = false;
            for (Object o : list) {
                if (Values.strictEquals(o, left)) {
                    member = true;
                    break;
                }
            }
            return member == op.equals("in");
        }
        if ((left instanceof String || right instanceof String) && op.equals("+")) {
            return Values.text(left) + Values.text(right);
        }
        if (left instanceof String a && right instanceof String b) {
            switch (op) {
                case "in":
                    return b.contains(a);
                case "not in":
                    return !b.contains(a);
                case "<":
                    return a.compareTo(b) < 0;
                case ">":
                    return a.compareTo(b) > 0;
                case "<=":
                    return a.compareTo(b) <= 0;
                case ">=":
                    return a.compareTo(b) >= 0;
                default:
                    break;
            }
        }
        if (left instanceof String key && right instanceof Map<?, ?> map && (op.equals("in") || op.equals("not in"))) {
            return map.containsKey(key) == op.equals("in");
        }
        throw new IllegalArgumentException("unsupported operator '" + op + "' between " + Values.aTypeName(left)
                + " and " + Values.aTypeName(right));
    }

    /** Integer or float arithmetic and comparison; null for operators that do not apply to numbers. */
    private static Object arithmetic(String op, Object left, Object right) {
        boolean isFloat = left instanceof Double || right instanceof Double;
        double a = Values.numeric(left);
        double b = Values.numeric(right);
        switch (op) {
            case "+":
            case "-":
            case "*":
                if (!isFloat) {
                    long x = (Long) left;
                    long y = (Long) right;
                    return op.equals("+") ? Math.addExact(x, y) : op.equals("-") ? Math.subtractExact(x, y)
                            : Math.multiplyExact(x, y);
                }
                return op.equals("+") ? a + b : op.equals("-") ? a - b : a * b;
            case "/":
                if (b == 0) {
                    throw new ArithmeticException("division by zero");
                }
                return a / b;
            case "//":
                if (b == 0) {
                    throw new ArithmeticException("integer division by zero");
                }
                return isFloat ? (Object) Math.floor(a / b) : (Object) Math.floorDiv((Long) left, (Long) right);
            case "%":
                if (b == 0) {
                    throw new ArithmeticException("modulo by zero");
                }
                // the remainder takes the dividend's sign, as in the reference implementation
                return isFloat ? (Object) (a % b) : (Object) ((Long) left % (Long) right);
            case "<":
                return a < b;
            case ">":
                return a > b;
            case "<=":
                return a <= b;
            case ">=":
                return a >= b;
            default:
                return null;
        }
    }

    private static Object power(Object left, Object right) {
        double a = Values.numeric(left);
        double b = Values.numeric(right);
        if (a == 0 && b < 0) {
            throw new ArithmeticException("0 cannot be raised to a negative power");
        }
        double r = Math.pow(a, b);
        if (Double.isNaN(r) || Double.isInfinite(r)) {
            throw new ArithmeticException("exponentiation result is not a finite real number");
        }
        boolean isFloat = left instanceof Double || right instanceof Double || b < 0;
        if (isFloat) {
            return r;
        }
        if (Math.abs(r) >= 9.007199254740992E15) {
            throw new ArithmeticException("integer power too large");
        }
        return (long) r;
    }
}
