/*
 * Resume from a hibernation image (see pm/resume.h and docs/hibernate.md).
 *
 * The boot side never overwrites memory it runs on: it claims every free
 * block of its allocator, reads each saved page straight into its own
 * frame where that frame is among them, and into a spare frame (free here
 * and no saved page's home) otherwise. Only the trampoline, running from
 * a spare frame on temporary page tables, copies the staged pages over
 * the boot kernel and jumps.
 */
#include "pm/resume.h"

#include "arch/x86/clock.h"    // clock_*
#include "arch/x86/cpu.h"      // interrupts_disable, rdtsc
#include "arch/x86/paging.h"   // PTE_*
#include "boot/handoff.h"      // struct boot_handoff
#include "console/console.h"   // console_printf
#include "console/log.h"       // klog
#include "crypto/page_cipher.h" // page_cipher_*
#include "crypto/page_mac.h"   // page_mac_key_erase
#include "kernel/options.h"    // options_has
#include "lib/error.h"         // ERROR_*
#include "lib/string.h"        // memcpy, memset
#include "mm/page.h"           // PAGE_SIZE
#include "mm/page_alloc.h"     // page_alloc_*
#include "pm/image.h"          // image_*
#include "pm/image_key.h"      // image_key_*
#include "pm/image_reader.h"   // image_read_pages
#include "pm/swap_disk.h"      // swap_disk_*
#include "virtio/virtio.h"     // virtio_*
#include "virtio/virtio_blk.h" // blk_*

#define GIB (1ull << 30)
#define MAX_IDENTITY_GIB 512    /* one page-directory-pointer table */
#define BLOCK_MARGIN 64         /* free blocks that splitting may add while counting */
#define LOADER_ALLOCATIONS 6    /* struct loader's allocations */

extern const char resume_trampoline[], resume_trampoline_end[];

/* The trampoline's parameter page; offsets as in resume_trampoline.asm. */
struct resume_parameters {
    uint64_t page_tables;        /* 0: temporary identity map (CR3) */
    uint64_t copy_list;          /* 8: first copy page, 0 if none */
    uint64_t handoff;            /* 16: returned into the image in rax */
    uint64_t reserved;
    uint8_t scratch[32];         /* 32: lgdt/lidt operands */
    struct image_cpu_state cpu;  /* 64 */
    struct resume_handoff resume_handoff;
};
_Static_assert(__builtin_offsetof(struct resume_parameters, cpu) == 64, "trampoline layout");
_Static_assert(sizeof(struct resume_parameters) <= PAGE_SIZE - 256, "room for the trampoline's stack");

#define COPY_PAIRS_PER_PAGE ((PAGE_SIZE - 16) / 16)
struct copy_page {
    uint64_t next;
    uint64_t count;
    uint64_t pairs[COPY_PAIRS_PER_PAGE][2]; /* source, destination */
};
_Static_assert(sizeof(struct copy_page) == PAGE_SIZE, "one copy page per frame");

/* ---- the loader's state ------------------------------------------------ */

struct loader {
    const struct boot_handoff *boot;
    struct blk_disk *disk;
    struct image_header *header;
    struct image_index_entry *index;
    uint64_t *load_pfn;
    struct image_ram_range *free_blocks; /* claimed, in address order */
    size_t free_count, free_capacity;
    uint64_t *extra;
    size_t extra_count;
    /* page_alloc blocks to give back: the header, the image's keys, the
     * index, load_pfn, the claimed blocks' list, the extra frames' list */
    uint64_t allocations[LOADER_ALLOCATIONS];
    unsigned allocation_count;
    uint64_t failed_sector;
    uint64_t bad_pfn;
    uint64_t read_ns, staged;
    int armed;                           /* the header on the disk is one a boot would resume */
    struct page_mac_key *mac;            /* an authenticated image's keys, else NULL */
    struct page_cipher_key *cipher;      /* an encrypted one's */
};

/* NULL when memory or the list of allocations is full (the caller refuses
 * `not-enough-memory` either way). */
static void *allocate(struct loader *l, uint64_t bytes)
{
    if (l->allocation_count == LOADER_ALLOCATIONS)
        return 0;
    uint64_t address = page_alloc(page_order_for(bytes ? bytes : 1), PAGE_TAG_KERNEL);

    if (address)
        l->allocations[l->allocation_count++] = address;
    return (void *)(uintptr_t)address;
}

