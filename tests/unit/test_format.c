/* Host unit tests for lib/format.c (format_snprintf / format_vsnprintf): the
 * conversions, flags, widths and length modifiers, return value and truncation. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/format.h"

/* Formats into a large buffer and checks both the text and the returned length. */
#define EXPECT_FORMAT(expected, ...)                                                \
    do {                                                                            \
        char out_[256];                                                             \
        memset(out_, 0x7f, sizeof(out_));                                           \
        int n_ = format_snprintf(out_, sizeof(out_), __VA_ARGS__);                  \
        assert_string_equal(out_, expected);                                        \
        assert_int_equal(n_, strlen(expected));                                     \
    } while (0)

/* Same output and return value as the C library for a format both support. */
#define EXPECT_LIKE_LIBC(...)                                                       \
    do {                                                                            \
        char want_[256], got_[256];                                                 \
        int wn_ = snprintf(want_, sizeof(want_), __VA_ARGS__);                      \
        int gn_ = format_snprintf(got_, sizeof(got_), __VA_ARGS__);                 \
        assert_string_equal(got_, want_);                                           \
        assert_int_equal(gn_, wn_);                                                 \
    } while (0)

/* Calls format_vsnprintf through a va_list, as the console and log do. */
static int call_vsnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = format_vsnprintf(buf, size, fmt, args);
    va_end(args);
    return n;
}

/* A format string the compiler cannot see, for cases gcc would warn about. */
static const char *hidden(const char *fmt)
{
    static const char *volatile slot;
    slot = fmt;
    return slot;
}

static void test_plain_text_and_percent_escape(void **state)
{
    (void)state;
    EXPECT_FORMAT("", "%s", "");
    EXPECT_FORMAT("hello, world", "hello, world%s", "");
    EXPECT_FORMAT("%", "%%%s", "");
    EXPECT_FORMAT("100% sure", "%d%% sure", 100);
    EXPECT_FORMAT("%%", "%%%%%s", "");
    EXPECT_FORMAT("a%b", "a%%b%s", "");
}

static void test_signed_decimal(void **state)
{
    (void)state;
    EXPECT_FORMAT("0", "%d", 0);
    EXPECT_FORMAT("7", "%d", 7);
    EXPECT_FORMAT("-7", "%d", -7);
    EXPECT_FORMAT("1234567890", "%d", 1234567890);
    EXPECT_FORMAT("2147483647", "%d", INT_MAX);
    EXPECT_FORMAT("-2147483648", "%d", INT_MIN);
    EXPECT_FORMAT("-2147483648", "%i", INT_MIN);
    EXPECT_FORMAT("42 -42", "%i %i", 42, -42);
}

static void test_signed_decimal_with_long_modifiers(void **state)
{
    (void)state;
    EXPECT_FORMAT("9223372036854775807", "%ld", LONG_MAX);
    EXPECT_FORMAT("-9223372036854775808", "%ld", LONG_MIN);
    EXPECT_FORMAT("9223372036854775807", "%lld", LLONG_MAX);
    EXPECT_FORMAT("-9223372036854775808", "%lld", LLONG_MIN);
    EXPECT_FORMAT("-9223372036854775808", "%lli", LLONG_MIN);
    EXPECT_FORMAT("-1", "%lld", -1LL);
    EXPECT_FORMAT("-5000000000", "%ld", -5000000000L);
    EXPECT_FORMAT("-3", "%zd", (ptrdiff_t)-3);
    EXPECT_FORMAT("4294967296", "%zd", (ptrdiff_t)4294967296LL);
}

