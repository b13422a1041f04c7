/*
 * Split (virtio 1.2, 2.7) and packed (2.8) virtqueues, driver side.
 * Free descriptors and chain bookkeeping live in driver-private arrays, so
 * nothing the device writes into the shared rings can redirect a free.
 */
#include "virtio/virtqueue.h"

#include "lib/error.h"  // ERROR_*
#include "lib/string.h" // memset

#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))
#define RING_ALIGN 4096 /* legacy devices take the used ring at the next page */
#define NO_DESCRIPTOR 0xffff

/* x86 keeps stores in order and loads in order; only a store followed by a
 * load of another location needs a fence (the event-index checks). */
#define compiler_barrier() __asm__ volatile("" ::: "memory")
#define full_barrier() __asm__ volatile("mfence" ::: "memory")
#define READ_SHARED(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_SHARED(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

#define COMPACT_ALIGN 16 /* descriptors and indirect tables: 16; used ring: 4 (2.7, 2.8) */

static size_t split_avail_offset(uint16_t size) { return 16u * size; }
static size_t split_used_offset(const struct vq_config *config)
{
    return ALIGN_UP(16u * config->size + 6 + 2u * config->size,
                    config->compact ? COMPACT_ALIGN : RING_ALIGN);
}
static size_t packed_rings_bytes(uint16_t size) { return 16u * size + 8; }

static size_t rings_bytes(const struct vq_config *config)
{
    return config->layout == VQ_SPLIT ? split_used_offset(config) + 6 + 8u * config->size
                                      : packed_rings_bytes(config->size);
}

static size_t ring_align(const struct vq_config *config)
{
    return config->compact ? COMPACT_ALIGN : RING_ALIGN;
}

static int uses_indirect(const struct vq_config *config)
{
    return config->indirect_max > 1;
}

size_t vq_ring_bytes(const struct vq_config *config)
{
    size_t bytes = ALIGN_UP(rings_bytes(config), ring_align(config));

    if (uses_indirect(config))
        bytes += (size_t)config->size * config->indirect_max * 16;
    return bytes;
}

size_t vq_state_bytes(const struct vq_config *config)
{
    return ALIGN_UP((size_t)config->size * sizeof(struct vq_chain), 8) +
           (size_t)config->size * sizeof(uint16_t);
}

int vq_init(struct virtqueue *vq, const struct vq_config *config, void *ring_memory,
            void *state_memory)
{
    uint16_t size = config->size;

    if (size == 0 || size > VQ_MAX_SIZE)
        return -1;
    if (config->layout == VQ_SPLIT && (size & (size - 1)))
        return -1; /* split rings are a power of two (2.7) */

    memset(vq, 0, sizeof(*vq));
    vq->config = *config;
    /* the rings only: an indirect table is written whole up to the chain's
     * length before the device may read it (2.7.5.3.1), and zeroing them
     * (512 KiB for a disk) cost boot a millisecond per queue under TCG */
    memset(ring_memory, 0, ALIGN_UP(rings_bytes(config), ring_align(config)));
    memset(state_memory, 0, vq_state_bytes(config));

    uint8_t *ring = ring_memory;
    if (config->layout == VQ_SPLIT) {
        vq->desc = (struct vring_desc *)ring;
        vq->avail = (struct vring_avail *)(ring + split_avail_offset(size));
        vq->used = (struct vring_used *)(ring + split_used_offset(config));
    } else {
        vq->packed = (struct vring_packed_desc *)ring;
        vq->driver_event = (struct vring_packed_event *)(ring + 16u * size);
        vq->device_event = vq->driver_event + 1;
        vq->avail_wrap = vq->used_wrap = 1; /* both start at 1 (2.8.1) */
        vq->free_slots = size;
    }
    if (uses_indirect(config))
        vq->indirect_tables = ring + ALIGN_UP(rings_bytes(config), ring_align(config));

    vq->chains = state_memory;
    vq->free_next = (uint16_t *)((uint8_t *)state_memory +
                                 ALIGN_UP((size_t)size * sizeof(struct vq_chain), 8));
    for (uint16_t i = 0; i < size; i++)
        vq->free_next[i] = i + 1 < size ? i + 1 : NO_DESCRIPTOR;
    vq->free_head = 0;
    vq->free_count = size;
    return 0;
}

uint64_t vq_descriptor_area(const struct virtqueue *vq)
{
    return (uint64_t)(uintptr_t)(vq->config.layout == VQ_SPLIT ? (void *)vq->desc : (void *)vq->packed);
}

uint64_t vq_driver_area(const struct virtqueue *vq)
{
    return (uint64_t)(uintptr_t)(vq->config.layout == VQ_SPLIT ? (void *)vq->avail : (void *)vq->driver_event);
}

