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

/* The legacy header at the start of BAR0's I/O space (4.1.4.10). The two
 * vectors are there only while MSI-X is enabled; the device configuration
 * follows the header, so it moves by 4 bytes with MSI-X. */
struct virtio_pci_legacy_header {
    uint32_t host_features;  /* the device's, bits 0-31 only */
    uint32_t guest_features;
    uint32_t queue_pfn;      /* the queue_select queue's address >> 12 */
    uint16_t queue_size;     /* fixed by the device */
    uint16_t queue_select;
    uint16_t queue_notify;
    uint8_t status;
    uint8_t isr;             /* reading clears it */
    /* MSI-X enabled only */
    uint16_t config_msix_vector;
    uint16_t queue_msix_vector;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_pci_legacy_header) == 0x18, "4.1.4.10: the header with MSI-X is 24 bytes");

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
