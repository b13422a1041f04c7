/* Host unit tests for agent/json_*.c: the reader's token layout, every string,
 * number and nesting rule and limit, the typed getters, and the writer's
 * escaping, spacing, overflow and misuse handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/json.h"

#define MAX_TEST_TOKENS 64

static const struct json_limits roomy = { .max_bytes = 1 << 20, .max_depth = JSON_MAX_DEPTH,
                                          .max_string = 1 << 20 };

static struct json_token tokens[MAX_TEST_TOKENS];
static struct json_document doc;

/* Parses text (with its length from strlen unless given) with roomy limits. */
static enum json_error parse_n(const char *text, size_t length)
{
    memset(tokens, 0x5a, sizeof(tokens));
    return json_parse(&doc, text, length, tokens, MAX_TEST_TOKENS, &roomy, NULL);
}

static enum json_error parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void check_error(const char *text, enum json_error error)
{
    size_t offset = 12345;
    enum json_error got = json_parse(&doc, text, strlen(text), tokens, MAX_TEST_TOKENS, &roomy,
                                     &offset);
    if (got != error)
        fail_msg("%s: got error %d (%s), expected %d (%s)", text, got, json_error_text(got),
                 error, json_error_text(error));
    assert_true(offset <= strlen(text));
}

/* ---- token layout ------------------------------------------------------- */

static void test_scalars_parse_to_one_token(void **state)
{
    (void)state;
    assert_int_equal(parse("null"), JSON_OK);
    assert_int_equal(doc.count, 1);
    assert_int_equal(json_type_of(&doc, 0), JSON_NULL);
    assert_int_equal(parse(" true "), JSON_OK);
    assert_int_equal(json_type_of(&doc, 0), JSON_TRUE);
    assert_int_equal(parse("\r\n\tfalse"), JSON_OK);
    assert_int_equal(json_type_of(&doc, 0), JSON_FALSE);
    assert_int_equal(parse("-12.5e+3"), JSON_OK);
    assert_int_equal(json_type_of(&doc, 0), JSON_NUMBER);
    assert_int_equal(tokens[0].length, 8);
    assert_int_equal(parse("\"abc\""), JSON_OK);
    assert_int_equal(json_type_of(&doc, 0), JSON_STRING);
    assert_int_equal(tokens[0].start, 1);
    assert_int_equal(tokens[0].length, 3);
    assert_int_equal(tokens[0].count, 3);
    assert_int_equal(tokens[0].end, 1);
}

static void test_containers_list_children_in_order_with_subtree_ends(void **state)
{
    (void)state;
    const char *text = "{\"a\": [1, {\"b\": null}, []], \"c\": {}}";
    assert_int_equal(parse(text), JSON_OK);
    /* 0 {  1 "a"  2 [  3 1  4 {  5 "b"  6 null  7 []  8 "c"  9 {} */
    assert_int_equal(doc.count, 10);
    assert_int_equal(tokens[0].type, JSON_OBJECT);
    assert_int_equal(tokens[0].count, 2);
    assert_int_equal(tokens[0].end, 10);
    assert_int_equal(tokens[0].length, strlen(text));
    assert_int_equal(tokens[2].type, JSON_ARRAY);
    assert_int_equal(tokens[2].count, 3);
    assert_int_equal(tokens[2].end, 8);
    assert_int_equal(tokens[4].type, JSON_OBJECT);
    assert_int_equal(tokens[4].end, 7);
    assert_int_equal(tokens[7].type, JSON_ARRAY);
    assert_int_equal(tokens[7].count, 0);
    assert_int_equal(tokens[7].end, 8);
    assert_int_equal(tokens[9].type, JSON_OBJECT);
    assert_int_equal(tokens[9].count, 0);
    assert_int_equal(json_skip(&doc, 2), 8);
    assert_int_equal(json_skip(&doc, 1), 2);
    assert_int_equal(json_skip(&doc, 0), 10);
    assert_memory_equal(text + tokens[4].start, "{\"b\": null}", tokens[4].length);
}

