/*
 * Hibernation image checks and the restore planner (see pm/image.h).
 * Everything here reads only its arguments; a corrupt image can make it
 * refuse, never read out of bounds.
 */
#include "pm/image.h"

#include "lib/hash.h"      // hash64
#include "lib/hot_path.h"  // HOT_PATH

static const char *const refusal_texts[IMAGE_REFUSAL_COUNT] = {
    [IMAGE_OK] = "ok",
    [IMAGE_NONE] = "no-image",
    [IMAGE_BAD_MAGIC] = "bad-magic",
    [IMAGE_BAD_VERSION] = "bad-version",
    [IMAGE_BAD_HEADER_CHECKSUM] = "bad-header-checksum",
    [IMAGE_ALREADY_USED] = "already-used",
    [IMAGE_UNFINISHED_RESUME] = "earlier-resume-did-not-finish",
    [IMAGE_SKIPPED] = "skipped",
    [IMAGE_OTHER_BUILD] = "different-build",
    [IMAGE_RAM_CHANGED] = "ram-size-changed",
    [IMAGE_RAM_LAYOUT_CHANGED] = "ram-layout-changed",
    [IMAGE_BAD_LAYOUT] = "bad-layout",
    [IMAGE_DISK_TOO_SMALL] = "image-beyond-disk",
    [IMAGE_DISK_CHANGED] = "disk-changed",
    [IMAGE_BAD_INDEX_CHECKSUM] = "bad-index-checksum",
    [IMAGE_INDEX_NOT_SORTED] = "index-not-sorted",
    [IMAGE_PAGE_NOT_RAM] = "page-not-ram",
    [IMAGE_BAD_ZERO_COUNT] = "bad-zero-count",
    [IMAGE_BAD_ENTRY_FLAGS] = "bad-entry-flags",
    [IMAGE_BAD_PAGE_CHECKSUM] = "bad-page-checksum",
    [IMAGE_TOO_MANY_RANGES] = "too-many-ram-ranges",
    [IMAGE_NO_KEY] = "no-key",
    [IMAGE_REPLAYED] = "replayed-image",
    [IMAGE_BAD_MAC] = "bad-mac",
    [IMAGE_NOT_AUTHENTICATED] = "not-authenticated",
};

const char *image_refusal_text(enum image_refusal refusal)
{
    return (unsigned)refusal < IMAGE_REFUSAL_COUNT ? refusal_texts[refusal] : "unknown";
}

HOT_PATH uint64_t image_checksum(const void *data, size_t bytes)
{
    return hash64(data, bytes, IMAGE_CHECKSUM_SEED);
}

HOT_PATH int image_page_is_zero(const void *page)
{
    const uint64_t *words = page;

    for (size_t i = 0; i < IMAGE_PAGE_SIZE / 8; i += 4)
        if (words[i] | words[i + 1] | words[i + 2] | words[i + 3])
            return 0;
    return 1;
}

uint64_t image_index_bytes(uint64_t page_count)
{
    uint64_t bytes = page_count * sizeof(struct image_index_entry);

    return (bytes + IMAGE_PAGE_SIZE - 1) / IMAGE_PAGE_SIZE * IMAGE_PAGE_SIZE;
}

uint64_t image_layout(struct image_header *header, uint64_t page_count, uint64_t zero_pages)
{
    header->page_count = page_count;
    header->zero_pages = zero_pages;
    header->data_pages = page_count - zero_pages;
    header->index_sector = IMAGE_PAGE_SIZE / IMAGE_SECTOR_SIZE;
    header->data_sector = header->index_sector + image_index_bytes(page_count) / IMAGE_SECTOR_SIZE;
    return header->data_sector * IMAGE_SECTOR_SIZE + header->data_pages * IMAGE_PAGE_SIZE;
}

/* Over the header's bytes as they are (padding included: what the disk
 * holds), with the checksum field taken as 0. */
static uint64_t header_sum(const struct image_header *header)
{
    uint64_t words[sizeof(struct image_header) / 8];

    _Static_assert(sizeof(struct image_header) % 8 == 0, "whole words");
    __builtin_memcpy(words, header, sizeof(words));
    words[__builtin_offsetof(struct image_header, header_checksum) / 8] = 0;
    return image_checksum(words, sizeof(words));
}

