/* Host unit tests for acpi/acpi_parse.c: acpi_checksum_ok, and acpi_parse_sleep_type on
 * hand-built AML (integer encodings, root prefix, PkgLength forms, truncation, junk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acpi/acpi.h"

/* Copies bytes into a heap block of exactly `length` bytes, so ASan reports
 * any read past the end the parser is given. */
static uint8_t *exact_copy(const uint8_t *bytes, uint32_t length)
{
    uint8_t *copy = malloc(length ? length : 1);
    assert_non_null(copy);
    memcpy(copy, bytes, length);
    return copy;
}

static struct acpi_sleep_type parse(const uint8_t *aml, uint32_t length, const char *name)
{
    uint8_t *copy = exact_copy(aml, length);
    struct acpi_sleep_type result = acpi_parse_sleep_type(copy, length, name);
    free(copy);
    return result;
}

#define PARSE(bytes, name) parse((bytes), sizeof(bytes), (name))

static void expect_sleep_type(struct acpi_sleep_type got, uint8_t type_a, uint8_t type_b)
{
    assert_int_equal(got.valid, 1);
    assert_int_equal(got.type_a, type_a);
    assert_int_equal(got.type_b, type_b);
}

static int checksum_ok_exact(const uint8_t *bytes, uint32_t length)
{
    uint8_t *copy = exact_copy(bytes, length);
    int ok = acpi_checksum_ok(copy, length);
    free(copy);
    return ok;
}

/* ---- acpi_checksum_ok ----------------------------------------------------- */

/* A 36-byte SDT header with its checksum byte (offset 9) set. */
static void make_table(uint8_t table[36])
{
    memset(table, 0, 36);
    memcpy(table, "DSDT", 4);
    table[4] = 36;       /* length */
    table[8] = 2;        /* revision */
    memcpy(table + 10, "BOCHS ", 6);
    memcpy(table + 16, "BXPC    ", 8);
    table[24] = 1;
    memcpy(table + 28, "BXPC", 4);
    table[32] = 1;
    uint8_t sum = 0;
    for (int i = 0; i < 36; i++)
        sum += table[i];
    table[9] = (uint8_t)(0x100 - sum);
}

static void test_checksum_accepts_a_valid_table(void **state)
{
    (void)state;
    uint8_t table[36];
    make_table(table);
    assert_true(checksum_ok_exact(table, sizeof(table)));
}

static void test_checksum_rejects_any_single_corrupted_byte(void **state)
{
    (void)state;
    uint8_t table[36];
    make_table(table);
    for (size_t i = 0; i < sizeof(table); i++) {
        for (int delta = 1; delta < 256; delta += 37) {
            uint8_t bad[36];
            memcpy(bad, table, sizeof(bad));
            bad[i] = (uint8_t)(bad[i] + delta);
            assert_false(checksum_ok_exact(bad, sizeof(bad)));
        }
    }
}

static void test_checksum_sums_modulo_256(void **state)
{
    (void)state;
    uint8_t ones[256];
    memset(ones, 1, sizeof(ones));
    assert_true(checksum_ok_exact(ones, 256));  /* 256 * 1 wraps to 0 */
    assert_false(checksum_ok_exact(ones, 255));
    uint8_t big[2] = { 0xff, 0x01 };
    assert_true(checksum_ok_exact(big, 2));
    uint8_t short_bad[2] = { 0x01, 0x02 };
    assert_false(checksum_ok_exact(short_bad, 1));
    assert_false(checksum_ok_exact(short_bad, 2));
    uint8_t zeros[20] = { 0 };
    assert_true(checksum_ok_exact(zeros, sizeof(zeros)));
    uint8_t one_bit[20] = { 0 };
    one_bit[19] = 0x80;
    assert_false(checksum_ok_exact(one_bit, sizeof(one_bit)));
}

static void test_checksum_covers_only_the_given_length(void **state)
{
    (void)state;
    /* like the RSDP: the first 20 bytes sum to zero, the rest do not */
    uint8_t rsdp[36];
    memset(rsdp, 0x11, sizeof(rsdp));
    memcpy(rsdp, "RSD PTR ", 8);
    uint8_t sum = 0;
    for (int i = 0; i < 20; i++)
        if (i != 8)
            sum += rsdp[i];
    rsdp[8] = (uint8_t)(0x100 - sum);
    assert_true(checksum_ok_exact(rsdp, 20));
    assert_false(checksum_ok_exact(rsdp, 21));
    assert_false(checksum_ok_exact(rsdp, 36));
    /* an empty range sums to zero */
    assert_true(checksum_ok_exact(rsdp, 0));
}

/* ---- acpi_parse_sleep_type: well-formed packages --------------------------- */

static void test_sleep_package_of_zero_ops(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                            0x00, 0x00, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S5_"), 0, 0);
}

