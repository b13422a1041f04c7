/*
 * libFuzzer target for the hibernation image checks in pm/image.c.
 *
 * Input: a header page (the first 4096 bytes, zero-padded when shorter)
 * followed by index entries (24 bytes each). struct image_header takes the
 * first 1888 bytes of the page; the page's last 16 bytes, which no header
 * field covers, steer the harness (CONTROL_* below), so one input says
 * both what is on the disk and how the boot that reads it looks.
 *
 * Per input: image_check_header against an expectation (half the time the
 * header's own build_id/ram_bytes/ranges/disk, so the deeper checks run;
 * the other half fixed values), then, when the header passes or is refused
 * only for its state (image_check_contents, as tools/hibimg does),
 * image_check_index on the entries the input really holds, and
 * image_plan_restore on made-up free ranges when the index passes. The
 * planner's result is checked against its contract in pm/image.h, and the
 * checks against one another (what passes image_check_header passes
 * image_check_contents and is armed). The header page's checksum and zero
 * test are checked against a plain reading of its bytes.
 *
 * The authenticated reader (docs/security.md): with CONTROL_AUTHENTICATE
 * the harness tags the header and index under a fixed key as the writer
 * would; whether or not it did, the image is then checked under the key
 * control[11] picks (the right one, none, another chain, a newer counter,
 * another secret) as resume checks it: image_check_key, the header tag,
 * the index with its tag, and every entry whose data the input holds
 * (after the entries, one page each) against its tag.
 * A broken property ends in __builtin_trap(), which libFuzzer reports as a
 * crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm/image.h"
#include "tests/fuzz/fuzz_check.h"

#define PAGE IMAGE_PAGE_SIZE
#define DISK_SECTORS (128ull << 10)        /* the fixed disk (64 MiB) the image must fit */
#define FIXED_SERIAL "torpor-swap"
#define FIXED_BUILD_ID 0x746f72706f722d31ull
#define FIXED_RAM_BYTES (512ull << 20)
#define MAX_PLAN_PAGES 65536               /* bounds the planner's arrays */
#define MAX_FREE_RANGES 4

/* the steering bytes at the end of the header page */
#define CONTROL_OFFSET (PAGE - 16)
#define CONTROL_OWN_EXPECTATION 0x01 /* expect the header's own build_id and ram_bytes */
#define CONTROL_SEAL 0x02            /* fix header_checksum before checking */
#define CONTROL_FIX_INDEX 0x04       /* fix index_checksum (then seal) when the entries are there */
#define CONTROL_EXPECT_RANGES 0x08   /* the boot's RAM is the header's ranges (expect and index) */
#define CONTROL_BOOT_RAM 0x10        /* pass the header's ranges as this boot's RAM to the index check */
#define CONTROL_OWN_DISK 0x20        /* the resuming disk is the header's own (serial and capacity) */
#define CONTROL_AUTHENTICATE 0x40    /* tag header and index under fuzz_key (then seal) */
#define CONTROL_KEY 11               /* which key the boot has: enum key_choice, modulo */
#define CONTROL_IMAGE_NUMBER 12      /* the image's number under fuzz_key, for its nonce */

static const struct image_key fuzz_key = {
    .chain = "fuzz-key-chain!",
    .counter = 3,
    .secret = "a fixed secret of 32 bytes......",
};

enum key_choice { KEY_RIGHT, KEY_NONE, KEY_OTHER_CHAIN, KEY_NEWER, KEY_OTHER_SECRET, KEY_CHOICES };

_Static_assert(sizeof(struct image_header) <= CONTROL_OFFSET, "the control bytes lie past the header");


static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);

    if (!p)
        abort();
    return p;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int pfn_in(uint64_t pfn, const struct image_ram_range *ranges, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (pfn >= ranges[i].base / PAGE && pfn - ranges[i].base / PAGE < ranges[i].pages)
            return 1;
    return 0;
}

static int is_destination(uint64_t pfn, const struct image_index_entry *entries, uint64_t count)
{
    uint64_t low = 0, high = count;

    while (low < high) { /* entries passed image_check_index: sorted */
        uint64_t middle = low + (high - low) / 2, at = IMAGE_ENTRY_PFN(entries[middle].pfn_and_flags);
        if (at == pfn)
            return 1;
        if (at < pfn)
            low = middle + 1;
        else
            high = middle;
    }
    return 0;
}

/* Up to MAX_FREE_RANGES small sorted, non-overlapping free ranges near the
 * image's first frame, so some saved pages land in them and some do not. */
