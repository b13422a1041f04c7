/*
 * hibimg's access to a disk holding a hibernation image: opening it,
 * reading its header, index and data pages, each checked with pm/image.c,
 * and one line on stderr for whatever goes wrong.
 */
#ifndef TOOLS_HIBIMG_DISK_H
#define TOOLS_HIBIMG_DISK_H

#include <stdint.h>

#include "pm/image.h" // struct image_header, struct image_index_entry, enum image_refusal

#define HIBIMG_PROGRAM "hibimg" /* how usage and every stderr line name the tool */

/* exit status: the image is resumable / it is not / usage or I/O error */
enum { EXIT_RESUMABLE = 0, EXIT_NOT_RESUMABLE = 1, EXIT_ERROR = 2 };

struct disk {
    const char *path;
    int fd;
    uint64_t size;                   /* bytes */
    union {
        struct image_header header;
        uint8_t page[IMAGE_PAGE_SIZE];
    } first;                         /* sector 0: the header page */
    struct image_index_entry *index; /* NULL until disk_load_index */
    /* an authenticated image's keys, when the owner's key was given and
     * is the image's (disk_use_key); else NULL: its tags go unchecked */
    struct page_mac_key *mac;
    struct page_cipher_key *cipher;
};

/* One line on stderr: `hibimg: DISK: what happened` (no DISK when d is NULL). */
void hibimg_complain(const struct disk *d, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Opens the disk and reads its header page. Returns 0, or an exit status. */
int disk_open(struct disk *d, const char *path);
void disk_close(struct disk *d);
/* Reads bytes at offset; 0, or -1 after saying why (a short read is a
 * truncated disk: *truncated is set; anything else is an I/O error). */
int disk_read_at(const struct disk *d, void *buffer, uint64_t offset, uint64_t bytes,
                 int *truncated);
/* The disk's capacity as virtio-blk would give it to the guest: whole 512-byte sectors. */
uint64_t disk_sectors(const struct disk *d);

/* image_check_header against the image's own build and RAM (this is not the boot that will
 * resume it) and this disk's capacity; a file has no serial to check. */
enum image_refusal disk_check_header(const struct disk *d, const struct image_header *h);
/* Whether the image can be read at all: an image refused only for its state (used, skipped,
 * or a resume that never finished) gets the remaining checks, so `verify` and `page` can
 * still look inside it. */
enum image_refusal disk_check_readable(const struct disk *d, enum image_refusal first);
/* For an authenticated image: whether key (the vars store's, NULL when none was given) is
 * the image's, and then its header tag; on IMAGE_OK an authenticated image's keys are in
 * d->mac (and d->cipher). A plain image needs no key. */
enum image_refusal disk_use_key(struct disk *d, const struct image_key *key);
/* Reads the index of a header that passed its checks into d->index. Returns 0, or an exit
 * status. */
int disk_load_index(struct disk *d);
/* Checks every data page, reading the data area front to back (the tags of an authenticated
 * image: d->mac must be set). Returns 0, or an exit status: after a read error (said), or
 * with *bad_entry the index entry of the first damaged page (for the caller to say). */
int disk_verify_data(struct disk *d, uint64_t *bad_entry);

#endif
