/* The device side of split and packed virtqueues for the host tests, from
 * the virtio 1.2 text alone; any driver mistake it sees fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/sim_device.h"

#define barrier() __asm__ volatile("" ::: "memory")
#define load16(p) (*(const volatile uint16_t *)(p))
#define store16(p, v) (*(volatile uint16_t *)(p) = (uint16_t)(v))

static uint32_t next_random(struct sim_device *dev)
{
    uint32_t x = dev->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return dev->rng = x;
}

uint32_t sim_hash(uint32_t seed, const uint8_t *bytes, uint32_t length)
{
    for (uint32_t i = 0; i < length; i++)
        seed = (seed ^ bytes[i]) * 16777619u;
    return seed;
}

uint8_t sim_pattern(uint32_t seed, uint32_t offset)
{
    return (uint8_t)((seed >> ((offset & 3) * 8)) + offset * 131u + 1);
}

int sim_init(struct sim_device *dev, int packed, uint16_t size, int event_idx, int indirect,
             uint64_t descriptor_area, uint64_t driver_area, uint64_t device_area, uint32_t seed)
{
    memset(dev, 0, sizeof(*dev));
    if (size == 0)
        return -1;
    dev->packed = packed;
    dev->size = size;
    dev->event_idx = event_idx;
    dev->indirect = indirect;
    dev->rng = seed ? seed : 1;
    dev->write_limit = -1;
    if (packed) {
        dev->ring = (struct vring_packed_desc *)(uintptr_t)descriptor_area;
        dev->driver_event = (struct vring_packed_event *)(uintptr_t)driver_area;
        dev->device_event = (struct vring_packed_event *)(uintptr_t)device_area;
        dev->avail_wrap = dev->used_wrap = 1; /* both wrap counters start at 1 */
    } else {
        dev->desc = (struct vring_desc *)(uintptr_t)descriptor_area;
        dev->avail = (struct vring_avail *)(uintptr_t)driver_area;
        dev->used = (struct vring_used *)(uintptr_t)device_area;
    }
    dev->pending = calloc(size, sizeof(*dev->pending));
    dev->descriptor_busy = calloc(size, 1);
    dev->log_capacity = 2u * size + 16;
    dev->log = calloc(dev->log_capacity, sizeof(*dev->log));
    if (!dev->pending || !dev->descriptor_busy || !dev->log) {
        sim_free(dev);
        return -1;
    }
    return 0;
}

void sim_free(struct sim_device *dev)
{
    free(dev->pending);
    free(dev->descriptor_busy);
    free(dev->log);
    dev->pending = NULL;
    dev->descriptor_busy = NULL;
    dev->log = NULL;
}

static void add_buffer(struct sim_chain *chain, uint64_t address, uint32_t length, int writable)
{
    if (chain->count >= SIM_MAX_BUFFERS)
        fail_msg("device: chain has more than %d buffers", SIM_MAX_BUFFERS);
    if (!writable && chain->count > 0 && chain->buffers[chain->count - 1].writable)
        fail_msg("device: readable buffer after a writable one");
    if (address == 0)
        fail_msg("device: buffer at address 0");
    chain->buffers[chain->count++] = (struct sim_buffer){ address, length, writable };
}

static void check_table_unused(struct sim_device *dev, uint64_t table)
{
    for (unsigned i = 0; i < dev->pending_count; i++)
        if (dev->pending[i].table == table)
            fail_msg("device: indirect table %#llx is still in use by chain %u",
                     (unsigned long long)table, dev->pending[i].id);
}

/* ---- split ring (2.7) -------------------------------------------------- */

static void split_read_indirect(struct sim_device *dev, struct sim_chain *chain,
                                const struct vring_desc *d)
{
    if (!dev->indirect)
        fail_msg("device: INDIRECT without VIRTIO_F_INDIRECT_DESC");
    if (d->flags & VRING_DESC_F_NEXT)
        fail_msg("device: INDIRECT together with NEXT (split indirect rules)");
    if (d->length == 0 || d->length % 16)
        fail_msg("device: indirect table length %u", d->length);
    check_table_unused(dev, d->address);
    const struct vring_desc *table = (const struct vring_desc *)(uintptr_t)d->address;
    unsigned entries = d->length / 16, index = 0, steps = 0;
    chain->indirect = 1;
    chain->table = d->address;
    for (;;) {
        if (index >= entries)
            fail_msg("device: indirect next %u outside a table of %u", index, entries);
        if (++steps > entries)
            fail_msg("device: loop in an indirect table");
        const struct vring_desc *e = &table[index];
        if (e->flags & VRING_DESC_F_INDIRECT)
            fail_msg("device: INDIRECT inside an indirect table (split indirect rules)");
        add_buffer(chain, e->address, e->length, !!(e->flags & VRING_DESC_F_WRITE));
        if (!(e->flags & VRING_DESC_F_NEXT))
            break;
        index = e->next;
    }
}

