/*
 * The pure parts of ACPI reading: table checksums and the \_Sx sleep
 * packages in AML. No kernel state, so the host tests run this code.
 */
#include "pm/acpi.h"

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
        if (at >= length)
            continue;
        at += 1 + (aml[at] >> 6); /* PkgLength: lead byte plus 0-3 more */
        at++;                     /* NumElements */
        if (parse_integer(aml, length, &at, &result.type_a) == 0 &&
            parse_integer(aml, length, &at, &result.type_b) == 0) {
            result.valid = 1;
            return result;
        }
    }
    return result;
}

