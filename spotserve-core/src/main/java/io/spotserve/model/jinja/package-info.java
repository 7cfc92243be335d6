/**
 * Our own interpreter for the Jinja2 chat templates models ship ({@link io.spotserve.model.jinja.JinjaTemplate}):
 * the subset chat templates use, with output identical to {@code @huggingface/jinja}, clear errors naming the
 * construct and its position ({@link io.spotserve.model.jinja.JinjaException}) and bounded work. Usually reached
 * through {@link io.spotserve.model.ChatTemplate#jinja} and {@link io.spotserve.model.ModelChatTemplate}.
 */
package io.spotserve.model.jinja;
