/*
 * The pure parts of hibernation images: checksums, layout, validation with
 * a reason for every refusal, and the restore planner that decides where
 * each saved page is read to. No kernel state: the host tests and
 * tools/hibimg run this same code.
 */
#ifndef PM_IMAGE_H
#define PM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "boot/handoff.h"     // struct image_key
#include "crypto/page_mac.h"   // struct page_mac_key
#include "pm/image_format.h"   // struct image_header

/* Why an image is not resumed; image_refusal_text gives the stable
 * `reason=` word the console prints. */
enum image_refusal {
    IMAGE_OK = 0,
    IMAGE_NONE,                 /* no image on the disk */
    IMAGE_BAD_MAGIC,
    IMAGE_BAD_VERSION,
    IMAGE_BAD_HEADER_CHECKSUM,
    IMAGE_ALREADY_USED,
    IMAGE_UNFINISHED_RESUME,    /* an earlier boot began a resume that never ended */
    IMAGE_SKIPPED,              /* a boot went on fresh while the image was on the disk */
    IMAGE_OTHER_BUILD,          /* written by a different torpor binary */
    IMAGE_RAM_CHANGED,          /* the RAM size differs */
    IMAGE_RAM_LAYOUT_CHANGED,   /* same size, but RAM sits elsewhere */
    IMAGE_BAD_LAYOUT,           /* counts, sectors or ranges that cannot be */
    IMAGE_DISK_TOO_SMALL,       /* the image runs past the end of the disk */
    IMAGE_DISK_CHANGED,         /* not the disk it was written to: serial or capacity */
    IMAGE_BAD_INDEX_CHECKSUM,
    IMAGE_INDEX_NOT_SORTED,     /* frames out of order or repeated */
    IMAGE_PAGE_NOT_RAM,         /* a saved frame is not RAM in this boot */
    IMAGE_BAD_ZERO_COUNT,
    IMAGE_BAD_ENTRY_FLAGS,
    IMAGE_BAD_PAGE_CHECKSUM,
    IMAGE_TOO_MANY_RANGES,      /* hibernate's own: more RAM runs than a header records */
    IMAGE_NO_KEY,               /* authenticated under a key this boot does not have */
    IMAGE_REPLAYED,             /* authenticated under an older key of this guest */
    IMAGE_BAD_MAC,              /* a tag of the header, the index or a page does not check */
    IMAGE_NOT_AUTHENTICATED,    /* a plain image where only authenticated ones are taken */
    IMAGE_REFUSAL_COUNT,
};

const char *image_refusal_text(enum image_refusal refusal);

/* Every checksum of the format: XXH64 (lib/hash.h) of any bytes, seed
 * IMAGE_CHECKSUM_SEED. Each output bit depends on every input bit. */
uint64_t image_checksum(const void *data, size_t bytes);
/* Stops at the first non-zero word: cheap for most pages in use. */
int image_page_is_zero(const void *page);

/* Index size on disk, rounded up to whole pages. */
uint64_t image_index_bytes(uint64_t page_count);
/* Fills the sector fields for page_count entries with zero_pages zero
 * pages; returns the bytes the whole image needs on the disk. */
uint64_t image_layout(struct image_header *header, uint64_t page_count, uint64_t zero_pages);
/* Records the disk the image goes to: its serial as the driver read it
 * (a string; only the first IMAGE_DISK_SERIAL_BYTES are kept, the rest of
 * the field is zeros) and its capacity in 512-byte sectors. */
void image_set_disk_identity(struct image_header *header, const char *serial, uint64_t sectors);
/* Sets header_checksum (call last). */
void image_seal(struct image_header *header);
/* Sets the state and seals again. */
void image_set_state(struct image_header *header, enum image_state state);
/* Whether this header, as read from the disk, is an image a later boot
 * would resume (magic, version and checksum right, state valid): a boot
 * that goes on fresh after reading it must first write it back skipped
 * (image_set_state). */
int image_is_armed(const struct image_header *header);

struct image_expectation {
    uint64_t build_id;
    uint64_t ram_bytes;
    uint64_t disk_sectors;      /* the resuming disk's capacity, 512-byte sectors */
    const char *disk_serial;    /* and its serial (a string); NULL: not checked */
    /* this boot's RAM runs (sorted); they must be the image's exactly, so
     * every page the image kernel thinks free is RAM here too. NULL: not
     * checked. */
    const struct image_ram_range *ranges;
    size_t range_count;
};

/* Whether this boot's RAM runs (its zones) can be recorded in a header and
 * resumed: at most IMAGE_MAX_RANGES (IMAGE_TOO_MANY_RANGES), each non-empty,
 * page-aligned, sorted and disjoint (IMAGE_BAD_LAYOUT). Hibernate asks
 * before it freezes or writes anything. */