static void test_sleep_package_of_one_ops(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                            0x01, 0x00, 0x01, 0x00 };
    expect_sleep_type(PARSE(aml, "_S5_"), 1, 0);
    const uint8_t zero_one[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                                 0x00, 0x01, 0x00, 0x00 };
    expect_sleep_type(PARSE(zero_one, "_S5_"), 0, 1);
}

static void test_sleep_package_with_byte_prefix(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
                            0x0a, 0x05, 0x0a, 0x07, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S5_"), 5, 7);
    /* BytePrefix values need not be small */
    const uint8_t big[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
                            0x0a, 0xff, 0x01, 0x00, 0x00 };
    expect_sleep_type(PARSE(big, "_S5_"), 0xff, 1);
}

static void test_sleep_package_with_word_prefix(void **state)
{
    (void)state;
    /* the parser must step over both bytes of the word to reach type_b */
    const uint8_t aml[] = { 0x08, '_', 'S', '4', '_', 0x12, 0x0a, 0x04,
                            0x0b, 0x06, 0x00, 0x0b, 0x03, 0x00, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S4_"), 6, 3);
    const uint8_t mixed[] = { 0x08, '_', 'S', '4', '_', 0x12, 0x08, 0x04,
                              0x0b, 0x02, 0x00, 0x0a, 0x04, 0x00 };
    expect_sleep_type(PARSE(mixed, "_S4_"), 2, 4);
}

static void test_qemu_dsdt_s4_snippet(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, 0x5F, 0x53, 0x34, 0x5F, 0x12, 0x06, 0x04,
                            0x0A, 0x02, 0x0A, 0x02, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S4_"), 2, 2);
    /* and it is not mistaken for _S5_ */
    assert_int_equal(PARSE(aml, "_S5_").valid, 0);
}

static void test_root_prefixed_name(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '\\', '_', 'S', '4', '_', 0x12, 0x08, 0x04,
                            0x0a, 0x02, 0x0a, 0x03, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S4_"), 2, 3);
}

static void test_sleep_package_found_amid_other_aml(void **state)
{
    (void)state;
    /* Name (_S3_, ...), then Name (\_S4_, ...), then Name (_S5_, ...), then
     * more AML; each name finds its own package */
    const uint8_t aml[] = {
        0x10, 0x05, 0x5c, 0x2e, 0x00,                           /* junk scope-ish bytes */
        0x08, '_', 'S', '3', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00,
        0x08, '\\', '_', 'S', '4', '_', 0x12, 0x06, 0x04, 0x0a, 0x02, 0x0a, 0x02,
        0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x0a, 0x05, 0x00,
        0x14, 0x08, '_', 'P', 'T', 'S', 0x01, 0x70, 0x68, 0x60, /* Method (_PTS) */
    };
    expect_sleep_type(PARSE(aml, "_S3_"), 1, 1);
    expect_sleep_type(PARSE(aml, "_S4_"), 2, 2);
    expect_sleep_type(PARSE(aml, "_S5_"), 0, 5);
    assert_int_equal(PARSE(aml, "_S1_").valid, 0);
}

/* ---- PkgLength encodings -------------------------------------------------- */

static void test_pkglength_with_one_extra_byte(void **state)
{
    (void)state;
    /* PkgLength 0x1b = lead 0x4b (bits 7-6 = 01, low nibble 0xb) + 0x01;
     * 22 elements: two BytePrefix values and twenty ZeroOps. The extra byte
     * 0x01 looks like OneOp and must not be taken for NumElements or data. */
    uint8_t aml[5 + 1 + 27] = { 0x08, '_', 'S', '5', '_', 0x12, 0x4b, 0x01, 0x16,
                                0x0a, 0x03, 0x0a, 0x04 };
    expect_sleep_type(PARSE(aml, "_S5_"), 3, 4);
}

static void test_pkglength_with_two_and_three_extra_bytes(void **state)
{
    (void)state;
    const uint8_t two[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x89, 0x00, 0x00, 0x04,
                            0x0a, 0x02, 0x01, 0x00, 0x00 };
    expect_sleep_type(PARSE(two, "_S5_"), 2, 1);
    const uint8_t three[] = { 0x08, '_', 'S', '5', '_', 0x12, 0xca, 0x00, 0x00, 0x00,
                              0x04, 0x01, 0x0a, 0x06, 0x00, 0x00 };
    expect_sleep_type(PARSE(three, "_S5_"), 1, 6);
}

/* ---- names that are not sleep-package definitions ------------------------- */

static void test_name_inside_a_string_is_ignored(void **state)
{
    (void)state;
    /* String "x_S5_" (StringPrefix 0x0d) followed by what would be a package */
    const uint8_t in_string[] = { 0x0d, 'x', '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                                  0x01, 0x01, 0x00, 0x00, 0x00 };
    assert_int_equal(PARSE(in_string, "_S5_").valid, 0);
    /* right after the StringPrefix */
    const uint8_t at_start[] = { 0x0d, '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                                 0x01, 0x01, 0x00, 0x00, 0x00 };
    assert_int_equal(PARSE(at_start, "_S5_").valid, 0);
    /* a string "\_S5_": a backslash, but no NameOp before it */
    const uint8_t rooted[] = { 0x0d, '\\', '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                               0x01, 0x01, 0x00, 0x00, 0x00 };
    assert_int_equal(PARSE(rooted, "_S5_").valid, 0);
}

static void test_string_mention_then_real_definition_uses_the_definition(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x0d, 'x', '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00,
                            0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x0a, 0x05, 0x0a, 0x06 };
    expect_sleep_type(PARSE(aml, "_S5_"), 5, 6);
}

static void test_name_at_the_very_start_has_no_nameop(void **state)
{
    (void)state;
    const uint8_t aml[] = { '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00 };
    assert_int_equal(PARSE(aml, "_S5_").valid, 0);
}

static void test_name_not_bound_to_a_package_is_skipped(void **state)
{
    (void)state;
    /* Name (_S5_, 5) is an integer, not a package: skipped, the later one used */
    const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x0a, 0x05,
                            0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x0a, 0x07, 0x00, 0x00, 0x00 };
    expect_sleep_type(PARSE(aml, "_S5_"), 7, 0);
    const uint8_t only_integer[] = { 0x08, '_', 'S', '5', '_', 0x0a, 0x05, 0x00, 0x00 };
    assert_int_equal(PARSE(only_integer, "_S5_").valid, 0);
}

static void test_other_names_do_not_match(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '_', 'S', '5', 'X', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00,
                            0x08, '_', 's', '5', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00 };
    assert_int_equal(PARSE(aml, "_S5_").valid, 0);
}

/* ---- unsupported elements ------------------------------------------------- */

static void test_unsupported_first_element_is_invalid(void **state)
{
    (void)state;
    static const uint8_t opcodes[] = {
        0x0c, /* DWordPrefix */
        0x0e, /* QWordPrefix */
        0xff, /* OnesOp */
        0x0d, /* StringPrefix */
        0x12, /* PackageOp */
        0x5c, /* a name reference */
        0x41, /* a name segment ('A') */
    };
    for (size_t i = 0; i < sizeof(opcodes); i++) {
        uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x0a, 0x04,
                          opcodes[i], 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        struct acpi_sleep_type got = PARSE(aml, "_S5_");
        if (got.valid)
            fail_msg("first element opcode 0x%02x accepted", opcodes[i]);
    }
}

static void test_unsupported_second_element_is_invalid(void **state)
{
    (void)state;
    const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x0b, 0x04,
                            0x0a, 0x05, 0x0c, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00 };
    assert_int_equal(PARSE(aml, "_S5_").valid, 0);
}

/* ---- truncation ----------------------------------------------------------- */

/* Well-formed packages that end their buffer, with where their second
 * element ends (the point from which the parser has both values). */
struct truncation_case {
    const char *what;
    const char *name;
    const uint8_t *aml;
    uint32_t length;
    uint32_t elements_end;
};

static const uint8_t zero_ops[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04,
                                    0x00, 0x00, 0x00, 0x00 };
static const uint8_t byte_prefix[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
                                       0x0a, 0x05, 0x0a, 0x06, 0x00, 0x00 };
static const uint8_t word_prefix[] = { 0x08, '\\', '_', 'S', '4', '_', 0x12, 0x0a, 0x04,
                                       0x0b, 0x07, 0x00, 0x0b, 0x01, 0x00, 0x00, 0x00 };
static const uint8_t long_pkglength[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x4b, 0x01, 0x16,
                                          0x0a, 0x03, 0x0a, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
static const uint8_t qemu_s4[] = { 0x08, 0x5F, 0x53, 0x34, 0x5F, 0x12, 0x08, 0x04,
                                   0x0A, 0x02, 0x0A, 0x02, 0x00, 0x00 };

static const struct truncation_case truncation_cases[] = {
    { "ZeroOps", "_S5_", zero_ops, sizeof(zero_ops), 10 },
    { "BytePrefix", "_S5_", byte_prefix, sizeof(byte_prefix), 12 },
    { "root-prefixed WordPrefix", "_S4_", word_prefix, sizeof(word_prefix), 15 },
    { "two-byte PkgLength", "_S5_", long_pkglength, sizeof(long_pkglength), 13 },
    { "QEMU _S4_ (PkgLength 8)", "_S4_", qemu_s4, sizeof(qemu_s4), 12 },
};

static void test_truncation_cases_need_the_whole_package(void **state)
{
    (void)state;
    /* each case parses whole; cut right after its second element (so both
     * values are there but the package is not) it is refused */
    for (size_t c = 0; c < sizeof(truncation_cases) / sizeof(truncation_cases[0]); c++) {
        const struct truncation_case *t = &truncation_cases[c];
        assert_int_equal(parse(t->aml, t->length, t->name).valid, 1);
        if (t->elements_end < t->length)
            assert_int_equal(parse(t->aml, t->elements_end, t->name).valid, 0);
    }
}

static void test_truncated_before_both_values_is_invalid_and_in_bounds(void **state)
{
    (void)state;
    /* every cut, parsed from an exact-size heap copy: ASan reports any read
     * past the cut; a cut before the second value ends gives valid=0 */
    for (size_t c = 0; c < sizeof(truncation_cases) / sizeof(truncation_cases[0]); c++) {
        const struct truncation_case *t = &truncation_cases[c];
        for (uint32_t cut = 0; cut < t->length; cut++) {
            struct acpi_sleep_type got = parse(t->aml, cut, t->name);
            if (cut < t->elements_end && got.valid)
                fail_msg("%s cut to %u bytes: accepted with only part of the values",
                         t->what, cut);
        }
    }
}

static void test_truncated_at_any_point_is_invalid(void **state)
{
    (void)state;
    /* a package whose PkgLength runs past the end of the AML is malformed,
     * even when its first two elements happen to fit */
    for (size_t c = 0; c < sizeof(truncation_cases) / sizeof(truncation_cases[0]); c++) {
        const struct truncation_case *t = &truncation_cases[c];
        for (uint32_t cut = 0; cut < t->length; cut++) {
            struct acpi_sleep_type got = parse(t->aml, cut, t->name);
            if (got.valid)
                fail_msg("%s cut to %u of %u bytes: valid=1 (type_a=%u type_b=%u), "
                         "want valid=0", t->what, cut, t->length, got.type_a, got.type_b);
        }
    }
}

static void test_empty_and_tiny_buffers_are_invalid(void **state)
{
    (void)state;
    const uint8_t one[] = { 0x08 };
    assert_int_equal(parse(one, 0, "_S5_").valid, 0);
    assert_int_equal(parse(one, 1, "_S5_").valid, 0);
    const uint8_t name_only[] = { 0x08, '_', 'S', '5', '_' };
    assert_int_equal(PARSE(name_only, "_S5_").valid, 0);
    const uint8_t package_op_last[] = { 0x08, '_', 'S', '5', '_', 0x12 };
    assert_int_equal(PARSE(package_op_last, "_S5_").valid, 0);
    /* a PkgLength lead byte claiming three more bytes that are not there */
    const uint8_t long_lead_last[] = { 0x08, '_', 'S', '5', '_', 0x12, 0xc0 };
    assert_int_equal(PARSE(long_lead_last, "_S5_").valid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_accepts_a_valid_table),
        cmocka_unit_test(test_checksum_rejects_any_single_corrupted_byte),
        cmocka_unit_test(test_checksum_sums_modulo_256),
        cmocka_unit_test(test_checksum_covers_only_the_given_length),
        cmocka_unit_test(test_sleep_package_of_zero_ops),
        cmocka_unit_test(test_sleep_package_of_one_ops),
        cmocka_unit_test(test_sleep_package_with_byte_prefix),
        cmocka_unit_test(test_sleep_package_with_word_prefix),
        cmocka_unit_test(test_qemu_dsdt_s4_snippet),
        cmocka_unit_test(test_root_prefixed_name),
        cmocka_unit_test(test_sleep_package_found_amid_other_aml),
        cmocka_unit_test(test_pkglength_with_one_extra_byte),
        cmocka_unit_test(test_pkglength_with_two_and_three_extra_bytes),
        cmocka_unit_test(test_name_inside_a_string_is_ignored),
        cmocka_unit_test(test_string_mention_then_real_definition_uses_the_definition),
        cmocka_unit_test(test_name_at_the_very_start_has_no_nameop),
        cmocka_unit_test(test_name_not_bound_to_a_package_is_skipped),
        cmocka_unit_test(test_other_names_do_not_match),
        cmocka_unit_test(test_unsupported_first_element_is_invalid),
        cmocka_unit_test(test_unsupported_second_element_is_invalid),
        cmocka_unit_test(test_truncation_cases_need_the_whole_package),
        cmocka_unit_test(test_truncated_before_both_values_is_invalid_and_in_bounds),
        cmocka_unit_test(test_truncated_at_any_point_is_invalid),
        cmocka_unit_test(test_empty_and_tiny_buffers_are_invalid),
    };
    return cmocka_run_group_tests_name("acpi_parse", tests, NULL, NULL);
}
