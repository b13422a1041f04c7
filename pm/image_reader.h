/*
 * Reading a hibernation image's data into memory: each saved page goes to
 * the frame the restore planner chose (pm/image.h), every request keeps to
 * the disk's limits, a full ring is back-pressure, and each page's
 * checksum is checked as its data arrives.
 */
#ifndef PM_IMAGE_READER_H
#define PM_IMAGE_READER_H

#include <stdint.h>

struct blk_disk;
struct image_header;
struct image_index_entry;
struct page_cipher_key;
struct page_mac_key;

struct image_reader {
    struct blk_disk *disk;
    const struct image_header *header;       /* checked already */
    const struct image_index_entry *index;   /* checked already */
    const uint64_t *load_pfn;                /* per index entry: where it is read to */
    struct page_mac_key *mac;                /* an authenticated image's keys, else NULL */
    const struct page_cipher_key *cipher;    /* an encrypted image's, else NULL */
    uint64_t failed_sector;                  /* out: the failed request, ~0 if none */
    uint64_t bad_pfn;                        /* out: the page whose checksum failed */
};

/* Reads and checks every page (and decrypts it, once its tag checked).
 * Returns NULL, or the refusal word (`read-error`, `bad-page-checksum`,
 * `bad-mac`); after a failure no request is in flight (the disk is reset,
 * so none can still write). */
const char *image_read_pages(struct image_reader *reader);

/* The reader's per-page work (the checksum of a plain image, mac NULL; the
 * tag of an authenticated one, the pages taken as frames first_frame,
 * first_frame + 1, ...) over `count` pages from `pages`; returns the sums
 * XORed. What `hash bench` times. */
uint64_t image_reader_check_pages(const void *pages, uint64_t count, uint64_t first_frame,
                                  struct page_mac_key *mac);

#endif
