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

#include "arch/x86/apic.h"       // apic_*
#include "arch/x86/cpu.h"        // cpu_init, interrupts_*
#include "arch/x86/interrupt.h"  // VECTOR_UART
#include "arch/x86/ioapic.h"     // ioapic_*
#include "arch/x86/uart.h"       // uart_*
#include "boot/handoff.h"        // struct boot_handoff, PAGE_SIZE
#include "kernel/clock.h"        // clock_*
#include "kernel/console.h"      // console_printf
#include "kernel/log.h"          // klog
#include "kernel/options.h"      // options_has
#include "lib/string.h"          // memcpy, memset
#include "mm/page_alloc.h"       // page_alloc_*
#include "pm/acpi.h"             // acpi_*
#include "pm/hibernate.h"        // HIBERNATE_DISK_SERIAL
#include "pm/image.h"            // image_*
#include "pm/power.h"            // power_init
#include "pm/power_button.h"     // power_button_resume
#include "virtio/pci.h"          // pci_rescan
#include "virtio/virtio.h"       // virtio_*
#include "virtio/virtio_blk.h"   // blk_*

#define READ_PAGES 256          /* pages per read request: 1 MiB */
#define READS_IN_FLIGHT 8
#define MAX_READ_SEGMENTS 128
#define GIB (1ull << 30)
#define MAX_IDENTITY_GIB 512    /* one page-directory-pointer table */
#define BLOCK_MARGIN 64         /* free blocks that splitting may add while counting */

extern const char _text[], _etext[];
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

uint64_t resume_build_id(void)
{
    /* linker-script bounds: compared as addresses */
    return image_checksum(_text, ((uintptr_t)_etext - (uintptr_t)_text) & ~(size_t)7);
}

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
    uint64_t allocations[5];             /* page_alloc blocks to give back */
    unsigned allocation_count;
    uint64_t failed_sector;
    uint64_t bad_pfn;
    uint64_t read_ns, staged;
};

static void *allocate(struct loader *l, uint64_t bytes)
{
    uint64_t address = page_alloc(page_order_for(bytes ? bytes : 1), PAGE_TAG_KERNEL);

    if (address)
        l->allocations[l->allocation_count++] = address;
    return (void *)(uintptr_t)address;
}

static void release(struct loader *l)
{
    for (size_t i = 0; i < l->free_count; i++)
        page_free(l->free_blocks[i].base);
    l->free_count = 0;
    while (l->allocation_count)
        page_free(l->allocations[--l->allocation_count]);
}

