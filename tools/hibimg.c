/*
 * hibimg: reads a torpor hibernation image from a disk file or device
 * (docs/image-format.md). `info`, `verify` and `page`; every check is
 * pm/image.c's, the code the kernel runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pm/image.h"

/* exit status: the image is resumable / it is not / usage or I/O error */
enum { EXIT_RESUMABLE = 0, EXIT_NOT_RESUMABLE = 1, EXIT_ERROR = 2 };

/* data pages read at once by `verify` */
#define CHUNK_PAGES 64u

/* An index too large for memory must be an error message, not an ASan abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

struct disk {
    const char *path;
    int fd;
    uint64_t size;
    union {
        struct image_header header;
        uint8_t page[IMAGE_PAGE_SIZE];
    } first;                        /* sector 0: the header page */
    struct image_index_entry *index;
};

static const char *program = "hibimg";

/* One line on stderr: `hibimg: DISK: what happened`. */
static void complain(const struct disk *d, const char *format, ...)
{
    va_list args;

    fprintf(stderr, "%s: ", program);
    if (d)
        fprintf(stderr, "%s: ", d->path);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}

static int usage(FILE *to, int status)
{
    fprintf(to,
            "usage: %s info DISK        the image's header, and whether it can be resumed\n"
            "       %s verify DISK      info's checks and every data page's checksum\n"
            "       %s page DISK PFN    hex dump of the saved page of frame PFN (decimal or 0x hex)\n"
            "       %s set DISK state valid|resuming|used|skipped\n"
            "       %s set DISK build_id HEX\n"
            "                          rewrite one header field of a sound header and seal it\n"
            "                          again (tests and recovery: `state valid` re-arms an image\n"
            "                          that was skipped or whose resume never finished, after\n"
            "                          verify's checks of its header, index and data pass)\n"
            "exit status: 0 resumable image, 1 no resumable image, 2 usage or I/O error\n",
            program, program, program, program, program);
    return status;
}

/* What each refusal means, for the stderr line. */
static const char *refusal_meaning(enum image_refusal r)
{
    switch (r) {
    case IMAGE_NONE: return "the disk holds no image";
    case IMAGE_BAD_MAGIC: return "not a torpor hibernation image";
    case IMAGE_BAD_VERSION: return "an image format version this tool does not read";
    case IMAGE_BAD_HEADER_CHECKSUM: return "the header is damaged";
    case IMAGE_ALREADY_USED: return "the image was resumed once already";
    case IMAGE_UNFINISHED_RESUME: return "a boot began to resume the image and never said how it ended";
    case IMAGE_SKIPPED: return "a boot went on without it while it was on the disk";
    case IMAGE_BAD_LAYOUT: return "the header describes a layout that cannot be";
    case IMAGE_DISK_TOO_SMALL: return "the image runs past the end of the disk (truncated?)";
    case IMAGE_DISK_CHANGED: return "the disk is not the size the image was written to";
    case IMAGE_BAD_INDEX_CHECKSUM: return "the page index is damaged";
    case IMAGE_INDEX_NOT_SORTED: return "the page index is out of order";
    case IMAGE_PAGE_NOT_RAM: return "the index names a frame outside the saved RAM ranges";
    case IMAGE_BAD_ZERO_COUNT: return "the index and header disagree on zero pages";
    case IMAGE_BAD_ENTRY_FLAGS: return "an index entry has unknown flags";
    case IMAGE_BAD_PAGE_CHECKSUM: return "a data page is damaged";
    default: return "refused";
    }
}

static void complain_refused(const struct disk *d, enum image_refusal r)
{
    complain(d, "no resumable image: %s (%s)", image_refusal_text(r), refusal_meaning(r));
}

/* Reads bytes at offset in chunks; 0, or -1 after saying why (a short read is a truncated
 * disk: *truncated is set; anything else is an I/O error). */
static int read_at(const struct disk *d, void *buffer, uint64_t offset, uint64_t bytes,
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
            complain(d, "read at byte %" PRIu64 ": %s", offset, strerror(errno));
            return -1;
        }
        if (got == 0) {
            complain(d, "truncated: no data at byte %" PRIu64 " (the disk shrank?)", offset);
            *truncated = 1;
            return -1;
        }
        to += got;
        offset += (uint64_t)got;
        bytes -= (uint64_t)got;
    }
    return 0;
}

