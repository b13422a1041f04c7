/*
 * The page and buffer MACs (see crypto/page_mac.h and docs/security.md,
 * "The page MAC"): NH, then Poly1305 with a ChaCha20 pad per frame, for
 * pages; Poly1305, then ChaCha20 as a pseudorandom function, for buffers.
 */
#include "crypto/page_mac.h"

#include "crypto/chacha20.h" // chacha20_block, chacha20_block_input16, chacha20_xor
#include "crypto/nh.h"       // nh_page
#include "crypto/poly1305.h" // poly1305_*
#include "crypto/secret.h"   // secret_erase, secret_equal

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian stores, as on x86");

#define PADS_PER_BLOCK (CHACHA20_BLOCK_BYTES / 16)

static void store_le(uint8_t *p, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

static void copy(uint8_t *dst, const uint8_t *src, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        dst[i] = src[i];
}

/* the keystream is cut in field order with no gaps (page_mac_key_init) */
_Static_assert(sizeof(struct page_mac_key) == 32 + 32 + 16 + 16 + 8 * NH_KEY_WORDS,
               "struct page_mac_key has padding");

void page_mac_key_init(struct page_mac_key *key, const uint8_t secret[PAGE_MAC_SECRET_BYTES],
                       const uint8_t nonce[PAGE_MAC_NONCE_BYTES])
{
    static const uint8_t zero_nonce[CHACHA20_NONCE_BYTES];
    uint8_t image_block[CHACHA20_BLOCK_BYTES];

    /* the image's MAC key: the first half of the secret's block for this nonce */
    chacha20_block_input16(secret, nonce, image_block);
    /* its keystream, field after field: the XOR of zeros with it */
    secret_erase(key, sizeof(*key));
    chacha20_xor(image_block, 0, zero_nonce, key, key, sizeof(*key));
    secret_erase(image_block, sizeof(image_block));
}

void page_mac_key_erase(struct page_mac_key *key)
{
    secret_erase(key, sizeof(*key));
}

void page_mac(const struct page_mac_key *key, uint64_t frame, const void *page,
              uint8_t tag[PAGE_MAC_TAG_BYTES])
{
    uint8_t nh[NH_OUTPUT_BYTES], pads[CHACHA20_BLOCK_BYTES], nonce[CHACHA20_NONCE_BYTES];
    uint8_t poly_key[POLY1305_KEY_BYTES];

    nh_page(key->nh_key, page, nh);
    /* four frames' pads per block: frame / 4 picks the block, frame mod 4 the pad */
    store_le(nonce, frame / PADS_PER_BLOCK, 8);
    store_le(nonce + 8, 0, 4);
    chacha20_block(key->pad_key, 0, nonce, pads);
    copy(poly_key, key->page_r, 16);
    copy(poly_key + 16, pads + 16 * (frame % PADS_PER_BLOCK), 16);
    poly1305_mac(poly_key, nh, sizeof(nh), tag);
    secret_erase(nh, sizeof(nh));
    secret_erase(pads, sizeof(pads));
    secret_erase(poly_key, sizeof(poly_key));
}

void page_mac_buffer(const struct page_mac_key *key, uint32_t domain, const void *data,
                     size_t bytes, uint8_t tag[PAGE_MAC_TAG_BYTES])
{
    uint8_t poly_key[POLY1305_KEY_BYTES] = { 0 }, head[16], hash[POLY1305_TAG_BYTES];
    uint8_t block[CHACHA20_BLOCK_BYTES];
    struct poly1305 poly;

    copy(poly_key, key->buffer_r, 16); /* s = 0: the tag is the hash itself */
    store_le(head, domain, 4);
    store_le(head + 4, 0, 4);
    store_le(head + 8, (uint64_t)bytes, 8);
    poly1305_init(&poly, poly_key);
    poly1305_update(&poly, head, sizeof(head));
    poly1305_update(&poly, data, bytes);
    poly1305_final(&poly, hash);
    chacha20_block_input16(key->buffer_key, hash, block);
    copy(tag, block, PAGE_MAC_TAG_BYTES);
    secret_erase(poly_key, sizeof(poly_key));
    secret_erase(hash, sizeof(hash));
    secret_erase(block, sizeof(block));
}

int page_mac_tags_equal(const uint8_t a[PAGE_MAC_TAG_BYTES], const uint8_t b[PAGE_MAC_TAG_BYTES])
{
    return secret_equal(a, b, PAGE_MAC_TAG_BYTES);
}