uint64_t vq_device_area(const struct virtqueue *vq)
{
    return (uint64_t)(uintptr_t)(vq->config.layout == VQ_SPLIT ? (void *)vq->used : (void *)vq->device_event);
}

int vq_is_broken(const struct virtqueue *vq)
{
    return vq->broken;
}

static uint16_t *split_used_event(struct virtqueue *vq)
{
    return &vq->avail->ring[vq->config.size];
}

static uint16_t *split_avail_event(struct virtqueue *vq)
{
    return (uint16_t *)&vq->used->ring[vq->config.size];
}

/* Checks a chain against what the queue can ever take; returns the
 * writable byte count, or -1. */
static int64_t check_chain(const struct virtqueue *vq, const struct vq_buffer *buffers,
                           unsigned count, int *use_indirect)
{
    uint64_t writable = 0, total = 0;
    int seen_writable = 0;

    /* no chain longer than the queue, indirect or not (2.7.5.3.1) */
    if (count == 0 || count > vq->config.size)
        return -1;
    for (unsigned i = 0; i < count; i++) {
        total += buffers[i].length;
        if (buffers[i].device_writes) {
            seen_writable = 1;
            writable += buffers[i].length;
        } else if (seen_writable) {
            return -1; /* readable after writable (2.7.4.2) */
        }
    }
    if (total > 0xffffffffu)
        return -1; /* at most 2^32 bytes in a chain (2.7.5.2) */
    *use_indirect = uses_indirect(&vq->config) && count > 1 && count <= vq->config.indirect_max;
    return (int64_t)writable;
}

static uint8_t *indirect_table(struct virtqueue *vq, uint16_t slot)
{
    return vq->indirect_tables + (size_t)slot * vq->config.indirect_max * 16;
}

