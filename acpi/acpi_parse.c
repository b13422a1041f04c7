/*
 * The pure parts of ACPI reading: table checksums and the \_Sx sleep
 * packages in AML. No kernel state, so the host tests run this code.
 */
#include "acpi/acpi.h"

#include "lib/string.h" // memcmp

int acpi_checksum_ok(const void *table, uint32_t length)
{
    uint8_t sum = 0;

    for (uint32_t i = 0; i < length; i++)
        sum += ((const uint8_t *)table)[i];
    return sum == 0;
}

/* AML integer constants as they appear in a package (ACPI 6.4, 20.2.3). */
static int parse_integer(const uint8_t *aml, uint32_t length, uint32_t *at, uint8_t *value)
{
    if (*at >= length)
        return -1;
    switch (aml[*at]) {
    case 0x00: *value = 0; *at += 1; return 0;    /* ZeroOp */
    case 0x01: *value = 1; *at += 1; return 0;    /* OneOp */
    case 0x0a:                                     /* BytePrefix */
        if (*at + 1 >= length)
            return -1;
        *value = aml[*at + 1];
        *at += 2;
        return 0;
    case 0x0b:                                     /* WordPrefix */
        if (*at + 2 >= length)
            return -1;
        *value = aml[*at + 1];
        *at += 3;
        return 0;
    default:
        return -1;
    }
}

/* PkgLength (ACPI 6.4, 20.2.4): the lead byte's bits 7-6 count the bytes
 * that follow; the length runs from the lead byte to the package's end,
 * which must lie inside the buffer. */
static int parse_package_length(const uint8_t *aml, uint32_t length, uint32_t *at,
                                uint32_t *package_end)
{
    uint32_t start = *at;

    if (start >= length)
        return -1;
    uint8_t lead = aml[start];
    uint32_t extra = lead >> 6;
    uint32_t value = extra ? lead & 0x0f : lead & 0x3f;
    if (start + extra >= length)
        return -1;
    for (uint32_t i = 1; i <= extra; i++)
        value |= (uint32_t)aml[start + i] << (4 + 8 * (i - 1));
    if (value > length - start || value < 1 + extra)
        return -1;
    *package_end = start + value;
    *at = start + 1 + extra;
    return 0;
}

struct acpi_sleep_type acpi_parse_sleep_type(const uint8_t *aml, uint32_t length,
                                             const char name[4])
{
    struct acpi_sleep_type result = { 0, 0, 0 };

    for (uint32_t i = 1; i + 4 < length; i++) {
        /* NameOp, optionally the root prefix, the name, then PackageOp */
        if (memcmp(aml + i, name, 4) != 0)
            continue;
        if (!(aml[i - 1] == 0x08 || (aml[i - 1] == '\\' && i >= 2 && aml[i - 2] == 0x08)))
            continue;
        uint32_t at = i + 4;
        if (at >= length || aml[at] != 0x12)
            continue;
        at++;
        uint32_t package_end;
        if (parse_package_length(aml, length, &at, &package_end) != 0)
            continue;
        at++; /* NumElements */
        if (parse_integer(aml, package_end, &at, &result.type_a) == 0 &&
            parse_integer(aml, package_end, &at, &result.type_b) == 0) {
            result.valid = 1;
            return result;
        }
    }
    return result;
}

