/*
 * The hibernation writer. The rule that makes writing without a copy
 * possible: from the snapshot on, nothing outside the writer's region (its
 * stack, its queue, the header and the index) is written, interrupts are
 * off, and every request points straight at the RAM page it saves. What
 * is saved: every allocated or kernel page, except the balloon's (the host
 * has them), free blocks being reported, and the writer's region; an
 * all-zero page is only marked in the index.
 */
#include "pm/hibernate.h"

#include "arch/x86/clock.h"    // clock_ns
#include "arch/x86/cpu.h"      // interrupts_*
#include "arch/x86/symbols.h"  // symbols_image_base
#include "console/console.h"   // console_printf
#include "console/log.h"       // klog
#include "crypto/page_cipher.h" // page_cipher_*
#include "crypto/page_mac.h"   // page_mac_key_erase
#include "crypto/secret.h"     // secret_erase
#include "kernel/options.h"    // options_has
#include "lib/error.h"         // ERROR_*, error_text
#include "lib/hot_path.h"      // HOT_PATH
#include "lib/string.h"        // memcpy, memset
#include "mm/page.h"           // PAGE_SIZE
#include "mm/page_alloc.h"     // page_alloc_walk, page_alloc
#include "pm/image.h"          // image_*
#include "pm/image_key.h"      // image_key_*
#include "pm/power.h"          // power_hibernate
#include "pm/resume.h"         // resume_finish, struct resume_handoff
#include "pm/swap_disk.h"      // swap_disk_*
#include "virtio/blk_writer.h" // blk_writer_*
#include "virtio/virtio.h"     // virtio_freeze_all, virtio_thaw_all
#include "virtio/virtio_blk.h" // blk_disk_info

#define WRITER_STACK_BYTES (64 * 1024)
#define INDEX_MARGIN_PAGES 4096 /* pages that may appear between count and snapshot */
#define BOUNCE_PAGES 256        /* ciphertext waiting for the disk, when encrypting */
/* Data writes on the disk at once: one, while the CPU makes checksums or
 * tags. With more, QEMU's I/O threads copy into the host's page cache
 * side by side and contend for the file's lock; measured with QEMU's
 * default cache=writeback, 2 in flight were already slower now and then
 * and 64 up to 3 times (docs/benchmarks.md, "Hibernate"). */
#define DATA_WRITES_IN_FLIGHT 1

static hibernate_platform_resume_fn platform_resume;

void hibernate_set_platform_resume(hibernate_platform_resume_fn fn)
{
    platform_resume = fn;
}

int64_t snapshot_and_call(struct image_cpu_state *state, int (*fn)(void *), void *arg, void *stack_top);

struct writer {
    struct image_header *header;
    struct image_index_entry *index;
    uint64_t capacity;          /* index entries the region holds */
    uint64_t count, zero_pages;
    uint64_t sealed;            /* entries before this one are sealed (seal_next) */
    struct blk_writer *blk;
    struct blk_disk *disk;
    const char *reason;         /* why it failed */
    int blk_error;
    uint64_t failed_sector;
    uint64_t started_ns;
    int sealed_header_sent;     /* a valid header may be on the disk */
    struct blk_request_limits limits; /* what the writer's requests may hold */
    struct blk_request_builder *data; /* the data request being built (writer's stack) */
    uint64_t data_sector;       /* where it goes */
    /* an authenticated image: its MAC keys (NULL: plain); encrypted: the
     * cipher key and the pages ciphertext goes out from. All in the
     * region, never saved, erased when the writer is done. */
    struct page_mac_key *mac;
    struct page_cipher_key *cipher;
    uint8_t *bounce;
    unsigned bounce_used;
};

static int fail(struct writer *w, const char *reason, int blk_error);

/* This boot's RAM runs (the allocator's zones, in address order), as the
 * header records them and as resume will compare them. */
static struct image_ram_range ram_runs[PAGE_ALLOC_MAX_ZONES];
static size_t ram_run_count;

static void collect_ram_runs(void)
{
    ram_run_count = 0;
    for (unsigned z = 0; page_alloc_zone(z) && ram_run_count < PAGE_ALLOC_MAX_ZONES; z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        ram_runs[ram_run_count++] = (struct image_ram_range){ zone->base_pfn * PAGE_SIZE, zone->page_count };
    }
}

/* ---- what is saved ----------------------------------------------------- */

