/*
 * A 64-bit hash that catches damage (not forgery): XXH64, as the xxHash
 * specification defines it, written here for the kernel and the host. Every
 * output bit depends on every input bit; the hibernation image's checksums.
 */
#ifndef LIB_HASH_H
#define LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Any length and any alignment; the same value as the reference XXH64(data,
 * bytes, seed). Fastest on whole 32-byte stripes (a 4 KiB page is 128). */
uint64_t hash64(const void *data, size_t bytes, uint64_t seed);

#endif