static void test_unsigned_decimal_and_hex(void **state)
{
    (void)state;
    EXPECT_FORMAT("0", "%u", 0u);
    EXPECT_FORMAT("4294967295", "%u", UINT_MAX);
    EXPECT_FORMAT("4294967295", "%u", -1); /* an int read as unsigned int */
    EXPECT_FORMAT("0", "%x", 0u);
    EXPECT_FORMAT("deadbeef", "%x", 0xdeadbeefu);
    EXPECT_FORMAT("DEADBEEF", "%X", 0xdeadbeefu);
    EXPECT_FORMAT("ffffffff", "%x", UINT_MAX);
    EXPECT_FORMAT("abcdef ABCDEF", "%x %X", 0xabcdefu, 0xabcdefu);
    EXPECT_FORMAT("1234567890abcdef", "%lx", 0x1234567890abcdefUL);
    EXPECT_FORMAT("FFFFFFFFFFFFFFFF", "%llX", ULLONG_MAX);
    EXPECT_FORMAT("18446744073709551615", "%llu", ULLONG_MAX);
    EXPECT_FORMAT("18446744073709551615", "%lu", ULONG_MAX);
    EXPECT_FORMAT("18446744073709551615", "%zu", SIZE_MAX);
    EXPECT_FORMAT("100000000", "%zx", (size_t)1 << 32);
}

static void test_without_modifier_only_32_bits_are_read(void **state)
{
    (void)state;
    /* each int argument takes its own slot; the next one must not be mixed in */
    EXPECT_FORMAT("ffffffff 1", "%x %d", 0xffffffffu, 1);
    EXPECT_FORMAT("-1 2 -3", "%d %u %d", -1, 2u, -3);
}

static void test_pointer(void **state)
{
    (void)state;
    EXPECT_FORMAT("0x1234", "%p", (void *)0x1234);
    EXPECT_FORMAT("0xffff800000001000", "%p", (void *)0xffff800000001000ull);
    int local;
    EXPECT_LIKE_LIBC("%p", (void *)&local);
    EXPECT_LIKE_LIBC("[%20p]", (void *)&local);
    EXPECT_LIKE_LIBC("[%-20p]", (void *)&local);
}

static void test_string_and_char(void **state)
{
    (void)state;
    const char *volatile null_string = NULL;
    EXPECT_FORMAT("abc", "%s", "abc");
    EXPECT_FORMAT("", "%s", "");
    EXPECT_FORMAT("(null)", "%s", null_string);
    EXPECT_FORMAT("a-b-c", "%s-%s-%s", "a", "b", "c");
    EXPECT_FORMAT("x", "%c", 'x');
    EXPECT_FORMAT("xyz", "%c%c%c", 'x', 'y', 'z');
    EXPECT_FORMAT("[  abc]", "[%5s]", "abc");
    EXPECT_FORMAT("[abc  ]", "[%-5s]", "abc");
    EXPECT_FORMAT("[abcdef]", "[%3s]", "abcdef"); /* width never cuts */
    EXPECT_FORMAT("[  x]", "[%3c]", 'x');
    EXPECT_FORMAT("[x  ]", "[%-3c]", 'x');

    /* %c of NUL writes a NUL byte and counts it */
    char out[8];
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, sizeof(out), "a%cb", 0), 3);
    assert_memory_equal(out, "a\0b\0", 4);
}