enum image_refusal image_check_ranges(const struct image_ram_range *runs, size_t count);
/* Hibernate's check of the header it sealed: what resume on this machine
 * applies (the same build, RAM size, RAM runs `runs` and disk), so a
 * header resume would refuse is never sent. */
enum image_refusal image_check_sealed(const struct image_header *header,
                                      const struct image_ram_range *runs, size_t count,
                                      uint64_t disk_sectors, const char *disk_serial);
/* Checks everything the header alone can tell. */
enum image_refusal image_check_header(const struct image_header *header,
                                      const struct image_expectation *expect);
/* The checks of the header that need no running kernel, whatever its
 * state: magic, version, checksum, a known state, the layout, and that it
 * fits and was written to a disk of disk_sectors sectors (not build, RAM
 * or disk serial). What tools/hibimg requires to read an image, or to set
 * it valid again. */
enum image_refusal image_check_contents(const struct image_header *header, uint64_t disk_sectors);
/* Checks the index against the header and against this boot's RAM
 * (ranges sorted by base; NULL/0 to check against the header's own):
 * its checksum, then its tag under mac when the image is authenticated
 * (mac must then be given: image_mac_key_init), then every entry. */
enum image_refusal image_check_index(const struct image_header *header,
                                     const struct image_index_entry *entries,
                                     const struct image_ram_range *ram, size_t ram_count,
                                     const struct page_mac_key *mac);

/* ---- authentication (docs/security.md) ----------------------------------
 * An authenticated image's keys come from the key's secret and the
 * image's nonce; the header names the key's chain and counter. */

/* The nonce of the image_number-th image written under a key of this
 * counter (both 8 bytes LE): no two images under one secret share it. */
void image_make_nonce(uint8_t nonce[IMAGE_NONCE_BYTES], uint64_t counter, uint64_t image_number);
/* Records the key and nonce in the header and sets IMAGE_FLAG_AUTHENTICATED. */
void image_set_key(struct image_header *header, const struct image_key *key,
                   const uint8_t nonce[IMAGE_NONCE_BYTES]);
/* The MAC keys of the image the header describes. */
void image_mac_key_init(struct page_mac_key *mac, const struct image_key *key,
                        const struct image_header *header);
/* Whether `key` (NULL: this boot has none) is the image's: a plain image
 * is IMAGE_OK when plain_accepted, else IMAGE_NOT_AUTHENTICATED; an
 * authenticated one needs the same chain and counter (IMAGE_NO_KEY,
 * IMAGE_REPLAYED for an older counter of the chain). Reads no secret. */
enum image_refusal image_check_key(const struct image_header *header, const struct image_key *key,
                                   int plain_accepted);
/* The tags of the index and the header: set by the writer in that order
 * (the header tag covers index_tag), before image_seal. The header tag
 * takes state, header_checksum and header_tag as 0: a state change needs
 * no key; a used image comes back only as a replay, which the key's
 * counter refuses. */
void image_tag_index(struct image_header *header, const struct image_index_entry *entries,
                     const struct page_mac_key *mac);
void image_tag_header(struct image_header *header, const struct page_mac_key *mac);
enum image_refusal image_check_header_tag(const struct image_header *header,
                                          const struct page_mac_key *mac);

/* ---- one page ----------------------------------------------------------- */

/* The writer's step for a page that is not all zero: the entry's checksum
 * (mac NULL, a plain image) or tag of the 4096 bytes as stored (the
 * ciphertext when encrypted). The entry's frame must be set first. */
void image_entry_seal(struct image_index_entry *entry, const void *stored, struct page_mac_key *mac);
/* The reader's: 1 when the stored bytes are the entry's. */
int image_entry_matches(const struct image_index_entry *entry, const void *stored,
                        struct page_mac_key *mac);

/* Whether frame pfn lies in one of the sorted, non-overlapping ranges
 * (binary search). */
int image_ranges_contain(const struct image_ram_range *ranges, size_t count, uint64_t pfn);

/* The restore planner. Frames are given as sorted, non-overlapping ranges.
 * Each saved page goes straight to its own frame when that frame is free
 * in this boot; otherwise it is staged in a spare frame: free in this
 * boot and the destination of no saved page (so copying staged pages into
 * place never overwrites one not yet copied). `spare_extra` more spare
 * frames are set aside for the trampoline's own use and returned in
 * extra_frames. Returns 0, or -1 when there are not enough spare frames. */
struct image_plan {
    uint64_t *load_pfn;     /* per index entry: where to read it */
    size_t staged;          /* entries with load_pfn != their pfn */
    uint64_t *extra_frames; /* spare_extra frames */
};

int image_plan_restore(const struct image_index_entry *entries, uint64_t count,
                       const struct image_ram_range *free_ranges, size_t free_count,
                       size_t spare_extra, struct image_plan *plan);

#endif