/* Opens the disk and reads its header page. Returns 0, or an exit status. */
static int open_disk(struct disk *d, const char *path)
{
    int truncated;
    off_t end;

    memset(d, 0, sizeof(*d));
    d->path = path;
    d->fd = open(path, O_RDONLY);
    if (d->fd < 0) {
        complain(d, "%s", strerror(errno));
        return EXIT_ERROR;
    }
    end = lseek(d->fd, 0, SEEK_END); /* works for block devices too */
    if (end < 0) {
        complain(d, "cannot find its size: %s", strerror(errno));
        return EXIT_ERROR;
    }
    d->size = (uint64_t)end;
    if (d->size < IMAGE_PAGE_SIZE) {
        complain(d, "%" PRIu64 " bytes: too short to hold an image header (%u bytes)", d->size,
                 IMAGE_PAGE_SIZE);
        return EXIT_NOT_RESUMABLE;
    }
    if (read_at(d, d->first.page, 0, IMAGE_PAGE_SIZE, &truncated) != 0)
        return truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
    return 0;
}

static void close_disk(struct disk *d)
{
    free(d->index);
    d->index = NULL;
    if (d->fd >= 0)
        close(d->fd);
}

/* The disk's capacity as virtio-blk would give it to the guest: whole 512-byte sectors. */
static uint64_t disk_sectors(const struct disk *d)
{
    return d->size / IMAGE_SECTOR_SIZE;
}

/* image_check_header against the image's own build and RAM (this is not the boot that will
 * resume it) and this disk's capacity; a file has no serial to check. */
static enum image_refusal check_header(const struct disk *d, const struct image_header *h)
{
    struct image_expectation own = { .build_id = h->build_id, .ram_bytes = h->ram_bytes,
                                     .disk_sectors = disk_sectors(d) };

    return image_check_header(h, &own);
}

/* Whether the image can be read at all: an image refused only for its state (used, skipped,
 * or a resume that never finished) gets the remaining checks, so `verify` and `page` can
 * still look inside it. */
static enum image_refusal check_readable(const struct disk *d, enum image_refusal first)
{
    if (first != IMAGE_ALREADY_USED && first != IMAGE_UNFINISHED_RESUME && first != IMAGE_SKIPPED)
        return first;
    return image_check_contents(&d->first.header, disk_sectors(d));
}

/* Reads the index of a header that passed its checks, so page_count entries fit in the
 * disk, which bounds the allocation. Returns 0, or an exit status. */
static int load_index(struct disk *d)
{
    const struct image_header *h = &d->first.header;
    uint64_t bytes = h->page_count * sizeof(struct image_index_entry);
    int truncated;

    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    if (bytes > d->size || bytes > SIZE_MAX) {
        complain(d, "index of %" PRIu64 " entries larger than the disk", h->page_count);
        return EXIT_NOT_RESUMABLE;
    }
    if (pages > 0 && page_size > 0 && bytes > (uint64_t)pages * (uint64_t)page_size) {
        complain(d, "index of %" PRIu64 " entries (%" PRIu64 " bytes) larger than this machine's memory",
                 h->page_count, bytes);
        return EXIT_ERROR;
    }
    d->index = malloc(bytes ? (size_t)bytes : 1);
    if (!d->index) {
        complain(d, "cannot allocate %" PRIu64 " bytes for an index of %" PRIu64 " entries",
                 bytes, h->page_count);
        return EXIT_ERROR;
    }
    if (read_at(d, d->index, h->index_sector * IMAGE_SECTOR_SIZE, bytes, &truncated) != 0)
        return truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
    return 0;
}

static const char *state_text(uint32_t state)
{
    switch (state) {
    case IMAGE_STATE_EMPTY: return "empty";
    case IMAGE_STATE_VALID: return "valid";
    case IMAGE_STATE_RESUMING: return "resuming";
    case IMAGE_STATE_USED: return "used";
    case IMAGE_STATE_SKIPPED: return "skipped";
    default: return "unknown";
    }
}

/* The serial as one word: printable characters as they are, others as \xNN; `-` for none. */
static void print_serial(const uint8_t *serial)
{
    size_t length = 0;

    while (length < IMAGE_DISK_SERIAL_BYTES && serial[length])
        length++;
    if (!length)
        putchar('-');
    for (size_t i = 0; i < length; i++) {
        if (serial[i] > ' ' && serial[i] < 0x7f && serial[i] != '=' && serial[i] != '\\')
            putchar(serial[i]);
        else
            printf("\\x%02x", serial[i]);
    }
}

