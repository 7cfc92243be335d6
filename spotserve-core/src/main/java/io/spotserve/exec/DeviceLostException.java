package io.spotserve.exec;

import io.spotserve.plan.DeviceId;
import java.util.List;

/**
 * A call into a pipeline failed because devices it uses are gone (their process or machine died, or was declared
 * dead and fenced): what was computed or stored there is lost. An engine treats it as the loss of those devices —
 * the step's requests resume from their committed tokens elsewhere — and never as a bad request.
 */
public final class DeviceLostException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient List<DeviceId> devices;

    public DeviceLostException(List<DeviceId> devices, String message, Throwable cause) {
        super(message, cause);
        this.devices = List.copyOf(devices);
    }

    /** The devices that are gone. */
    public List<DeviceId> devices() {
        return devices;
    }
}
