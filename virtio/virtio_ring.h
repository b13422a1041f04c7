/*
 * Virtqueue wire formats (virtio 1.2, sections 2.7 split and 2.8 packed)
 * and the feature bits that change them. Little-endian on the wire, which
 * is the CPU's order here.
 */
#ifndef VIRTIO_VIRTIO_RING_H
#define VIRTIO_VIRTIO_RING_H

#include <stdint.h>

#define VIRTIO_RING_F_INDIRECT_DESC 28 /* descriptors may point at descriptor tables */
#define VIRTIO_RING_F_EVENT_IDX 29     /* used_event / avail_event suppression */
#define VIRTIO_F_VERSION_1 32          /* modern (1.x) device */
#define VIRTIO_F_ACCESS_PLATFORM 33    /* device behind an IOMMU */
#define VIRTIO_F_RING_PACKED 34        /* packed virtqueue layout */

#define VRING_DESC_F_NEXT 1      /* chain continues */
#define VRING_DESC_F_WRITE 2     /* device writes this buffer */
#define VRING_DESC_F_INDIRECT 4  /* buffer is a descriptor table */
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* split ring (2.7) */
struct vring_desc {
    uint64_t address;
    uint32_t length;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t index;
    uint16_t ring[]; /* queue size entries, then used_event */
};

struct vring_used_element {
    uint32_t id;     /* head of the chain */
    uint32_t length; /* bytes the device wrote */
};

struct vring_used {
    uint16_t flags;
    uint16_t index;
    struct vring_used_element ring[]; /* queue size entries, then avail_event */
};

/* packed ring (2.8) */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)
#define VRING_PACKED_EVENT_WRAP_BIT 15

struct vring_packed_desc {
    uint64_t address;
    uint32_t length;
    uint16_t id;
    uint16_t flags;
};

#define VRING_EVENT_F_ENABLE 0
#define VRING_EVENT_F_DISABLE 1
#define VRING_EVENT_F_DESC 2 /* only with VIRTIO_RING_F_EVENT_IDX */

struct vring_packed_event {
    uint16_t off_wrap; /* bits 0-14 descriptor offset, bit 15 wrap counter */
    uint16_t flags;
};

/* Both sides' event-index rule (2.7.10): notify when the other side's event
 * index lies in [old, new), the entries just published. */
static inline int vring_need_event(uint16_t event, uint16_t new_index, uint16_t old_index)
{
    return (uint16_t)(new_index - event - 1) < (uint16_t)(new_index - old_index);
}

#endif