/* `image state=... disk_serial=S`: the header as it is on the disk. */
static void print_image_line(const struct image_header *h)
{
    struct image_header layout = *h;
    uint64_t bytes = image_layout(&layout, h->page_count, h->zero_pages);

    if (h->magic == 0 && h->state == IMAGE_STATE_EMPTY)
        bytes = 0; /* no image takes no room */

    printf("image state=%s version=%" PRIu32 " pages=%" PRIu64 " zero_pages=%" PRIu64
           " data_pages=%" PRIu64 " bytes=%" PRIu64 " build_id=%016" PRIx64 " ram_mib=%" PRIu64
           " image_base=0x%" PRIx64 " written_ms=%" PRIu64 " disk_sectors=%" PRIu64 " disk_serial=",
           state_text(h->state), h->version, h->page_count, h->zero_pages, h->data_pages, bytes,
           h->build_id, h->ram_bytes >> 20, h->image_base, h->written_ns / 1000000, h->disk_sectors);
    print_serial(h->disk_serial);
    putchar('\n');
}

/* info's checks: prints the image line and `check=...` and returns that refusal. *inside
 * is the refusal of everything but the state: IMAGE_OK when the index is loaded and sound,
 * so the data can be read even of a used or half-resumed image. */
static enum image_refusal run_checks(struct disk *d, int *status, enum image_refusal *inside)
{
    const struct image_header *h = &d->first.header;
    enum image_refusal r = check_header(d, h);

    *status = 0;
    if (r != IMAGE_BAD_MAGIC && r != IMAGE_BAD_VERSION)
        print_image_line(h); /* the fields mean something */
    *inside = check_readable(d, r);
    if (*inside == IMAGE_OK) {
        *status = load_index(d);
        if (*status != 0)
            return r;
        *inside = image_check_index(h, d->index, NULL, 0);
        if (r == IMAGE_OK)
            r = *inside;
    }
    printf("check=%s\n", image_refusal_text(r));
    return r;
}

static int command_info(const char *path)
{
    struct disk d;
    int status = open_disk(&d, path);
    enum image_refusal inside;

    if (status == 0) {
        enum image_refusal r = run_checks(&d, &status, &inside);
        if (status == 0 && r != IMAGE_OK) {
            complain_refused(&d, r);
            status = EXIT_NOT_RESUMABLE;
        }
    }
    close_disk(&d);
    return status;
}

/* Checks every data page, reading the data area front to back. Returns 0, or an exit status:
 * after a read error (said), or with *bad_entry the index entry of the first damaged page
 * (for the caller to say). */
static int verify_data(struct disk *d, uint64_t *bad_entry)
{
    const struct image_header *h = &d->first.header;
    uint8_t *chunk = malloc((size_t)CHUNK_PAGES * IMAGE_PAGE_SIZE);
    uint64_t offset = h->data_sector * IMAGE_SECTOR_SIZE, left = h->data_pages;
    uint32_t have = 0, next = 0;
    int truncated, status = 0;

    *bad_entry = UINT64_MAX;
    if (!chunk) {
        complain(d, "out of memory");
        return EXIT_ERROR;
    }
    for (uint64_t i = 0; i < h->page_count; i++) {
        const struct image_index_entry *e = &d->index[i];
        if (e->pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue; /* no data */
        if (next == have) {
            have = left < CHUNK_PAGES ? (uint32_t)left : CHUNK_PAGES;
            next = 0;
            if (read_at(d, chunk, offset, (uint64_t)have * IMAGE_PAGE_SIZE, &truncated) != 0) {
                status = truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
                break;
            }
            offset += (uint64_t)have * IMAGE_PAGE_SIZE;
            left -= have;
        }
        if (image_checksum(chunk + (size_t)next++ * IMAGE_PAGE_SIZE, IMAGE_PAGE_SIZE) != e->checksum) {
            *bad_entry = i;
            status = EXIT_NOT_RESUMABLE;
            break;
        }
    }
    free(chunk);
    return status;
}

static int command_verify(const char *path)
{
    struct disk d;
    int status = open_disk(&d, path);
    enum image_refusal inside;

    if (status == 0) {
        enum image_refusal r = run_checks(&d, &status, &inside);
        if (status == 0 && inside != IMAGE_OK) {
            printf("verify FAIL reason=%s\n", image_refusal_text(inside));
            complain_refused(&d, inside);
            status = EXIT_NOT_RESUMABLE;
        } else if (status == 0) {
            uint64_t bad;
            status = verify_data(&d, &bad);
            if (bad != UINT64_MAX) {
                uint64_t pfn = IMAGE_ENTRY_PFN(d.index[bad].pfn_and_flags);
                printf("verify FAIL reason=%s page_index=%" PRIu64 " pfn=0x%" PRIx64 "\n",
                       image_refusal_text(IMAGE_BAD_PAGE_CHECKSUM), bad, pfn);
                complain(&d, "page %" PRIu64 " (pfn 0x%" PRIx64 ") fails its checksum: %s", bad, pfn,
                         refusal_meaning(IMAGE_BAD_PAGE_CHECKSUM));
            }
            if (status == 0) {
                printf("verify ok pages=%" PRIu64 "\n", d.first.header.page_count);
                if (r != IMAGE_OK) { /* whole, but used or half resumed */
                    complain_refused(&d, r);
                    status = EXIT_NOT_RESUMABLE;
                }
            }
        }
    }
    close_disk(&d);
    return status;
}

/* PFN as decimal or 0x hex, nothing else. */
static int parse_pfn(const char *text, uint64_t *pfn)
{
    const char *digits = "0123456789";
    int base = 10;

    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        digits = "0123456789abcdefABCDEF";
        base = 16;
        text += 2;
    }
    if (text[0] == '\0' || text[strspn(text, digits)] != '\0')
        return -1;
    errno = 0;
    *pfn = strtoull(text, NULL, base);
    return errno ? -1 : 0;
}