void image_seal(struct image_header *header)
{
    header->header_checksum = header_sum(header);
}

void image_set_state(struct image_header *header, enum image_state state)
{
    header->state = state;
    image_seal(header);
}

void image_set_disk_identity(struct image_header *header, const char *serial, uint64_t sectors)
{
    size_t i = 0;

    for (; serial && i < IMAGE_DISK_SERIAL_BYTES && serial[i]; i++)
        header->disk_serial[i] = (uint8_t)serial[i];
    for (; i < IMAGE_DISK_SERIAL_BYTES; i++)
        header->disk_serial[i] = 0;
    header->disk_sectors = sectors;
}

/* The stored serial against a string, as image_set_disk_identity would store it. */
static int same_serial(const struct image_header *h, const char *serial)
{
    size_t i = 0;

    for (; i < IMAGE_DISK_SERIAL_BYTES && serial[i]; i++)
        if (h->disk_serial[i] != (uint8_t)serial[i])
            return 0;
    for (; i < IMAGE_DISK_SERIAL_BYTES; i++)
        if (h->disk_serial[i])
            return 0;
    return 1;
}

/* Whether the header is one at all and undamaged: the first checks, whatever the state. */
static enum image_refusal check_seal(const struct image_header *h)
{
    if (h->magic == 0 && h->state == IMAGE_STATE_EMPTY)
        return IMAGE_NONE;
    if (h->magic != IMAGE_MAGIC)
        return IMAGE_BAD_MAGIC;
    if (h->version != IMAGE_VERSION)
        return IMAGE_BAD_VERSION;
    if (h->header_checksum != header_sum(h))
        return IMAGE_BAD_HEADER_CHECKSUM;
    return IMAGE_OK;
}

int image_is_armed(const struct image_header *h)
{
    return check_seal(h) == IMAGE_OK && h->state == IMAGE_STATE_VALID;
}

enum image_refusal image_check_ranges(const struct image_ram_range *runs, size_t count)
{
    uint64_t previous_end = 0;

    if (count > IMAGE_MAX_RANGES)
        return IMAGE_TOO_MANY_RANGES;
    if (count == 0)
        return IMAGE_BAD_LAYOUT;
    for (size_t i = 0; i < count; i++) {
        const struct image_ram_range *r = &runs[i];
        if (r->pages == 0 || r->base % IMAGE_PAGE_SIZE || r->base < previous_end ||
            r->pages > (1ull << 40) || r->base + r->pages * IMAGE_PAGE_SIZE < r->base)
            return IMAGE_BAD_LAYOUT; /* empty, misaligned, unsorted or wrapping */
        previous_end = r->base + r->pages * IMAGE_PAGE_SIZE;
    }
    return IMAGE_OK;
}

/* The layout must be exactly what image_layout makes, and the RAM ranges sound; sets
 * *bytes to the image's size on the disk. */
static enum image_refusal check_layout(const struct image_header *h, uint64_t *bytes)
{
    struct image_header expected = *h;

    if (h->zero_pages > h->page_count || h->page_count > (1ull << 40) ||
        h->range_count > IMAGE_MAX_RANGES || h->range_count == 0)
        return IMAGE_BAD_LAYOUT;
    if ((h->flags & ~IMAGE_FLAGS_KNOWN) ||
        ((h->flags & IMAGE_FLAG_ENCRYPTED) && !(h->flags & IMAGE_FLAG_AUTHENTICATED)))
        return IMAGE_BAD_LAYOUT; /* ciphertext is only ever authenticated */
    *bytes = image_layout(&expected, h->page_count, h->zero_pages);
    if (expected.index_sector != h->index_sector || expected.data_sector != h->data_sector ||
        expected.data_pages != h->data_pages)
        return IMAGE_BAD_LAYOUT;
    uint64_t ram_pages = 0;
    if (image_check_ranges(h->ranges, h->range_count) != IMAGE_OK)
        return IMAGE_BAD_LAYOUT;
    for (uint32_t i = 0; i < h->range_count; i++)
        ram_pages += h->ranges[i].pages;
    if (h->page_count > ram_pages)
        return IMAGE_BAD_LAYOUT;
    return IMAGE_OK;
}