static size_t make_free_ranges(const uint8_t *control, const struct image_index_entry *entries,
                               uint64_t count, struct image_ram_range *out)
{
    uint64_t next = count ? IMAGE_ENTRY_PFN(entries[0].pfn_and_flags) : 0x100;
    size_t n = control[2] % (MAX_FREE_RANGES + 1);

    next = next > 8 ? next - 8 : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t base = next + control[3 + 2 * i] % 32, pages = 1 + control[4 + 2 * i] % 64;
        if (base + pages >= (1ull << 52))
            return i; /* base in bytes must not wrap */
        out[i] = (struct image_ram_range){ base * PAGE, pages };
        next = base + pages;
    }
    return n;
}

/* image_plan_restore's contract (pm/image.h), checked in full. */
static void check_plan(const struct image_index_entry *entries, uint64_t count, const uint8_t *control)
{
    struct image_ram_range free_ranges[MAX_FREE_RANGES];
    size_t free_count = make_free_ranges(control, entries, count, free_ranges);
    size_t spare_extra = control[1] % 16;
    uint64_t *load = xmalloc(count * sizeof(uint64_t));
    uint64_t *extra = xmalloc(spare_extra * sizeof(uint64_t));
    struct image_plan plan = { .load_pfn = load, .extra_frames = extra, .staged = 12345 };

    int result = image_plan_restore(entries, count, free_ranges, free_count, spare_extra, &plan);
    CHECK(result == 0 || result == -1);

    /* what it needs: a spare frame per page whose own frame is not free, plus spare_extra */
    uint64_t spares = 0, needed = spare_extra;
    for (size_t r = 0; r < free_count; r++)
        for (uint64_t k = 0; k < free_ranges[r].pages; k++)
            spares += !is_destination(free_ranges[r].base / PAGE + k, entries, count);
    for (uint64_t i = 0; i < count; i++)
        needed += !pfn_in(IMAGE_ENTRY_PFN(entries[i].pfn_and_flags), free_ranges, free_count);
    CHECK(result == (spares >= needed ? 0 : -1));

    if (result == 0) {
        uint64_t *all = xmalloc((count + spare_extra) * sizeof(uint64_t));
        size_t staged = 0;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t pfn = IMAGE_ENTRY_PFN(entries[i].pfn_and_flags);
            if (pfn_in(pfn, free_ranges, free_count)) {
                CHECK(load[i] == pfn); /* its own frame is free: straight in */
            } else {
                CHECK(load[i] != pfn);
                CHECK(pfn_in(load[i], free_ranges, free_count));
                CHECK(!is_destination(load[i], entries, count));
                staged++;
            }
            all[i] = load[i];
        }
        CHECK(plan.staged == staged);
        for (size_t i = 0; i < spare_extra; i++) {
            CHECK(pfn_in(extra[i], free_ranges, free_count));
            CHECK(!is_destination(extra[i], entries, count));
            all[count + i] = extra[i];
        }
        /* no frame is handed out twice */
        qsort(all, count + spare_extra, sizeof(uint64_t), compare_u64);
        for (size_t i = 1; i < count + spare_extra; i++)
            CHECK(all[i] != all[i - 1]);
        free(all);
    }
    free(load);
    free(extra);
}

static void check_text(enum image_refusal refusal)
{
    const char *text = image_refusal_text(refusal);

    CHECK(text && text[0]);
    CHECK(strlen(text) < 64);
}

/* image_check_key's answer, against what the choice of key must give. */
static enum image_refusal check_key(const struct image_header *h, const struct image_key *key,
                                    enum key_choice choice, int tagged)
{
    enum image_refusal plain_refused = image_check_key(h, key, 0);
    enum image_refusal r = image_check_key(h, key, 1);

    check_text(r);
    check_text(plain_refused);
    if (!(h->flags & IMAGE_FLAG_AUTHENTICATED)) {
        CHECK(r == IMAGE_OK && plain_refused == IMAGE_NOT_AUTHENTICATED);
        return r;
    }
    CHECK(r == plain_refused && r != IMAGE_NOT_AUTHENTICATED);
    if (choice == KEY_NONE || choice == KEY_OTHER_CHAIN)
        CHECK(r == IMAGE_NO_KEY || (choice == KEY_OTHER_CHAIN && !tagged));
    if (tagged) {
        /* the harness wrote the header under fuzz_key: the chain and counter are its */
        static const enum image_refusal expected[KEY_CHOICES] = {
            [KEY_RIGHT] = IMAGE_OK, [KEY_NONE] = IMAGE_NO_KEY, [KEY_OTHER_CHAIN] = IMAGE_NO_KEY,
            [KEY_NEWER] = IMAGE_REPLAYED, [KEY_OTHER_SECRET] = IMAGE_OK,
        };
        CHECK(r == expected[choice]);
    }
    return r;
}

/* Each entry with data in the input (one page per non-zero entry, after the
 * entries) against its tag: an answer, never a read out of bounds; and a
 * page that matched stops matching when a byte of it changes. */
