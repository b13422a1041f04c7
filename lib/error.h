/*
 * The kernel's one error convention: a fallible function returns int, 0
 * for success or one of these negative codes. Refusal reasons that a
 * console line prints (`reason=WORD`) are a different thing: words
 * chosen by the subsystem that refuses (docs/architecture.md, Errors).
 */
#ifndef LIB_ERROR_H
#define LIB_ERROR_H

enum error {
    ERROR_NONE = 0,
    ERROR_IO = -1,          /* the device reported an I/O error */
    ERROR_UNSUPPORTED = -2, /* the device or driver cannot do this */
    ERROR_READ_ONLY = -3,   /* a write to something read-only */
    ERROR_RANGE = -4,       /* beyond the end of the device or table */
    ERROR_INVALID = -5,     /* a request that can never succeed as asked */
    ERROR_BUSY = -6,        /* no room right now; retry after a completion */
    ERROR_DEVICE = -7,      /* the device misbehaved: broken ring, bad status, timeout */
    ERROR_FROZEN = -8,      /* frozen for hibernation */
    ERROR_NO_MEMORY = -9,   /* the page allocator had no block */
    ERROR_NOT_FOUND = -10,  /* no such device, table or entry */
    ERROR_GONE = -11,       /* the device vanished (across a resume) */
    ERROR_FULL = -12,       /* a fixed-size table has no free entry */
    ERROR_CORRUPT = -13,    /* state that breaks its own invariants (a self-check failed) */
};

/* A short sentence for people ("I/O error reported by the device"). */
const char *error_text(int error);

#endif
