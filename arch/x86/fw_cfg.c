/*
 * fw_cfg over I/O ports (QEMU docs/specs/fw_cfg.txt): write a 16-bit
 * selector to 0x510, read bytes from 0x511. Selector 0 holds the
 * signature "QEMU"; selector 0x19 the file directory, whose numbers are
 * big-endian.
 */
#include "arch/x86/fw_cfg.h"

#include <stdint.h>

#include "arch/x86/cpu.h" // inb, outw
#include "lib/string.h"   // strcmp

#define PORT_SELECTOR 0x510
#define PORT_DATA 0x511
#define SELECT_SIGNATURE 0x0000
#define SELECT_FILE_DIRECTORY 0x0019
#define MAX_FILES 4096

static void read_bytes(void *buffer, size_t length)
{
    uint8_t *p = buffer;

    while (length--)
        *p++ = inb(PORT_DATA);
}

static uint32_t big_endian32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int fw_cfg_read_file(const char *name, char *buffer, size_t size)
{
    uint8_t signature[4], count_bytes[4];

    outw(PORT_SELECTOR, SELECT_SIGNATURE);
    read_bytes(signature, 4);
    if (signature[0] != 'Q' || signature[1] != 'E' || signature[2] != 'M' || signature[3] != 'U')
        return -1;
    outw(PORT_SELECTOR, SELECT_FILE_DIRECTORY);
    read_bytes(count_bytes, 4);
    uint32_t count = big_endian32(count_bytes);
    for (uint32_t i = 0; i < count && i < MAX_FILES; i++) {
        struct {
            uint8_t size[4];
            uint8_t select[2];
            uint8_t reserved[2];
            char name[56];
        } entry;
        read_bytes(&entry, sizeof(entry));
        entry.name[55] = 0;
        if (strcmp(entry.name, name) != 0)
            continue;
        uint32_t length = big_endian32(entry.size);
        uint32_t keep = length < size - 1 ? length : (uint32_t)(size - 1);
        outw(PORT_SELECTOR, (uint16_t)(entry.select[0] << 8 | entry.select[1]));
        read_bytes(buffer, keep);
        buffer[keep] = 0;
        return (int)keep;
    }
    return -1;
}
