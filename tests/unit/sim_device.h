/* A simulated virtio device for the host tests: the device side of split
 * (virtio 1.2, 2.7) and packed (2.8) virtqueues, written from the spec. */
#ifndef TESTS_UNIT_SIM_DEVICE_H
#define TESTS_UNIT_SIM_DEVICE_H

#include <stdint.h>

#include "virtio/virtio_ring.h"

#define SIM_MAX_BUFFERS 64 /* buffers per chain, counting indirect entries */

enum sim_order { SIM_IN_ORDER, SIM_REVERSED, SIM_RANDOM };

struct sim_buffer {
    uint64_t address;
    uint32_t length;
    int writable;
};

/* A chain the device has read and not yet used. */
struct sim_chain {
    uint16_t id;               /* split: head descriptor; packed: buffer id */
    uint16_t ring_descriptors; /* descriptors it takes in the ring (1 when indirect) */
    int indirect;
    uint64_t table;            /* indirect table address, or 0 */
    uint16_t slots[SIM_MAX_BUFFERS]; /* split: the ring descriptors it occupies */
    unsigned count;
    struct sim_buffer buffers[SIM_MAX_BUFFERS];
};

/* One used element the device wrote, in the order it wrote them. */
struct sim_completion {
    uint64_t first_address; /* identifies the chain to the test */
    uint16_t id;
    uint32_t written;
};

struct sim_device {
    int packed;
    uint16_t size;
    int event_idx, indirect; /* negotiated features */

    /* split rings and the device's private indices */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail, used_index;
    uint8_t *descriptor_busy; /* split: descriptor is part of a chain read and not used */

    /* packed ring, event structures, positions and wrap counters */
    struct vring_packed_desc *ring;
    struct vring_packed_event *driver_event, *device_event;
    uint16_t avail_position, used_position;
    int avail_wrap, used_wrap;

    struct sim_chain *pending; /* read, not yet used, in the order read */
    unsigned pending_count;

    struct sim_completion *log; /* completions since the test last cleared it */
    unsigned log_count, log_capacity;

    int partial_writes; /* write a random prefix of the writable space */
    int64_t write_limit; /* >= 0: write at most this many bytes per chain */
    int set_write_flag; /* packed: WRITE in used descriptors that wrote data (as QEMU does) */
    uint32_t rng;

    unsigned interrupts, interrupts_suppressed;
    int last_batch_interrupted;
};

/* Areas as a transport would hand them over. Returns 0, or -1 on bad input. */
int sim_init(struct sim_device *dev, int packed, uint16_t size, int event_idx, int indirect,
             uint64_t descriptor_area, uint64_t driver_area, uint64_t device_area, uint32_t seed);
void sim_free(struct sim_device *dev);

/* 1 when the driver has made at least one chain available that the device has not read. */
int sim_has_available(struct sim_device *dev);
/* Reads every available chain into pending; returns how many. */
unsigned sim_fetch(struct sim_device *dev);

/* Uses `count` pending chains (the first `count` read, in that or reverse
 * order, or random ones), writes their used elements, publishes them as
 * one batch and decides on an interrupt. Returns how many were used. */
unsigned sim_complete(struct sim_device *dev, unsigned count, enum sim_order order);
/* Uses the pending chain at `index` alone; a `claimed_length` >= 0 is
 * reported instead of the bytes really written (a lying device). */
void sim_complete_one(struct sim_device *dev, unsigned index, int64_t claimed_length);

/* Notification state the device publishes: idle asks to be notified about
 * the next available chain, busy asks for no notifications. */
void sim_set_idle(struct sim_device *dev);
void sim_set_busy(struct sim_device *dev);

/* A lying device: raw used entries that match nothing the device read. */
void sim_split_push_used(struct sim_device *dev, uint32_t id, uint32_t length);
void sim_split_set_used_index(struct sim_device *dev, uint16_t index);
void sim_packed_push_used(struct sim_device *dev, uint16_t id, uint32_t length, uint16_t skip);

/* What the device writes: byte k of a chain's writable space is
 * sim_pattern(seed, k), the seed hashing all of its readable bytes in order. */
#define SIM_SEED_INIT 2166136261u
uint32_t sim_hash(uint32_t seed, const uint8_t *bytes, uint32_t length);
uint8_t sim_pattern(uint32_t seed, uint32_t offset);

#endif
