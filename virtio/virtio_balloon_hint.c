/*
 * Free page hinting glue (virtio 1.2, 5.5.6.7): the device, the allocator
 * and the clock around the state machine of balloon_hint.c. QEMU sets a
 * new free_page_hint_cmd_id after each dirty bitmap sync of a precopy
 * migration, STOP before the next sync and DONE when it is over; the
 * blocks hinted meanwhile are not sent.
 */
#include "virtio/virtio_balloon_hint.h"

#include "arch/x86/clock.h" // clock_ns
#include "arch/x86/cpu.h"   // cpu_relax, read_cr3, write_cr3
#include "mm/page.h"        // PAGE_SIZE
#include "mm/page_alloc.h"  // page_alloc_largest, page_free
#include "virtio/virtio.h"  // virtio_*

#define HINT_MIN_ORDER 9   /* 2 MiB: smaller blocks are not worth a buffer */
#define HINT_MAX_ORDER 18  /* 1 GiB: QEMU takes any length (one RAM block) */
#define RECLAIM_WAIT_NS 50000000ull /* OOM: how long to wait for blocks in flight */

static struct {
    struct virtio_device *device;
    int queue; /* -1: not negotiated */
    uint64_t reserve_pages;
    struct balloon_hint core;
} hint = { .queue = -1 };

static uint64_t take(void *context, unsigned *order)
{
    (void)context;
    return page_alloc_largest(HINT_MIN_ORDER, HINT_MAX_ORDER, hint.reserve_pages, PAGE_TAG_HINTED, order);
}

static void give(void *context, uint64_t address)
{
    (void)context;
    page_free(address); /* the host never wrote it: its content is as it was */
}

static int send(void *context, uint64_t address, uint32_t length, int device_writes, void *token)
{
    struct vq_buffer buffer = { address, length, device_writes };
    struct virtqueue *vq = virtio_queue(hint.device, (unsigned)hint.queue);

    (void)context;
    return vq && vq_add_chain(vq, &buffer, 1, token) == 0 ? 0 : -1;
}

static void kick(void *context, int again)
{
    (void)context;
    if (again)
        virtio_notify_always(hint.device, (unsigned)hint.queue);
    else
        virtio_notify(hint.device, (unsigned)hint.queue);
}

static const struct hint_ops ops = { take, give, send, kick };

void balloon_hint_start(struct virtio_device *device, int queue, uint32_t *words)
{
    hint.device = device;
    hint.queue = queue;
    if (queue < 0)
        return;
    if (!hint.core.ops)
        hint_init(&hint.core, &ops, 0, words);
    hint.core.words = words; /* a device probed afresh has a new page */
}

void balloon_hint_config(uint64_t reserve_pages)
{
    if (hint.queue < 0)
        return;
    hint.reserve_pages = reserve_pages;
    balloon_hint_drain();
    uint32_t id = (uint32_t)VIRTIO_READ_CONFIG(hint.device, struct virtio_balloon_config, free_page_hint_cmd_id);
    /* QEMU 7.2 sets a new id right after each dirty bitmap sync; under TCG
     * that sync leaves its TLB's write entries in place, so later writes
     * through them are never logged and a migration loses them (fixed in
     * QEMU 9.0: "physmem: Fix migration dirty bitmap coherency with TCG
     * memory access"). A CR3 reload empties that TLB: from here on every
     * first write to a page is logged (docs/balloon.md) */
    if (id != HINT_CMD_ID_STOP && id != HINT_CMD_ID_DONE && id != hint.core.last_id)
        write_cr3(read_cr3());
    hint_command(&hint.core, id);
    hint_step(&hint.core);
}

void balloon_hint_drain(void)
{
    struct virtqueue *vq = hint.queue >= 0 ? virtio_queue(hint.device, (unsigned)hint.queue) : 0;
    void *token;
    uint32_t length;

    while (vq && vq_get_used(vq, &token, &length) != VQ_USED_NONE)
        hint_used(&hint.core, token);
}

uint64_t balloon_hint_reclaim(void)
{
    uint64_t deadline = clock_ns() + RECLAIM_WAIT_NS;
    uint64_t given;

    if (hint.queue < 0 || !hint.core.active)
        return 0;
    balloon_hint_drain();
    given = hint_reclaim(&hint.core);
    /* QEMU's iothread returns buffers within microseconds; a block is
     * reused only once the device gave it back (its hint is then done) */
    while (hint.core.held && clock_ns() < deadline) {
        uint64_t before = hint.core.held_pages;
        balloon_hint_drain();
        given += before - hint.core.held_pages;
        cpu_relax();
    }
    return given;
}

int balloon_hint_quiesce(uint64_t deadline_ns)
{
    if (hint.queue < 0)
        return 0;
    balloon_hint_drain();
    hint_command(&hint.core, HINT_CMD_ID_STOP);
    while (hint.core.posted && clock_ns() < deadline_ns) {
        balloon_hint_drain();
        cpu_relax();
    }
    return hint.core.posted ? -1 : 0;
}

void balloon_hint_reset(void)
{
    if (hint.core.ops)
        hint_abandon(&hint.core);
}

const char *balloon_hint_state(uint64_t *held_pages, struct hint_stats *stats)
{
    *held_pages = hint.core.held_pages;
    *stats = hint.core.stats;
    return hint.queue < 0 ? "off" : hint_state_name(&hint.core);
}
