/*
 * Texts for the error codes of lib/error.h.
 */
#include "lib/error.h"

const char *error_text(int error)
{
    switch (error) {
    case ERROR_NONE: return "ok";
    case ERROR_IO: return "I/O error reported by the device";
    case ERROR_UNSUPPORTED: return "request not supported by the device";
    case ERROR_READ_ONLY: return "the disk is read-only";
    case ERROR_RANGE: return "beyond the end of the disk";
    case ERROR_INVALID: return "invalid request";
    case ERROR_BUSY: return "no room for another request";
    case ERROR_DEVICE: return "the device misbehaved";
    case ERROR_FROZEN: return "the disk is frozen";
    case ERROR_NO_MEMORY: return "no memory";
    case ERROR_NOT_FOUND: return "not found";
    case ERROR_GONE: return "the device is gone";
    case ERROR_FULL: return "no free entry";
    case ERROR_CORRUPT: return "internal state is inconsistent";
    default: return "unknown error";
    }
}
