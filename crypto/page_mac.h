/*
 * The hibernation image's MAC: a 16-byte tag for each saved page, bound to
 * its frame number and to the image (through the key), and one for any
 * buffer (the index, the header) under a domain. The construction and its
 * bound: docs/security.md, "The page MAC".
 */
#ifndef CRYPTO_PAGE_MAC_H
#define CRYPTO_PAGE_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/nh.h" // NH_KEY_WORDS

#define PAGE_MAC_SECRET_BYTES 32 /* the key kept beside the image, never in it */
#define PAGE_MAC_NONCE_BYTES 16  /* unique per image written under one secret */
#define PAGE_MAC_TAG_BYTES 16
#define PAGE_MAC_PAGE_BYTES NH_PAGE_BYTES

/* What buffer tags are of: a tag made for one domain never checks for
 * another. Values are part of the format: never reuse or renumber one. */
enum page_mac_domain {
    PAGE_MAC_DOMAIN_HEADER = 1,
    PAGE_MAC_DOMAIN_INDEX = 2,
};

/* Every key of one image, derived from (secret, nonce) by
 * page_mac_key_init, and a cache of the last block of pads: 4.2 KiB, all
 * of it secret. Keep it out of the image and erase it (page_mac_key_erase)
 * once done. page_mac writes the cache, so one key serves one thread. */
struct page_mac_key {
    uint8_t pad_key[32];               /* ChaCha20 key of the per-frame pads (Poly1305 s) */
    uint8_t buffer_key[32];            /* ChaCha20 key of the buffer tags' last step */
    uint8_t page_r[16];                /* Poly1305 r over a page's NH value */
    uint8_t buffer_r[16];              /* Poly1305 r of buffer tags */
    uint64_t nh_key[NH_KEY_WORDS];     /* NH of the page (crypto/nh.h) */
    /* the four pads of frames 4b .. 4b + 3 (one ChaCha20 block), b =
     * pads_block, when pads_valid: consecutive frames cost a quarter block */
    uint64_t pads_block;
    uint64_t pads_valid;
    uint8_t pads[64];
};

/* Derives an image's keys: the first 32 bytes of the ChaCha20 block of
 * `secret` whose 16-byte input is `nonce` (chacha20_block_input16), then
 * that key's keystream (nonce 0, from counter 0) cut in the order of the
 * struct's fields: pad_key, buffer_key, page_r, buffer_r, nh_key. The
 * other 32 bytes of the first block are the encryption key
 * (crypto/page_cipher.h). The secret serves nothing else. */
void page_mac_key_init(struct page_mac_key *key, const uint8_t secret[PAGE_MAC_SECRET_BYTES],
                       const uint8_t nonce[PAGE_MAC_NONCE_BYTES]);
void page_mac_key_erase(struct page_mac_key *key);

/* The tag of the 4096 bytes at page (any alignment) saved from frame
 * `frame` (any 64-bit value; frames are below 2^52):
 *
 *     Poly1305 with r = page_r, s = pad(frame), over NH(page)
 *     pad(frame) = bytes 16 (frame mod 4) .. +15 of ChaCha20(pad_key,
 *                  counter 0, nonce = frame / 4 as 8 bytes LE, then 4 zeros)
 *
 * Each pad must serve one page content only: never tag two different
 * contents of one frame under one (secret, nonce); a rewritten image takes
 * a new nonce. */
void page_mac(struct page_mac_key *key, uint64_t frame, const void *page,
              uint8_t tag[PAGE_MAC_TAG_BYTES]);

/* The tag of any bytes (0 too, any alignment) in a domain:
 *
 *     h   = Poly1305 with r = buffer_r, s = 0, over
 *           (domain as 4 bytes LE, 4 zeros, bytes as 8 bytes LE) then the data
 *     tag = the first 16 bytes of ChaCha20(buffer_key) with h as its 16-byte input
 *
 * Deterministic: the same buffer may be tagged again after a change (a
 * header whose state is rewritten) without harm. */
void page_mac_buffer(const struct page_mac_key *key, uint32_t domain, const void *data,
                     size_t bytes, uint8_t tag[PAGE_MAC_TAG_BYTES]);

/* 1 when the two tags are equal, in time that does not depend on them. */
int page_mac_tags_equal(const uint8_t a[PAGE_MAC_TAG_BYTES], const uint8_t b[PAGE_MAC_TAG_BYTES]);

#endif