static int split_add(struct virtqueue *vq, const struct vq_buffer *buffers, unsigned count,
                     void *token, int use_indirect, uint32_t writable)
{
    unsigned needed = use_indirect ? 1 : count;

    if (vq->free_count < needed)
        return ERROR_BUSY;
    uint16_t head = vq->free_head, last = head, index = head;
    if (use_indirect) {
        struct vring_desc *table = (struct vring_desc *)indirect_table(vq, head);
        for (unsigned i = 0; i < count; i++) {
            table[i].address = buffers[i].address;
            table[i].length = buffers[i].length;
            table[i].flags = (uint16_t)((buffers[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                                        (i + 1 < count ? VRING_DESC_F_NEXT : 0));
            table[i].next = (uint16_t)(i + 1);
        }
        vq->desc[head] = (struct vring_desc){ (uint64_t)(uintptr_t)table, count * 16u,
                                              VRING_DESC_F_INDIRECT, 0 };
    } else {
        for (unsigned i = 0; i < count; i++) {
            last = index;
            uint16_t next = vq->free_next[index];
            vq->desc[index] = (struct vring_desc){
                buffers[i].address, buffers[i].length,
                (uint16_t)((buffers[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                           (i + 1 < count ? VRING_DESC_F_NEXT : 0)),
                i + 1 < count ? next : 0,
            };
            index = next;
        }
    }
    vq->free_head = vq->free_next[last];
    vq->free_count -= needed;
    vq->chains[head] = (struct vq_chain){ token, writable, (uint16_t)needed, last };

    vq->avail->ring[vq->avail_index & (vq->config.size - 1)] = head;
    compiler_barrier(); /* the entry before the index that publishes it (2.7.13.3) */
    vq->avail_index++;
    WRITE_SHARED(vq->avail->index, vq->avail_index);
    vq->added_since_kick++;
    vq->chains_in_flight++;
    return 0;
}

static void packed_advance(uint16_t *position, int *wrap, unsigned by, uint16_t size)
{
    unsigned next = *position + by;

    if (next >= size) {
        next -= size;
        *wrap = !*wrap;
    }
    *position = (uint16_t)next;
}

static uint16_t packed_flags(int wrap, uint16_t flags)
{
    /* available: AVAIL equals the driver's wrap counter, USED differs (2.8.1) */
    return (uint16_t)(flags | (wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED));
}

static int packed_add(struct virtqueue *vq, const struct vq_buffer *buffers, unsigned count,
                      void *token, int use_indirect, uint32_t writable)
{
    unsigned needed = use_indirect ? 1 : count;

    if (vq->free_count == 0 || vq->free_slots < needed)
        return ERROR_BUSY; /* no free id, or too few descriptors */
    uint16_t id = vq->free_head;
    vq->free_head = vq->free_next[id];
    vq->free_count--;

    uint16_t first = vq->next_avail, position = first;
    int first_wrap = vq->avail_wrap, wrap = first_wrap;
    uint16_t first_flags;
    if (use_indirect) {
        struct vring_packed_desc *table = (struct vring_packed_desc *)indirect_table(vq, id);
        for (unsigned i = 0; i < count; i++)
            table[i] = (struct vring_packed_desc){
                buffers[i].address, buffers[i].length, 0,
                buffers[i].device_writes ? VRING_DESC_F_WRITE : 0, /* the only flag allowed (2.8.7) */
            };
        vq->packed[first].address = (uint64_t)(uintptr_t)table;
        vq->packed[first].length = count * 16u;
        vq->packed[first].id = id;
        first_flags = packed_flags(wrap, VRING_DESC_F_INDIRECT);
        packed_advance(&position, &wrap, 1, vq->config.size);
    } else {
        first_flags = 0;
        for (unsigned i = 0; i < count; i++) {
            uint16_t flags = packed_flags(wrap, (uint16_t)((buffers[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                                                           (i + 1 < count ? VRING_DESC_F_NEXT : 0)));
            vq->packed[position].address = buffers[i].address;
            vq->packed[position].length = buffers[i].length;
            vq->packed[position].id = id; /* needed in the last; harmless in all */
            if (i == 0)
                first_flags = flags;
            else
                WRITE_SHARED(vq->packed[position].flags, flags);
            packed_advance(&position, &wrap, 1, vq->config.size);
        }
    }
    /* the first descriptor's flags go last: the device must never see a
     * partial chain (2.8.6) */
    compiler_barrier();
    WRITE_SHARED(vq->packed[first].flags, first_flags);

    vq->next_avail = position;
    vq->avail_wrap = wrap;
    vq->free_slots -= needed;
    vq->chains[id] = (struct vq_chain){ token, writable, (uint16_t)needed, 0 };
    vq->added_since_kick += needed;
    return 0;
}

int vq_add_chain(struct virtqueue *vq, const struct vq_buffer *buffers, unsigned count,
                 void *token)
{
    int use_indirect;
    int64_t writable = check_chain(vq, buffers, count, &use_indirect);

    if (writable < 0 || !token)
        return ERROR_INVALID;
    if (vq->broken)
        return ERROR_DEVICE;
    int result = vq->config.layout == VQ_SPLIT
                     ? split_add(vq, buffers, count, token, use_indirect, (uint32_t)writable)
                     : packed_add(vq, buffers, count, token, use_indirect, (uint32_t)writable);
    if (result == 0)
        vq->stats.added++;
    return result;
}

int vq_kick_prepare(struct virtqueue *vq)
{
    int kick;

    /* our index or flags must be visible before we read the device's
     * suppression state, or both sides may decide not to act */
    full_barrier();
    if (vq->config.layout == VQ_SPLIT) {
        uint16_t new_index = vq->avail_index;
        uint16_t old_index = (uint16_t)(new_index - vq->added_since_kick);
        if (vq->config.event_idx)
            kick = vring_need_event(READ_SHARED(*split_avail_event(vq)), new_index, old_index);
        else
            kick = !(READ_SHARED(vq->used->flags) & VRING_USED_F_NO_NOTIFY);
    } else {
        uint16_t flags = READ_SHARED(vq->device_event->flags);
        if (flags == VRING_EVENT_F_DESC && vq->config.event_idx) {
            uint16_t off_wrap = READ_SHARED(vq->device_event->off_wrap);
            uint16_t event = off_wrap & 0x7fff;
            uint16_t new_index = vq->next_avail;
            uint16_t old_index = (uint16_t)(new_index - vq->added_since_kick);
            /* an event index from the previous lap is "size" further back */
            if ((off_wrap >> VRING_PACKED_EVENT_WRAP_BIT) != vq->avail_wrap)
                event = (uint16_t)(event - vq->config.size);
            kick = vring_need_event(event, new_index, old_index);
        } else {
            kick = flags != VRING_EVENT_F_DISABLE;
        }
    }
    vq->added_since_kick = 0;
    if (kick)
        vq->stats.kicks++;
    else
        vq->stats.kicks_suppressed++;
    return kick;
}

static enum vq_used_status finish_chain(struct virtqueue *vq, uint16_t slot, uint32_t length,
                                        void **token, uint32_t *length_out)
{
    struct vq_chain *chain = &vq->chains[slot];
    enum vq_used_status status = VQ_USED_OK;

    if (length > chain->writable_bytes) {
        vq->stats.bad_length++;
        length = chain->writable_bytes;
        status = VQ_USED_BAD_LENGTH;
    }
    *token = chain->token;
    *length_out = length;
    chain->token = 0;
    vq->stats.completed++;
    return status;
}

static enum vq_used_status split_get_used(struct virtqueue *vq, void **token, uint32_t *length)
{
    for (;;) {
        uint16_t used_index = READ_SHARED(vq->used->index);
        if (used_index == vq->last_used)
            return VQ_USED_NONE;
        /* never more unread used entries than chains it holds (a skipped
         * bad entry used a slot but freed no chain) */
        if ((uint16_t)(used_index - vq->last_used) > vq->chains_in_flight) {
            vq->stats.bad_index++;
            vq->broken = 1; /* it claims buffers we never gave it */
            return VQ_USED_NONE;
        }
        compiler_barrier(); /* read the entry after the index (2.7.14) */
        struct vring_used_element element = vq->used->ring[vq->last_used & (vq->config.size - 1)];
        vq->last_used++;
        if (vq->config.event_idx && !vq->interrupts_disabled)
            WRITE_SHARED(*split_used_event(vq), vq->last_used);

        if (element.id >= vq->config.size) {
            vq->stats.bad_id++;
            continue;
        }
        uint16_t head = (uint16_t)element.id;
        if (!vq->chains[head].token) {
            vq->stats.stale_id++;
            continue;
        }
        /* give the chain's descriptors back: they are still linked in
         * free_next order from when they were taken */
        struct vq_chain *chain = &vq->chains[head];
        vq->free_next[chain->last] = vq->free_head;
        vq->free_head = head;
        vq->free_count += chain->descriptor_count;
        vq->chains_in_flight--;
        return finish_chain(vq, head, element.length, token, length);
    }
}

static enum vq_used_status packed_get_used(struct virtqueue *vq, void **token, uint32_t *length)
{
    struct vring_packed_desc *desc = &vq->packed[vq->next_used];
    uint16_t flags = READ_SHARED(desc->flags);
    int avail = !!(flags & VRING_PACKED_DESC_F_AVAIL);
    int used = !!(flags & VRING_PACKED_DESC_F_USED);

    /* used: both bits equal the used wrap counter (2.8.1) */
    if (avail != used || used != vq->used_wrap)
        return VQ_USED_NONE;
    compiler_barrier(); /* read id and length after the flags */
    uint16_t id = READ_SHARED(desc->id);
    uint32_t used_length = READ_SHARED(desc->length);
    if (id >= vq->config.size) {
        vq->stats.bad_id++;
        vq->broken = 1; /* without a known id we cannot tell how far to skip */
        return VQ_USED_NONE;
    }
    if (!vq->chains[id].token) {
        vq->stats.stale_id++;
        vq->broken = 1;
        return VQ_USED_NONE;
    }
    uint16_t count = vq->chains[id].descriptor_count;
    packed_advance(&vq->next_used, &vq->used_wrap, count, vq->config.size);
    vq->free_slots += count;
    vq->free_next[id] = vq->free_head;
    vq->free_head = id;
    vq->free_count++;
    return finish_chain(vq, id, used_length, token, length);
}

enum vq_used_status vq_get_used(struct virtqueue *vq, void **token, uint32_t *length)
{
    if (vq->broken)
        return VQ_USED_NONE;
    return vq->config.layout == VQ_SPLIT ? split_get_used(vq, token, length)
                                         : packed_get_used(vq, token, length);
}

static int has_used(struct virtqueue *vq)
{
    if (vq->config.layout == VQ_SPLIT)
        return READ_SHARED(vq->used->index) != vq->last_used;
    uint16_t flags = READ_SHARED(vq->packed[vq->next_used].flags);
    int avail = !!(flags & VRING_PACKED_DESC_F_AVAIL), used = !!(flags & VRING_PACKED_DESC_F_USED);
    return avail == used && used == vq->used_wrap;
}

int vq_enable_interrupts(struct virtqueue *vq)
{
    vq->interrupts_disabled = 0;
    if (vq->config.layout == VQ_SPLIT) {
        WRITE_SHARED(vq->avail->flags, 0);
        if (vq->config.event_idx)
            WRITE_SHARED(*split_used_event(vq), vq->last_used);
    } else {
        WRITE_SHARED(vq->driver_event->flags, VRING_EVENT_F_ENABLE);
    }
    full_barrier(); /* publish before checking for work that raced in */
    return has_used(vq);
}

void vq_disable_interrupts(struct virtqueue *vq)
{
    vq->interrupts_disabled = 1;
    if (vq->config.layout == VQ_SPLIT) {
        /* with event_idx the flags must stay 0 (2.7.7.1): a used_event
         * left behind keeps the device quiet until we re-enable */
        if (vq->config.event_idx)
            WRITE_SHARED(*split_used_event(vq), (uint16_t)(vq->last_used - 1));
        else
            WRITE_SHARED(vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
    } else {
        WRITE_SHARED(vq->driver_event->flags, VRING_EVENT_F_DISABLE);
    }
}

unsigned vq_in_flight(const struct virtqueue *vq)
{
    if (vq->config.layout == VQ_SPLIT)
        return vq->chains_in_flight;
    return (unsigned)(vq->config.size - vq->free_count);
}
