/*
 * Guest instructions per 4 KiB page of the image's checksum and crypto, for
 * bench/crypto_cost.sh: runs each operation PAGES times under callgrind,
 * which the script reads per function. The measured code is built with the
 * kernel's flags; this driver is a host program.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "crypto/chacha20.h"
#include "crypto/nh.h"
#include "crypto/page_cipher.h"
#include "crypto/page_mac.h"
#include "crypto/poly1305.h"
#include "lib/hash.h"

#define PAGES 64
#define PAGE 4096

/* Each measured call goes through one of these, so callgrind's inclusive
 * count of the wrapper is exactly the calls it made. */
#define MEASURE(name, call)                                                         \
    __attribute__((noinline)) static void measure_##name(void)                      \
    {                                                                               \
        for (int i = 0; i < PAGES; i++) {                                           \
            call;                                                                   \
            __asm__ volatile("" ::: "memory");                                      \
        }                                                                           \
    }

static uint8_t pages[PAGES][PAGE] __attribute__((aligned(4096)));
static uint8_t out[PAGE] __attribute__((aligned(4096)));
static uint8_t tag[16];
static uint64_t sink;
static struct page_mac_key mac_key;
static struct page_cipher_key cipher_key;
static uint8_t nh_out[NH_OUTPUT_BYTES], block[64];

MEASURE(hash64, sink += hash64(pages[i], PAGE, 0))
/* consecutive frames share each ChaCha20 block of pads; frames 4 apart do not */
MEASURE(page_mac_consecutive_frames, page_mac(&mac_key, (uint64_t)i + 0x1000, pages[i], tag))
MEASURE(page_mac_scattered_frames, page_mac(&mac_key, 4 * (uint64_t)i + 0x2000, pages[i], tag))
MEASURE(nh_page, nh_page(mac_key.nh_key, pages[i], nh_out))
MEASURE(chacha20_block, chacha20_block(mac_key.pad_key, 0, pages[i], block))
MEASURE(poly1305_nh_output, poly1305_mac_blocks(pages[i], pages[i] + 16, nh_out, NH_OUTPUT_BYTES / 16, tag))
MEASURE(page_cipher_xor, page_cipher_xor(&cipher_key, (uint64_t)i, pages[i], out))
MEASURE(page_mac_buffer_4096, page_mac_buffer(&mac_key, PAGE_MAC_DOMAIN_INDEX, pages[i], PAGE, tag))
MEASURE(page_mac_buffer_1808, page_mac_buffer(&mac_key, PAGE_MAC_DOMAIN_HEADER, pages[i], 1808, tag))
MEASURE(page_mac_key_init, page_mac_key_init(&mac_key, pages[i], pages[i] + 32))

int main(void)
{
    uint64_t state = 1;
    for (int p = 0; p < PAGES; p++)
        for (int b = 0; b < PAGE; b++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            pages[p][b] = (uint8_t)(state >> 56) | 1; /* no zero stripes */
        }
    page_mac_key_init(&mac_key, pages[0], pages[0] + 32);
    page_cipher_key_init(&cipher_key, pages[0], pages[0] + 32);
    measure_hash64();
    measure_page_mac_consecutive_frames();
    measure_page_mac_scattered_frames();
    measure_nh_page();
    measure_chacha20_block();
    measure_poly1305_nh_output();
    measure_page_cipher_xor();
    measure_page_mac_buffer_4096();
    measure_page_mac_buffer_1808();
    measure_page_mac_key_init();
    printf("%llu %u\n", (unsigned long long)sink, tag[0]);
    return 0;
}