static void test_object_get_and_next_walk_members(void **state)
{
    (void)state;
    size_t value, cursor = 0, key;
    assert_int_equal(parse("{\"x\": [1, 2], \"y\": \"z\", \"\\u0077\": true}"), JSON_OK);
    assert_int_equal(json_object_get(&doc, 0, "y", &value), 0);
    assert_true(json_string_equals(&doc, value, "z"));
    assert_int_equal(json_object_get(&doc, 0, "w", &value), 0); /* an escaped key */
    assert_int_equal(json_type_of(&doc, value), JSON_TRUE);
    assert_int_equal(json_object_get(&doc, 0, "q", &value), -1);
    assert_int_equal(json_object_get(&doc, 1, "x", &value), -1); /* not an object */
    assert_int_equal(json_object_get(&doc, 999, "x", &value), -1);

    const char *names[] = { "x", "y", "w" };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(json_object_next(&doc, 0, &cursor, &key, &value), 0);
        assert_true(json_string_equals(&doc, key, names[i]));
        assert_int_equal(value, key + 1);
    }
    assert_int_equal(json_object_next(&doc, 0, &cursor, &key, &value), -1);
    cursor = 0;
    assert_int_equal(json_object_next(&doc, 2, &cursor, &key, &value), -1);
}

/* ---- syntax errors ------------------------------------------------------ */

static void test_malformed_texts_are_refused_with_their_reason(void **state)
{
    (void)state;
    check_error("", JSON_ERROR_EMPTY);
    check_error("  \n ", JSON_ERROR_EMPTY);
    check_error("[", JSON_ERROR_TRUNCATED);
    check_error("{\"a\"", JSON_ERROR_TRUNCATED);
    check_error("{\"a\":", JSON_ERROR_TRUNCATED);
    check_error("[1,", JSON_ERROR_TRUNCATED);
    check_error("\"abc", JSON_ERROR_TRUNCATED);
    check_error("}", JSON_ERROR_EXPECTED_VALUE);
    check_error("[,1]", JSON_ERROR_EXPECTED_VALUE);
    check_error("[1,]", JSON_ERROR_EXPECTED_VALUE);
    check_error("'a'", JSON_ERROR_EXPECTED_VALUE);
    check_error("{1: 2}", JSON_ERROR_EXPECTED_KEY);
    check_error("{\"a\": 1,}", JSON_ERROR_EXPECTED_KEY);
    check_error("{\"a\" 1}", JSON_ERROR_EXPECTED_COLON);
    check_error("[1 2]", JSON_ERROR_EXPECTED_SEPARATOR);
    check_error("[1}", JSON_ERROR_EXPECTED_SEPARATOR);
    check_error("{\"a\": 1]", JSON_ERROR_EXPECTED_SEPARATOR);
    check_error("1 2", JSON_ERROR_TRAILING);
    check_error("{} {}", JSON_ERROR_TRAILING);
    check_error("nul", JSON_ERROR_BAD_KEYWORD);
    check_error("True", JSON_ERROR_BAD_KEYWORD);
    check_error("nullx", JSON_ERROR_BAD_KEYWORD);
    check_error("{\"a\": 1, \"a\": 2}", JSON_ERROR_DUPLICATE_KEY);
    check_error("{\"a\": 1, \"\\u0061\": 2}", JSON_ERROR_DUPLICATE_KEY);
    check_error("{\"ab\": {\"x\": 1, \"y\": 2}, \"a\\u0062\": 3}", JSON_ERROR_DUPLICATE_KEY);
}

static void test_the_same_key_in_different_objects_is_fine(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}}"), JSON_OK);
    assert_int_equal(parse("{\"a\": 1, \"ab\": 2, \"\": 3, \"b\": 4}"), JSON_OK);
}

/* ---- numbers ------------------------------------------------------------ */

