/* Host unit tests for tools/efi_vars.c, the reader of OVMF's variable store file: stores
 * built here in edk2's layout (authenticated and plain variable headers), which copy of a
 * variable counts, and untrusted input: every truncation of a store, lengths that run past
 * it, random garbage. Also OVMF's own template when it is installed (no key in it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/handoff.h"
#include "tests/unit/test_random.h" // rng_next
#include "tools/efi_vars.h"

#define STORE_BYTES 8192
#define FV_HEADER 72
#define KEY_ATTRIBUTES 0x3u /* NON_VOLATILE | BOOTSERVICE_ACCESS */
#define ADDED 0x3f
#define DELETED 0x3c
#define IN_DELETED_TRANSITION 0x3e

static const uint8_t key_vendor[16] = IMAGE_KEY_VENDOR_GUID_BYTES;
static const uint8_t other_vendor[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t auth_guid[16] = { 0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                                       0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92 };
static const uint8_t plain_guid[16] = { 0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
                                        0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d };

struct store {
    uint8_t bytes[STORE_BYTES];
    size_t next; /* where the next variable goes */
    int auth;
};

static void put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void store_init(struct store *s, int auth)
{
    memset(s->bytes, 0xff, sizeof(s->bytes)); /* erased flash */
    memset(s->bytes, 0, FV_HEADER);
    put(s->bytes + 32, STORE_BYTES, 8);
    memcpy(s->bytes + 40, "_FVH", 4);
    put(s->bytes + 48, FV_HEADER, 2);
    uint8_t *vs = s->bytes + FV_HEADER;
    memcpy(vs, auth ? auth_guid : plain_guid, 16);
    put(vs + 16, STORE_BYTES - FV_HEADER, 4);
    vs[20] = 0x5a;
    vs[21] = 0xfe;
    put(vs + 22, 0, 6);
    s->next = FV_HEADER + 28;
    s->auth = auth;
}

static void store_add(struct store *s, int state, const char *name, const uint8_t *guid, uint32_t attributes,
                      const uint8_t *data, uint32_t data_size)
{
    size_t header = s->auth ? 60 : 32, name_size = 2 * (strlen(name) + 1);
    uint8_t *v = s->bytes + s->next;

    assert_true(s->next + header + name_size + data_size <= STORE_BYTES);
    memset(v, 0, header);
    put(v, 0x55aa, 2);
    v[2] = (uint8_t)state;
    put(v + 4, attributes, 4);
    put(v + header - 24, name_size, 4);
    put(v + header - 20, data_size, 4);
    memcpy(v + header - 16, guid, 16);
    for (size_t i = 0; i <= strlen(name); i++)
        put(v + header + 2 * i, (uint8_t)name[i], 2);
    memcpy(v + header + name_size, data, data_size);
    s->next = (s->next + header + name_size + data_size + 3) & ~(size_t)3;
}

static void add_key(struct store *s, int state, uint64_t counter)
{
    struct image_key key;
    uint8_t record[IMAGE_KEY_RECORD_BYTES];

    memset(&key, 0xa5, sizeof(key));
    key.counter = counter;
    image_key_encode(&key, record);
    store_add(s, state, IMAGE_KEY_VARIABLE_NAME, key_vendor, KEY_ATTRIBUTES, record, sizeof(record));
}

static int find_key(const struct store *s, size_t size, struct efi_var *var)
{
    char error[200];

    return efi_vars_find(s->bytes, size, IMAGE_KEY_VARIABLE_NAME, key_vendor, var, error, sizeof(error));
}

static uint64_t found_counter(const struct store *s)
{
    struct efi_var var;
    struct image_key key;

    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_FOUND);
    assert_int_equal(image_key_decode(var.data, var.data_size, &key), 0);
    return key.counter;
}

static void test_finds_the_key_among_others_in_both_formats(void **state)
{
    (void)state;
    for (int auth = 0; auth <= 1; auth++) {
        struct store *s = malloc(sizeof(*s));
        const uint8_t odd[3] = { 1, 2, 3 }; /* 3 bytes: the next variable is realigned */
        store_init(s, auth);
        store_add(s, ADDED, "Boot0000", other_vendor, 7, odd, sizeof(odd));
        store_add(s, ADDED, IMAGE_KEY_VARIABLE_NAME, other_vendor, KEY_ATTRIBUTES, odd, 3);
        store_add(s, ADDED, "TorporImageKe", key_vendor, KEY_ATTRIBUTES, odd, 3);
        add_key(s, ADDED, 9);
        store_add(s, ADDED, "Lang", other_vendor, 7, odd, 2);
        assert_true(found_counter(s) == 9);
        free(s);
    }
}

static void test_deleted_copies_do_not_count_and_the_last_added_wins(void **state)
{
    struct store *s = malloc(sizeof(*s));
    struct efi_var var;

    (void)state;
    store_init(s, 1);
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_ABSENT);
    add_key(s, DELETED, 1);
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_ABSENT);
    add_key(s, IN_DELETED_TRANSITION, 2);
    assert_true(found_counter(s) == 2); /* edk2 still reads one in transition */
    add_key(s, ADDED, 3);
    add_key(s, IN_DELETED_TRANSITION, 4); /* an added copy beats one in transition */
    assert_true(found_counter(s) == 3);
    add_key(s, ADDED, 5);
    assert_true(found_counter(s) == 5);
    add_key(s, 0x7f, 6); /* header valid only: never finished */
    assert_true(found_counter(s) == 5);
    free(s);
}