/* The image against the disk it is read from: it must fit (a truncated disk says so), and
 * the disk must be the one it was written to. */
static enum image_refusal check_disk(const struct image_header *h, uint64_t bytes,
                                     uint64_t disk_sectors, const char *disk_serial)
{
    if (bytes / IMAGE_SECTOR_SIZE > disk_sectors) /* bytes: whole sectors, at most 2^53 */
        return IMAGE_DISK_TOO_SMALL;
    if (h->disk_sectors != disk_sectors || (disk_serial && !same_serial(h, disk_serial)))
        return IMAGE_DISK_CHANGED;
    return IMAGE_OK;
}

enum image_refusal image_check_header(const struct image_header *h,
                                      const struct image_expectation *expect)
{
    enum image_refusal r = check_seal(h);
    uint64_t bytes;

    if (r != IMAGE_OK)
        return r;
    if (h->state == IMAGE_STATE_USED)
        return IMAGE_ALREADY_USED;
    if (h->state == IMAGE_STATE_RESUMING)
        return IMAGE_UNFINISHED_RESUME;
    if (h->state == IMAGE_STATE_SKIPPED)
        return IMAGE_SKIPPED;
    if (h->state != IMAGE_STATE_VALID)
        return IMAGE_BAD_LAYOUT;
    if (expect && h->build_id != expect->build_id)
        return IMAGE_OTHER_BUILD;
    if (expect && h->ram_bytes != expect->ram_bytes)
        return IMAGE_RAM_CHANGED;
    r = check_layout(h, &bytes);
    if (r != IMAGE_OK)
        return r;
    if (expect && expect->ranges) {
        if (expect->range_count != h->range_count)
            return IMAGE_RAM_LAYOUT_CHANGED;
        for (uint32_t i = 0; i < h->range_count; i++)
            if (expect->ranges[i].base != h->ranges[i].base ||
                expect->ranges[i].pages != h->ranges[i].pages)
                return IMAGE_RAM_LAYOUT_CHANGED;
    }
    return expect ? check_disk(h, bytes, expect->disk_sectors, expect->disk_serial) : IMAGE_OK;
}

enum image_refusal image_check_sealed(const struct image_header *h,
                                      const struct image_ram_range *runs, size_t count,
                                      uint64_t disk_sectors, const char *disk_serial)
{
    const struct image_expectation self = {
        .build_id = h->build_id, .ram_bytes = h->ram_bytes,
        .disk_sectors = disk_sectors, .disk_serial = disk_serial,
        .ranges = runs, .range_count = count,
    };
    enum image_refusal r = image_check_ranges(runs, count);

    return r != IMAGE_OK ? r : image_check_header(h, &self);
}

enum image_refusal image_check_contents(const struct image_header *h, uint64_t disk_sectors)
{
    enum image_refusal r = check_seal(h);
    uint64_t bytes;

    if (r != IMAGE_OK)
        return r;
    if (h->state != IMAGE_STATE_VALID && h->state != IMAGE_STATE_RESUMING &&
        h->state != IMAGE_STATE_USED && h->state != IMAGE_STATE_SKIPPED)
        return IMAGE_BAD_LAYOUT;
    r = check_layout(h, &bytes);
    return r != IMAGE_OK ? r : check_disk(h, bytes, disk_sectors, NULL);
}

int image_ranges_contain(const struct image_ram_range *ranges, size_t count, uint64_t pfn)
{
    size_t low = 0, high = count;

    while (low < high) {
        size_t middle = low + (high - low) / 2;
        uint64_t first = ranges[middle].base / IMAGE_PAGE_SIZE;
        if (pfn < first)
            high = middle;
        else if (pfn >= first + ranges[middle].pages)
            low = middle + 1;
        else
            return 1;
    }
    return 0;
}

/* The bytes the index tag covers: exactly the entries, as the checksum. */
static void index_tag(const struct image_header *h, const struct image_index_entry *entries,
                      const struct page_mac_key *mac, uint8_t tag[IMAGE_TAG_BYTES])
{
    page_mac_buffer(mac, PAGE_MAC_DOMAIN_INDEX, entries, h->page_count * sizeof(*entries), tag);
}

