/*
 * A small printf: %d %i %u %x %X %p %s %c %%, flags '-' and '0', a width,
 * and the l/ll/z length modifiers. No floating point (the kernel has no FPU
 * use outside hibernation's state save).
 */
#ifndef LIB_FORMAT_H
#define LIB_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/* Returns the length the full output would have, like vsnprintf. */
int format_vsnprintf(char *buf, size_t size, const char *fmt, va_list args);
int format_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
