/*
 * Virtqueues, split and packed, as the driver side sees them: add a chain
 * of buffers with a token, decide whether the device needs a kick, take
 * back used chains. Pure C with no kernel state (the host tests drive it
 * against a simulated device). Buffer addresses are physical addresses;
 * the kernel identity-maps RAM, so pointers and addresses are the same.
 *
 * A device that lies in its used ring (an unknown or already completed id,
 * a length beyond the buffers, an index that runs ahead) never makes this
 * code free or hand back the wrong chain: the entry is refused, counted,
 * and when the ring can no longer be trusted the queue is marked broken.
 */
#ifndef VIRTIO_VIRTQUEUE_H
#define VIRTIO_VIRTQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio_ring.h" // struct vring_*

#define VQ_MAX_SIZE 1024

enum vq_layout { VQ_SPLIT, VQ_PACKED };

struct vq_config {
    enum vq_layout layout;
    uint16_t size;          /* entries; a power of two for split rings */
    int event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
    uint16_t indirect_max;  /* >1: VIRTIO_RING_F_INDIRECT_DESC negotiated, table entries per chain */
    int compact;            /* modern only: areas at their own alignment (2.7 table), not the
                               legacy page layout, so a small queue takes a few hundred bytes */
};

struct vq_buffer {
    uint64_t address;
    uint32_t length;
    int device_writes; /* the device writes this buffer (VRING_DESC_F_WRITE) */
};

enum vq_used_status {
    VQ_USED_NONE = 0,       /* nothing new (or the queue is broken) */
    VQ_USED_OK = 1,
    VQ_USED_BAD_LENGTH = 2, /* token returned, but the device claimed more
                               bytes than the chain can hold: treat as failed */
};

struct vq_stats {
    uint64_t added, completed;
    uint64_t kicks, kicks_suppressed;
    uint64_t bad_id;        /* used id outside the queue */
    uint64_t stale_id;      /* used id not in flight (unknown or completed twice) */
    uint64_t bad_length;    /* used length beyond the chain's writable bytes */
    uint64_t bad_index;     /* split used index ran ahead of what was in flight */
};

struct vq_chain {
    void *token;             /* NULL when the slot is not in flight */
    uint32_t writable_bytes;
    uint16_t descriptor_count; /* ring descriptors the chain occupies */
    uint16_t last;           /* split: the chain's last descriptor */
};

struct virtqueue {
    struct vq_config config;
    struct vring_desc *desc;              /* split */
    struct vring_avail *avail;
    struct vring_used *used;
    struct vring_packed_desc *packed;     /* packed */
    struct vring_packed_event *driver_event;
    struct vring_packed_event *device_event;
    uint8_t *indirect_tables;             /* size * indirect_max descriptors */
    struct vq_chain *chains;              /* by head (split) or buffer id (packed) */
    uint16_t *free_next;                  /* free descriptors (split) or ids (packed) */
    uint16_t free_head;
    uint16_t free_count;                  /* split: descriptors; packed: ids */
    uint16_t free_slots;                  /* packed: ring descriptors not in use */
    uint16_t avail_index;                 /* split: next avail->index */
    uint16_t last_used;                   /* split: used entries consumed */
    uint16_t next_avail, next_used;       /* packed ring positions */
    int avail_wrap, used_wrap;            /* packed wrap counters */
    uint16_t added_since_kick;            /* descriptors (packed) or chains (split) */
    uint16_t chains_in_flight;            /* split: chains the device holds */
    int interrupts_disabled;
    int broken;
    struct vq_stats stats;
};

/* Memory the caller provides: the rings (shared with the device; the
 * split layout also suits legacy devices, used ring 4096-aligned) and the
 * driver's private state. */
size_t vq_ring_bytes(const struct vq_config *config);
size_t vq_state_bytes(const struct vq_config *config);

/* Returns 0, or -1 for a size the layout cannot take. Clears the rings. */
int vq_init(struct virtqueue *vq, const struct vq_config *config, void *ring_memory,
            void *state_memory);

/* Addresses to give the transport: descriptor area, driver area (avail
 * ring / driver event), device area (used ring / device event). */
uint64_t vq_descriptor_area(const struct virtqueue *vq);
uint64_t vq_driver_area(const struct virtqueue *vq);
uint64_t vq_device_area(const struct virtqueue *vq);

/* Makes buffers available as one chain. Device-readable buffers must come
 * before device-writable ones (2.7.4). Returns 0, ERROR_BUSY when the ring
 * has no room now, ERROR_DEVICE when the queue is broken, or ERROR_INVALID
 * for a chain the queue can never take. */
int vq_add_chain(struct virtqueue *vq, const struct vq_buffer *buffers, unsigned count,
                 void *token);

/* After adding: 1 when the device asked to be notified, 0 when its event
 * suppression says not to. */
int vq_kick_prepare(struct virtqueue *vq);

/* Takes the next used chain: its token and the length the device wrote. */
enum vq_used_status vq_get_used(struct virtqueue *vq, void **token, uint32_t *length);

/* Ask the device for (or to hold back) used-buffer interrupts. Enabling
 * returns 1 when used buffers are already waiting (so a caller that
 * sleeps next would miss them). */
int vq_enable_interrupts(struct virtqueue *vq);
void vq_disable_interrupts(struct virtqueue *vq);

/* Chains made available and not yet taken back with vq_get_used. */
unsigned vq_in_flight(const struct virtqueue *vq);
int vq_is_broken(const struct virtqueue *vq);

#endif
