/*
 * Page encryption (see crypto/page_cipher.h): ChaCha20, one nonce per
 * frame under a key per image.
 */
#include "crypto/page_cipher.h"

#include "crypto/chacha20.h" // chacha20_block_input16, chacha20_xor
#include "crypto/secret.h"   // secret_erase

void page_cipher_key_init(struct page_cipher_key *key, const uint8_t secret[PAGE_MAC_SECRET_BYTES],
                          const uint8_t nonce[PAGE_MAC_NONCE_BYTES])
{
    uint8_t image_block[CHACHA20_BLOCK_BYTES];

    chacha20_block_input16(secret, nonce, image_block);
    for (int i = 0; i < 32; i++)
        key->key[i] = image_block[32 + i];
    secret_erase(image_block, sizeof(image_block));
}

void page_cipher_key_erase(struct page_cipher_key *key)
{
    secret_erase(key, sizeof(*key));
}

void page_cipher_xor(const struct page_cipher_key *key, uint64_t frame, const void *in, void *out)
{
    uint8_t nonce[CHACHA20_NONCE_BYTES];

    for (int i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(frame >> (8 * i));
    for (int i = 8; i < CHACHA20_NONCE_BYTES; i++)
        nonce[i] = 0;
    chacha20_xor(key->key, 0, nonce, in, out, PAGE_MAC_PAGE_BYTES);
}
