/* Host unit tests for lib/parse.c: parse_words (in-place split at spaces and
 * tabs, word limit) and parse_u64 (decimal and 0x hex, every malformed case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/test_random.h" // rng_next, rng_below

#include "lib/parse.h"

/* ---- parse_words -------------------------------------------------------- */

#define MAX_TEST_WORDS 16

/* Splits text (copied into line) and checks the words against expected. */
static void expect_words(const char *text, int max_words, int expected_count,
                         const char *const *expected)
{
    char line[256];
    char *words[MAX_TEST_WORDS + 1];
    size_t len = strlen(text);
    assert_true(len < sizeof(line));
    memcpy(line, text, len + 1);
    for (int i = 0; i <= MAX_TEST_WORDS; i++)
        words[i] = (char *)"untouched";

    int n = parse_words(line, words, max_words);
    assert_int_equal(n, expected_count);
    for (int i = 0; i < expected_count; i++) {
        assert_string_equal(words[i], expected[i]);
        /* words point into the line itself, in order, each at a word start */
        assert_true(words[i] >= line && words[i] < line + len);
        if (i > 0)
            assert_true(words[i] > words[i - 1]);
        size_t at = (size_t)(words[i] - line);
        assert_memory_equal(text + at, expected[i], strlen(expected[i]));
        assert_true(at == 0 || text[at - 1] == ' ' || text[at - 1] == '\t');
    }
    /* nothing written past max_words */
    assert_string_equal(words[max_words], "untouched");
}

static void test_words_empty_and_blank_lines_have_no_words(void **state)
{
    (void)state;
    expect_words("", 4, 0, NULL);
    expect_words(" ", 4, 0, NULL);
    expect_words("\t", 4, 0, NULL);
    expect_words("  \t \t  ", 4, 0, NULL);
    expect_words("", 0, 0, NULL);
    expect_words("   ", 0, 0, NULL);
}

static void test_words_split_at_spaces_and_tabs(void **state)
{
    (void)state;
    const char *one[] = { "help" };
    expect_words("help", 4, 1, one);
    expect_words("   help", 4, 1, one);
    expect_words("help   ", 4, 1, one);
    expect_words("\thelp\t", 4, 1, one);

    const char *three[] = { "mem", "0x1000", "64" };
    expect_words("mem 0x1000 64", 4, 3, three);
    expect_words("  mem\t0x1000 \t  64\t ", 4, 3, three);
    expect_words("mem\t\t0x1000\t\t64", 4, 3, three);

    const char *single_chars[] = { "a", "b", "c", "d" };
    expect_words("a b c d", 4, 4, single_chars);
}

static void test_words_other_whitespace_is_part_of_a_word(void **state)
{
    (void)state;
    const char *newline[] = { "a\nb", "c\r" };
    expect_words("a\nb c\r", 4, 2, newline);
    const char *punct[] = { "x=1,y=2", "--flag" };
    expect_words("x=1,y=2 --flag", 4, 2, punct);
}

static void test_words_separators_become_nul_in_place(void **state)
{
    (void)state;
    char line[] = "ab  cd\tef";
    char *words[4];
    assert_int_equal(parse_words(line, words, 4), 3);
    assert_ptr_equal(words[0], line + 0);
    assert_ptr_equal(words[1], line + 4);
    assert_ptr_equal(words[2], line + 7);
    assert_memory_equal(line, "ab\0\0cd\0ef\0", sizeof(line));
}

static void test_words_too_many_words_fails(void **state)
{
    (void)state;
    const char *three[] = { "a", "b", "c" };
    expect_words("a b c", 3, 3, three);    /* exactly max_words is fine */
    expect_words("a b c  ", 3, 3, three);  /* trailing blanks are not a word */
    expect_words("a b c", 2, -1, NULL);
    expect_words("a b c d", 3, -1, NULL);
    expect_words("a", 0, -1, NULL);
    expect_words(" a ", 0, -1, NULL);
}

static void test_words_many_words_up_to_the_limit(void **state)
{
    (void)state;
    char text[256] = "";
    const char *expected[MAX_TEST_WORDS];
    static const char *names[MAX_TEST_WORDS] = { "w0", "w1", "w2", "w3", "w4", "w5",
                                                  "w6", "w7", "w8", "w9", "w10", "w11",
                                                  "w12", "w13", "w14", "w15" };
    for (int i = 0; i < MAX_TEST_WORDS; i++) {
        strcat(text, i % 2 ? "\t" : "  ");
        strcat(text, names[i]);
        expected[i] = names[i];
    }
    expect_words(text, MAX_TEST_WORDS, MAX_TEST_WORDS, expected);
    expect_words(text, MAX_TEST_WORDS - 1, -1, NULL);
}

/* ---- parse_u64 ---------------------------------------------------------- */

