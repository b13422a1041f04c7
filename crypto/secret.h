/*
 * Handling secret bytes: an erase the compiler cannot drop as a dead store,
 * and a comparison of tags whose time does not depend on where they differ.
 */
#ifndef CRYPTO_SECRET_H
#define CRYPTO_SECRET_H

#include <stddef.h>
#include <stdint.h>

/* Zeroes `bytes` bytes at p (any alignment, any length). A plain memset
 * before the memory is left would be dropped as a dead store; the empty
 * asm that takes p and clobbers memory makes the compiler keep it. */
static inline void secret_erase(void *p, size_t bytes)
{
    __builtin_memset(p, 0, bytes);
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* 1 when the `bytes` bytes at a and b are equal, else 0; every byte is
 * read whatever the answer, so a tag check leaks no prefix length. */
static inline int secret_equal(const void *a, const void *b, size_t bytes)
{
    const uint8_t *x = a, *y = b;
    uint8_t differ = 0;

    for (size_t i = 0; i < bytes; i++)
        differ |= x[i] ^ y[i];
    return differ == 0;
}

#endif