/* The image's keys are secret: gone before their memory is. */
static void erase_image_keys(struct loader *l)
{
    if (l->mac)
        page_mac_key_erase(l->mac);
    if (l->cipher)
        page_cipher_key_erase(l->cipher);
    l->mac = 0;
    l->cipher = 0;
}

static void release(struct loader *l)
{
    uint64_t pages = 0;

    erase_image_keys(l);
    for (size_t i = 0; i < l->free_count; i++)
        pages += l->free_blocks[i].pages;
    if (l->free_count) /* the order after a disk reset is tested */
        klog("resume: %llu claimed pages back to the allocator", (unsigned long long)pages);
    for (size_t i = 0; i < l->free_count; i++)
        page_free(l->free_blocks[i].base);
    l->free_count = 0;
    while (l->allocation_count)
        page_free(l->allocations[--l->allocation_count]);
}

/* This boot goes on fresh: an image it could have resumed is marked
 * skipped first, so no later boot resumes old memory over the disks this
 * system is about to change (docs/hibernate.md, the rule). Returns the
 * `image=` word for the console line, or "" when nothing was armed. */
static const char *skip_image(struct loader *l)
{
    if (!l->armed)
        return "";
    image_set_state(l->header, IMAGE_STATE_SKIPPED);
    l->armed = 0;
    if (swap_disk_write_header(l->disk, l->header, 0) != 0)
        return " image=skip-failed";
    return " image=skipped";
}

static int refuse(struct loader *l, const char *reason)
{
    const char *image = skip_image(l);

    console_printf("resume refused reason=%s", reason);
    if (l->failed_sector != ~0ull)
        console_printf(" sector=%llu", (unsigned long long)l->failed_sector);
    if (l->bad_pfn)
        console_printf(" pfn=0x%llx", (unsigned long long)l->bad_pfn);
    console_printf("%s\n", image);
    release(l);
    return -1;
}

/* A read that failed may have timed out and still be the device's: a
 * reset stops it before its buffer goes back to the allocator. */
static int refuse_read_error(struct loader *l)
{
    int restarted = blk_disk_restart(l->disk);

    klog("resume: disk reset after read-error%s", restarted == 0 ? "" : ", restart failed");
    return refuse(l, "read-error");
}

/* This boot's RAM runs: the allocator's zones. */
static size_t boot_ram_ranges(struct image_ram_range *ranges, size_t capacity)
{
    size_t count = 0;

    for (unsigned z = 0; page_alloc_zone(z) && count < capacity; z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        ranges[count++] = (struct image_ram_range){ zone->base_pfn * PAGE_SIZE, zone->page_count };
    }
    return count;
}

/* ---- reading and checking the header and index ------------------------- */

/* Sector 0's page, as it is on the disk (a state change writes back
 * exactly this page, so only the sector with the state changes). */
static int read_header(struct loader *l)
{
    l->header = allocate(l, PAGE_SIZE);
    if (!l->header)
        return refuse(l, "not-enough-memory");
    if (blk_read(l->disk, 0, l->header, PAGE_SIZE, &l->failed_sector) != 0)
        return refuse_read_error(l);
    l->failed_sector = ~0ull;
    l->armed = image_is_armed(l->header);
    return 0;
}

/* Whose image it is (docs/security.md): an authenticated image must be
 * under this boot's resume key, and its header tag must check; a plain
 * one is taken only where this boot could not authenticate one itself,
 * or with `hibernate_auth=off`. */
static int check_key(struct loader *l)
{
    const struct image_key *key = image_key_resume();
    int plain_accepted = image_key_source() == IMAGE_KEY_SOURCE_NONE || options_has("hibernate_auth=off");
    enum image_refusal refusal = image_check_key(l->header, key, plain_accepted);

    if (refusal != IMAGE_OK)
        return refuse(l, image_refusal_text(refusal));
    if (!(l->header->flags & IMAGE_FLAG_AUTHENTICATED))
        return 0;
    l->mac = allocate(l, sizeof(*l->mac) + sizeof(*l->cipher));
    if (!l->mac)
        return refuse(l, "not-enough-memory");
    image_mac_key_init(l->mac, key, l->header);
    if (l->header->flags & IMAGE_FLAG_ENCRYPTED) {
        l->cipher = (struct page_cipher_key *)(l->mac + 1);
        page_cipher_key_init(l->cipher, key->secret, l->header->nonce);
    }
    refusal = image_check_header_tag(l->header, l->mac);
    return refusal == IMAGE_OK ? 0 : refuse(l, image_refusal_text(refusal));
}