static void test_width_and_flags(void **state)
{
    (void)state;
    EXPECT_FORMAT("[   42]", "[%5d]", 42);
    EXPECT_FORMAT("[42   ]", "[%-5d]", 42);
    EXPECT_FORMAT("[00042]", "[%05d]", 42);
    EXPECT_FORMAT("[  -42]", "[%5d]", -42);
    EXPECT_FORMAT("[-42  ]", "[%-5d]", -42);
    EXPECT_FORMAT("[-0042]", "[%05d]", -42); /* zeros go after the sign */
    EXPECT_FORMAT("[-42]", "[%03d]", -42);
    EXPECT_FORMAT("[-42]", "[%02d]", -42);
    EXPECT_FORMAT("[12345]", "[%3d]", 12345);
    EXPECT_FORMAT("[0000beef]", "[%08x]", 0xbeefu);
    EXPECT_FORMAT("[0000BEEF]", "[%08X]", 0xbeefu);
    EXPECT_FORMAT("[    beef]", "[%8x]", 0xbeefu);
    EXPECT_FORMAT("[beef    ]", "[%-8x]", 0xbeefu);
    EXPECT_FORMAT("[0000000000000007]", "[%016lx]", 7UL);
    EXPECT_FORMAT("[-000000000000000000001]", "[%022lld]", -1LL);
    EXPECT_FORMAT("[     18446744073709551615]", "[%25zu]", SIZE_MAX);
    EXPECT_FORMAT("[0]", "[%0d]", 0);
    EXPECT_FORMAT("[0]", "[%1d]", 0);
    /* '-' wins over '0', in either order (gcc warns, so hide the format) */
    EXPECT_FORMAT("[42   ]", hidden("[%-05d]"), 42);
    EXPECT_FORMAT("[42   ]", hidden("[%0-5d]"), 42);
    EXPECT_FORMAT("[-42  ]", hidden("[%-05d]"), -42);
    /* a width wider than any internal scratch buffer */
    EXPECT_FORMAT("[                                                 7]", "[%50d]", 7);
}

static void test_matches_libc_for_many_cases(void **state)
{
    (void)state;
    const long long values[] = { 0, 1, -1, 9, 10, -10, 255, 256, 65535, -65536,
                                 INT_MAX, INT_MIN, 4294967295LL, 4294967296LL,
                                 LLONG_MAX, LLONG_MIN };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        long long v = values[i];
        int iv = (int)v;
        unsigned uv = (unsigned)v;
        unsigned long long ullv = (unsigned long long)v;
        EXPECT_LIKE_LIBC("%d|%5d|%-5d|%05d|%12d|%-12d|%012d", iv, iv, iv, iv, iv, iv, iv);
        EXPECT_LIKE_LIBC("%i|%u|%x|%X|%10u|%-10x|%010X", iv, uv, uv, uv, uv, uv, uv);
        EXPECT_LIKE_LIBC("%lld|%25lld|%-25lld|%025lld", v, v, v, v);
        EXPECT_LIKE_LIBC("%ld|%lu|%lx|%lX|%020lx", (long)v, (unsigned long)ullv,
                         (unsigned long)ullv, (unsigned long)ullv, (unsigned long)ullv);
        EXPECT_LIKE_LIBC("%llu|%llx|%zu|%zx|%zd", ullv, ullv, (size_t)ullv, (size_t)ullv,
                         (ptrdiff_t)v);
    }
    EXPECT_LIKE_LIBC("%s=%d (%c) %x%%", "key", -12, 'q', 0x1fu);
    EXPECT_LIKE_LIBC("[%8s][%-8s][%1s]", "ab", "ab", "ab");
}

static void test_va_list_entry_point(void **state)
{
    (void)state;
    char out[64];
    int n = call_vsnprintf(out, sizeof(out), "%d %lld %s %u %c %zx", -5, -6000000000LL,
                           "mid", 7u, 'k', (size_t)0xabc);
    assert_string_equal(out, "-5 -6000000000 mid 7 k abc");
    assert_int_equal(n, strlen(out));
}

static void test_returns_full_length_and_truncates(void **state)
{
    (void)state;
    char out[16];
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 6, "hello, %s", "world"), 12);
    assert_string_equal(out, "hello");
    for (size_t i = 6; i < sizeof(out); i++)
        assert_int_equal(out[i], 'Z'); /* nothing written past size */

    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 1, "abc"), 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 'Z');

    /* exact fit, and one short */
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 4, "%d", 123), 3);
    assert_string_equal(out, "123");
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 3, "%d", 123), 3);
    assert_string_equal(out, "12");
    assert_int_equal(out[3], 'Z');

    /* a padded field cut in the middle of its padding */
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 5, "%10d", -42), 10);
    assert_string_equal(out, "    ");
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 8, hidden("%-010d|"), -42), 11);
    assert_string_equal(out, "-42    ");
}