static int refuse(struct loader *l, const char *reason)
{
    console_printf("resume refused reason=%s", reason);
    if (l->failed_sector != ~0ull)
        console_printf(" sector=%llu", (unsigned long long)l->failed_sector);
    if (l->bad_pfn)
        console_printf(" pfn=0x%llx", (unsigned long long)l->bad_pfn);
    console_printf("\n");
    release(l);
    return -1;
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

static int read_header_and_index(struct loader *l)
{
    static struct image_ram_range ram[IMAGE_MAX_RANGES];
    struct blk_info info;
    struct page_alloc_stats stats;

    blk_disk_info(l->disk, &info);
    page_alloc_get_stats(&stats);
    l->header = allocate(l, PAGE_SIZE);
    if (!l->header)
        return refuse(l, "not-enough-memory");
    int result = blk_read(l->disk, 0, l->header, PAGE_SIZE, &l->failed_sector);
    if (result != BLK_OK)
        return refuse(l, "read-error");

    size_t ram_count = boot_ram_ranges(ram, IMAGE_MAX_RANGES);
    struct image_expectation expect = {
        .build_id = resume_build_id(),
        .ram_bytes = stats.total_pages * PAGE_SIZE,
        .disk_sectors = info.sectors,
        .disk_serial = info.serial,
        .ranges = ram,
        .range_count = ram_count,
    };
    enum image_refusal refusal = image_check_header(l->header, &expect);
    if (refusal == IMAGE_NONE) {
        klog("resume: no image on %s", HIBERNATE_DISK_SERIAL);
        release(l);
        return -1;
    }
    if (refusal != IMAGE_OK)
        return refuse(l, image_refusal_text(refusal));

    uint64_t index_bytes = image_index_bytes(l->header->page_count);
    l->index = allocate(l, index_bytes);
    l->load_pfn = allocate(l, l->header->page_count * sizeof(uint64_t));
    if (!l->index || !l->load_pfn)
        return refuse(l, "not-enough-memory");
    if (index_bytes) {
        result = blk_read(l->disk, l->header->index_sector, l->index, index_bytes, &l->failed_sector);
        if (result != BLK_OK)
            return refuse(l, "read-error");
    }
    refusal = image_check_index(l->header, l->index, ram, ram_count);
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

struct read_request {
    struct blk_request *request;
    uint64_t first, end; /* index entries it carries (zero pages among them) */
};

static int verify_range(struct loader *l, uint64_t first, uint64_t end)
{
    for (uint64_t i = first; i < end; i++) {
        const struct image_index_entry *e = &l->index[i];
        if (e->pfn_and_flags & IMAGE_ENTRY_ZERO)
            continue;
        const void *page = (const void *)(uintptr_t)(l->load_pfn[i] * PAGE_SIZE);
        if (image_checksum(page, PAGE_SIZE) != e->checksum) {
            l->bad_pfn = IMAGE_ENTRY_PFN(e->pfn_and_flags);
            return -1;
        }
    }
    return 0;
}

/* Waits for the oldest read and checks its pages: 0, or the refusal. */
static const char *finish_oldest(struct loader *l, struct read_request *queue, unsigned *head,
                                 unsigned *used)
{
    struct read_request *r = &queue[*head];
    int result = blk_wait(l->disk, r->request, &l->failed_sector);

    *head = (*head + 1) % READS_IN_FLIGHT;
    (*used)--;
    if (result != BLK_OK)
        return "read-error";
    l->failed_sector = ~0ull;
    return verify_range(l, r->first, r->end) == 0 ? 0 : "bad-page-checksum";
}

/* Refuses after every read in flight has landed: no device may still
 * write into memory that goes back to the allocator. */
static int drain_and_refuse(struct loader *l, struct read_request *queue, unsigned head,
                            unsigned used, const char *reason)
{
    for (; used; used--, head = (head + 1) % READS_IN_FLIGHT)
        blk_wait(l->disk, queue[head].request, 0);
    return refuse(l, reason);
}

/* Reads the data area in order, scattering each request over the planned
 * frames, and checks each page as its request completes. */
static int load_pages(struct loader *l)
{
    struct read_request queue[READS_IN_FLIGHT];
    struct blk_segment segments[MAX_READ_SEGMENTS];
    struct blk_info info;
    unsigned head = 0, used = 0, count = 0, pages = 0;
    uint64_t sector = l->header->data_sector, request_first = 0;
    uint64_t started = clock_ns();

    blk_disk_info(l->disk, &info);
    unsigned max_segments = info.max_segments < MAX_READ_SEGMENTS ? info.max_segments : MAX_READ_SEGMENTS;
    uint64_t max_segment_bytes = info.max_segment_bytes ? info.max_segment_bytes : ~0ull;
    unsigned depth = blk_queue_depth(l->disk) < READS_IN_FLIGHT ? blk_queue_depth(l->disk) : READS_IN_FLIGHT;
    l->failed_sector = ~0ull;

    for (uint64_t i = 0; i <= l->header->page_count; i++) {
        int last = i == l->header->page_count;
        uint64_t address = 0;
        if (!last) {
            address = l->load_pfn[i] * PAGE_SIZE;
            if (l->index[i].pfn_and_flags & IMAGE_ENTRY_ZERO) {
                memset((void *)(uintptr_t)address, 0, PAGE_SIZE);
                continue;
            }
            struct blk_segment *tail = count ? &segments[count - 1] : 0;
            if (tail && tail->address + tail->length == address && pages < READ_PAGES &&
                tail->length + PAGE_SIZE <= max_segment_bytes) {
                tail->length += PAGE_SIZE;
                pages++;
                continue;
            }
        }
        if (count && (last || count == max_segments || pages == READ_PAGES)) {
            const char *failure = used == depth ? finish_oldest(l, queue, &head, &used) : 0;
            if (failure)
                return drain_and_refuse(l, queue, head, used, failure);
            struct read_request *r = &queue[(head + used) % READS_IN_FLIGHT];
            r->first = request_first;
            r->end = i;
            int result = blk_submit(l->disk, BLK_TYPE_IN, sector, segments, count, &r->request);
            if (result != BLK_OK) {
                l->failed_sector = sector;
                return drain_and_refuse(l, queue, head, used, "read-error");
            }
            used++;
            sector += (uint64_t)pages * (PAGE_SIZE / BLK_SECTOR_SIZE);
            count = pages = 0;
            request_first = i;
        }
        if (!last) {
            if (!count)
                request_first = i;
            segments[count++] = (struct blk_segment){ address, PAGE_SIZE };
            pages++;
        }
    }
    while (used) {
        const char *failure = finish_oldest(l, queue, &head, &used);
        if (failure)
            return drain_and_refuse(l, queue, head, used, failure);
    }
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
    pml4[0] = (uint64_t)(uintptr_t)pdpt | 3; /* present, writable */
    for (uint64_t g = 0; g < directories; g++) {
        uint64_t *directory = frame(l, (unsigned)(EXTRA_DIRECTORIES + g));
        for (uint64_t e = 0; e < 512; e++)
            directory[e] = (g * GIB + e * (2ull << 20)) | 0x83; /* present, writable, 2 MiB */
        pdpt[g] = (uint64_t)(uintptr_t)directory | 3;
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
    };
    p->handoff = (uint64_t)(uintptr_t)&p->resume_handoff;
    memcpy(frame(l, EXTRA_CODE), resume_trampoline, code_bytes);

    klog("resume: jumping into the image (%llu pages, %llu staged)",
         (unsigned long long)l->header->page_count, (unsigned long long)l->staged);
    virtio_quiesce_all(); /* no device may write memory from here on */
    interrupts_disable();
    ((void (*)(struct resume_parameters *))frame(l, EXTRA_CODE))(p);
    cpu_halt_forever(); /* not reached */
}

void resume_from_disk(const struct boot_handoff *handoff)
{
    struct loader l = { .boot = handoff, .failed_sector = ~0ull };

    if (options_has("noresume")) {
        console_printf("resume skipped reason=noresume\n");
        return;
    }
    l.disk = blk_disk_find(HIBERNATE_DISK_SERIAL);
    if (!l.disk) {
        klog("resume: no %s disk", HIBERNATE_DISK_SERIAL);
        return;
    }
    if (read_header_and_index(&l) != 0 || claim_and_plan(&l) != 0 || load_pages(&l) != 0)
        return;

    /* never twice: the attempt is on the disk before the jump */
    l.header->state = IMAGE_STATE_RESUMING;
    image_seal(l.header);
    l.failed_sector = ~0ull;
    if (blk_write(l.disk, 0, l.header, PAGE_SIZE, &l.failed_sector) != BLK_OK ||
        blk_flush(l.disk, &l.failed_sector) != BLK_OK) {
        refuse(&l, "cannot-record-attempt");
        return;
    }
    jump(&l);
}

/* ---- the image side ---------------------------------------------------- */

/* The image is spent: `used`, so no later boot resumes it again. */
static int mark_used(uint64_t *page_count)
{
    struct blk_disk *disk = blk_disk_find(HIBERNATE_DISK_SERIAL);
    uint64_t address = page_alloc(0, PAGE_TAG_KERNEL);
    struct image_header *h = (struct image_header *)(uintptr_t)address;
    int result = -1;

    if (!disk || !h) {
        if (address)
            page_free(address);
        return -1;
    }
    if (blk_read(disk, 0, h, PAGE_SIZE, 0) == BLK_OK && h->magic == IMAGE_MAGIC &&
        h->state == IMAGE_STATE_RESUMING && h->build_id == resume_build_id()) {
        *page_count = h->page_count;
        h->state = IMAGE_STATE_USED;
        image_seal(h);
        if (blk_write(disk, 0, h, PAGE_SIZE, 0) == BLK_OK && blk_flush(disk, 0) == BLK_OK)
            result = 0;
    }
    page_free(address);
    return result;
}

void resume_arrived(const struct resume_handoff *from_boot, uint64_t snapshot_ns)
{
    /* the handoff sits in a frame this kernel counts as free: copy first */
    struct resume_handoff handoff = *from_boot;

    clock_continue_from(snapshot_ns);
    cpu_init();
    uart_init();
    int acpi_ok = acpi_init(handoff.acpi_rsdp);
    const struct acpi_info *acpi = acpi_get();
    power_init(handoff.efi_runtime_services);
    apic_init(acpi_ok == 0 ? acpi->local_apic : 0);
    ioapic_init(acpi, apic_id());
    ioapic_route_isa_irq(UART_COM1_IRQ, VECTOR_UART);
    uart_enable_receive_interrupt();
    pci_rescan(acpi);
    virtio_rescan();
    interrupts_enable();
    apic_timer_start();
    int restored = virtio_restore_all();
    power_button_resume();

    uint64_t page_count = handoff.page_count;
    int used = mark_used(&page_count);
    uint64_t ms = clock_tsc_to_ns(rdtsc() - handoff.tsc_at_entry) / 1000000;
    uint64_t read_ms = handoff.read_ns / 1000000;
    klog("resume: read %llu KiB in %llu ms, %llu pages staged", (unsigned long long)(handoff.read_bytes / 1024),
         (unsigned long long)read_ms, (unsigned long long)handoff.staged_pages);
    console_printf("resume ok pages=%llu ms=%llu read_bytes=%llu read_us=%llu%s%s\n",
                   (unsigned long long)page_count, (unsigned long long)ms,
                   (unsigned long long)handoff.read_bytes, (unsigned long long)(handoff.read_ns / 1000),
                   restored == 0 ? "" : " restore=incomplete",
                   used == 0 ? "" : " mark_used=failed");
}
