package io.spotserve.model.jinja;

/** The value of a name or attribute that does not exist: renders as nothing, is false, and fails most operations. */
final class Undefined {
    static final Undefined INSTANCE = new Undefined();

    private Undefined() {
    }

    @Override
    public String toString() {
        return "undefined";
    }
}
