/*
 * Heap blocks a test owns. A failing assert leaves the test by longjmp, so
 * the teardown (free_tracked, given to cmocka_unit_test_teardown) frees
 * whatever is still registered and LeakSanitizer only reports real leaks.
 * Include after <cmocka.h>.
 */
#ifndef TESTS_UNIT_TEST_TRACKED_H
#define TESTS_UNIT_TEST_TRACKED_H

#include <stddef.h>
#include <stdlib.h>

#define MAX_TRACKED 64
static void *tracked[MAX_TRACKED];

static inline void *track(void *p)
{
    assert_non_null(p);
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (!tracked[i]) {
            tracked[i] = p;
            return p;
        }
    }
    fail_msg("too many tracked allocations");
    return NULL;
}

static inline void untrack(void *p)
{
    for (size_t i = 0; p && i < MAX_TRACKED; i++)
        if (tracked[i] == p)
            tracked[i] = NULL;
}

static inline void *tracked_calloc(size_t n, size_t size)
{
    return track(calloc(n ? n : 1, size ? size : 1));
}

static inline void *tracked_realloc(void *p, size_t size)
{
    untrack(p);
    return track(realloc(p, size));
}

static inline void tracked_free(void *p)
{
    untrack(p);
    free(p);
}

static inline int free_tracked(void **state)
{
    (void)state;
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        free(tracked[i]);
        tracked[i] = NULL;
    }
    return 0;
}

#endif