static void expect_u64(const char *text, uint64_t expected)
{
    uint64_t value = 0xa5a5a5a5a5a5a5a5ull;
    if (parse_u64(text, &value) != 0)
        fail_msg("parse_u64(\"%s\") failed, expected %llu", text,
                 (unsigned long long)expected);
    if (value != expected)
        fail_msg("parse_u64(\"%s\") = %llu, expected %llu", text,
                 (unsigned long long)value, (unsigned long long)expected);
}

static void expect_u64_rejected(const char *text)
{
    uint64_t value = 0;
    if (parse_u64(text, &value) != -1)
        fail_msg("parse_u64(\"%s\") accepted (%llu), expected -1", text,
                 (unsigned long long)value);
}

static void test_u64_decimal(void **state)
{
    (void)state;
    expect_u64("0", 0);
    expect_u64("1", 1);
    expect_u64("9", 9);
    expect_u64("10", 10);
    expect_u64("42", 42);
    expect_u64("4096", 4096);
    expect_u64("4294967295", 4294967295ull);
    expect_u64("4294967296", 4294967296ull);
    expect_u64("1234567890123456789", 1234567890123456789ull);
    expect_u64("08", 8); /* a leading zero does not mean octal */
    expect_u64("0000000000000000000000000000000000042", 42);
}

static void test_u64_hex(void **state)
{
    (void)state;
    expect_u64("0x0", 0);
    expect_u64("0x1", 1);
    expect_u64("0xf", 15);
    expect_u64("0xF", 15);
    expect_u64("0X10", 16);
    expect_u64("0xff", 255);
    expect_u64("0xdeadBEEF", 0xdeadbeefull);
    expect_u64("0xABCDEF", 0xabcdefull);
    expect_u64("0x123456789abcdef0", 0x123456789abcdef0ull);
    expect_u64("0x0000000000000000000000000000001000", 0x1000);
}

static void test_u64_limits_and_overflow(void **state)
{
    (void)state;
    expect_u64("18446744073709551615", UINT64_MAX);
    expect_u64("18446744073709551614", UINT64_MAX - 1);
    expect_u64_rejected("18446744073709551616");
    expect_u64_rejected("18446744073709551620");
    expect_u64_rejected("18446744073709551619");
    expect_u64_rejected("20000000000000000000");
    expect_u64_rejected("99999999999999999999");
    expect_u64_rejected("184467440737095516150");
    expect_u64_rejected("100000000000000000000000000000");

    expect_u64("0xffffffffffffffff", UINT64_MAX);
    expect_u64("0xFFFFFFFFFFFFFFFE", UINT64_MAX - 1);
    expect_u64("0x8000000000000000", 1ull << 63);
    expect_u64_rejected("0x10000000000000000");
    expect_u64_rejected("0xffffffffffffffff0");
    expect_u64_rejected("0x1ffffffffffffffff");
}

static void test_u64_rejects_malformed_text(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "0x", "0X", "x", "x10", "-1", "+1", "-0", " 1", "1 ", "\t1", "1\n",
        "12a", "a12", "abc", "ff", "0xg", "0x12g", "0x 1", "0x-1", "0x+1", "0xx1",
        "0x0x1", "00x1", "1x1", "0b101", "1e3", "1.5", "1,000", "1_000", "0o17",
        "\xd9\xa1", "\xff", "1\xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_u64_rejected(bad[i]);
}

static void test_u64_round_trips_printed_values(void **state)
{
    (void)state;
    uint64_t rng = 0x5eed;
    print_message("seed %#llx\n", (unsigned long long)rng);
    for (int i = 0; i < 20000; i++) {
        uint64_t v = rng_next(&rng);
        v >>= rng_next(&rng) % 64; /* all magnitudes */
        char text[32];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
        expect_u64(text, v);
        snprintf(text, sizeof(text), "0x%llx", (unsigned long long)v);
        expect_u64(text, v);
        snprintf(text, sizeof(text), "0X%llX", (unsigned long long)v);
        expect_u64(text, v);
    }
    /* every power of ten and of sixteen that fits, and one past the top */
    uint64_t p = 1;
    for (int i = 0; i < 20; i++, p *= 10) {
        char text[32];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)p);
        expect_u64(text, p);
    }
    expect_u64_rejected("100000000000000000000"); /* 10^20 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_empty_and_blank_lines_have_no_words),
        cmocka_unit_test(test_words_split_at_spaces_and_tabs),
        cmocka_unit_test(test_words_other_whitespace_is_part_of_a_word),
        cmocka_unit_test(test_words_separators_become_nul_in_place),
        cmocka_unit_test(test_words_too_many_words_fails),
        cmocka_unit_test(test_words_many_words_up_to_the_limit),
        cmocka_unit_test(test_u64_decimal),
        cmocka_unit_test(test_u64_hex),
        cmocka_unit_test(test_u64_limits_and_overflow),
        cmocka_unit_test(test_u64_rejects_malformed_text),
        cmocka_unit_test(test_u64_round_trips_printed_values),
    };
    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
