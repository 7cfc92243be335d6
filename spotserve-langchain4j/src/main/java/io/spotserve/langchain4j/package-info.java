/** SpotServe-J langchain4j. */
package io.spotserve.langchain4j;