static void hex_dump(const uint8_t *page)
{
    for (unsigned line = 0; line < IMAGE_PAGE_SIZE; line += 16) {
        printf("%08x ", line);
        for (unsigned i = 0; i < 16; i++)
            printf(" %02x", page[line + i]);
        putchar('\n');
    }
}

static int command_page(const char *path, const char *pfn_text)
{
    struct disk d;
    uint64_t pfn, low = 0, high, data_index = 0;
    enum image_refusal r;
    int status, truncated;

    if (parse_pfn(pfn_text, &pfn) != 0) {
        complain(NULL, "bad PFN '%s': give a frame number in decimal or 0x hex", pfn_text);
        return EXIT_ERROR;
    }
    status = open_disk(&d, path);
    if (status != 0)
        goto out;
    r = check_readable(&d, check_header(&d, &d.first.header));
    if (r == IMAGE_OK) {
        status = load_index(&d);
        if (status != 0)
            goto out;
        r = image_check_index(&d.first.header, d.index, NULL, 0);
    }
    if (r != IMAGE_OK) {
        complain(&d, "no readable image: %s (%s)", image_refusal_text(r), refusal_meaning(r));
        status = EXIT_NOT_RESUMABLE;
        goto out;
    }
    high = d.first.header.page_count; /* the index is sorted: binary search */
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        if (IMAGE_ENTRY_PFN(d.index[middle].pfn_and_flags) < pfn)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == d.first.header.page_count || IMAGE_ENTRY_PFN(d.index[low].pfn_and_flags) != pfn) {
        complain(&d, "pfn 0x%" PRIx64 " is not in the image", pfn);
        status = EXIT_NOT_RESUMABLE;
        goto out;
    }
    if (d.index[low].pfn_and_flags & IMAGE_ENTRY_ZERO) {
        printf("page pfn=0x%" PRIx64 " zero=1\n", pfn);
        goto out;
    }
    for (uint64_t i = 0; i < low; i++)
        data_index += !(d.index[i].pfn_and_flags & IMAGE_ENTRY_ZERO);
    uint8_t page[IMAGE_PAGE_SIZE] __attribute__((aligned(8)));
    if (read_at(&d, page, d.first.header.data_sector * IMAGE_SECTOR_SIZE + data_index * IMAGE_PAGE_SIZE,
                IMAGE_PAGE_SIZE, &truncated) != 0) {
        status = truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
        goto out;
    }
    hex_dump(page);
    if (image_checksum(page, IMAGE_PAGE_SIZE) != d.index[low].checksum) {
        complain(&d, "page pfn 0x%" PRIx64 " fails its checksum (%s): dumped as stored", pfn,
                 image_refusal_text(IMAGE_BAD_PAGE_CHECKSUM));
        status = EXIT_NOT_RESUMABLE;
    }
