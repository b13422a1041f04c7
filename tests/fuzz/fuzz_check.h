/*
 * What the fuzz targets share: CHECK(property) stops the run with the
 * property and the line (libFuzzer saves the input), and HARNESS marks the
 * targets' own checking code, which gets no coverage feedback (libFuzzer
 * should steer by the code under test) but stays under ASan and UBSan.
 */
#ifndef TESTS_FUZZ_FUZZ_CHECK_H
#define TESTS_FUZZ_FUZZ_CHECK_H

#include <stdio.h>

#define HARNESS __attribute__((no_sanitize("coverage")))

#define CHECK(condition)                                                                 \
    do {                                                                                 \
        if (!(condition)) {                                                              \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #condition); \
            __builtin_trap();                                                            \
        }                                                                                \
    } while (0)

#endif
