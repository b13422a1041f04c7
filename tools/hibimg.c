/*
 * hibimg: reads a torpor hibernation image from a disk file or device
 * (docs/image-format.md). `info`, `verify`, `page` and `set`; every check
 * is pm/image.c's, the code the kernel runs (the disk side: hibimg_disk.c).
 * `key` reads the image key from an OVMF variable store (efi_vars.c).
 */
#include <errno.h>    // errno
#include <fcntl.h>    // open, O_WRONLY
#include <inttypes.h> // PRIu64, PRIx64, PRIu32
#include <stdio.h>    // printf, putchar, fprintf, fflush
#include <stdlib.h>   // strtoull
#include <string.h>   // strcmp, strerror, strspn
#include <unistd.h>   // pwrite, fsync, close

#include "crypto/page_cipher.h" // page_cipher_xor
#include "pm/image.h"          // image_*, IMAGE_*
#include "crypto/secret.h"     // secret_erase
#include "tools/efi_vars.h"    // efi_vars_image_key
#include "tools/hibimg_disk.h" // struct disk, disk_*, hibimg_complain, EXIT_*, HIBIMG_PROGRAM

/* The owner's key, from `--vars FILE` (tools/efi_vars.h); NULL when none was given. */
static const struct image_key *owner_key;

/* An index too large for memory must be an error message, not an ASan abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static int usage(FILE *to, int status)
{
    fprintf(to,
            "usage: %s [--vars VARS] COMMAND ...\n"
            "  --vars VARS             the guest's UEFI variable store (OVMF vars file), whose\n"
            "                          key checks an authenticated image (docs/security.md);\n"
            "                          without it such an image's tags are never checked\n"
            "       %s info DISK        the image's header, and whether it can be resumed\n"
            "       %s verify DISK      info's checks and every data page's checksum or tag\n"
            "       %s page DISK PFN    hex dump of the saved page of frame PFN (decimal or 0x hex)\n"
            "       %s set DISK state valid|resuming|used|skipped\n"
            "       %s set DISK build_id HEX\n"
            "                          rewrite one header field of a sound header and seal it\n"
            "                          again (tests and recovery: `state valid` re-arms an image\n"
            "                          that was skipped or whose resume never finished, after\n"
            "                          verify's checks of its header, index and data pass)\n"
            "       %s key [--show-secret] VARS\n"
            "                          the image key in an OVMF variable store file: its chain\n"
            "                          and counter (the secret only with --show-secret, for tests)\n"
            "exit status: 0 resumable image (key: a key), 1 no resumable image (key: no key),\n"
            "2 usage or I/O error (key: the file is not a variable store, or the record is bad)\n",
            HIBIMG_PROGRAM, HIBIMG_PROGRAM, HIBIMG_PROGRAM, HIBIMG_PROGRAM, HIBIMG_PROGRAM, HIBIMG_PROGRAM,
            HIBIMG_PROGRAM);
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
    case IMAGE_NO_KEY: return "authenticated under a key this vars store does not hold (or none given)";
    case IMAGE_REPLAYED: return "authenticated under an older key of this guest: a replay";
    case IMAGE_BAD_MAC: return "a tag does not check: altered, or not written under this key";
    case IMAGE_NOT_AUTHENTICATED: return "a plain image";
    default: return "refused";
    }
}

static void complain_refused(const struct disk *d, enum image_refusal r)
{
    hibimg_complain(d, "no resumable image: %s (%s)", image_refusal_text(r), refusal_meaning(r));
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
           " image_base=0x%" PRIx64 " written_ms=%" PRIu64,
           state_text(h->state), h->version, h->page_count, h->zero_pages, h->data_pages, bytes,
           h->build_id, h->ram_bytes >> 20, h->image_base, h->written_ns / 1000000);
    printf(" protection=%s", (h->flags & IMAGE_FLAG_ENCRYPTED)       ? "encrypted"
                           : (h->flags & IMAGE_FLAG_AUTHENTICATED) ? "authenticated"
                                                                    : "plain");
    if (h->flags & IMAGE_FLAG_AUTHENTICATED)
        printf(" key_counter=%" PRIu64, h->key_counter);
    printf(" disk_sectors=%" PRIu64 " disk_serial=", h->disk_sectors);
    print_serial(h->disk_serial);
    putchar('\n');
}

/* info's checks: prints the image line and `check=...` and returns that refusal. *inside
 * is the refusal of everything but the state: IMAGE_OK when the index is loaded and sound,
 * so the data can be read even of a used or half-resumed image. */
static enum image_refusal run_checks(struct disk *d, int *status, enum image_refusal *inside)
{
    const struct image_header *h = &d->first.header;
    enum image_refusal r = disk_check_header(d, h);