/* Every prefix of a store is either refused or read without a byte past it (ASan). */
static void test_every_truncation_is_safe(void **state)
{
    struct store *s = malloc(sizeof(*s));
    struct efi_var var;

    (void)state;
    store_init(s, 1);
    add_key(s, ADDED, 5);
    for (size_t size = 0; size <= STORE_BYTES; size++) {
        uint8_t *copy = malloc(size ? size : 1);
        memcpy(copy, s->bytes, size);
        char error[200] = "";
        int result = efi_vars_find(copy, size, IMAGE_KEY_VARIABLE_NAME, key_vendor, &var, error, sizeof(error));
        /* the volume says it is STORE_BYTES long: a shorter file is refused */
        assert_int_equal(result, size == STORE_BYTES ? EFI_VARS_FOUND : EFI_VARS_BAD);
        if (result == EFI_VARS_BAD)
            assert_true(error[0] != 0);
        free(copy);
    }
    free(s);
}

static void test_lengths_past_the_store_are_refused(void **state)
{
    struct store *s = malloc(sizeof(*s));
    struct efi_var var;
    size_t first = FV_HEADER + 28;

    (void)state;
    store_init(s, 1);
    add_key(s, ADDED, 5);
    put(s->bytes + first + 36, 0xffffffffu, 4); /* NameSize */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    store_init(s, 1);
    add_key(s, ADDED, 5);
    put(s->bytes + first + 40, 0xfffffff0u, 4); /* DataSize */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    store_init(s, 1);
    put(s->bytes + FV_HEADER + 16, STORE_BYTES, 4); /* store Size past the volume */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    store_init(s, 1);
    put(s->bytes + 48, STORE_BYTES - 10, 2); /* HeaderLength leaves no room */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    store_init(s, 1);
    s->bytes[FV_HEADER + 20] = 0; /* not formatted */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    store_init(s, 1);
    s->bytes[FV_HEADER] ^= 1; /* unknown store GUID */
    assert_int_equal(find_key(s, STORE_BYTES, &var), EFI_VARS_BAD);
    free(s);
}

/* Random bytes under a sound header, and random single-byte damage to a sound store. */
static void test_garbage_never_reads_out_of_bounds(void **state)
{
    struct store *s = malloc(sizeof(*s));
    struct efi_var var;
    uint64_t seed = 15;

    (void)state;
    for (int trial = 0; trial < 3000; trial++) {
        store_init(s, trial & 1);
        add_key(s, ADDED, 5);
        add_key(s, ADDED, 6);
        if (trial % 3 == 0) {
            for (size_t i = FV_HEADER + 28; i < 600; i++)
                s->bytes[i] = (uint8_t)rng_next(&seed);
            s->bytes[FV_HEADER + 28] = 0xaa, s->bytes[FV_HEADER + 29] = 0x55;
        } else {
            for (int k = 0; k < 4; k++)
                s->bytes[rng_next(&seed) % 400] = (uint8_t)rng_next(&seed);
        }
        int result = find_key(s, STORE_BYTES, &var);
        assert_true(result == EFI_VARS_FOUND || result == EFI_VARS_ABSENT || result == EFI_VARS_BAD);
        if (result == EFI_VARS_FOUND)
            assert_true(var.data >= s->bytes && var.data + var.data_size <= s->bytes + STORE_BYTES);
    }
    free(s);
}

static int image_key_of(const struct store *s, struct image_key *key, char *error)
{
    char path[] = "/tmp/test_efi_vars.XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, s->bytes, STORE_BYTES), STORE_BYTES);
    close(fd);
    int result = efi_vars_image_key(path, key, error, 200);
    unlink(path);
    return result;
}

static void test_image_key_from_a_file(void **state)
{
    struct store *s = malloc(sizeof(*s));
    struct image_key key;
    char error[200];
    uint8_t short_record[10] = { 0 };

    (void)state;
    store_init(s, 1);
    assert_int_equal(image_key_of(s, &key, error), EFI_VARS_ABSENT);
    assert_non_null(strstr(error, "no TorporImageKey variable"));
    add_key(s, ADDED, 41);
    assert_int_equal(image_key_of(s, &key, error), EFI_VARS_FOUND);
    assert_true(key.counter == 41);
    store_add(s, ADDED, IMAGE_KEY_VARIABLE_NAME, key_vendor, KEY_ATTRIBUTES, short_record, sizeof(short_record));
    assert_int_equal(image_key_of(s, &key, error), EFI_VARS_BAD);
    assert_non_null(strstr(error, "no version-1 key record"));
    size_t at = s->next;
    add_key(s, ADDED, 42);
    put(s->bytes + at + 4, 0x7, 4); /* runtime access: not efi_main's */
    assert_int_equal(image_key_of(s, &key, error), EFI_VARS_BAD);
    assert_non_null(strstr(error, "attributes 0x7"));
    assert_int_equal(efi_vars_image_key("/nonexistent/vars.fd", &key, error, sizeof(error)), EFI_VARS_BAD);
    free(s);
}

static void test_ovmf_template_has_no_key(void **state)
{
    struct image_key key;
    char error[300];

    (void)state;
    if (access("/usr/share/OVMF/OVMF_VARS_4M.fd", R_OK) != 0)
        skip();
    assert_int_equal(efi_vars_image_key("/usr/share/OVMF/OVMF_VARS_4M.fd", &key, error, sizeof(error)),
                     EFI_VARS_ABSENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_the_key_among_others_in_both_formats),
        cmocka_unit_test(test_deleted_copies_do_not_count_and_the_last_added_wins),
        cmocka_unit_test(test_every_truncation_is_safe),
        cmocka_unit_test(test_lengths_past_the_store_are_refused),
        cmocka_unit_test(test_garbage_never_reads_out_of_bounds),
        cmocka_unit_test(test_image_key_from_a_file),
        cmocka_unit_test(test_ovmf_template_has_no_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
