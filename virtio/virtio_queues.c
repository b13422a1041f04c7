/*
 * virtio queues: how many a device has, their memory (legacy rings in
 * pages of their own, modern ones carved from one block per device) and
 * their setup through the transport (virtio 1.2, 4.1.4.3 and 4.1.4.8).
 */
#include "virtio/virtio.h"

#include "lib/string.h"              // memset
#include "mm/page_alloc.h"           // page_alloc, page_free
#include "pci/pci.h"                 // pci_msix_disable, pci_intx_mask
#include "virtio/virtio_interrupt.h" // virtio_setup_interrupts
#include "virtio/virtio_pci.h"       // struct virtio_transport

#define QUEUE_MEMORY_ALIGN 64 /* each area of the modern block: above the 16 any ring asks (2.7) */
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

unsigned virtio_queue_count(struct virtio_device *d)
{
    /* modern: queue_max_size is 0 from num_queues on; legacy: a queue that
     * does not exist reads size 0 (4.1.4.8) */
    unsigned count = 0;

    while (count < VIRTIO_MAX_QUEUES && d->transport->queue_max_size(d, count) != 0)
        count++;
    return count;
}

static void free_queue_array(struct virtio_device *d);

static void free_queues(struct virtio_device *d)
{
    for (unsigned i = 0; i < d->queue_count; i++) {
        struct virtio_queue *q = &d->queues[i];
        if (q->ring_memory)
            page_free(q->ring_memory);
        if (q->state_memory)
            page_free(q->state_memory);
        q->ring_memory = q->state_memory = 0;
        q->active = 0;
    }
    if (d->queue_memory)
        page_free(d->queue_memory);
    d->queue_memory = 0;
}

void virtio_release_queues(struct virtio_device *d)
{
    free_queues(d);
    free_queue_array(d);
}

static void free_queue_array(struct virtio_device *d)
{
    if (d->queue_array)
        page_free(d->queue_array);
    d->queue_array = 0;
    d->queues = d->inline_queues;
    d->queue_count = 0;
}

/* The ring for queue i, within what the device allows. */
static int queue_config(struct virtio_device *d, unsigned i, const struct virtio_queue_request *r,
                        struct vq_config *config)
{
    uint16_t max = d->transport->queue_max_size(d, i);
    int packed = virtio_has_feature(d, VIRTIO_F_RING_PACKED);
    uint16_t size = max;

    if (max == 0) {
        d->error = "the device lacks a queue the driver needs";
        return -1;
    }
    if (!d->transport->fixed_queue_size) {
        if (r->size && r->size < size)
            size = r->size;
        if (size > VQ_MAX_SIZE)
            size = VQ_MAX_SIZE;
        if (!packed) /* split rings are powers of two */
            while (size & (size - 1))
                size &= (uint16_t)(size - 1);
    } else if (size > VQ_MAX_SIZE || (size & (size - 1))) {
        d->error = "legacy queue size out of range";
        return -1;
    }
    *config = (struct vq_config){
        .layout = packed ? VQ_PACKED : VQ_SPLIT,
        .size = size,
        .event_idx = virtio_has_feature(d, VIRTIO_RING_F_EVENT_IDX),
        .indirect_max = virtio_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC) ? r->indirect_max : 0,
        /* the legacy layout is fixed (4.1.4.8); modern areas go anywhere */
        .compact = !d->transport->fixed_queue_size,
    };
    return 0;
}

/* Ring and state memory: legacy rings each in their own pages (the device
 * takes a page number); modern ones all carved from one block, so a
 * device with many small queues (virtio-console) pays bytes per queue,
 * not pages. */
static int queue_memory(struct virtio_device *d, unsigned count, const struct vq_config *configs)
{
    if (d->transport->fixed_queue_size) {
        for (unsigned i = 0; i < count; i++) {
            struct virtio_queue *q = &d->queues[i];
            q->ring_memory = page_alloc(page_order_for(vq_ring_bytes(&configs[i])), PAGE_TAG_KERNEL);
            q->state_memory = page_alloc(page_order_for(vq_state_bytes(&configs[i])), PAGE_TAG_KERNEL);
            if (!q->ring_memory || !q->state_memory)
                return -1;
        }
        return 0;
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < count; i++)
        total += ALIGN_UP(vq_ring_bytes(&configs[i]), QUEUE_MEMORY_ALIGN) +
                 ALIGN_UP(vq_state_bytes(&configs[i]), QUEUE_MEMORY_ALIGN);
    d->queue_memory = page_alloc(page_order_for(total), PAGE_TAG_KERNEL);
    if (!d->queue_memory)
        return -1;
    return 0;
}