static void split_read_chain(struct sim_device *dev, uint16_t head, struct sim_chain *chain)
{
    uint16_t index = head;

    memset(chain, 0, sizeof(*chain));
    chain->id = head;
    for (;;) {
        if (index >= dev->size)
            fail_msg("device: descriptor index %u outside a queue of %u", index, dev->size);
        if (dev->descriptor_busy[index])
            fail_msg("device: descriptor %u is already part of a chain in flight", index);
        if (chain->ring_descriptors >= dev->size)
            fail_msg("device: chain longer than the queue");
        dev->descriptor_busy[index] = 1;
        chain->slots[chain->ring_descriptors++] = index;
        struct vring_desc d = dev->desc[index];
        if (d.flags & VRING_DESC_F_INDIRECT) {
            split_read_indirect(dev, chain, &d);
            break;
        }
        add_buffer(chain, d.address, d.length, !!(d.flags & VRING_DESC_F_WRITE));
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        index = d.next;
    }
    if (chain->count > dev->size)
        fail_msg("device: chain of %u buffers in a queue of %u (split indirect rules)", chain->count, dev->size);
}

static unsigned split_fetch(struct sim_device *dev)
{
    unsigned fetched = 0;
    uint16_t avail_index = load16(&dev->avail->index);

    if ((uint16_t)(avail_index - dev->last_avail) > dev->size)
        fail_msg("device: avail index %u is more than a queue ahead of %u", avail_index,
                 dev->last_avail);
    barrier(); /* ring entries after the index (split ring, receiving) */
    while (dev->last_avail != avail_index) {
        uint16_t head = dev->avail->ring[dev->last_avail % dev->size];
        if (dev->pending_count >= dev->size)
            fail_msg("device: more chains available than the queue holds");
        split_read_chain(dev, head, &dev->pending[dev->pending_count++]);
        dev->last_avail++;
        fetched++;
    }
    return fetched;
}

static void split_write_used(struct sim_device *dev, uint32_t id, uint32_t length)
{
    struct vring_used_element *e = &dev->used->ring[dev->used_index % dev->size];
    e->id = id;
    e->length = length;
    dev->used_index++;
}

