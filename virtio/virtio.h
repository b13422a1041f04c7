/*
 * The virtio device model: drivers declare the device type and features
 * they serve and get probe/remove and the power-management hooks
 * freeze/thaw/restore; the core finds devices on PCI, negotiates features
 * (virtio 1.2, 3.1.1), sets up virtqueues and routes their interrupts
 * (MSI-X when the device has it, INTx through the IOAPIC otherwise, and
 * the ISR polled on the timer tick as a safety net).
 */
#ifndef VIRTIO_VIRTIO_H
#define VIRTIO_VIRTIO_H

#include <stddef.h> // offsetof
#include <stdint.h>

#include "virtio/virtio_device.h" // struct virtio_device, struct virtio_driver

void virtio_register_driver(const struct virtio_driver *driver);
/* Finds every virtio PCI function and binds the registered drivers. */
void virtio_init(void);

unsigned virtio_device_count(void);
struct virtio_device *virtio_device_get(unsigned index);

static inline int virtio_has_feature(const struct virtio_device *device, unsigned bit)
{
    return (device->features >> bit) & 1;
}

/* For drivers: */
/* The queues the device has (at most VIRTIO_MAX_QUEUES), after
 * virtio_reinitialize. */
unsigned virtio_queue_count(struct virtio_device *device);
/* count queues, each as its request asks (at most VIRTIO_MAX_QUEUES). */
int virtio_setup_queues(struct virtio_device *device, unsigned count,
                        const struct virtio_queue_request *requests);
void virtio_delete_queues(struct virtio_device *device); /* resets the device first */
/* For the core (virtio.c, when a device is gone): frees every queue's
 * memory and the queue array without touching the device. */
void virtio_release_queues(struct virtio_device *device);
void virtio_device_ready(struct virtio_device *device);  /* DRIVER_OK */
/* Resets and negotiates again (thaw/restore start here); 0 or -1. */
int virtio_reinitialize(struct virtio_device *device);
struct virtqueue *virtio_queue(struct virtio_device *device, unsigned queue);
/* Kicks the device if its event suppression asks for it. */
void virtio_notify(struct virtio_device *device, unsigned queue);
/* A notification even when the device's event suppression says none is
 * needed (2.7.10 makes that a SHOULD NOT, not a MUST NOT): for buffers a
 * device was told of before a migration and never took. */
void virtio_notify_always(struct virtio_device *device, unsigned queue);
/* Device-specific config, natural-width reads (4.1.3.1), consistent under
 * the config generation counter (2.5.1). size is 1, 2, 4 or 8. */
uint64_t virtio_read_config(struct virtio_device *device, unsigned offset, unsigned size);
void virtio_write_config(struct virtio_device *device, unsigned offset, unsigned size, uint64_t value);
/* A field of a device's packed config struct, by name: the offset and
 * width come from the wire-format struct, never from hand-kept numbers. */
#define VIRTIO_READ_CONFIG(device, type, field) \
    virtio_read_config((device), offsetof(type, field), sizeof(((type *)0)->field))
#define VIRTIO_WRITE_CONFIG(device, type, field, value) \
    virtio_write_config((device), offsetof(type, field), sizeof(((type *)0)->field), (value))

/* A queue whose memory and state the caller owns (the hibernation writer
 * keeps everything it touches in its own region): after
 * virtio_reinitialize, sets queue `index` up with no interrupt, to be
 * polled. virtio_private_notify kicks it when the device asks. */
uint16_t virtio_queue_max_size(struct virtio_device *device, unsigned index);
/* 1 when the transport fixes the queue size (legacy) */
int virtio_queue_size_fixed(const struct virtio_device *device);
int virtio_attach_private_queue(struct virtio_device *device, unsigned index, struct virtqueue *ring);
void virtio_private_notify(struct virtio_device *device, unsigned index, struct virtqueue *ring);
void virtio_reset(struct virtio_device *device);

/* Hibernation hooks: call every bound driver's hook; returns 0 or the
 * first failure (after which the caller thaws what froze). */
int virtio_freeze_all(void);
int virtio_thaw_all(void);
int virtio_restore_all(void);
/* Resets every device so none touches memory any more (before jumping
 * into a hibernation image). */
void virtio_quiesce_all(void);
/* After resume and pci_rescan: finds each device again at its PCI address
 * (its BARs may have moved), drops those that vanished (the driver's
 * remove hook gives back what it held), and probes new ones. Call before
 * virtio_restore_all, which then skips the new (already probed) devices. */
void virtio_rescan(void);

const char *virtio_type_name(uint16_t type);
/* The name of a feature bit (generic or the driver's), or NULL. */
const char *virtio_feature_name(const struct virtio_device *device, unsigned bit);

#endif