static void test_numbers_follow_rfc8259_grammar(void **state)
{
    (void)state;
    const char *good[] = { "0", "-0", "1", "-1", "10", "0.5", "-0.5", "1e5", "1E+5", "1e-5",
                           "12.34e56", "9223372036854775808", "1e400" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse(good[i]) != JSON_OK)
            fail_msg("%s refused", good[i]);
        assert_int_equal(tokens[0].length, strlen(good[i]));
    }
    check_error("01", JSON_ERROR_BAD_NUMBER);
    check_error("-01", JSON_ERROR_BAD_NUMBER);
    check_error("-", JSON_ERROR_TRUNCATED);
    check_error("-a", JSON_ERROR_BAD_NUMBER);
    check_error("1.", JSON_ERROR_TRUNCATED);
    check_error("1.x", JSON_ERROR_BAD_NUMBER);
    check_error("1e", JSON_ERROR_TRUNCATED);
    check_error("1e+", JSON_ERROR_TRUNCATED);
    check_error("[1e+]", JSON_ERROR_BAD_NUMBER);
    check_error(".5", JSON_ERROR_EXPECTED_VALUE);
    check_error("+1", JSON_ERROR_EXPECTED_VALUE);
    check_error("0x10", JSON_ERROR_TRAILING);
    check_error("[1.5.5]", JSON_ERROR_EXPECTED_SEPARATOR);
}

static void check_int64(const char *text, int result, int64_t value)
{
    int64_t got = 0x5a5a;
    assert_int_equal(parse(text), JSON_OK);
    int r = json_get_int64(&doc, 0, &got);
    if (r != result)
        fail_msg("%s: json_get_int64 returned %d, expected %d", text, r, result);
    if (result == 0 && got != value)
        fail_msg("%s: read %lld", text, (long long)got);
}

static void test_int64_is_exact_and_refuses_fractions_and_overflow(void **state)
{
    (void)state;
    check_int64("0", 0, 0);
    check_int64("-0", 0, 0);
    check_int64("42", 0, 42);
    check_int64("-42", 0, -42);
    check_int64("9223372036854775807", 0, INT64_MAX);
    check_int64("-9223372036854775808", 0, INT64_MIN);
    check_int64("9223372036854775808", -2, 0);
    check_int64("-9223372036854775809", -2, 0);
    check_int64("18446744073709551616", -2, 0);
    check_int64("123456789012345678901234567890", -2, 0);
    check_int64("1.0", -1, 0);
    check_int64("1e3", -1, 0);
    check_int64("-0.0", -1, 0);
    check_int64("\"1\"", -1, 0);
    check_int64("true", -1, 0);
    check_int64("null", -1, 0);
    assert_int_equal(parse("[1]"), JSON_OK);
    int64_t v;
    assert_int_equal(json_get_int64(&doc, 0, &v), -1);
    assert_int_equal(json_get_int64(&doc, 1, &v), 0);
    assert_int_equal(json_get_int64(&doc, 2, &v), -1); /* past the document */
}

static void test_bool(void **state)
{
    (void)state;
    int value = 7;
    assert_int_equal(parse("[true, false, null, 0, \"true\"]"), JSON_OK);
    assert_int_equal(json_get_bool(&doc, 1, &value), 0);
    assert_int_equal(value, 1);
    assert_int_equal(json_get_bool(&doc, 2, &value), 0);
    assert_int_equal(value, 0);
    for (size_t i = 3; i <= 6; i++)
        assert_int_equal(json_get_bool(&doc, i, &value), -1);
    assert_int_equal(json_get_bool(&doc, 0, &value), -1);
}

/* ---- strings ------------------------------------------------------------ */

/* Parses "text" as a string and checks it decodes to expected (length n). */
static void check_string(const char *text, const char *expected, size_t n)
{
    char out[64];
    size_t length = 999;
    if (parse(text) != JSON_OK)
        fail_msg("%s refused", text);
    assert_int_equal(json_type_of(&doc, 0), JSON_STRING);
    assert_int_equal(tokens[0].count, n);
    assert_int_equal(json_get_string_bytes(&doc, 0, out, sizeof(out), &length), 0);
    assert_int_equal(length, n);
    assert_memory_equal(out, expected, n);
    assert_int_equal(out[n], 0);
}

