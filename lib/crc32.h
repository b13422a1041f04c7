/*
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xedb88320), as zlib computes
 * it: used for console checksums and the hibernation image.
 */
#ifndef LIB_CRC32_H
#define LIB_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Start with crc = 0; feed the result back in to continue a stream. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t length);

#endif
