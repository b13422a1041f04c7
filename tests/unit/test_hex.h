/*
 * Hex strings to bytes for the unit tests' published test vectors, which
 * read best as the hex the documents print.
 */
#ifndef TESTS_UNIT_TEST_HEX_H
#define TESTS_UNIT_TEST_HEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The bytes of `hex` (two digits each, nothing else) into a new heap
 * block of exactly that size (1 byte for none, so it is never NULL), and
 * their count in *bytes. Aborts on a malformed string: a typo in a
 * vector must not pass as a shorter one. */
static inline uint8_t *hex_bytes(const char *hex, size_t *bytes)
{
    size_t digits = 0;

    while (hex[digits])
        digits++;
    if (digits % 2)
        abort();
    uint8_t *out = malloc(digits / 2 ? digits / 2 : 1);
    if (!out)
        abort();
    for (size_t i = 0; i < digits / 2; i++) {
        unsigned value = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            unsigned digit = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                    : 16;
            if (digit == 16)
                abort();
            value = value * 16 + digit;
        }
        out[i] = (uint8_t)value;
    }
    *bytes = digits / 2;
    return out;
}

#endif