static int check_header_and_read_index(struct loader *l)
{
    static struct image_ram_range ram[IMAGE_MAX_RANGES];
    struct blk_info info;
    struct page_alloc_stats stats;

    /* the seal and state first, with no expectation: the build id is a
     * checksum of the kernel's text (a millisecond or two under TCG), which
     * a boot with no image on its disk need not pay */
    enum image_refusal refusal = image_check_header(l->header, 0);
    if (refusal == IMAGE_NONE) {
        klog("resume: no image on %s", SWAP_DISK_SERIAL);
        release(l);
        return -1;
    }
    if (refusal != IMAGE_OK)
        return refuse(l, image_refusal_text(refusal));
    blk_disk_info(l->disk, &info);
    page_alloc_get_stats(&stats);
    size_t ram_count = boot_ram_ranges(ram, IMAGE_MAX_RANGES);
    struct image_expectation expect = {
        .build_id = swap_disk_build_id(),
        .ram_bytes = stats.total_pages * PAGE_SIZE,
        .disk_sectors = info.sectors,
        .disk_serial = info.serial,
        .ranges = ram,
        .range_count = ram_count,
    };
    refusal = image_check_header(l->header, &expect);
    if (refusal != IMAGE_OK)
        return refuse(l, image_refusal_text(refusal));
    if (check_key(l) != 0)
        return -1;

    uint64_t index_bytes = image_index_bytes(l->header->page_count);
    l->index = allocate(l, index_bytes);
    l->load_pfn = allocate(l, l->header->page_count * sizeof(uint64_t));
    if (!l->index || !l->load_pfn)
        return refuse(l, "not-enough-memory");
    if (index_bytes &&
        blk_read(l->disk, l->header->index_sector, l->index, index_bytes, &l->failed_sector) != 0)
        return refuse_read_error(l);
    refusal = image_check_index(l->header, l->index, ram, ram_count, l->mac);
    if (refusal != IMAGE_OK)
        return refuse(l, image_refusal_text(refusal));
    return 0;
}

/* ---- claiming free memory and planning --------------------------------- */

static int count_free(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    (void)pfn;
    (void)count;
    (void)tag;
    *(size_t *)context += state == BUDDY_FREE;
    return 0;
}

static int record_claimed(void *context, uint64_t pfn, uint64_t count, enum buddy_state state, uint8_t tag)
{
    struct loader *l = context;

    (void)state;
    (void)tag;
    if (l->free_count == l->free_capacity) {
        page_free(pfn * PAGE_SIZE); /* no room to remember it: give it back now */
        return -1;
    }
    l->free_blocks[l->free_count++] = (struct image_ram_range){ pfn * PAGE_SIZE, count };
    return 0;
}

/* Whether pfn lies in one of the claimed blocks. */
static int claimed(const struct loader *l, uint64_t pfn)
{
    return image_ranges_contain(l->free_blocks, l->free_count, pfn);
}

/* Page directories for an identity map of every zone. */
static uint64_t directory_count(void)
{
    uint64_t top = 0;

    for (unsigned z = 0; page_alloc_zone(z); z++) {
        const struct buddy_zone *zone = page_alloc_zone(z);
        uint64_t end = (zone->base_pfn + zone->page_count) * PAGE_SIZE;
        if (end > top)
            top = end;
    }
    return (top + GIB - 1) / GIB;
}

/* extra frames: [0] parameters, [1] code, [2] PML4, [3] PDPT, then the
 * page directories, then the copy pages */
#define EXTRA_PARAMETERS 0
#define EXTRA_CODE 1
#define EXTRA_PML4 2
#define EXTRA_PDPT 3
#define EXTRA_DIRECTORIES 4

static int claim_and_plan(struct loader *l)
{
    uint64_t directories = directory_count();
    size_t blocks = 0;

    if (directories > MAX_IDENTITY_GIB)
        return refuse(l, "ram-too-high");

    /* every allocation comes before the claim; the count is taken after
     * the other arrays exist, with a margin for the split this one causes */
    page_alloc_walk(count_free, &blocks);
    l->free_capacity = blocks + BLOCK_MARGIN;
    l->free_blocks = allocate(l, l->free_capacity * sizeof(*l->free_blocks));
    l->extra = allocate(l, (EXTRA_DIRECTORIES + directories +
                            (l->header->page_count + COPY_PAIRS_PER_PAGE - 1) / COPY_PAIRS_PER_PAGE) *
                               sizeof(uint64_t));
    if (!l->free_blocks || !l->extra)
        return refuse(l, "not-enough-memory");
    if (page_alloc_claim_free(PAGE_TAG_HIBERNATE, record_claimed, l) != 0)
        return refuse(l, "too-many-free-blocks");

    uint64_t staged = 0;
    for (uint64_t i = 0; i < l->header->page_count; i++)
        staged += !claimed(l, IMAGE_ENTRY_PFN(l->index[i].pfn_and_flags));
    l->staged = staged;
    l->extra_count = EXTRA_DIRECTORIES + directories + (staged + COPY_PAIRS_PER_PAGE - 1) / COPY_PAIRS_PER_PAGE;
    struct image_plan plan = { .load_pfn = l->load_pfn, .extra_frames = l->extra };
    if (image_plan_restore(l->index, l->header->page_count, l->free_blocks, l->free_count,
                           l->extra_count, &plan) != 0)
        return refuse(l, "not-enough-spare-memory");
    return 0;
}

