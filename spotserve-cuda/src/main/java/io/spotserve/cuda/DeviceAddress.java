package io.spotserve.cuda;

import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The numeric device address behind a {@link CUdeviceptr}. JCuda keeps it in a protected accessor; the
 * attention and RoPE kernels need the addresses of every batch entry's KV cache in a device array, so this
 * reads it once by reflection (JCuda is on the class path, an unnamed module, so no --add-opens is needed).
 */
final class DeviceAddress {
    private static final Method NATIVE_POINTER;
    private static final Method BYTE_OFFSET;

    static {
        try {
            NATIVE_POINTER = NativePointerObject.class.getDeclaredMethod("getNativePointer");
            NATIVE_POINTER.setAccessible(true);
            BYTE_OFFSET = Pointer.class.getDeclaredMethod("getByteOffset");
            BYTE_OFFSET.setAccessible(true);
        } catch (NoSuchMethodException e) {
            throw new ExceptionInInitializerError("JCuda's pointer classes lack an expected accessor: " + e);
        }
    }

    private DeviceAddress() {
    }

    /** The address {@code p} points at (its base plus byte offset). */
    static long of(CUdeviceptr p) {
        try {
            return (long) NATIVE_POINTER.invoke(p) + (long) BYTE_OFFSET.invoke(p);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read the device address of " + p, e);
        }
    }
}
