package io.spotserve.exec;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The logger of {@link ExecutorProvider#best()} (an interface cannot hold a private one). */
final class ProviderLog {
    static final Logger LOG = LoggerFactory.getLogger(ExecutorProvider.class);

    private ProviderLog() {
    }
}