static void split_publish(struct sim_device *dev, uint16_t old_index)
{
    barrier(); /* elements before the index (split used ring) */
    store16(&dev->used->index, dev->used_index);
    __asm__ volatile("mfence" ::: "memory");
    if (dev->used_index == old_index)
        return;
    int interrupt;
    if (dev->event_idx)
        interrupt = vring_need_event(load16(&dev->avail->ring[dev->size]), dev->used_index, old_index);
    else
        interrupt = !(load16(&dev->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    dev->last_batch_interrupted = interrupt;
    if (interrupt)
        dev->interrupts++;
    else
        dev->interrupts_suppressed++;
}

/* ---- packed ring (2.8) ------------------------------------------------- */

static int packed_is_available(uint16_t flags, int wrap)
{
    int avail = !!(flags & VRING_PACKED_DESC_F_AVAIL), used = !!(flags & VRING_PACKED_DESC_F_USED);
    return avail == wrap && used != wrap;
}

static void packed_advance(uint16_t *position, int *wrap, unsigned by, uint16_t size)
{
    for (unsigned i = 0; i < by; i++) {
        if (++*position == size) {
            *position = 0;
            *wrap = !*wrap;
        }
    }
}

static void packed_read_indirect(struct sim_device *dev, struct sim_chain *chain,
                                 const struct vring_packed_desc *d)
{
    if (!dev->indirect)
        fail_msg("device: INDIRECT without VIRTIO_F_INDIRECT_DESC");
    if (d->length == 0 || d->length % 16)
        fail_msg("device: indirect table length %u", d->length);
    check_table_unused(dev, d->address);
    const struct vring_packed_desc *table = (const struct vring_packed_desc *)(uintptr_t)d->address;
    chain->indirect = 1;
    chain->table = d->address;
    for (unsigned i = 0; i < d->length / 16; i++) {
        if (table[i].flags & ~VRING_DESC_F_WRITE)
            fail_msg("device: flags %#x in an indirect entry; only WRITE is valid",
                     table[i].flags);
        add_buffer(chain, table[i].address, table[i].length, !!(table[i].flags & VRING_DESC_F_WRITE));
    }
}

static unsigned packed_fetch(struct sim_device *dev)
{
    unsigned fetched = 0;

    while (packed_is_available(load16(&dev->ring[dev->avail_position].flags), dev->avail_wrap)) {
        barrier(); /* the rest of the descriptor after its flags */
        if (dev->pending_count >= dev->size)
            fail_msg("device: more chains available than the queue holds");
        struct sim_chain *chain = &dev->pending[dev->pending_count];
        uint16_t position = dev->avail_position;
        int wrap = dev->avail_wrap;
        memset(chain, 0, sizeof(*chain));
        for (;;) {
            struct vring_packed_desc d = dev->ring[position];
            if (!packed_is_available(d.flags, wrap))
                fail_msg("device: chain continues at %u into a descriptor not available (flags %#x, wrap %d)",
                         position, d.flags, wrap);
            if (++chain->ring_descriptors > dev->size)
                fail_msg("device: chain longer than the queue");
            chain->id = d.id; /* the buffer id is in the last descriptor */
            packed_advance(&position, &wrap, 1, dev->size);
            if (d.flags & VRING_DESC_F_INDIRECT) {
                if (chain->ring_descriptors != 1 || (d.flags & VRING_DESC_F_NEXT))
                    fail_msg("device: INDIRECT inside a chain linked by NEXT (packed indirect rules)");
                packed_read_indirect(dev, chain, &d);
                break;
            }
            add_buffer(chain, d.address, d.length, !!(d.flags & VRING_DESC_F_WRITE));
            if (!(d.flags & VRING_DESC_F_NEXT))
                break;
        }
        if (chain->count > dev->size)
            fail_msg("device: chain of %u buffers in a queue of %u (packed scatter-gather rules)", chain->count, dev->size);
        if (chain->id >= dev->size)
            fail_msg("device: buffer id %u outside a queue of %u", chain->id, dev->size);
        for (unsigned i = 0; i < dev->pending_count; i++)
            if (dev->pending[i].id == chain->id)
                fail_msg("device: buffer id %u made available while still in flight", chain->id);
        dev->avail_position = position;
        dev->avail_wrap = wrap;
        dev->pending_count++;
        fetched++;
    }
    return fetched;
}

static void packed_write_used(struct sim_device *dev, uint16_t id, uint32_t length, uint16_t skip)
{
    struct vring_packed_desc *d = &dev->ring[dev->used_position];
    uint16_t flags = dev->used_wrap ? (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED) : 0;

    if (dev->set_write_flag && length)
        flags |= VRING_DESC_F_WRITE;
    d->id = id;
    d->length = length;
    barrier(); /* id and length before the flags that publish them */
    store16(&d->flags, flags);
    packed_advance(&dev->used_position, &dev->used_wrap, skip, dev->size);
}

static void packed_decide_interrupt(struct sim_device *dev, unsigned skipped)
{
    __asm__ volatile("mfence" ::: "memory");
    if (!skipped)
        return;
    uint16_t flags = load16(&dev->driver_event->flags);
    int interrupt;
    if (flags == VRING_EVENT_F_DISABLE) {
        interrupt = 0;
    } else if (flags == VRING_EVENT_F_DESC && dev->event_idx) {
        uint16_t off_wrap = load16(&dev->driver_event->off_wrap);
        uint16_t event = off_wrap & 0x7fff, new_position = dev->used_position;
        uint16_t old_position = (uint16_t)(new_position - skipped);
        if ((off_wrap >> 15) != dev->used_wrap)
            event = (uint16_t)(event - dev->size);
        interrupt = vring_need_event(event, new_position, old_position);
    } else {
        interrupt = 1;
    }
    dev->last_batch_interrupted = interrupt;
    if (interrupt)
        dev->interrupts++;
    else
        dev->interrupts_suppressed++;
}

/* ---- both layouts ------------------------------------------------------ */

int sim_has_available(struct sim_device *dev)
{
    if (dev->packed)
        return packed_is_available(load16(&dev->ring[dev->avail_position].flags), dev->avail_wrap);
    return load16(&dev->avail->index) != dev->last_avail;
}

unsigned sim_fetch(struct sim_device *dev)
{
    return dev->packed ? packed_fetch(dev) : split_fetch(dev);
}

/* Reads the readable buffers, writes the pattern into the writable ones. */
static uint32_t process(struct sim_device *dev, const struct sim_chain *chain)
{
    uint32_t seed = SIM_SEED_INIT;
    uint64_t writable = 0;

    for (unsigned i = 0; i < chain->count; i++) {
        const struct sim_buffer *b = &chain->buffers[i];
        if (b->writable)
            writable += b->length;
        else
            seed = sim_hash(seed, (const uint8_t *)(uintptr_t)b->address, b->length);
    }
    uint32_t written = (uint32_t)writable;
    if (dev->partial_writes)
        written = (uint32_t)(next_random(dev) % (writable + 1));
    if (dev->write_limit >= 0 && (uint64_t)dev->write_limit < written)
        written = (uint32_t)dev->write_limit;
    uint32_t offset = 0;
    for (unsigned i = 0; i < chain->count && offset < written; i++) {
        const struct sim_buffer *b = &chain->buffers[i];
        if (!b->writable)
            continue;
        uint8_t *bytes = (uint8_t *)(uintptr_t)b->address;
        for (uint32_t j = 0; j < b->length && offset < written; j++, offset++)
            bytes[j] = sim_pattern(seed, offset);
    }
    return written;
}

static void log_completion(struct sim_device *dev, const struct sim_chain *chain, uint32_t written)
{
    if (dev->log_count >= dev->log_capacity)
        fail_msg("device: completion log full; the test must clear it");
    dev->log[dev->log_count++] = (struct sim_completion){ chain->buffers[0].address, chain->id, written };
}

static void use_chain(struct sim_device *dev, const struct sim_chain *chain, int64_t claimed_length)
{
    uint32_t written = process(dev, chain);
    log_completion(dev, chain, written);
    uint32_t reported = claimed_length >= 0 ? (uint32_t)claimed_length : written;
    if (dev->packed) {
        packed_write_used(dev, chain->id, reported, chain->ring_descriptors);
    } else {
        for (unsigned i = 0; i < chain->ring_descriptors; i++)
            dev->descriptor_busy[chain->slots[i]] = 0;
        split_write_used(dev, chain->id, reported);
    }
}

static void take_pending(struct sim_device *dev, unsigned index, struct sim_chain *out)
{
    *out = dev->pending[index];
    memmove(&dev->pending[index], &dev->pending[index + 1],
            (dev->pending_count - index - 1) * sizeof(*dev->pending));
    dev->pending_count--;
}

unsigned sim_complete(struct sim_device *dev, unsigned count, enum sim_order order)
{
    uint16_t old_index = dev->used_index;
    unsigned skipped = 0;
    struct sim_chain chain;

    if (count > dev->pending_count)
        count = dev->pending_count;
    dev->last_batch_interrupted = 0;
    for (unsigned done = 0; done < count; done++) {
        unsigned index = order == SIM_IN_ORDER   ? 0
                         : order == SIM_REVERSED ? count - done - 1
                                                 : next_random(dev) % dev->pending_count;
        take_pending(dev, index, &chain);
        use_chain(dev, &chain, -1);
        skipped += chain.ring_descriptors;
    }
    if (dev->packed)
        packed_decide_interrupt(dev, count ? skipped : 0);
    else
        split_publish(dev, old_index);
    return count;
}

void sim_complete_one(struct sim_device *dev, unsigned index, int64_t claimed_length)
{
    uint16_t old_index = dev->used_index;
    struct sim_chain chain;

    if (index >= dev->pending_count)
        fail_msg("device: no pending chain %u", index);
    dev->last_batch_interrupted = 0;
    take_pending(dev, index, &chain);
    use_chain(dev, &chain, claimed_length);
    if (dev->packed)
        packed_decide_interrupt(dev, chain.ring_descriptors);
    else
        split_publish(dev, old_index);
}

void sim_set_idle(struct sim_device *dev)
{
    if (dev->packed) {
        if (dev->event_idx) {
            store16(&dev->device_event->off_wrap, dev->avail_position | (dev->avail_wrap << 15));
            store16(&dev->device_event->flags, VRING_EVENT_F_DESC);
        } else {
            store16(&dev->device_event->flags, VRING_EVENT_F_ENABLE);
        }
    } else if (dev->event_idx) {
        store16(&dev->used->flags, 0); /* with event_idx the device keeps flags 0 */
        store16(&dev->used->ring[dev->size], dev->last_avail); /* avail_event */
    } else {
        store16(&dev->used->flags, 0);
    }
    __asm__ volatile("mfence" ::: "memory");
}

void sim_set_busy(struct sim_device *dev)
{
    if (dev->packed) {
        store16(&dev->device_event->flags, VRING_EVENT_F_DISABLE);
    } else if (dev->event_idx) {
        store16(&dev->used->flags, 0);
        /* an event index just behind: reached only after 65536 more */
        store16(&dev->used->ring[dev->size], (uint16_t)(dev->last_avail - 1));
    } else {
        store16(&dev->used->flags, VRING_USED_F_NO_NOTIFY);
    }
}

void sim_split_push_used(struct sim_device *dev, uint32_t id, uint32_t length)
{
    split_write_used(dev, id, length);
    barrier();
    store16(&dev->used->index, dev->used_index);
}

void sim_split_set_used_index(struct sim_device *dev, uint16_t index)
{
    dev->used_index = index;
    store16(&dev->used->index, index);
}

void sim_packed_push_used(struct sim_device *dev, uint16_t id, uint32_t length, uint16_t skip)
{
    packed_write_used(dev, id, length, skip);
}
