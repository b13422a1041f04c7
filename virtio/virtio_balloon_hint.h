/*
 * The virtio-balloon driver's free page hinting (5.5.6.7), between the
 * state machine of balloon_hint.h and the device: for virtio_balloon.c
 * only. Everything runs in the balloon's work item, on freeze and in the
 * allocator's OOM handler.
 */
#ifndef VIRTIO_VIRTIO_BALLOON_HINT_H
#define VIRTIO_VIRTIO_BALLOON_HINT_H

#include <stdint.h>

#include "virtio/balloon_hint.h" // struct hint_stats

struct virtio_device;

/* The device configuration (5.5.4). */
struct virtio_balloon_config {
    uint32_t num_pages;             /* the host's target */
    uint32_t actual;                /* what the driver says it holds */
    uint32_t free_page_hint_cmd_id; /* BALLOON_F_FREE_PAGE_HINT */
    uint32_t poison_val;            /* BALLOON_F_PAGE_POISON */
} __attribute__((packed));

/* queue: the free page queue's index, or -1 when not negotiated; words:
 * three device-readable uint32_t. */
void balloon_hint_start(struct virtio_device *device, int queue, uint32_t *words);
/* After a config change: acts on free_page_hint_cmd_id. Blocks are taken
 * only while more than reserve_pages stay free. */
void balloon_hint_config(uint64_t reserve_pages);
/* Collects the buffers the device returned. */
void balloon_hint_drain(void);
/* The kernel needs memory: ends a round early; returns pages given back. */
uint64_t balloon_hint_reclaim(void);
/* Before a reset: ends the round and waits until deadline_ns for the
 * device to return its buffers; 0, or -1 when some are still out. */
int balloon_hint_quiesce(uint64_t deadline_ns);
/* After the reset: every block still held goes back to the allocator. */
void balloon_hint_reset(void);
/* For `balloon`: state name ("off" when not negotiated), held pages. */
const char *balloon_hint_state(uint64_t *held_pages, struct hint_stats *stats);

#endif