enum image_refusal image_check_index(const struct image_header *h,
                                     const struct image_index_entry *entries,
                                     const struct image_ram_range *ram, size_t ram_count,
                                     const struct page_mac_key *mac)
{
    uint64_t zero = 0;

    if (image_checksum(entries, h->page_count * sizeof(*entries)) != h->index_checksum)
        return IMAGE_BAD_INDEX_CHECKSUM;
    if (h->flags & IMAGE_FLAG_AUTHENTICATED) {
        uint8_t tag[IMAGE_TAG_BYTES];
        if (!mac)
            return IMAGE_NO_KEY;
        index_tag(h, entries, mac, tag);
        if (!page_mac_tags_equal(tag, h->index_tag))
            return IMAGE_BAD_MAC;
    }
    for (uint64_t i = 0; i < h->page_count; i++) {
        uint64_t flags = entries[i].pfn_and_flags & ((1ull << IMAGE_ENTRY_FLAG_BITS) - 1);
        uint64_t pfn = IMAGE_ENTRY_PFN(entries[i].pfn_and_flags);
        if (flags & ~IMAGE_ENTRY_ZERO)
            return IMAGE_BAD_ENTRY_FLAGS;
        if (i && pfn <= IMAGE_ENTRY_PFN(entries[i - 1].pfn_and_flags))
            return IMAGE_INDEX_NOT_SORTED;
        if (!image_ranges_contain(h->ranges, h->range_count, pfn) ||
            (ram && !image_ranges_contain(ram, ram_count, pfn)))
            return IMAGE_PAGE_NOT_RAM;
        zero += flags & IMAGE_ENTRY_ZERO;
    }
    if (zero != h->zero_pages)
        return IMAGE_BAD_ZERO_COUNT;
    return IMAGE_OK;
}

/* ---- authentication ---------------------------------------------------- */

