/*
 * Freestanding memory and string helpers. The compiler may emit calls to
 * memcpy/memset/memmove/memcmp itself, so these keep the standard names.
 */
#ifndef LIB_STRING_H
#define LIB_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t string_copy(char *dst, const char *src, size_t size);

#endif