    *status = 0;
    if (r != IMAGE_BAD_MAGIC && r != IMAGE_BAD_VERSION)
        print_image_line(h); /* the fields mean something */
    *inside = disk_check_readable(d, r);
    if (*inside == IMAGE_OK)
        *inside = disk_use_key(d, owner_key);
    if (r == IMAGE_OK)
        r = *inside;
    if (*inside == IMAGE_OK) {
        *status = disk_load_index(d);
        if (*status != 0)
            return r;
        *inside = image_check_index(h, d->index, NULL, 0, d->mac);
        if (r == IMAGE_OK)
            r = *inside;
    }
    printf("check=%s\n", image_refusal_text(r));
    return r;
}

static int command_info(const char *path)
{
    struct disk d;
    int status = disk_open(&d, path);
    enum image_refusal inside;

    if (status == 0) {
        enum image_refusal r = run_checks(&d, &status, &inside);
        if (status == 0 && r != IMAGE_OK) {
            complain_refused(&d, r);
            status = EXIT_NOT_RESUMABLE;
        }
    }
    disk_close(&d);
    return status;
}

static int command_verify(const char *path)
{
    struct disk d;
    int status = disk_open(&d, path);
    enum image_refusal inside;

    if (status == 0) {
        enum image_refusal r = run_checks(&d, &status, &inside);
        if (status == 0 && inside != IMAGE_OK) {
            printf("verify FAIL reason=%s\n", image_refusal_text(inside));
            complain_refused(&d, inside);
            status = EXIT_NOT_RESUMABLE;
        } else if (status == 0) {
            uint64_t bad;
            status = disk_verify_data(&d, &bad);
            if (bad != UINT64_MAX) {
                uint64_t pfn = IMAGE_ENTRY_PFN(d.index[bad].pfn_and_flags);
                enum image_refusal page = d.mac ? IMAGE_BAD_MAC : IMAGE_BAD_PAGE_CHECKSUM;
                printf("verify FAIL reason=%s page_index=%" PRIu64 " pfn=0x%" PRIx64 "\n",
                       image_refusal_text(page), bad, pfn);
                hibimg_complain(&d, "page %" PRIu64 " (pfn 0x%" PRIx64 ") fails its %s: %s", bad, pfn,
                                d.mac ? "tag" : "checksum", refusal_meaning(page));
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
    disk_close(&d);
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
        hibimg_complain(NULL, "bad PFN '%s': give a frame number in decimal or 0x hex", pfn_text);
        return EXIT_ERROR;
    }
    status = disk_open(&d, path);
    if (status != 0)
        goto out;
    r = disk_check_readable(&d, disk_check_header(&d, &d.first.header));
    if (r == IMAGE_OK)
        r = disk_use_key(&d, owner_key);
    if (r == IMAGE_OK) {
        status = disk_load_index(&d);
        if (status != 0)
            goto out;
        r = image_check_index(&d.first.header, d.index, NULL, 0, d.mac);
    }
    if (r != IMAGE_OK) {
        hibimg_complain(&d, "no readable image: %s (%s)", image_refusal_text(r), refusal_meaning(r));
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
        hibimg_complain(&d, "pfn 0x%" PRIx64 " is not in the image", pfn);
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
    if (disk_read_at(&d, page, d.first.header.data_sector * IMAGE_SECTOR_SIZE + data_index * IMAGE_PAGE_SIZE,
                     IMAGE_PAGE_SIZE, &truncated) != 0) {
        status = truncated ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
        goto out;
    }
    int matches = image_entry_matches(&d.index[low], page, d.mac);
    if (matches && d.cipher && (d.first.header.flags & IMAGE_FLAG_ENCRYPTED))
        page_cipher_xor(d.cipher, pfn, page, page); /* checked, so decrypted */
    hex_dump(page);
    if (!matches) {
        hibimg_complain(&d, "page pfn 0x%" PRIx64 " fails its %s (%s): dumped as stored", pfn,
                        d.mac ? "tag" : "checksum",
                        image_refusal_text(d.mac ? IMAGE_BAD_MAC : IMAGE_BAD_PAGE_CHECKSUM));
        status = EXIT_NOT_RESUMABLE;
    }
out:
    disk_close(&d);
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
    int status = disk_load_index(d);

    *refusal = IMAGE_OK;
    *bad_entry = UINT64_MAX;
    if (status != 0)
        return status;
    *refusal = disk_use_key(d, owner_key);
    if (*refusal == IMAGE_OK)
        *refusal = image_check_index(&d->first.header, d->index, NULL, 0, d->mac);
    if (*refusal != IMAGE_OK)
        return EXIT_NOT_RESUMABLE;
    status = disk_verify_data(d, bad_entry);
    if (*bad_entry != UINT64_MAX)
        *refusal = d->mac ? IMAGE_BAD_MAC : IMAGE_BAD_PAGE_CHECKSUM;
    return status;
}

/* Rewrites one field of a sound header and seals it again. A damaged header is never
 * resealed (that would hide the damage), and an image is set valid only when every check
 * hibimg can make passes: a boot would then resume it. */
static int command_set(const char *path, const char *field, const char *value)
{
    struct disk d;
    int status = disk_open(&d, path);
    struct image_header *h = &d.first.header;
    uint32_t state = 0;
    uint64_t build_id = 0;
    char *end;

    if (status != 0)
        goto out;
    if (!strcmp(field, "state")) {
        if (parse_state(value, &state) != 0) {
            hibimg_complain(&d, "'%s' is not a state (valid, resuming, used or skipped)", value);
            status = EXIT_ERROR;
            goto out;
        }
    } else if (!strcmp(field, "build_id")) {
        errno = 0;
        build_id = strtoull(value, &end, 16);
        if (errno || !*value || *end) {
            hibimg_complain(&d, "'%s' is not a hex build id", value);
            status = EXIT_ERROR;
            goto out;
        }
    } else {
        hibimg_complain(&d, "'%s' is not a field hibimg can set (state, build_id)", field);
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
            hibimg_complain(&d, "not changed: %s: page %" PRIu64 " (pfn 0x%" PRIx64 ") is damaged",
                            image_refusal_text(r), bad, IMAGE_ENTRY_PFN(d.index[bad].pfn_and_flags));
        else
            hibimg_complain(&d, "not changed: %s (%s)", image_refusal_text(r), refusal_meaning(r));
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
        hibimg_complain(&d, "writing the header: %s", strerror(errno));
        status = EXIT_ERROR;
    }
    if (fd >= 0)
        close(fd);
out:
    disk_close(&d);
    return status;
}

static void print_hex(const char *name, const uint8_t *bytes, unsigned count)
{
    printf(" %s=", name);
    for (unsigned i = 0; i < count; i++)
        printf("%02x", bytes[i]);
}

/* `key chain=HEX counter=N`: what a later `verify --vars` will check. */
static int command_key(const char *path, int show_secret)
{
    struct image_key key;
    char error[256];
    int result = efi_vars_image_key(path, &key, error, sizeof(error));

    if (result != EFI_VARS_FOUND) {
        fprintf(stderr, "%s: %s\n", HIBIMG_PROGRAM, error);
        return result == EFI_VARS_ABSENT ? EXIT_NOT_RESUMABLE : EXIT_ERROR;
    }
    printf("key");
    print_hex("chain", key.chain, sizeof(key.chain));
    printf(" counter=%" PRIu64, key.counter);
    if (show_secret)
        print_hex("secret", key.secret, sizeof(key.secret));
    printf("\n");
    secret_erase(&key, sizeof(key));
    return EXIT_RESUMABLE;
}

/* `--vars VARS`: the owner's key for the command. A file that holds none
 * leaves the key unknown (an authenticated image is then `no-key`); one
 * that is not a variable store is an error. */
static int load_owner_key(const char *path)
{
    static struct image_key key;
    char error[256];
    int result = efi_vars_image_key(path, &key, error, sizeof(error));

    if (result == EFI_VARS_BAD) {
        fprintf(stderr, "%s: %s\n", HIBIMG_PROGRAM, error);
        return EXIT_ERROR;
    }
    owner_key = result == EFI_VARS_FOUND ? &key : NULL;
    return 0;
}

int main(int argc, char **argv)
{
    int status;

    if (argc >= 3 && !strcmp(argv[1], "--vars")) {
        if (load_owner_key(argv[2]) != 0)
            return EXIT_ERROR;
        argv[2] = argv[0];
        argv += 2;
        argc -= 2;
    }
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return usage(stdout, 0);
    if (argc == 3 && !strcmp(argv[1], "info"))
        status = command_info(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "verify"))
        status = command_verify(argv[2]);
    else if (argc == 4 && !strcmp(argv[1], "page"))
        status = command_page(argv[2], argv[3]);
    else if (argc == 3 && !strcmp(argv[1], "key"))
        status = command_key(argv[2], 0);
    else if (argc == 4 && !strcmp(argv[1], "key") && !strcmp(argv[2], "--show-secret"))
        status = command_key(argv[3], 1);
    else if (argc == 5 && !strcmp(argv[1], "set"))
        status = command_set(argv[2], argv[3], argv[4]);
    else
        return usage(stderr, EXIT_ERROR);
    if (owner_key)
        secret_erase((void *)owner_key, sizeof(*owner_key));
    if (fflush(stdout) != 0) {
        hibimg_complain(NULL, "writing the output: %s", strerror(errno));
        return EXIT_ERROR;
    }
    return status;
}
