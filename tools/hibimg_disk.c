/*
 * hibimg's disk access (tools/hibimg_disk.h): reads a disk file or device
 * in bounded chunks, its header, index and data pages, and says on stderr
 * what went wrong.
 */
#include "tools/hibimg_disk.h"

#include "crypto/page_cipher.h" // page_cipher_key_*

#include <errno.h>    // errno, EINTR
#include <fcntl.h>    // open, O_RDONLY
#include <inttypes.h> // PRIu64
#include <stdarg.h>   // va_list, va_start, va_end
#include <stdio.h>    // fprintf, vfprintf, fputc
#include <stdlib.h>   // malloc, free
#include <string.h>   // memset, strerror
#include <unistd.h>   // pread, lseek, close, sysconf

/* data pages read at once by `verify` */
#define CHUNK_PAGES 64u

void hibimg_complain(const struct disk *d, const char *format, ...)
{
    va_list args;

    fprintf(stderr, "%s: ", HIBIMG_PROGRAM);
    if (d)
        fprintf(stderr, "%s: ", d->path);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}

int disk_read_at(const struct disk *d, void *buffer, uint64_t offset, uint64_t bytes,
                 int *truncated)
{
    uint8_t *to = buffer;

    *truncated = 0;
    while (bytes) {
        size_t want = bytes < (1u << 20) ? (size_t)bytes : (1u << 20);
        ssize_t got = pread(d->fd, to, want, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            hibimg_complain(d, "read at byte %" PRIu64 ": %s", offset, strerror(errno));
            return -1;
        }
        if (got == 0) {
            hibimg_complain(d, "truncated: no data at byte %" PRIu64 " (the disk shrank?)", offset);
            *truncated = 1;
            return -1;
        }
        to += got;
        offset += (uint64_t)got;
        bytes -= (uint64_t)got;
    }
    return 0;
}

int disk_open(struct disk *d, const char *path)
{
    int truncated;
    off_t end;

    memset(d, 0, sizeof(*d));
    d->path = path;
    d->fd = open(path, O_RDONLY);
    if (d->fd < 0) {
        hibimg_complain(d, "%s", strerror(errno));
        return EXIT_ERROR;
    }
    end = lseek(d->fd, 0, SEEK_END); /* works for block devices too */
    if (end < 0) {
        hibimg_complain(d, "cannot find its size: %s", strerror(errno));
        return EXIT_ERROR;
    }
    d->size = (uint64_t)end;
    if (d->size < IMAGE_PAGE_SIZE) {
        hibimg_complain(d, "%" PRIu64 " bytes: too short to hold an image header (%u bytes)",
                        d->size, IMAGE_PAGE_SIZE);
        return EXIT_NOT_RESUMABLE;
    }
    if (disk_read_at(d, d->first.page, 0, IMAGE_PAGE_SIZE, &truncated) != 0)
        return truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
    return 0;
}

void disk_close(struct disk *d)
{
    free(d->index);
    d->index = NULL;
    if (d->mac)
        page_mac_key_erase(d->mac);
    if (d->cipher)
        page_cipher_key_erase(d->cipher);
    free(d->mac);
    free(d->cipher);
    d->mac = NULL;
    d->cipher = NULL;
    if (d->fd >= 0)
        close(d->fd);
}

/* The disk's capacity as virtio-blk would give it to the guest: whole 512-byte sectors. */
uint64_t disk_sectors(const struct disk *d)
{
    return d->size / IMAGE_SECTOR_SIZE;
}

enum image_refusal disk_check_header(const struct disk *d, const struct image_header *h)
{
    struct image_expectation own = { .build_id = h->build_id, .ram_bytes = h->ram_bytes,
                                     .disk_sectors = disk_sectors(d) };

    return image_check_header(h, &own);
}

enum image_refusal disk_check_readable(const struct disk *d, enum image_refusal first)
{
    if (first != IMAGE_ALREADY_USED && first != IMAGE_UNFINISHED_RESUME && first != IMAGE_SKIPPED)
        return first;
    return image_check_contents(&d->first.header, disk_sectors(d));
}

enum image_refusal disk_use_key(struct disk *d, const struct image_key *key)
{
    const struct image_header *h = &d->first.header;
    enum image_refusal r = image_check_key(h, key, 1);

    if (r != IMAGE_OK || !(h->flags & IMAGE_FLAG_AUTHENTICATED))
        return r;
    d->mac = malloc(sizeof(*d->mac));
    d->cipher = malloc(sizeof(*d->cipher));
    if (!d->mac || !d->cipher) {
        hibimg_complain(d, "out of memory");
        exit(EXIT_ERROR);
    }
    image_mac_key_init(d->mac, key, h);
    page_cipher_key_init(d->cipher, key->secret, h->nonce);
    return image_check_header_tag(h, d->mac);
}

/* page_count entries fit in the disk (the header passed its checks), which bounds the
 * allocation. */
int disk_load_index(struct disk *d)
{
    const struct image_header *h = &d->first.header;
    uint64_t bytes = h->page_count * sizeof(struct image_index_entry);
    int truncated;

    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    if (bytes > d->size || bytes > SIZE_MAX) {
        hibimg_complain(d, "index of %" PRIu64 " entries larger than the disk", h->page_count);
        return EXIT_NOT_RESUMABLE;
    }
    if (pages > 0 && page_size > 0 && bytes > (uint64_t)pages * (uint64_t)page_size) {
        hibimg_complain(d, "index of %" PRIu64 " entries (%" PRIu64 " bytes) larger than this"
                        " machine's memory", h->page_count, bytes);
        return EXIT_ERROR;
    }
    d->index = malloc(bytes ? (size_t)bytes : 1);
    if (!d->index) {
        hibimg_complain(d, "cannot allocate %" PRIu64 " bytes for an index of %" PRIu64 " entries",
                        bytes, h->page_count);
        return EXIT_ERROR;
    }
    if (disk_read_at(d, d->index, h->index_sector * IMAGE_SECTOR_SIZE, bytes, &truncated) != 0)
        return truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
    return 0;
}

int disk_verify_data(struct disk *d, uint64_t *bad_entry)
{
    const struct image_header *h = &d->first.header;
    uint8_t *chunk = malloc((size_t)CHUNK_PAGES * IMAGE_PAGE_SIZE);
    uint64_t offset = h->data_sector * IMAGE_SECTOR_SIZE, left = h->data_pages;
    uint32_t have = 0, next = 0;
    int truncated, status = 0;

    *bad_entry = UINT64_MAX;
    if (!chunk) {
        hibimg_complain(d, "out of memory");
        return EXIT_ERROR;
    }
    for (uint64_t i = 0; i < h->page_count; i++) {
        const struct image_index_entry *e = &d->index[i];
        if (e->pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue; /* no data */
        if (next == have) {
            have = left < CHUNK_PAGES ? (uint32_t)left : CHUNK_PAGES;
            next = 0;
            if (disk_read_at(d, chunk, offset, (uint64_t)have * IMAGE_PAGE_SIZE, &truncated) != 0) {
                status = truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
                break;
            }
            offset += (uint64_t)have * IMAGE_PAGE_SIZE;
            left -= have;
        }
        if (!image_entry_matches(e, chunk + (size_t)next++ * IMAGE_PAGE_SIZE, d->mac)) {
            *bad_entry = i;
            status = EXIT_NOT_RESUMABLE;
            break;
        }
    }
    free(chunk);
    return status;
}
