/**
 * LangChain4j chat models on a {@link io.spotserve.engine.ServingEngine}: {@link
 * io.spotserve.langchain4j.SpotServeChatModel} and {@link io.spotserve.langchain4j.SpotServeStreamingChatModel}.
 */
package io.spotserve.langchain4j;
