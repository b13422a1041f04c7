/*
 * The image key's variable record (boot/handoff.h): pure encoding shared by
 * efi_main, which writes it, and the host tools, which read it from an OVMF
 * variable store. Little-endian byte by byte, so no layout is assumed.
 */
#include "boot/handoff.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void image_key_encode(const struct image_key *key, uint8_t record[IMAGE_KEY_RECORD_BYTES])
{
    put32(record, IMAGE_KEY_RECORD_MAGIC);
    put32(record + 4, IMAGE_KEY_RECORD_VERSION);
    for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
        record[8 + i] = key->chain[i];
    put64(record + 24, key->counter);
    for (int i = 0; i < IMAGE_KEY_SECRET_BYTES; i++)
        record[32 + i] = key->secret[i];
}

/* A record of another size, magic or version is not ours to trust; a
 * counter of 0 was never written (chains start at 1). */
int image_key_decode(const uint8_t *record, uint64_t size, struct image_key *key)
{
    if (size != IMAGE_KEY_RECORD_BYTES || get32(record) != IMAGE_KEY_RECORD_MAGIC ||
        get32(record + 4) != IMAGE_KEY_RECORD_VERSION || get64(record + 24) == 0)
        return -1;
    for (int i = 0; i < IMAGE_KEY_CHAIN_BYTES; i++)
        key->chain[i] = record[8 + i];
    key->counter = get64(record + 24);
    for (int i = 0; i < IMAGE_KEY_SECRET_BYTES; i++)
        key->secret[i] = record[32 + i];
    return 0;
}

const char *image_key_source_name(uint32_t source)
{
    switch (source) {
    case IMAGE_KEY_SOURCE_RNG_PROTOCOL: return "rng-protocol";
    case IMAGE_KEY_SOURCE_RDRAND: return "rdrand";
    default: return "none";
    }
}
