/*
 * The virtio PCI transports (virtio 1.2, 4.1): modern (capabilities in
 * memory BARs) and legacy (the I/O BAR header of 4.1.4.10). The core
 * (virtio.c) talks to a device only through these operations.
 */
#ifndef VIRTIO_VIRTIO_PCI_H
#define VIRTIO_VIRTIO_PCI_H

#include <stdint.h>

struct virtio_device;
struct virtqueue;

#define VIRTIO_MSI_NO_VECTOR 0xffff

struct virtio_transport {
    const char *name;
    uint8_t (*get_status)(struct virtio_device *device);
    void (*set_status)(struct virtio_device *device, uint8_t status);
    void (*reset)(struct virtio_device *device);
    uint64_t (*get_features)(struct virtio_device *device);
    void (*set_features)(struct virtio_device *device, uint64_t features);
    uint8_t (*config_generation)(struct virtio_device *device);
    uint64_t (*read_config)(struct virtio_device *device, unsigned offset, unsigned size);
    void (*write_config)(struct virtio_device *device, unsigned offset, unsigned size, uint64_t value);
    /* 0 when the queue does not exist */
    uint16_t (*queue_max_size)(struct virtio_device *device, unsigned queue);
    /* legacy devices take only their own size */
    int fixed_queue_size;
    int (*setup_queue)(struct virtio_device *device, unsigned queue, struct virtqueue *ring,
                       uint16_t msix_entry);
    void (*notify)(struct virtio_device *device, unsigned queue);
    uint8_t (*read_isr)(struct virtio_device *device);
    /* returns what the device read back (VIRTIO_MSI_NO_VECTOR: refused) */
    uint16_t (*set_config_msix)(struct virtio_device *device, uint16_t entry);
};

/* Chooses the transport from the PCI capabilities and maps its registers;
 * returns 0, or -1 with device->error set. */
int virtio_pci_attach(struct virtio_device *device);

#endif