static void test_size_zero_writes_nothing(void **state)
{
    (void)state;
    char out[4] = { 'Z', 'Z', 'Z', 'Z' };
    assert_int_equal(format_snprintf(out, 0, "%s %d", "abc", 12345), 9);
    assert_memory_equal(out, "ZZZZ", 4);
    assert_int_equal(format_snprintf(NULL, 0, "%50d", 1), 50);
    assert_int_equal(format_snprintf(NULL, 0, hidden("")), 0);
}

static void test_truncation_at_every_size_matches_libc(void **state)
{
    (void)state;
    static const char fmt[] = "[%-6s|%05d|%8x|%c|%lld|%%|%p]";
    int local;
    char want[128];
    int full = snprintf(want, sizeof(want), fmt, "ab", -7, 0xbeefu, 'q', LLONG_MIN, (void *)&local);
    assert_true(full > 0 && full < (int)sizeof(want));
    for (size_t size = 0; size <= (size_t)full + 2; size++) {
        char expect[128], got[130];
        memset(expect, 'Z', sizeof(expect));
        memset(got, 'Z', sizeof(got));
        int wn = snprintf(expect, size, fmt, "ab", -7, 0xbeefu, 'q', LLONG_MIN, (void *)&local);
        int gn = format_snprintf(got, size, fmt, "ab", -7, 0xbeefu, 'q', LLONG_MIN, (void *)&local);
        assert_int_equal(gn, wn);
        assert_int_equal(gn, full);
        assert_memory_equal(got, expect, size + 1); /* includes the first untouched byte */
    }
}

static void test_output_is_nul_terminated_when_size_is_positive(void **state)
{
    (void)state;
    const char *inputs[] = { "", "a", "abcdefghijklmnop" };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        for (size_t size = 1; size <= 8; size++) {
            char out[9];
            memset(out, 'Z', sizeof(out));
            int n = format_snprintf(out, size, "%s", inputs[i]);
            size_t len = strlen(inputs[i]);
            assert_int_equal(n, len);
            size_t kept = len < size - 1 ? len : size - 1;
            assert_int_equal(out[kept], 0);
            assert_memory_equal(out, inputs[i], kept);
        }
    }
}

static void test_malformed_formats_stay_inside_the_buffer(void **state)
{
    (void)state;
    /* a lone '%' at the end stops at the terminator */
    EXPECT_FORMAT("abc", hidden("abc%"), 0);
    EXPECT_FORMAT("abc", hidden("abc%-08"), 0);
    EXPECT_FORMAT("abc", hidden("abc%ll"), 0);
    /* an unknown conversion is printed literally */
    EXPECT_FORMAT("%q", hidden("%q"), 0);
    EXPECT_FORMAT("a%yb", hidden("a%yb"), 0);

    char out[4];
    memset(out, 'Z', sizeof(out));
    assert_int_equal(format_snprintf(out, 3, hidden("%q%"), 0), 2);
    assert_string_equal(out, "%q");
    assert_int_equal(out[3], 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_and_percent_escape),
        cmocka_unit_test(test_signed_decimal),
        cmocka_unit_test(test_signed_decimal_with_long_modifiers),
        cmocka_unit_test(test_unsigned_decimal_and_hex),
        cmocka_unit_test(test_without_modifier_only_32_bits_are_read),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_string_and_char),
        cmocka_unit_test(test_width_and_flags),
        cmocka_unit_test(test_matches_libc_for_many_cases),
        cmocka_unit_test(test_va_list_entry_point),
        cmocka_unit_test(test_returns_full_length_and_truncates),
        cmocka_unit_test(test_size_zero_writes_nothing),
        cmocka_unit_test(test_truncation_at_every_size_matches_libc),
        cmocka_unit_test(test_output_is_nul_terminated_when_size_is_positive),
        cmocka_unit_test(test_malformed_formats_stay_inside_the_buffer),
    };
    return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