static void *carve(uint64_t *cursor, uint64_t bytes)
{
    void *p = (void *)(uintptr_t)*cursor;

    *cursor += ALIGN_UP(bytes, QUEUE_MEMORY_ALIGN);
    return p;
}

int virtio_setup_queues(struct virtio_device *d, unsigned count,
                        const struct virtio_queue_request *requests)
{
    struct vq_config configs[VIRTIO_MAX_QUEUES];

    if (count == 0 || count > VIRTIO_MAX_QUEUES)
        return -1;
    free_queue_array(d);
    if (count > VIRTIO_INLINE_QUEUES) {
        d->queue_array = page_alloc(page_order_for(count * sizeof(struct virtio_queue)), PAGE_TAG_KERNEL);
        if (!d->queue_array) {
            d->error = "no memory for a virtqueue";
            return -1;
        }
        d->queues = (struct virtio_queue *)(uintptr_t)d->queue_array;
    }
    memset(d->queues, 0, count * sizeof(struct virtio_queue));
    d->queue_count = count;
    if (virtio_setup_interrupts(d, count) != 0) {
        d->error = "no interrupt vector";
        free_queue_array(d);
        return -1;
    }
    for (unsigned i = 0; i < count; i++)
        if (queue_config(d, i, &requests[i], &configs[i]) != 0)
            goto fail;
    if (queue_memory(d, count, configs) != 0) {
        d->error = "no memory for a virtqueue";
        goto fail;
    }
    uint64_t cursor = d->queue_memory;
    for (unsigned i = 0; i < count; i++) {
        struct virtio_queue *q = &d->queues[i];
        void *ring = (void *)(uintptr_t)q->ring_memory, *state = (void *)(uintptr_t)q->state_memory;
        if (d->queue_memory) {
            ring = carve(&cursor, vq_ring_bytes(&configs[i]));
            state = carve(&cursor, vq_state_bytes(&configs[i]));
        }
        q->request = requests[i];
        if (vq_init(&q->ring, &configs[i], ring, state) != 0) {
            d->error = "no memory for a virtqueue";
            goto fail;
        }
        uint16_t entry = !d->msix ? VIRTIO_MSI_NO_VECTOR
                         : (uint16_t)(d->msix_per_queue ? 1 + i : 1);
        if (d->transport->setup_queue(d, i, &q->ring, entry) != 0) {
            d->error = "the device refused a virtqueue";
            goto fail;
        }
        q->active = 1;
    }
    return 0;
fail:
    virtio_delete_queues(d);
    return -1;
}

void virtio_delete_queues(struct virtio_device *d)
{
    /* a reset makes the device forget the rings before we free them */
    d->transport->reset(d);
    virtio_release_queues(d);
    if (d->msix)
        pci_msix_disable(d->pci);
    else
        pci_intx_mask(d->pci, 1);
    d->msix = 0; /* legacy device config moves back with MSI-X off */
}

struct virtqueue *virtio_queue(struct virtio_device *d, unsigned queue)
{
    return queue < d->queue_count && d->queues[queue].active ? &d->queues[queue].ring : 0;
}

void virtio_notify(struct virtio_device *d, unsigned queue)
{
    if (vq_kick_prepare(&d->queues[queue].ring))
        d->transport->notify(d, queue);
}

void virtio_notify_always(struct virtio_device *d, unsigned queue)
{
    d->transport->notify(d, queue);
}

uint16_t virtio_queue_max_size(struct virtio_device *d, unsigned index)
{
    return d->transport->queue_max_size(d, index);
}

int virtio_queue_size_fixed(const struct virtio_device *d)
{
    return d->transport->fixed_queue_size;
}

int virtio_attach_private_queue(struct virtio_device *d, unsigned index, struct virtqueue *ring)
{
    vq_disable_interrupts(ring);
    if (d->transport->setup_queue(d, index, ring, VIRTIO_MSI_NO_VECTOR) != 0)
        return -1;
    virtio_device_ready(d);
    return 0;
}

void virtio_private_notify(struct virtio_device *d, unsigned index, struct virtqueue *ring)
{
    if (vq_kick_prepare(ring))
        d->transport->notify(d, index);
}

void virtio_reset(struct virtio_device *d)
{
    d->transport->reset(d);
}
