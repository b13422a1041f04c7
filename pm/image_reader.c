/*
 * The resume path's reader (see pm/image_reader.h): the data area in one
 * sequential pass, as many requests in flight as the disk has room for,
 * every page checked against its index entry as soon as its data is in.
 */
#include "pm/image_reader.h"

#include "console/log.h"       // klog
#include "crypto/page_cipher.h" // page_cipher_xor
#include "crypto/page_mac.h"   // page_mac
#include "lib/error.h"         // ERROR_BUSY
#include "lib/hot_path.h"      // HOT_PATH
#include "lib/string.h"        // memcpy, memset
#include "mm/page.h"           // PAGE_SIZE
#include "pm/image.h"          // image_entry_matches, IMAGE_ENTRY_*
#include "virtio/virtio_blk.h" // blk_*

#define READS_IN_FLIGHT 64 /* at most; the disk's free slots decide */

struct read_request {
    struct blk_request *request;
    uint64_t data_end; /* data bytes in memory once it completed */
};

/* The reads in flight, oldest first, and how far the data is checked. */
struct reads {
    struct read_request queue[READS_IN_FLIGHT];
    unsigned head, used;
    struct blk_request_builder builder;
    uint64_t sector;       /* where the request being built starts */
    uint64_t submitted;    /* data bytes asked for so far */
    uint64_t next_check;   /* the next index entry to check */
    uint64_t checked_data; /* data bytes of the entries before it */
};

#define LINES_AHEAD 8 /* of the next page, loaded before a page is checked */
#define CACHE_LINE 64

/* Loads the first lines of the page to be checked next, so the host starts
 * fetching them while this one is checked; within a page its own
 * prefetcher keeps up. The pages are cold on the host: QEMU's I/O threads
 * wrote them. Measured in the guest over 256 MiB, NH took 1.18 us a page
 * with these loads, 1.23 with prefetch instructions instead, 1.47 with
 * neither. */
static inline void touch_page_start(const void *next)
{
    const volatile uint8_t *page = next;

    for (unsigned line = 0; line < LINES_AHEAD; line++)
        (void)page[line * CACHE_LINE];
}

/* Checks every page whose data has fully arrived (requests complete
 * oldest first, so everything below data_end is in memory); a page split
 * across two requests is checked after the second. */
HOT_PATH static int check_arrived(struct image_reader *l, struct reads *r, uint64_t data_end)
{
    for (; r->next_check < l->header->page_count; r->next_check++) {
        const struct image_index_entry *e = &l->index[r->next_check];
        if (e->pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue;
        if (r->checked_data + PAGE_SIZE > data_end)
            break;
        void *page = (void *)(uintptr_t)(l->load_pfn[r->next_check] * PAGE_SIZE);
        /* every frame of the load plan is the reader's: reading one whose
         * data is still on its way is harmless */
        if (r->next_check + 1 < l->header->page_count)
            touch_page_start((const void *)(uintptr_t)(l->load_pfn[r->next_check + 1] * PAGE_SIZE));
        if (!image_entry_matches(e, page, l->mac)) {
            l->bad_pfn = IMAGE_ENTRY_PFN(e->pfn_and_flags);
            return -1;
        }
        if (l->cipher) /* encrypt, then MAC: decrypted only once it checked */
            page_cipher_xor(l->cipher, IMAGE_ENTRY_PFN(e->pfn_and_flags), page, page);
        r->checked_data += PAGE_SIZE;
    }
    return 0;
}

/* The reader's per-page work over pages it did not read, for `hash bench`
 * (the CPU's half of the reader's speed): the checksum of a plain image
 * (mac NULL), or the tag of an authenticated one, as check_arrived makes
 * them (image_entry_matches, the next page's first lines loaded first).
 * XOR of the sums, so none is left out. */
HOT_PATH uint64_t image_reader_check_pages(const void *pages, uint64_t count, uint64_t first_frame,
                                           struct page_mac_key *mac)
{
    uint64_t sums = 0;

    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *page = (const uint8_t *)pages + i * PAGE_SIZE;
        if (i + 1 < count)
            touch_page_start(page + PAGE_SIZE);
        if (!mac) {
            sums ^= image_checksum(page, PAGE_SIZE);
            continue;
        }
        uint8_t tag[PAGE_MAC_TAG_BYTES];
        uint64_t word;
        page_mac(mac, first_frame + i, page, tag);
        memcpy(&word, tag, sizeof(word));
        sums ^= word;
    }
    return sums;
}

