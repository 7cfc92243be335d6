package io.spotserve.server;

import com.google.gson.JsonObject;

/**
 * A request the server answers with an error, in OpenAI's shape:
 * {@code {"error": {"message", "type", "param", "code"}}}.
 */
final class ApiException extends Exception {
    private static final long serialVersionUID = 1L;

    final int status;
    final String type;
    final String param;
    final String code;

    ApiException(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 about one field of the request body. */
    static ApiException badField(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message);
    }

    static ApiException badRequest(String message) {
        return new ApiException(400, "invalid_request_error", null, null, message);
    }

    JsonObject toJson() {
        JsonObject e = new JsonObject();
        e.addProperty("message", getMessage());
        e.addProperty("type", type);
        e.add("param", param == null ? com.google.gson.JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(param));
        e.add("code", code == null ? com.google.gson.JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(code));
        JsonObject o = new JsonObject();
        o.add("error", e);
        return o;
    }
}
