/*
 * The page and buffer MACs (see crypto/page_mac.h and docs/security.md,
 * "The page MAC"): NH, then Poly1305 with a ChaCha20 pad per frame, for
 * pages; Poly1305, then ChaCha20 as a pseudorandom function, for buffers.
 */
#include "crypto/page_mac.h"

#include <stddef.h> // offsetof

#include "crypto/chacha20.h" // chacha20_block, chacha20_block_input16, chacha20_xor
#include "crypto/nh.h"       // nh_page
#include "crypto/poly1305.h" // poly1305_*
#include "crypto/secret.h"   // secret_erase, secret_equal

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian stores, as on x86");

#define PADS_PER_BLOCK (CHACHA20_BLOCK_BYTES / 16)

/* Little-endian stores and plain copies of a few bytes: inlined moves,
 * not byte loops, which under TCG cost a guest access per byte. */
static inline void store64(uint8_t *p, uint64_t value)
{
    __builtin_memcpy(p, &value, sizeof(value));
}

static inline void store32(uint8_t *p, uint32_t value)
{
    __builtin_memcpy(p, &value, sizeof(value));
}

/* the keystream is cut in field order with no gaps, up to the cache (page_mac_key_init) */
#define DERIVED_BYTES offsetof(struct page_mac_key, pads_block)
_Static_assert(DERIVED_BYTES == 32 + 32 + 16 + 16 + 8 * NH_KEY_WORDS,
               "struct page_mac_key has padding");

void page_mac_key_init(struct page_mac_key *key, const uint8_t secret[PAGE_MAC_SECRET_BYTES],
                       const uint8_t nonce[PAGE_MAC_NONCE_BYTES])
{
    static const uint8_t zero_nonce[CHACHA20_NONCE_BYTES];
    uint8_t image_block[CHACHA20_BLOCK_BYTES];

    /* the image's MAC key: the first half of the secret's block for this nonce */
    chacha20_block_input16(secret, nonce, image_block);
    /* its keystream, field after field: the XOR of zeros with it; no pads cached */
    secret_erase(key, sizeof(*key));
    chacha20_xor(image_block, 0, zero_nonce, key, key, DERIVED_BYTES);
    secret_erase(image_block, sizeof(image_block));
}

void page_mac_key_erase(struct page_mac_key *key)
{
    secret_erase(key, sizeof(*key));
}

void page_mac(struct page_mac_key *key, uint64_t frame, const void *page,
              uint8_t tag[PAGE_MAC_TAG_BYTES])
{
    uint8_t nh[NH_OUTPUT_BYTES];

    nh_page(key->nh_key, page, nh);
    /* four frames' pads per block: frame / 4 picks the block, frame mod 4 the pad */
    uint64_t pad_block = frame / PADS_PER_BLOCK;
    if (!key->pads_valid || key->pads_block != pad_block) {
        uint8_t nonce[CHACHA20_NONCE_BYTES];
        store64(nonce, pad_block);
        store32(nonce + 8, 0);
        chacha20_block(key->pad_key, 0, nonce, key->pads);
        key->pads_block = pad_block;
        key->pads_valid = 1;
    }
    poly1305_mac_blocks(key->page_r, key->pads + 16 * (frame % PADS_PER_BLOCK), nh,
                        NH_OUTPUT_BYTES / POLY1305_BLOCK_BYTES, tag);
    secret_erase(nh, sizeof(nh));
}

void page_mac_buffer(const struct page_mac_key *key, uint32_t domain, const void *data,
                     size_t bytes, uint8_t tag[PAGE_MAC_TAG_BYTES])
{
    uint8_t poly_key[POLY1305_KEY_BYTES] = { 0 }, head[16], hash[POLY1305_TAG_BYTES];
    uint8_t block[CHACHA20_BLOCK_BYTES];
    struct poly1305 poly;

    __builtin_memcpy(poly_key, key->buffer_r, 16); /* s = 0: the tag is the hash itself */
    store32(head, domain);
    store32(head + 4, 0);
    store64(head + 8, (uint64_t)bytes);
    poly1305_init(&poly, poly_key);
    poly1305_update(&poly, head, sizeof(head));
    poly1305_update(&poly, data, bytes);
    poly1305_final(&poly, hash);
    chacha20_block_input16(key->buffer_key, hash, block);
    __builtin_memcpy(tag, block, PAGE_MAC_TAG_BYTES);
    secret_erase(poly_key, sizeof(poly_key));
    secret_erase(hash, sizeof(hash));
    secret_erase(block, sizeof(block));
}

int page_mac_tags_equal(const uint8_t a[PAGE_MAC_TAG_BYTES], const uint8_t b[PAGE_MAC_TAG_BYTES])
{
    return secret_equal(a, b, PAGE_MAC_TAG_BYTES);
}