static void test_escapes_decode(void **state)
{
    (void)state;
    check_string("\"\"", "", 0);
    check_string("\"plain\"", "plain", 5);
    check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_string("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6);
    check_string("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4);           /* U+1F600 */
    check_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4);           /* U+10FFFF */
    check_string("\"\\ud800\\udc00x\"", "\xf0\x90\x80\x80x", 5);         /* U+10000 */
    check_string("\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 15);
    check_string("\"\\uFFFF\\uE000\"", "\xef\xbf\xbf\xee\x80\x80", 6);
    check_string("\"a\\u0000b\"", "a\0b", 3);
}

static void test_bad_escapes_and_surrogates_are_refused(void **state)
{
    (void)state;
    check_error("\"\\x\"", JSON_ERROR_BAD_ESCAPE);
    check_error("\"\\'\"", JSON_ERROR_BAD_ESCAPE);
    check_error("\"\\U0041\"", JSON_ERROR_BAD_ESCAPE);
    check_error("\"\\u00g0\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\u12\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\u12", JSON_ERROR_TRUNCATED);
    check_error("\"\\", JSON_ERROR_TRUNCATED);
    check_error("\"\\udc00\"", JSON_ERROR_BAD_UNICODE);        /* a low surrogate alone */
    check_error("\"\\ud800\"", JSON_ERROR_BAD_UNICODE);        /* a high one alone */
    check_error("\"\\ud800x\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\ud800\\n\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\ud800\\u0041\"", JSON_ERROR_BAD_UNICODE);  /* not a low surrogate */
    check_error("\"\\ud800\\ud800\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\ud800\\uzzzz\"", JSON_ERROR_BAD_UNICODE);
    check_error("\"\\ud800", JSON_ERROR_TRUNCATED);
    check_error("\"\\ud800\\", JSON_ERROR_TRUNCATED);
    check_error("\"\\ud800\\udc", JSON_ERROR_TRUNCATED);
}

static void test_invalid_utf8_and_raw_controls_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "\"\x80\"",             /* a continuation byte alone */
        "\"\xc0\x80\"",         /* overlong NUL (modified UTF-8) */
        "\"\xc1\xbf\"",         /* overlong */
        "\"\xe0\x80\x80\"",     /* overlong, 3 bytes */
        "\"\xe0\x9f\xbf\"",
        "\"\xed\xa0\x80\"",     /* U+D800 encoded */
        "\"\xed\xbf\xbf\"",     /* U+DFFF encoded */
        "\"\xf0\x80\x80\x80\"", /* overlong, 4 bytes */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xf5\x80\x80\x80\"",
        "\"\xfe\"",
        "\"\xff\"",
        "\"\xc3\"",             /* cut short */
        "\"\xe2\x82\"",
        "\"\xf0\x9f\x98\"",
        "\"\xc3\x28\"",         /* a bad continuation */
        "\"\xe2\x28\xa1\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_error(bad[i], JSON_ERROR_BAD_UTF8);
    check_error("\"\xc3", JSON_ERROR_BAD_UTF8);
    for (int c = 0; c < 0x20; c++) {
        char text[4] = { '"', (char)c, '"', 0 };
        assert_int_equal(parse_n(text, 3), JSON_ERROR_CONTROL_CHARACTER);
    }
    check_string("\"\x7f\"", "\x7f", 1); /* DEL is allowed raw (RFC 8259, 7) */
    check_string("\"\xed\x9f\xbf\"", "\xed\x9f\xbf", 3); /* U+D7FF */
    check_string("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf", 4);
}

static void test_get_string_needs_room_and_refuses_nul(void **state)
{
    (void)state;
    char out[8];
    size_t length = 99;
    assert_int_equal(parse("[\"1234567\", \"12345678\", \"a\\u0000\", 5]"), JSON_OK);
    assert_int_equal(json_get_string(&doc, 1, out, sizeof(out), &length), 0);
    assert_string_equal(out, "1234567");
    assert_int_equal(length, 7);
    memset(out, 'x', sizeof(out));
    assert_int_equal(json_get_string(&doc, 2, out, sizeof(out), &length), -2);
    assert_int_equal(out[0], 0);
    assert_int_equal(json_get_string(&doc, 3, out, sizeof(out), &length), -1);
    assert_int_equal(json_get_string_bytes(&doc, 3, out, sizeof(out), &length), 0);
    assert_int_equal(length, 2);
    assert_memory_equal(out, "a\0", 3);
    assert_int_equal(json_get_string(&doc, 4, out, sizeof(out), &length), -1);
    assert_int_equal(json_get_string(&doc, 0, out, sizeof(out), &length), -1);
    assert_int_equal(json_get_string(&doc, 5, out, sizeof(out), &length), -1);
    assert_int_equal(json_get_string(&doc, 1, out, 0, &length), -2);
}

static void test_string_equals_compares_decoded_bytes_exactly(void **state)
{
    (void)state;
    assert_int_equal(parse("[\"guest-ping\", \"guest-\\u0070ing\", \"guest-ping\\u0000\", "
                           "\"\\u00e9\", \"\xc3\xa9\", 1]"),
                     JSON_OK);
    assert_true(json_string_equals(&doc, 1, "guest-ping"));
    assert_true(json_string_equals(&doc, 2, "guest-ping"));
    assert_false(json_string_equals(&doc, 3, "guest-ping"));
    assert_false(json_string_equals(&doc, 1, "guest-pin"));
    assert_false(json_string_equals(&doc, 1, "guest-pings"));
    assert_true(json_string_equals(&doc, 4, "\xc3\xa9"));
    assert_true(json_string_equals(&doc, 5, "\xc3\xa9"));
    assert_false(json_string_equals(&doc, 4, "\xc3\xa8"));
    assert_false(json_string_equals(&doc, 6, "1"));
    assert_false(json_string_equals(&doc, 0, ""));
}

/* ---- limits ------------------------------------------------------------- */

static char *repeat(const char *open, size_t times, const char *middle, const char *close)
{
    size_t a = strlen(open), b = strlen(middle), c = strlen(close);
    char *text = malloc(times * (a + c) + b + 1);
    char *p = text;
    assert_non_null(text);
    for (size_t i = 0; i < times; i++, p += a)
        memcpy(p, open, a);
    memcpy(p, middle, b);
    p += b;
    for (size_t i = 0; i < times; i++, p += c)
        memcpy(p, close, c);
    *p = 0;
    return text;
}

static void test_depth_limit_is_exact_and_a_bomb_is_cheap(void **state)
{
    (void)state;
    struct json_limits limits = roomy;
    limits.max_depth = 5;
    char *text = repeat("[", 5, "1", "]");
    assert_int_equal(json_parse(&doc, text, strlen(text), tokens, MAX_TEST_TOKENS, &limits, NULL),
                     JSON_OK);
    free(text);
    text = repeat("{\"a\": ", 6, "1", "}");
    assert_int_equal(json_parse(&doc, text, strlen(text), tokens, MAX_TEST_TOKENS, &limits, NULL),
                     JSON_ERROR_TOO_DEEP);
    free(text);
    limits.max_depth = 0;
    assert_int_equal(json_parse(&doc, "[]", 2, tokens, MAX_TEST_TOKENS, &limits, NULL),
                     JSON_ERROR_TOO_DEEP);
    assert_int_equal(json_parse(&doc, "7", 1, tokens, MAX_TEST_TOKENS, &limits, NULL), JSON_OK);

    /* a million brackets: refused at JSON_MAX_DEPTH + 1 even when more is asked */
    limits.max_depth = 1000000;
    limits.max_bytes = 4 << 20;
    text = repeat("[", 1000000, "", "]");
    size_t offset = 0;
    assert_int_equal(json_parse(&doc, text, strlen(text), tokens, MAX_TEST_TOKENS, &limits, &offset),
                     JSON_ERROR_TOO_DEEP);
    assert_int_equal(offset, JSON_MAX_DEPTH);
    free(text);
    text = repeat("[", JSON_MAX_DEPTH, "", "]");
    assert_int_equal(json_parse(&doc, text, strlen(text), tokens, MAX_TEST_TOKENS, &limits, NULL),
                     JSON_OK);
    free(text);
}

static void test_token_byte_and_string_limits_are_exact(void **state)
{
    (void)state;
    struct json_limits limits = roomy;
    struct json_token few[4];

    assert_int_equal(json_parse(&doc, "[1, 2, 3]", 9, few, 4, &limits, NULL), JSON_OK);
    assert_int_equal(json_parse(&doc, "[1, 2, 3, 4]", 12, few, 4, &limits, NULL),
                     JSON_ERROR_TOO_MANY_TOKENS);
    assert_int_equal(json_parse(&doc, "{\"a\": 1, \"b\": 2}", 16, few, 4, &limits, NULL),
                     JSON_ERROR_TOO_MANY_TOKENS);
    assert_int_equal(json_parse(&doc, "1", 1, few, 0, &limits, NULL), JSON_ERROR_TOO_MANY_TOKENS);

    limits.max_bytes = 9;
    assert_int_equal(json_parse(&doc, "[1, 2, 3]", 9, few, 4, &limits, NULL), JSON_OK);
    assert_int_equal(json_parse(&doc, "[1, 2, 3] ", 10, few, 4, &limits, NULL),
                     JSON_ERROR_TOO_LONG);

    limits = roomy;
    limits.max_string = 3;
    assert_int_equal(json_parse(&doc, "\"abc\"", 5, few, 4, &limits, NULL), JSON_OK);
    assert_int_equal(json_parse(&doc, "\"abcd\"", 6, few, 4, &limits, NULL),
                     JSON_ERROR_STRING_TOO_LONG);
    assert_int_equal(json_parse(&doc, "\"\\u20ac\"", 8, few, 4, &limits, NULL), JSON_OK);
    assert_int_equal(json_parse(&doc, "\"a\\u20ac\"", 9, few, 4, &limits, NULL),
                     JSON_ERROR_STRING_TOO_LONG);
    assert_int_equal(json_parse(&doc, "{\"abcd\": 1}", 11, few, 4, &limits, NULL),
                     JSON_ERROR_STRING_TOO_LONG);
}

static void test_a_failed_parse_leaves_no_document(void **state)
{
    (void)state;
    assert_int_equal(parse("[1, 2"), JSON_ERROR_TRUNCATED);
    assert_int_equal(doc.count, 0);
    assert_int_equal(json_type_of(&doc, 0), JSON_NULL);
    size_t value;
    assert_int_equal(json_object_get(&doc, 0, "a", &value), -1);
}

/* ---- writer ------------------------------------------------------------- */

static char out[512];
static struct json_writer writer;

static void start(void)
{
    memset(out, 'x', sizeof(out));
    json_writer_init(&writer, out, sizeof(out));
}

static void check_output(const char *expected)
{
    long length = json_writer_finish(&writer);
    if (length < 0)
        fail_msg("writer failed, expected %s", expected);
    assert_int_equal(length, strlen(expected));
    assert_string_equal(out, expected);
}

static void test_writer_spaces_like_qemu(void **state)
{
    (void)state;
    start();
    json_write_object_begin(&writer);
    json_write_key(&writer, "return");
    json_write_object_begin(&writer);
    json_write_object_end(&writer);
    json_write_key(&writer, "id");
    json_write_array_begin(&writer);
    json_write_int64(&writer, INT64_MIN);
    json_write_uint64(&writer, UINT64_MAX);
    json_write_bool(&writer, 1);
    json_write_bool(&writer, 0);
    json_write_null(&writer);
    json_write_array_begin(&writer);
    json_write_array_end(&writer);
    json_write_string(&writer, "s");
    json_write_array_end(&writer);
    json_write_object_end(&writer);
    check_output("{\"return\": {}, \"id\": [-9223372036854775808, 18446744073709551615, "
                  "true, false, null, [], \"s\"]}");

    start();
    json_write_int64(&writer, 0);
    check_output("0");
    start();
    json_write_string(&writer, "");
    check_output("\"\"");
}

static void check_escaped(const char *bytes, size_t length, const char *expected)
{
    start();
    json_write_string_bytes(&writer, bytes, length);
    check_output(expected);
}

static void test_writer_escapes_to_ascii(void **state)
{
    (void)state;
    check_escaped("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    check_escaped("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    check_escaped("\x01\x1f\x7f", 3, "\"\\u0001\\u001F\\u007F\"");
    check_escaped("\0", 1, "\"\\u0000\"");
    check_escaped("\xc3\xa9\xe2\x82\xac", 5, "\"\\u00E9\\u20AC\"");
    check_escaped("\xf0\x9f\x98\x80", 4, "\"\\uD83D\\uDE00\"");
    check_escaped("\xf4\x8f\xbf\xbf", 4, "\"\\uDBFF\\uDFFF\"");
    /* not UTF-8: one U+FFFD per byte that starts no sequence */
    check_escaped("\xff", 1, "\"\\uFFFD\"");
    check_escaped("a\xc3", 2, "\"a\\uFFFD\"");
    check_escaped("\xc0\x80", 2, "\"\\uFFFD\\uFFFD\"");
    check_escaped("\xed\xa0\x80!", 4, "\"\\uFFFD\\uFFFD\\uFFFD!\"");
    start();
    json_write_object_begin(&writer);
    json_write_key(&writer, "k\"\n");
    json_write_null(&writer);
    json_write_object_end(&writer);
    check_output("{\"k\\\"\\n\": null}");
}

static void test_writer_reports_overflow_at_every_size(void **state)
{
    (void)state;
    const char *expected = "{\"a\": [1, \"\\u00E9\"], \"b\": true}";
    size_t need = strlen(expected) + 1;
    char *buffer = malloc(need + 8);
    assert_non_null(buffer);
    for (size_t size = 0; size <= need + 8; size++) {
        memset(buffer, '#', need + 8);
        json_writer_init(&writer, buffer, size);
        json_write_object_begin(&writer);
        json_write_key(&writer, "a");
        json_write_array_begin(&writer);
        json_write_int64(&writer, 1);
        json_write_string(&writer, "\xc3\xa9");
        json_write_array_end(&writer);
        json_write_key(&writer, "b");
        json_write_bool(&writer, 1);
        json_write_object_end(&writer);
        long length = json_writer_finish(&writer);
        if (size < need) {
            assert_int_equal(length, -1);
        } else {
            assert_int_equal(length, need - 1);
            assert_string_equal(buffer, expected);
        }
        for (size_t i = size; i < need + 8; i++)
            assert_int_equal(buffer[i], '#'); /* nothing past the buffer */
        if (size > 0)
            assert_non_null(memchr(buffer, 0, size));
    }
    free(buffer);
}

static void test_writer_refuses_misuse(void **state)
{
    (void)state;
    start(); /* a value where a key is due */
    json_write_object_begin(&writer);
    json_write_int64(&writer, 1);
    json_write_object_end(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* a key in an array */
    json_write_array_begin(&writer);
    json_write_key(&writer, "a");
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* a key without its value */
    json_write_object_begin(&writer);
    json_write_key(&writer, "a");
    json_write_object_end(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* the wrong close */
    json_write_array_begin(&writer);
    json_write_object_end(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* left open */
    json_write_array_begin(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* two roots */
    json_write_null(&writer);
    json_write_null(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* a close with nothing open */
    json_write_array_end(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* too deep */
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_write_array_begin(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);

    start(); /* exactly deep enough */
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        json_write_array_begin(&writer);
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        json_write_array_end(&writer);
    assert_int_equal(json_writer_finish(&writer), 2 * JSON_MAX_DEPTH);
}

static void test_write_value_copies_a_parsed_value(void **state)
{
    (void)state;
    const char *text = "{\"b\":\"\\u00e9\\/x\",\"a\":1.50e+3,\"c\":[[],{},[{\"d\":null}],-0,"
                       "\"\\ud83d\\ude00\"],\"\":true}";
    assert_int_equal(parse(text), JSON_OK);
    start();
    json_write_value(&writer, &doc, 0);
    check_output("{\"b\": \"\\u00E9/x\", \"a\": 1.50e+3, \"c\": [[], {}, [{\"d\": null}], -0, "
                  "\"\\uD83D\\uDE00\"], \"\": true}");

    /* a member value alone, inside a reply */
    start();
    json_write_object_begin(&writer);
    json_write_key(&writer, "id");
    json_write_value(&writer, &doc, 6); /* "c"'s array */
    json_write_object_end(&writer);
    check_output("{\"id\": [[], {}, [{\"d\": null}], -0, \"\\uD83D\\uDE00\"]}");

    /* what it writes parses to the same values */
    char copy[512];
    size_t length = strlen(out);
    memcpy(copy, out, length + 1);
    assert_int_equal(parse_n(copy, length), JSON_OK);
    size_t value;
    assert_int_equal(json_object_get(&doc, 0, "id", &value), 0);
    assert_int_equal(json_type_of(&doc, value), JSON_ARRAY);
    assert_int_equal(tokens[value].count, 5);

    /* too deep for what is already open */
    char *deep = repeat("[", JSON_MAX_DEPTH, "", "]");
    struct json_token many[JSON_MAX_DEPTH];
    assert_int_equal(json_parse(&doc, deep, strlen(deep), many, JSON_MAX_DEPTH, &roomy, NULL),
                     JSON_OK);
    start();
    json_write_value(&writer, &doc, 0);
    assert_int_equal(json_writer_finish(&writer), 2 * JSON_MAX_DEPTH);
    start();
    json_write_array_begin(&writer);
    json_write_value(&writer, &doc, 0);
    json_write_array_end(&writer);
    assert_int_equal(json_writer_finish(&writer), -1);
    free(deep);
}

static void test_strings_survive_a_round_trip(void **state)
{
    (void)state;
    /* every byte value the writer may be given, valid UTF-8 or not */
    char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (char)i;
    static char big[4096];
    json_writer_init(&writer, big, sizeof(big));
    json_write_string_bytes(&writer, bytes, 128);
    long length = json_writer_finish(&writer);
    assert_true(length > 0);
    for (long i = 0; i < length; i++)
        assert_true((unsigned char)big[i] >= 0x20 && (unsigned char)big[i] < 0x7f);
    struct json_token one[1];
    assert_int_equal(json_parse(&doc, big, (size_t)length, one, 1, &roomy, NULL), JSON_OK);
    char back[256];
    size_t n;
    assert_int_equal(json_get_string_bytes(&doc, 0, back, sizeof(back), &n), 0);
    assert_int_equal(n, 128);
    assert_memory_equal(back, bytes, 128);

    const char *utf8 = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xed\x9f\xbf";
    json_writer_init(&writer, big, sizeof(big));
    json_write_string(&writer, utf8);
    length = json_writer_finish(&writer);
    assert_int_equal(json_parse(&doc, big, (size_t)length, one, 1, &roomy, NULL), JSON_OK);
    assert_true(json_string_equals(&doc, 0, utf8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_parse_to_one_token),
        cmocka_unit_test(test_containers_list_children_in_order_with_subtree_ends),
        cmocka_unit_test(test_object_get_and_next_walk_members),
        cmocka_unit_test(test_malformed_texts_are_refused_with_their_reason),
        cmocka_unit_test(test_the_same_key_in_different_objects_is_fine),
        cmocka_unit_test(test_numbers_follow_rfc8259_grammar),
        cmocka_unit_test(test_int64_is_exact_and_refuses_fractions_and_overflow),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_escapes_decode),
        cmocka_unit_test(test_bad_escapes_and_surrogates_are_refused),
        cmocka_unit_test(test_invalid_utf8_and_raw_controls_are_refused),
        cmocka_unit_test(test_get_string_needs_room_and_refuses_nul),
        cmocka_unit_test(test_string_equals_compares_decoded_bytes_exactly),
        cmocka_unit_test(test_depth_limit_is_exact_and_a_bomb_is_cheap),
        cmocka_unit_test(test_token_byte_and_string_limits_are_exact),
        cmocka_unit_test(test_a_failed_parse_leaves_no_document),
        cmocka_unit_test(test_writer_spaces_like_qemu),
        cmocka_unit_test(test_writer_escapes_to_ascii),
        cmocka_unit_test(test_writer_reports_overflow_at_every_size),
        cmocka_unit_test(test_writer_refuses_misuse),
        cmocka_unit_test(test_write_value_copies_a_parsed_value),
        cmocka_unit_test(test_strings_survive_a_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