static void store64(uint8_t *p, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

void image_make_nonce(uint8_t nonce[IMAGE_NONCE_BYTES], uint64_t counter, uint64_t image_number)
{
    store64(nonce, counter);
    store64(nonce + 8, image_number);
}

void image_set_key(struct image_header *h, const struct image_key *key,
                   const uint8_t nonce[IMAGE_NONCE_BYTES])
{
    _Static_assert(sizeof(key->chain) == IMAGE_KEY_CHAIN_BYTES, "chain bytes");
    _Static_assert(IMAGE_KEY_SECRET_BYTES == PAGE_MAC_SECRET_BYTES, "secret bytes");
    _Static_assert(IMAGE_NONCE_BYTES == PAGE_MAC_NONCE_BYTES, "nonce bytes");
    _Static_assert(IMAGE_TAG_BYTES == PAGE_MAC_TAG_BYTES, "tag bytes");
    __builtin_memcpy(h->key_chain, key->chain, IMAGE_KEY_CHAIN_BYTES);
    h->key_counter = key->counter;
    __builtin_memcpy(h->nonce, nonce, IMAGE_NONCE_BYTES);
    h->flags |= IMAGE_FLAG_AUTHENTICATED;
}

void image_mac_key_init(struct page_mac_key *mac, const struct image_key *key,
                        const struct image_header *h)
{
    page_mac_key_init(mac, key->secret, h->nonce);
}

enum image_refusal image_check_key(const struct image_header *h, const struct image_key *key,
                                   int plain_accepted)
{
    if (!(h->flags & IMAGE_FLAG_AUTHENTICATED))
        return plain_accepted ? IMAGE_OK : IMAGE_NOT_AUTHENTICATED;
    /* neither the chain nor the counter is secret: plain compares */
    if (!key || __builtin_memcmp(h->key_chain, key->chain, IMAGE_KEY_CHAIN_BYTES) != 0)
        return IMAGE_NO_KEY;
    if (h->key_counter < key->counter)
        return IMAGE_REPLAYED;
    return h->key_counter == key->counter ? IMAGE_OK : IMAGE_NO_KEY;
}

void image_tag_index(struct image_header *h, const struct image_index_entry *entries,
                     const struct page_mac_key *mac)
{
    index_tag(h, entries, mac, h->index_tag);
}

/* The header with the fields a tag cannot cover as 0 (see image.h). */
static void header_tag(const struct image_header *h, const struct page_mac_key *mac,
                       uint8_t tag[IMAGE_TAG_BYTES])
{
    struct image_header covered = *h;

    covered.state = 0;
    covered.header_checksum = 0;
    __builtin_memset(covered.header_tag, 0, sizeof(covered.header_tag));
    page_mac_buffer(mac, PAGE_MAC_DOMAIN_HEADER, &covered, sizeof(covered), tag);
}

void image_tag_header(struct image_header *h, const struct page_mac_key *mac)
{
    header_tag(h, mac, h->header_tag);
}

enum image_refusal image_check_header_tag(const struct image_header *h, const struct page_mac_key *mac)
{
    uint8_t tag[IMAGE_TAG_BYTES];

    header_tag(h, mac, tag);
    return page_mac_tags_equal(tag, h->header_tag) ? IMAGE_OK : IMAGE_BAD_MAC;
}

/* ---- one page ----------------------------------------------------------- */

HOT_PATH void image_entry_seal(struct image_index_entry *e, const void *stored, struct page_mac_key *mac)
{
    if (mac) {
        page_mac(mac, IMAGE_ENTRY_PFN(e->pfn_and_flags), stored, e->tag);
    } else {
        __builtin_memset(e->tag, 0, sizeof(e->tag));
        e->checksum = image_checksum(stored, IMAGE_PAGE_SIZE);
    }
}

HOT_PATH int image_entry_matches(const struct image_index_entry *e, const void *stored,
                                 struct page_mac_key *mac)
{
    if (!mac)
        return image_checksum(stored, IMAGE_PAGE_SIZE) == e->checksum;
    uint8_t tag[IMAGE_TAG_BYTES];
    page_mac(mac, IMAGE_ENTRY_PFN(e->pfn_and_flags), stored, tag);
    return page_mac_tags_equal(tag, e->tag);
}

/* Whether pfn is the destination of a saved page (entries are sorted). */
static int is_destination(uint64_t pfn, const struct image_index_entry *entries, uint64_t count)
{
    uint64_t low = 0, high = count;

    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        uint64_t at = IMAGE_ENTRY_PFN(entries[middle].pfn_and_flags);
        if (at == pfn)
            return 1;
        if (at < pfn)
            low = middle + 1;
        else
            high = middle;
    }
    return 0;
}

/* Walks the spare frames in address order. */
struct spare_cursor {
    const struct image_ram_range *ranges;
    size_t count, range;
    uint64_t next; /* offset in pages into ranges[range] */
};

static int next_spare(struct spare_cursor *c, const struct image_index_entry *entries,
                      uint64_t count, uint64_t *pfn)
{
    for (; c->range < c->count; c->range++, c->next = 0) {
        const struct image_ram_range *r = &c->ranges[c->range];
        while (c->next < r->pages) {
            uint64_t candidate = r->base / IMAGE_PAGE_SIZE + c->next++;
            if (!is_destination(candidate, entries, count)) {
                *pfn = candidate;
                return 0;
            }
        }
    }
    return -1;
}

int image_plan_restore(const struct image_index_entry *entries, uint64_t count,
                       const struct image_ram_range *free_ranges, size_t free_count,
                       size_t spare_extra, struct image_plan *plan)
{
    struct spare_cursor cursor = { free_ranges, free_count, 0, 0 };

    plan->staged = 0;
    for (size_t i = 0; i < spare_extra; i++)
        if (next_spare(&cursor, entries, count, &plan->extra_frames[i]) != 0)
            return -1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t pfn = IMAGE_ENTRY_PFN(entries[i].pfn_and_flags);
        if (image_ranges_contain(free_ranges, free_count, pfn)) {
            plan->load_pfn[i] = pfn; /* its own frame is free: straight in */
            continue;
        }
        if (next_spare(&cursor, entries, count, &plan->load_pfn[i]) != 0)
            return -1;
        plan->staged++;
    }
    return 0;
}