/* Waits for the oldest read and checks what it completed: NULL, or the
 * refusal. */
HOT_PATH static const char *finish_oldest(struct image_reader *l, struct reads *r)
{
    struct read_request *oldest = &r->queue[r->head];
    int result = blk_wait(l->disk, oldest->request, &l->failed_sector);

    r->head = (r->head + 1) % READS_IN_FLIGHT;
    r->used--;
    if (result != 0)
        return "read-error";
    l->failed_sector = ~0ull;
    if (check_arrived(l, r, oldest->data_end) == 0)
        return 0;
    return l->mac ? "bad-mac" : "bad-page-checksum";
}

/* Sends the request being built. A full ring is back-pressure: wait for
 * the oldest read and try again; only an empty ring that refuses is an
 * error. */
static const char *submit_read(struct image_reader *l, struct reads *r)
{
    struct blk_request_builder *b = &r->builder;

    if (!b->count)
        return 0;
    for (;;) {
        struct read_request *slot = &r->queue[(r->head + r->used) % READS_IN_FLIGHT];
        int result = r->used == READS_IN_FLIGHT
                         ? ERROR_BUSY
                         : blk_submit(l->disk, BLK_TYPE_IN, r->sector, b->segments, b->count,
                                      &slot->request);
        if (result == 0) {
            r->submitted += b->bytes;
            slot->data_end = r->submitted;
            r->used++;
            r->sector += b->bytes / BLK_SECTOR_SIZE;
            blk_builder_reset(b);
            return 0;
        }
        if (result != ERROR_BUSY || r->used == 0) {
            l->failed_sector = r->sector;
            return "read-error";
        }
        const char *failure = finish_oldest(l, r);
        if (failure)
            return failure;
    }
}

/* Stops every read in flight before the refusal: no device may still
 * write into memory that goes back to the allocator. */
static const char *drain(struct image_reader *l, struct reads *r, const char *reason)
{
    /* no waiting for the rest: one may never come back (a read that timed
     * out is still the device's). A reset makes the device finish or drop
     * every request before it returns, so none writes into its frames
     * after they go back to the allocator. */
    unsigned in_flight = r->used;
    int restarted = blk_disk_restart(l->disk);

    r->used = 0;
    /* said before the refusal and before any frame goes back, so the
     * order can be checked from the console (docs/hibernate.md) */
    klog("resume: disk reset after %s, %u other reads in flight dropped%s", reason, in_flight,
         restarted == 0 ? "" : ", restart failed");
    return reason;
}

/* Reads the data area in order, scattering each request over the planned
 * frames within the disk's limits, and checks each page as its data
 * arrives. */
HOT_PATH const char *image_read_pages(struct image_reader *l)
{
    static struct reads reads; /* 1.6 KiB of segments: not on the stack */
    struct reads *r = &reads;
    struct blk_request_limits limits;
    const char *failure = 0;

    *r = (struct reads){ .sector = l->header->data_sector };
    blk_disk_limits(l->disk, &limits);
    blk_builder_init(&r->builder, &limits);
    l->failed_sector = ~0ull;

    for (uint64_t i = 0; i < l->header->page_count && !failure; i++) {
        uint64_t address = l->load_pfn[i] * PAGE_SIZE;
        if (l->index[i].pfn_and_flags & IMAGE_ENTRY_ZERO) {
            memset((void *)(uintptr_t)address, 0, PAGE_SIZE);
            continue;
        }
        for (uint32_t left = PAGE_SIZE; left && !failure;) {
            uint32_t taken = blk_builder_add(&r->builder, address + PAGE_SIZE - left, left);
            if (!taken && !r->builder.count) {
                failure = "read-error"; /* limits that fit not one sector */
                break;
            }
            left -= taken;
            if (left || r->builder.bytes == r->builder.max_bytes)
                failure = submit_read(l, r);
        }
    }
    if (!failure)
        failure = submit_read(l, r);
    while (!failure && r->used)
        failure = finish_oldest(l, r);
    if (failure)
        return drain(l, r, failure);
    if (r->checked_data != l->header->data_pages * PAGE_SIZE)
        return "bad-layout"; /* cannot be: the index said how much data */
    return 0;
}