static void check_pages(const struct image_header *h, const struct image_index_entry *entries,
                        const uint8_t *data, size_t size, struct page_mac_key *mac)
{
    size_t at = PAGE + h->page_count * sizeof(*entries);

    for (uint64_t i = 0; i < h->page_count && at + PAGE <= size; i++) {
        if (entries[i].pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue;
        uint8_t *page = xmalloc(PAGE);
        memcpy(page, data + at, PAGE);
        if (image_entry_matches(&entries[i], page, mac)) {
            page[i % PAGE] ^= 1;
            CHECK(!image_entry_matches(&entries[i], page, mac));
        }
        free(page);
        at += PAGE;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t page[PAGE] __attribute__((aligned(16))) = { 0 };
    const uint8_t *control = page + CONTROL_OFFSET;

    memcpy(page, data, size < PAGE ? size : PAGE);
    uint64_t present = size > PAGE ? (size - PAGE) / sizeof(struct image_index_entry) : 0;
    struct image_key boot_key = fuzz_key;
    enum key_choice choice = (enum key_choice)(control[CONTROL_KEY] % KEY_CHOICES);
    boot_key.chain[0] ^= choice == KEY_OTHER_CHAIN;
    boot_key.counter += choice == KEY_NEWER;
    boot_key.secret[31] ^= choice == KEY_OTHER_SECRET;

    /* the header on its own heap block, so a read past it is an ASan report */
    struct image_header *h = xmalloc(sizeof(*h));
    memcpy(h, page, sizeof(*h));

    struct image_index_entry *entries = NULL;
    int have_entries = h->page_count <= present;
    if (have_entries) {
        /* exactly page_count entries, again on their own block */
        entries = xmalloc(h->page_count * sizeof(*entries));
        memcpy(entries, data + PAGE, h->page_count * sizeof(*entries));
        if (control[0] & CONTROL_FIX_INDEX) {
            h->index_checksum = image_checksum(entries, h->page_count * sizeof(*entries));
            image_seal(h);
        }
        if (control[0] & CONTROL_AUTHENTICATE) {
            uint8_t nonce[IMAGE_NONCE_BYTES];
            struct page_mac_key mac;
            image_make_nonce(nonce, fuzz_key.counter, control[CONTROL_IMAGE_NUMBER]);
            image_set_key(h, &fuzz_key, nonce);
            image_mac_key_init(&mac, &fuzz_key, h);
            h->index_checksum = image_checksum(entries, h->page_count * sizeof(*entries));
            image_tag_index(h, entries, &mac);
            image_tag_header(h, &mac);
            image_seal(h);
        }
    }
    if (control[0] & CONTROL_SEAL)
        image_seal(h);

    /* the header's own RAM as a boot would pass it: exactly range_count entries */
    struct image_ram_range *own_ranges = NULL;
    size_t own_count = 0;
    if (h->range_count >= 1 && h->range_count <= IMAGE_MAX_RANGES) {
        own_count = h->range_count;
        own_ranges = xmalloc(own_count * sizeof(*own_ranges));
        memcpy(own_ranges, h->ranges, own_count * sizeof(*own_ranges));
    }

    struct image_expectation expect = { .build_id = FIXED_BUILD_ID, .ram_bytes = FIXED_RAM_BYTES,
                                        .disk_sectors = DISK_SECTORS, .disk_serial = FIXED_SERIAL };
    char own_serial[IMAGE_DISK_SERIAL_BYTES + 1] = { 0 };
    if (control[0] & CONTROL_OWN_DISK) {
        memcpy(own_serial, h->disk_serial, IMAGE_DISK_SERIAL_BYTES);
        expect.disk_serial = own_serial;
        expect.disk_sectors = h->disk_sectors;
    }
    if (control[0] & CONTROL_OWN_EXPECTATION) {
        expect.build_id = h->build_id;
        expect.ram_bytes = h->ram_bytes;
    }
    if ((control[0] & CONTROL_EXPECT_RANGES) && own_ranges) {
        expect.ranges = own_ranges;
        expect.range_count = own_count;
    }

    enum image_refusal header = image_check_header(h, &expect);
    CHECK((unsigned)header < IMAGE_REFUSAL_COUNT);
    check_text(header);
    enum image_refusal bare = image_check_header(h, NULL);
    check_text(bare);
    check_text((enum image_refusal)control[15]); /* any value, known or not */
    enum image_refusal contents = image_check_contents(h, expect.disk_sectors);
    check_text(contents);

    /* the checks agree: a passing header is armed and readable, and the expectation only
     * ever adds refusals */
    if (header == IMAGE_OK)
        CHECK(bare == IMAGE_OK && contents == IMAGE_OK && image_is_armed(h));
    if (image_is_armed(h))
        CHECK(h->state == IMAGE_STATE_VALID && h->magic == IMAGE_MAGIC);
    if (bare != IMAGE_OK)
        CHECK(header != IMAGE_OK);
    if (bare == IMAGE_NONE || bare == IMAGE_BAD_MAGIC || bare == IMAGE_BAD_VERSION ||
        bare == IMAGE_BAD_HEADER_CHECKSUM || bare == IMAGE_ALREADY_USED ||
        bare == IMAGE_UNFINISHED_RESUME || bare == IMAGE_SKIPPED)
        CHECK(header == bare); /* the seal and the state come first */

    /* the layout arithmetic on whatever the header says */
    struct image_header copy = *h;
    uint64_t bytes = image_layout(&copy, h->page_count, h->zero_pages);
    (void)image_index_bytes(h->page_count);

    /* refused only for its state: the checks that need no kernel decide, as in hibimg */
    enum image_refusal inside = header;
    if (header == IMAGE_ALREADY_USED || header == IMAGE_UNFINISHED_RESUME || header == IMAGE_SKIPPED)
        inside = contents;
    const struct image_header *checked = h;
    if (inside == IMAGE_OK) {
        /* a state change and a reseal leave it as sound */
        copy = *h;
        image_set_state(&copy, IMAGE_STATE_VALID);
        CHECK(image_check_contents(&copy, expect.disk_sectors) == IMAGE_OK && image_is_armed(&copy));
        image_set_state(&copy, IMAGE_STATE_SKIPPED);
        CHECK(image_check_header(&copy, &expect) == IMAGE_SKIPPED && !image_is_armed(&copy));

        /* what a passing header promises */
        CHECK(checked->page_count <= (1ull << 40));
        CHECK(checked->zero_pages <= checked->page_count);
        CHECK(checked->range_count >= 1 && checked->range_count <= IMAGE_MAX_RANGES);
        CHECK(bytes / IMAGE_SECTOR_SIZE <= expect.disk_sectors);
        CHECK(checked->disk_sectors == expect.disk_sectors);
        CHECK(checked->index_sector == PAGE / IMAGE_SECTOR_SIZE);

        if (have_entries) {
            const struct image_ram_range *ram = NULL;
            size_t ram_count = 0;
            if ((control[0] & CONTROL_BOOT_RAM) && own_ranges) {
                ram = own_ranges;
                ram_count = own_count;
            }
            struct page_mac_key mac_storage, *mac = NULL;
            int tagged = (control[0] & CONTROL_AUTHENTICATE) != 0;
            enum image_refusal key = check_key(checked, choice == KEY_NONE ? NULL : &boot_key,
                                               choice, tagged);
            if (key == IMAGE_OK && (checked->flags & IMAGE_FLAG_AUTHENTICATED)) {
                mac = &mac_storage;
                image_mac_key_init(mac, &boot_key, checked);
                enum image_refusal tag = image_check_header_tag(checked, mac);
                CHECK(tag == IMAGE_OK || tag == IMAGE_BAD_MAC);
                if (tagged)
                    CHECK((tag == IMAGE_OK) == (choice == KEY_RIGHT)); /* the key, and only it */
            }
            enum image_refusal index = image_check_index(checked, entries, ram, ram_count, mac);
            if (tagged && mac && choice == KEY_RIGHT)
                CHECK(index != IMAGE_BAD_MAC && index != IMAGE_BAD_INDEX_CHECKSUM);
            if (mac)
                check_pages(checked, entries, data, size, mac);
            CHECK((unsigned)index < IMAGE_REFUSAL_COUNT);
            check_text(index);
            if (index == IMAGE_OK && checked->page_count <= MAX_PLAN_PAGES) {
                /* what a passing index promises */
                uint64_t zero = 0;
                for (uint64_t i = 0; i < checked->page_count; i++) {
                    CHECK((entries[i].pfn_and_flags & 0xfff & ~IMAGE_ENTRY_ZERO) == 0);
                    CHECK(i == 0 || IMAGE_ENTRY_PFN(entries[i].pfn_and_flags) >
                                        IMAGE_ENTRY_PFN(entries[i - 1].pfn_and_flags));
                    CHECK(pfn_in(IMAGE_ENTRY_PFN(entries[i].pfn_and_flags), checked->ranges,
                                 checked->range_count));
                    zero += entries[i].pfn_and_flags & IMAGE_ENTRY_ZERO;
                }
                CHECK(zero == checked->zero_pages);
                check_plan(entries, checked->page_count, control);
            }
        }
    }

    /* the header page's zero test against a plain reading of the bytes */
    int any = 0;
    for (size_t i = 0; i < PAGE; i++)
        any |= page[i];
    CHECK(image_page_is_zero(page) == !any);

    free(own_ranges);
    free(entries);
    free(h);
    return 0;
}