out:
    close_disk(&d);
    return status;
}

static int parse_state(const char *text, uint32_t *state)
{
    static const struct { const char *name; uint32_t state; } names[] = {
        { "valid", IMAGE_STATE_VALID },       { "resuming", IMAGE_STATE_RESUMING },
        { "used", IMAGE_STATE_USED },         { "skipped", IMAGE_STATE_SKIPPED },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(text, names[i].name)) {
            *state = names[i].state;
            return 0;
        }
    return -1;
}

/* Whether the whole image checks out: the index, then every data page. 0 (IMAGE_OK), an
 * exit status after a read error, or the refusal. */
static int check_everything(struct disk *d, enum image_refusal *refusal, uint64_t *bad_entry)
{
    int status = load_index(d);

    *refusal = IMAGE_OK;
    *bad_entry = UINT64_MAX;
    if (status != 0)
        return status;
    *refusal = image_check_index(&d->first.header, d->index, NULL, 0);
    if (*refusal != IMAGE_OK)
        return EXIT_NOT_RESUMABLE;
    status = verify_data(d, bad_entry);
    if (*bad_entry != UINT64_MAX)
        *refusal = IMAGE_BAD_PAGE_CHECKSUM;
    return status;
}

/* Rewrites one field of a sound header and seals it again. A damaged header is never
 * resealed (that would hide the damage), and an image is set valid only when every check
 * hibimg can make passes: a boot would then resume it. */
static int command_set(const char *path, const char *field, const char *value)
{
    struct disk d;
    int status = open_disk(&d, path);
    struct image_header *h = &d.first.header;
    uint32_t state = 0;
    uint64_t build_id = 0;
    char *end;

    if (status != 0)
        goto out;
    if (!strcmp(field, "state")) {
        if (parse_state(value, &state) != 0) {
            complain(&d, "'%s' is not a state (valid, resuming, used or skipped)", value);
            status = EXIT_ERROR;
            goto out;
        }
    } else if (!strcmp(field, "build_id")) {
        errno = 0;
        build_id = strtoull(value, &end, 16);
        if (errno || !*value || *end) {
            complain(&d, "'%s' is not a hex build id", value);
            status = EXIT_ERROR;
            goto out;
        }
    } else {
        complain(&d, "'%s' is not a field hibimg can set (state, build_id)", field);
        status = EXIT_ERROR;
        goto out;
    }
    enum image_refusal r = image_check_contents(h, disk_sectors(&d));
    uint64_t bad = UINT64_MAX;
    if (r == IMAGE_OK && state == IMAGE_STATE_VALID) {
        status = check_everything(&d, &r, &bad);
        if (status != 0 && r == IMAGE_OK)
            goto out; /* a read error, said */
    }
    if (r != IMAGE_OK) {
        if (bad != UINT64_MAX)
            complain(&d, "not changed: %s: page %" PRIu64 " (pfn 0x%" PRIx64 ") is damaged",
                     image_refusal_text(r), bad, IMAGE_ENTRY_PFN(d.index[bad].pfn_and_flags));
        else
            complain(&d, "not changed: %s (%s)", image_refusal_text(r), refusal_meaning(r));
        status = EXIT_NOT_RESUMABLE;
        goto out;
    }
    if (!strcmp(field, "state"))
        h->state = state;
    else
        h->build_id = build_id;
    image_seal(h);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, d.first.page, IMAGE_PAGE_SIZE, 0) != IMAGE_PAGE_SIZE || fsync(fd) != 0) {
        complain(&d, "writing the header: %s", strerror(errno));
        status = EXIT_ERROR;
    }
    if (fd >= 0)
        close(fd);
out:
    close_disk(&d);
    return status;
}

int main(int argc, char **argv)
{
    int status;

    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return usage(stdout, 0);
    if (argc == 3 && !strcmp(argv[1], "info"))
        status = command_info(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "verify"))
        status = command_verify(argv[2]);
    else if (argc == 4 && !strcmp(argv[1], "page"))
        status = command_page(argv[2], argv[3]);
    else if (argc == 5 && !strcmp(argv[1], "set"))
        status = command_set(argv[2], argv[3], argv[4]);
    else
        return usage(stderr, EXIT_ERROR);
    if (fflush(stdout) != 0) {
        complain(NULL, "writing the output: %s", strerror(errno));
        return EXIT_ERROR;
    }
    return status;
}