static int saved(enum buddy_state state, uint8_t tag)
{
    if (state == BUDDY_RESERVED)
        return 1;
    /* hinted blocks are free memory lent to a migration; freeze gives them
     * back before the snapshot, so none should be left, and none is saved */
    return state == BUDDY_ALLOCATED && tag != PAGE_TAG_BALLOON && tag != PAGE_TAG_REPORTING &&
           tag != PAGE_TAG_HIBERNATE && tag != PAGE_TAG_SECRET && tag != PAGE_TAG_HINTED;
}

static int count_block(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    (void)pfn;
    if (saved(state, tag))
        *(uint64_t *)context += count;
    return 0;
}

/* The exact number of index entries, after the snapshot (nothing changes
 * any more): page 0 holds nothing and is never mapped, so never saved. */
static int count_saved_pages(void *context, uint64_t pfn, uint64_t count, enum buddy_state state,
                             uint8_t tag)
{
    if (saved(state, tag))
        *(uint64_t *)context += pfn == 0 ? count - 1 : count;
    return 0;
}

static int add_data_page(struct writer *w, uint64_t address);
static void *next_bounce_page(struct writer *w);

/* A page's entry and data. The zero test alone (most pages in use fail
 * it at their first words); a page with data goes to the disk as it is,
 * and its checksum or tag is made while the disk makes the writer wait
 * (seal_next). Encrypted, the ciphertext goes out from a bounce page that
 * is soon used again, so its tag is made at once. */
HOT_PATH static int save_page(struct writer *w, struct image_index_entry *e, uint64_t address)
{
    const void *page = (const void *)(uintptr_t)address;

    if (image_page_is_zero(page)) {
        e->pfn_and_flags |= IMAGE_ENTRY_ZERO;
        w->zero_pages++;
        return 0;
    }
    if (w->cipher) {
        void *bounce = next_bounce_page(w);
        if (!bounce)
            return -1;
        page_cipher_xor(w->cipher, IMAGE_ENTRY_PFN(e->pfn_and_flags), page, bounce);
        image_entry_seal(e, bounce, w->mac);
        page = bounce;
    }
    return add_data_page(w, (uint64_t)(uintptr_t)page);
}

/* One pass over every saved page: its index entry, and its data into the
 * request being built, so the disk writes while the CPU reads on. Runs
 * after the snapshot and writes only the region. */
HOT_PATH static int save_block(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    struct writer *w = context;

    if (!saved(state, tag))
        return 0;
    for (uint64_t i = 0; i < count; i++) {
        if (pfn + i == 0)
            continue; /* page 0 holds nothing and is never mapped */
        if (w->count == w->capacity) {
            fail(w, "index-overflow", 0);
            return -1;
        }
        struct image_index_entry *e = &w->index[w->count++];
        *e = (struct image_index_entry){ .pfn_and_flags = (pfn + i) << IMAGE_ENTRY_FLAG_BITS };
        if (save_page(w, e, (pfn + i) * PAGE_SIZE) != 0)
            return -1;
    }
    return 0;
}

/* Makes the checksum or tag of the next page that went out as it is in
 * memory (any data page but an encrypted image's); 0 when every entry so
 * far has one. Memory is frozen, so those are the bytes the disk got,
 * whenever they are read. */
