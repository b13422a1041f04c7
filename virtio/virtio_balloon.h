/*
 * The virtio-balloon driver (virtio 1.2, 5.5): follows the host's target
 * with the state machine in balloon.h, answers the host's memory
 * statistics, deflates on OOM and reports free memory when the device
 * offers those features.
 */
#ifndef VIRTIO_VIRTIO_BALLOON_H
#define VIRTIO_VIRTIO_BALLOON_H

#include <stdint.h>

#include "virtio/balloon.h"      // struct balloon_stats
#include "virtio/balloon_hint.h" // struct hint_stats

#define BALLOON_DEFAULT_RESERVE_MIB 16

struct virtio_feature_name;

/* What the `balloon` command prints. */
struct virtio_balloon_info {
    uint32_t target_pages, actual_pages, list_pages, inflating, deflating;
    uint64_t reserve_pages;
    unsigned batch, in_flight;
    uint64_t features;                                /* negotiated */
    const struct virtio_feature_name *feature_names; /* ends with a NULL name */
    struct balloon_stats core;
    uint64_t reported_pages, stats_updates;
    const char *hint_state; /* off, idle, sending, holding */
    uint64_t hint_held_pages;
    struct hint_stats hint;
};

/* Registers the driver; the boot option balloon_reserve=MIB sets the
 * reserve. */
void virtio_balloon_register(void);
/* Each returns ERROR_NOT_FOUND without a balloon device. */
int virtio_balloon_get_info(struct virtio_balloon_info *info);
/* Free pages the balloon leaves to the kernel. */
int virtio_balloon_set_reserve(uint64_t pages);
/* PFNs per request and requests in flight (ERROR_INVALID out of range). */
int virtio_balloon_set_batching(unsigned batch, unsigned in_flight);

#endif