/* ---- reading the data -------------------------------------------------- */

static int load_pages(struct loader *l)
{
    struct image_reader reader = {
        .disk = l->disk, .header = l->header, .index = l->index, .load_pfn = l->load_pfn,
        .mac = l->mac, .cipher = l->cipher,
    };
    uint64_t started = clock_ns();
    const char *failure = image_read_pages(&reader);

    l->failed_sector = reader.failed_sector;
    l->bad_pfn = reader.bad_pfn;
    if (failure)
        return refuse(l, failure);
    l->read_ns = clock_ns() - started;
    return 0;
}

/* ---- the jump ---------------------------------------------------------- */

static void *frame(const struct loader *l, unsigned which)
{
    return (void *)(uintptr_t)(l->extra[which] * PAGE_SIZE);
}

static uint64_t build_page_tables(const struct loader *l, uint64_t directories)
{
    uint64_t *pml4 = frame(l, EXTRA_PML4), *pdpt = frame(l, EXTRA_PDPT);

    memset(pml4, 0, PAGE_SIZE);
    memset(pdpt, 0, PAGE_SIZE);
    pml4[0] = (uint64_t)(uintptr_t)pdpt | PTE_TABLE;
    for (uint64_t g = 0; g < directories; g++) {
        uint64_t *directory = frame(l, (unsigned)(EXTRA_DIRECTORIES + g));
        for (uint64_t e = 0; e < 512; e++)
            directory[e] = (g * GIB + e * (2ull << 20)) | PTE_LEAF | PTE_LARGE; /* 2 MiB */
        pdpt[g] = (uint64_t)(uintptr_t)directory | PTE_TABLE;
    }
    return (uint64_t)(uintptr_t)pml4;
}

static uint64_t build_copy_list(const struct loader *l, unsigned first_frame)
{
    struct copy_page *page = 0, *first = 0;
    unsigned next_frame = first_frame;

    for (uint64_t i = 0; i < l->header->page_count; i++) {
        uint64_t pfn = IMAGE_ENTRY_PFN(l->index[i].pfn_and_flags);
        if (l->load_pfn[i] == pfn)
            continue;
        if (!page || page->count == COPY_PAIRS_PER_PAGE) {
            struct copy_page *fresh = frame(l, next_frame++);
            fresh->next = 0;
            fresh->count = 0;
            if (page)
                page->next = (uint64_t)(uintptr_t)fresh;
            else
                first = fresh;
            page = fresh;
        }
        page->pairs[page->count][0] = l->load_pfn[i] * PAGE_SIZE;
        page->pairs[page->count][1] = pfn * PAGE_SIZE;
        page->count++;
    }
    return (uint64_t)(uintptr_t)first;
}

static void jump(struct loader *l)
{
    uint64_t directories = directory_count();
    struct resume_parameters *p = frame(l, EXTRA_PARAMETERS);
    size_t code_bytes = (uintptr_t)resume_trampoline_end - (uintptr_t)resume_trampoline;

    memset(p, 0, sizeof(*p));
    p->page_tables = build_page_tables(l, directories);
    p->copy_list = build_copy_list(l, (unsigned)(EXTRA_DIRECTORIES + directories));
    p->cpu = l->header->cpu;
    p->resume_handoff = (struct resume_handoff){
        .tsc_at_entry = l->boot->tsc_at_entry,
        .acpi_rsdp = l->boot->acpi_rsdp,
        .efi_runtime_services = l->boot->efi_runtime_services,
        .page_count = l->header->page_count,
        .read_ns = l->read_ns,
        .read_bytes = l->header->data_pages * PAGE_SIZE,
        .staged_pages = l->staged,
        .key_source = image_key_source(),
    };
    const struct image_key *write_key = image_key_write();
    if (write_key) {
        p->resume_handoff.write_key = *write_key;
        p->resume_handoff.has_write_key = 1;
    }
    /* nothing secret may stay behind in what the image kernel sees as
     * free memory: only the handoff's copy, which it erases */
    erase_image_keys(l);
    image_key_erase_all();
    p->handoff = (uint64_t)(uintptr_t)&p->resume_handoff;
    memcpy(frame(l, EXTRA_CODE), resume_trampoline, code_bytes);

    klog("resume: jumping into the image (%llu pages, %llu staged)",
         (unsigned long long)l->header->page_count, (unsigned long long)l->staged);
    virtio_quiesce_all(); /* no device may write memory from here on */
    interrupts_disable();
    ((void (*)(struct resume_parameters *))frame(l, EXTRA_CODE))(p);
    cpu_halt_forever(); /* not reached */
}