HOT_PATH static int seal_next(struct writer *w)
{
    if (w->cipher)
        return 0;
    for (; w->sealed < w->count; w->sealed++) {
        struct image_index_entry *e = &w->index[w->sealed];
        if (e->pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue;
        image_entry_seal(e, (const void *)(uintptr_t)(IMAGE_ENTRY_PFN(e->pfn_and_flags) * PAGE_SIZE),
                         w->mac);
        w->sealed++;
        return 1;
    }
    return 0;
}

/* Until fewer than `writes` requests are on the disk, seals entries
 * instead of waiting idle; returns early once none is left to seal. */
HOT_PATH static void seal_while_writing(struct writer *w, unsigned writes)
{
    while (blk_writer_in_flight(w->blk) >= writes && seal_next(w))
        ;
}

/* ---- writing ----------------------------------------------------------- */

static int fail(struct writer *w, const char *reason, int blk_error)
{
    if (!w->reason) {
        w->reason = reason;
        w->blk_error = blk_error;
    }
    return -1;
}

/* The reason for the writer's first failed request, whichever call saw it. */
static int fail_request(struct writer *w, int blk_error)
{
    int flush_failed = blk_writer_failed_type(w->blk) == BLK_TYPE_FLUSH;

    return fail(w, flush_failed ? "flush-error" : "write-error", blk_error);
}

/* Sends the request being built, at the sector it was built for. */
static int submit_built(struct writer *w, struct blk_request_builder *b, uint64_t *sector)
{
    if (!b->count)
        return 0;
    if (b == w->data)
        seal_while_writing(w, DATA_WRITES_IN_FLIGHT);
    int result = blk_writer_submit(w->blk, BLK_TYPE_OUT, *sector, b->segments, b->count);
    if (result != 0)
        return fail_request(w, result);
    *sector += b->bytes / BLK_SECTOR_SIZE;
    blk_builder_reset(b);
    return 0;
}

/* Adds a physical range to the request being built, sending each request
 * as it fills: every request keeps to the disk's seg_max and size_max. */
HOT_PATH static int add_range(struct writer *w, struct blk_request_builder *b, uint64_t *sector,
                     uint64_t address, uint32_t bytes)
{
    while (bytes) {
        uint32_t taken = blk_builder_add(b, address, bytes);
        if (!taken && !b->count)
            return fail(w, "disk-limits-too-small", ERROR_INVALID);
        address += taken;
        bytes -= taken;
        if ((bytes || b->bytes == b->max_bytes) && submit_built(w, b, sector) != 0)
            return -1;
    }
    return 0;
}

/* Writes `pages` pages from the physically contiguous `address`. */
static int write_contiguous(struct writer *w, uint64_t sector, uint64_t address, uint64_t pages)
{
    struct blk_request_builder b;

    blk_builder_init(&b, &w->limits);
    for (; pages; pages--, address += PAGE_SIZE)
        if (add_range(w, &b, &sector, address, PAGE_SIZE) != 0)
            return -1;
    return submit_built(w, &b, &sector);
}

/* The writes before it first, so a failed write is named as one; then a
 * flush after they completed, which makes them stable (virtio 1.2,
 * 5.2.6.2). hibernate() took only a disk with VIRTIO_BLK_F_FLUSH. */
static int flush(struct writer *w)
{
    int result = blk_writer_wait_all(w->blk, &w->failed_sector);

    if (result != 0)
        return fail_request(w, result);
    result = blk_writer_submit(w->blk, BLK_TYPE_FLUSH, 0, 0, 0);
    if (result == 0)
        result = blk_writer_wait_all(w->blk, &w->failed_sector);
    return result == 0 ? 0 : fail(w, "flush-error", result);
}

/* The data of the non-zero pages goes out in index order. */
HOT_PATH static int add_data_page(struct writer *w, uint64_t address)
{
    return add_range(w, w->data, &w->data_sector, address, PAGE_SIZE);
}

/* A page for the next ciphertext. When all are taken, the request being
 * built goes out and every write is waited for, so all are free again:
 * encrypting costs far more than the wait (docs/benchmarks.md). */
static void *next_bounce_page(struct writer *w)
{
    if (w->bounce_used == BOUNCE_PAGES) {
        if (submit_built(w, w->data, &w->data_sector) != 0)
            return 0;
        int result = blk_writer_wait_all(w->blk, &w->failed_sector);
        if (result != 0) {
            fail_request(w, result);
            return 0;
        }
        w->bounce_used = 0;
    }
    return w->bounce + (uint64_t)w->bounce_used++ * PAGE_SIZE;
}

static void fill_header(struct writer *w)
{
    struct image_header *h = w->header;
    struct page_alloc_stats stats;

    page_alloc_get_stats(&stats);
    h->magic = IMAGE_MAGIC;
    h->version = IMAGE_VERSION;
    h->state = IMAGE_STATE_VALID;
    h->build_id = swap_disk_build_id();
    h->image_base = symbols_image_base();
    h->ram_bytes = stats.total_pages * PAGE_SIZE;
    /* hibernate() checked that they fit (image_check_ranges) */
    h->range_count = (uint32_t)ram_run_count;
    memcpy(h->ranges, ram_runs, ram_run_count * sizeof(ram_runs[0]));
    h->index_checksum = image_checksum(w->index, w->count * sizeof(*w->index));
    struct blk_info info;
    blk_disk_info(w->disk, &info);
    image_set_disk_identity(h, info.serial, info.sectors); /* resumed from this disk only */
}

/* The tags, last: the header tag covers every field but the state. */
static void tag_header(struct writer *w)
{
    if (!w->mac)
        return;
    if (w->cipher)
        w->header->flags |= IMAGE_FLAG_ENCRYPTED;
    image_tag_index(w->header, w->index, w->mac);
    image_tag_header(w->header, w->mac);
}

/* Runs on the writer's stack, interrupts off, after the snapshot. */
static int write_image(void *context)
{
    struct writer *w = context;
    struct image_header *h = w->header;
    struct blk_request_builder data;
    uint64_t pages = 0;

    /* the layout needs only the number of entries, which a walk of the
     * allocator gives without reading a page */
    page_alloc_walk(count_saved_pages, &pages);
    if (pages > w->capacity)
        return fail(w, "index-overflow", 0);
    struct blk_info info;
    blk_disk_info(w->disk, &info);
    if (image_layout(h, pages, 0) > info.sectors * BLK_SECTOR_SIZE)
        return fail(w, "disk-too-small", 0);

    /* the old header goes first: no valid header may describe new data */
    struct image_header kept = *h; /* the CPU state, the key and the nonce */
    memset(h, 0, PAGE_SIZE);
    if (write_contiguous(w, 0, (uint64_t)(uintptr_t)h, 1) != 0 || flush(w) != 0)
        return -1;
    *h = kept;
    image_layout(h, pages, 0);

    blk_builder_init(&data, &w->limits);
    w->data = &data;
    w->data_sector = h->data_sector;
    if (page_alloc_walk(save_block, w) != 0 || submit_built(w, &data, &w->data_sector) != 0)
        return -1;
    if (w->count != pages)
        return fail(w, "index-overflow", 0); /* cannot be: nothing changed since the count */
    /* The last writes finish while the CPU seals on. Then a flush the
     * writer does not wait for: the host writes the data out of its cache
     * (QEMU's default cache=writeback) while the last entries are sealed.
     * The flush after the index is the one that makes all stable. */
    seal_while_writing(w, 1);
    int result = blk_writer_wait_all(w->blk, &w->failed_sector);
    if (result == 0)
        result = blk_writer_submit(w->blk, BLK_TYPE_FLUSH, 0, 0, 0);
    if (result != 0)
        return fail_request(w, result);
    while (seal_next(w))
        ;
    image_layout(h, w->count, w->zero_pages);
    if (write_contiguous(w, h->index_sector, (uint64_t)(uintptr_t)w->index,
                         image_index_bytes(w->count) / PAGE_SIZE) != 0 ||
        flush(w) != 0)
        return -1;
    fill_header(w);
    h->written_ns = clock_ns() - w->started_ns;
    tag_header(w);
    image_seal(h);
    /* the header must pass what resume will check, or it is not sent:
     * an image that can never resume must not say `hibernate ok` */
    enum image_refusal refusal = image_check_sealed(h, ram_runs, ram_run_count, info.sectors, info.serial);
    if (refusal != IMAGE_OK)
        return fail(w, image_refusal_text(refusal), 0);
    w->sealed_header_sent = 1;
    if (write_contiguous(w, 0, (uint64_t)(uintptr_t)h, 1) != 0 || flush(w) != 0)
        return -1;
    return 0;
}

/* A system that runs on must leave no image a later boot would resume:
 * its disks and memory move on from here. */
static const char *invalidate_image(struct writer *w)
{
    memset(w->header, 0, PAGE_SIZE);
    if (swap_disk_write_header(w->disk, w->header, 0) != 0)
        return " image=invalidate-failed";
    return " image=invalidated";
}

/* ---- the whole path ---------------------------------------------------- */

/* How this image is protected (docs/security.md): authenticated whenever
 * the boot has a write key, unless `hibernate_auth=off`; encrypted on
 * `hibernate_encrypt=on`, which needs the key. */
enum protection { PROTECTION_PLAIN, PROTECTION_AUTHENTICATED, PROTECTION_ENCRYPTED };

static const char *const protection_names[] = { "plain", "authenticated", "encrypted" };

static enum protection chosen_protection(const struct image_key *key)
{
    if (options_has("hibernate_encrypt=on"))
        return PROTECTION_ENCRYPTED;
    if (!key || options_has("hibernate_auth=off"))
        return PROTECTION_PLAIN;
    return PROTECTION_AUTHENTICATED;
}

/* The keys of this image, in the region: derived before the snapshot so
 * the writer only reads them. */
static void prepare_keys(struct writer *w, const struct image_key *key, enum protection protection,
                         uint64_t keys_address)
{
    uint8_t nonce[IMAGE_NONCE_BYTES];

    if (protection == PROTECTION_PLAIN)
        return;
    image_make_nonce(nonce, key->counter, image_key_next_image());
    image_set_key(w->header, key, nonce);
    w->mac = (struct page_mac_key *)(uintptr_t)keys_address;
    image_mac_key_init(w->mac, key, w->header);
    if (protection == PROTECTION_ENCRYPTED) {
        w->cipher = (struct page_cipher_key *)(uintptr_t)(keys_address + sizeof(*w->mac));
        page_cipher_key_init(w->cipher, key->secret, nonce);
    }
}

static void erase_keys(struct writer *w)
{
    if (w->mac)
        page_mac_key_erase(w->mac);
    if (w->cipher)
        page_cipher_key_erase(w->cipher);
}

const char *hibernate(void)
{
    struct blk_disk *disk = swap_disk_find();
    struct blk_info info;
    uint64_t pages = 0;
    uint64_t started = clock_ns();

    if (!disk) {
        console_printf("hibernate failed reason=no-disk (attach a virtio-blk disk with serial %s)\n",
                       SWAP_DISK_SERIAL);
        return "no-disk";
    }
    blk_disk_info(disk, &info);
    struct page_alloc_stats stats;
    page_alloc_get_stats(&stats);
    collect_ram_runs();
    /* the header records every RAM run; more cannot be resumed: refused
     * before anything is frozen or written */
    enum image_refusal runs_refusal = stats.zone_count != ram_run_count
                                          ? IMAGE_TOO_MANY_RANGES
                                          : image_check_ranges(ram_runs, ram_run_count);
    if (runs_refusal != IMAGE_OK) {
        const char *reason = image_refusal_text(runs_refusal);
        console_printf("hibernate failed reason=%s ranges=%u max=%u\n", reason, stats.zone_count,
                       IMAGE_MAX_RANGES);
        return reason;
    }
    page_alloc_walk(count_block, &pages);
    uint64_t capacity = pages + INDEX_MARGIN_PAGES;
    struct image_header bound = { 0 };
    uint64_t needed = image_layout(&bound, capacity, 0);
    if (info.read_only || needed > info.sectors * BLK_SECTOR_SIZE) {
        console_printf("hibernate failed reason=%s disk_bytes=%llu needed_bytes=%llu\n",
                       info.read_only ? "disk-read-only" : "disk-too-small",
                       (unsigned long long)(info.sectors * BLK_SECTOR_SIZE),
                       (unsigned long long)needed);
        return info.read_only ? "disk-read-only" : "disk-too-small";
    }
    /* a completed write is stable only after a flush, or when the device
     * offered VIRTIO_BLK_F_FLUSH (or runs CONFIG_WCE with writeback 0);
     * one that offers no FLUSH need not commit a completed write at all
     * (virtio 1.2, 5.2.6.2): no image goes there. The driver negotiates
     * FLUSH whenever it is offered, so has_flush says which case this is. */
    if (!info.has_flush) {
        console_printf("hibernate failed reason=disk-not-durable flush=0\n");
        return "disk-not-durable";
    }
    const struct image_key *key = image_key_write();
    enum protection protection = chosen_protection(key);
    if (protection == PROTECTION_ENCRYPTED && !key) {
        console_printf("hibernate failed reason=no-key protection=encrypted\n");
        return "no-key";
    }

    /* the region: header, the writer's own state, the image's keys, block
     * writer, ciphertext pages, stack, index; everything the writer
     * changes after the snapshot is here */
    _Static_assert(sizeof(struct page_mac_key) + sizeof(struct page_cipher_key) <= 2 * PAGE_SIZE,
                   "the keys fit two pages");
    uint64_t index_bytes = image_index_bytes(capacity);
    uint64_t keys_memory = 2 * PAGE_SIZE;
    uint64_t blk_memory = keys_memory + 2 * PAGE_SIZE;
    uint64_t bounce_memory = blk_memory + BLK_WRITER_MEMORY;
    uint64_t bounce_bytes = protection == PROTECTION_ENCRYPTED ? BOUNCE_PAGES * PAGE_SIZE : 0;
    uint64_t stack_bottom = bounce_memory + bounce_bytes;
    uint64_t index_offset = stack_bottom + WRITER_STACK_BYTES;
    uint64_t region = page_alloc(page_order_for(index_offset + index_bytes), PAGE_TAG_HIBERNATE);
    if (!region) {
        console_printf("hibernate failed reason=no-memory-for-writer bytes=%llu\n",
                       (unsigned long long)(index_offset + index_bytes));
        return "no-memory-for-writer";
    }
    _Static_assert(sizeof(struct writer) <= PAGE_SIZE, "the writer's state fits a page");
    struct writer *w = (struct writer *)(uintptr_t)(region + PAGE_SIZE);
    *w = (struct writer){
        .header = (struct image_header *)(uintptr_t)region,
        .index = (struct image_index_entry *)(uintptr_t)(region + index_offset),
        .capacity = capacity,
        .disk = disk,
        .started_ns = started,
        .bounce = (uint8_t *)(uintptr_t)(region + bounce_memory),
    };
    void *stack_top = (void *)(uintptr_t)(region + index_offset);
    /* written once now, before the snapshot: frames the firmware ran code
     * from are code pages to QEMU's TCG, and every store to one takes its
     * self-modifying-code path until the page has been written once; the
     * writer's stack and index on such frames made writing 64 MiB take
     * 1.3 s instead of 0.2 s (measured) */
    memset((void *)(uintptr_t)(region + bounce_memory), 0, bounce_bytes + WRITER_STACK_BYTES + index_bytes);

    klog("hibernate: saving up to %llu pages to %s, protection=%s", (unsigned long long)pages,
         SWAP_DISK_SERIAL, protection_names[protection]);
    int64_t result = -1;
    if (virtio_freeze_all() != 0) {
        w->reason = "freeze-failed";
    } else {
        w->blk = blk_writer_prepare(disk, (void *)(uintptr_t)(region + blk_memory));
        if (!w->blk) {
            w->reason = "disk-setup-failed";
        } else {
            blk_writer_limits(w->blk, &w->limits);
            /* nothing but the region changes from here until power-off */
            interrupts_disable();
            memset(w->header, 0, PAGE_SIZE);
            prepare_keys(w, key, protection, region + keys_memory);
            uint64_t snapshot_ns = clock_ns();
            result = snapshot_and_call(&w->header->cpu, write_image, w, stack_top);
            if (result > 0) {
                /* the second return: this is the image, resumed by a new
                 * boot; the region's contents (w too) were never saved */
                const struct resume_handoff *handoff = (const struct resume_handoff *)(uintptr_t)result;
                /* the handoff sits in a frame this kernel counts as free
                 * (the boot kernel's): keep a copy before anything allocates */
                struct resume_handoff from_boot = *handoff;
                /* the boot that resumed this image set a new key: the
                 * only one a later image may be written under */
                image_key_adopt(from_boot.has_write_key ? &from_boot.write_key : 0,
                                from_boot.key_source);
                secret_erase((void *)handoff, sizeof(*handoff));
                secret_erase(&from_boot.write_key, sizeof(from_boot.write_key));
                int restored = platform_resume ? platform_resume(&from_boot, snapshot_ns) : -1;
                resume_finish(&from_boot, restored);
                page_free(region);
                return 0;
            }
            interrupts_enable();
            if (result != 0)
                blk_writer_wait_all(w->blk, &w->failed_sector); /* the failing sector */
            blk_writer_finish(w->blk);
        }
    }
    erase_keys(w);
    if (result == 0) {
        console_printf("hibernate ok pages=%llu zero_pages=%llu image_bytes=%llu ms=%llu\n",
                       (unsigned long long)w->count, (unsigned long long)w->zero_pages,
                       (unsigned long long)(w->header->data_sector * BLK_SECTOR_SIZE +
                                            w->header->data_pages * PAGE_SIZE),
                       (unsigned long long)((clock_ns() - started) / 1000000));
        power_hibernate(); /* S4, else S5, else halts: never returns */
    }

    /* thaw: the drivers come back, the balloon list untouched */
    int thawed = virtio_thaw_all();
    const char *image = w->sealed_header_sent ? invalidate_image(w) : "";
    console_printf("hibernate failed reason=%s", w->reason ? w->reason : "unknown");
    if (w->blk_error)
        console_printf(" error=\"%s\" sector=%llu", error_text(w->blk_error),
                       (unsigned long long)w->failed_sector);
    console_printf("%s%s\n", thawed == 0 ? "" : " thaw=incomplete", image);
    const char *reason = w->reason ? w->reason : "unknown";
    page_free(region);
    return reason;
}
