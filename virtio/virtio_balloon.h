/*
 * The virtio-balloon driver (virtio 1.2, 5.5): follows the host's target
 * with the state machine in balloon.h, answers the host's memory
 * statistics, deflates on OOM and reports free memory when the device
 * offers those features.
 */
#ifndef VIRTIO_VIRTIO_BALLOON_H
#define VIRTIO_VIRTIO_BALLOON_H

#include <stdint.h>

#define BALLOON_DEFAULT_RESERVE_MIB 16

/* Registers the driver; the boot option balloon_reserve=MIB sets the
 * reserve. */
void virtio_balloon_register(void);
/* Pages the host holds now (0 without a balloon device). */
uint64_t virtio_balloon_pages(void);

#endif