static void resume_or_refuse(const struct boot_handoff *handoff)
{
    struct loader l = { .boot = handoff, .failed_sector = ~0ull };

    l.disk = swap_disk_find();
    if (!l.disk) {
        klog("resume: no %s disk", SWAP_DISK_SERIAL);
        if (options_has("noresume"))
            console_printf("resume skipped reason=noresume\n");
        return;
    }
    if (read_header(&l) != 0)
        return;
    if (options_has("noresume")) {
        /* going on fresh: an image that was there must not come back */
        console_printf("resume skipped reason=noresume%s\n", skip_image(&l));
        release(&l);
        return;
    }
    if (check_header_and_read_index(&l) != 0)
        return;

    /* the attempt is on the disk before any memory is touched: a crash
     * or power loss from here on finds `resuming`, which no boot resumes,
     * so it can never loop or resume twice */
    image_set_state(l.header, IMAGE_STATE_RESUMING);
    if (swap_disk_write_header(l.disk, l.header, &l.failed_sector) != 0) {
        /* what is on the disk now is unknown: try to say skipped */
        image_set_state(l.header, IMAGE_STATE_VALID);
        refuse(&l, "cannot-record-attempt");
        return;
    }
    l.failed_sector = ~0ull;
    l.armed = 1; /* resuming, by this boot: a refusal from here marks it skipped */
    if (claim_and_plan(&l) != 0 || load_pages(&l) != 0)
        return;
    jump(&l);
}

void resume_from_disk(const struct boot_handoff *handoff)
{
    resume_or_refuse(handoff);
    /* the resume key opens only the image that was on the disk at this
     * boot; the variable already holds the next one */
    image_key_erase_resume();
}

/* ---- the image side ---------------------------------------------------- */

/* The image is spent: `used`, so no later boot resumes it again. */
static int mark_used(uint64_t *page_count)
{
    struct blk_disk *disk = swap_disk_find();
    uint64_t address = page_alloc(0, PAGE_TAG_KERNEL);
    struct image_header *h = (struct image_header *)(uintptr_t)address;
    int result = -1;

    if (!disk || !h) {
        if (address)
            page_free(address);
        return -1;
    }
    if (blk_read(disk, 0, h, PAGE_SIZE, 0) == 0 && h->magic == IMAGE_MAGIC &&
        h->state == IMAGE_STATE_RESUMING && h->build_id == swap_disk_build_id()) {
        *page_count = h->page_count;
        image_set_state(h, IMAGE_STATE_USED);
        if (swap_disk_write_header(disk, h, 0) == 0)
            result = 0;
    }
    page_free(address);
    return result;
}

void resume_finish(const struct resume_handoff *handoff, int restored)
{
    uint64_t page_count = handoff->page_count;
    int used = mark_used(&page_count);
    uint64_t ms = clock_tsc_to_ns(rdtsc() - handoff->tsc_at_entry) / 1000000;
    uint64_t read_ms = handoff->read_ns / 1000000;

    klog("resume: read %llu KiB in %llu ms, %llu pages staged",
         (unsigned long long)(handoff->read_bytes / 1024), (unsigned long long)read_ms,
         (unsigned long long)handoff->staged_pages);
    console_printf("resume ok pages=%llu ms=%llu read_bytes=%llu read_us=%llu%s%s\n",
                   (unsigned long long)page_count, (unsigned long long)ms,
                   (unsigned long long)handoff->read_bytes, (unsigned long long)(handoff->read_ns / 1000),
                   restored == 0 ? "" : " restore=incomplete",
                   used == 0 ? "" : " mark_used=failed");
}
