/*
 * The virtio device model's types: a device, the driver that serves it,
 * its queues and interrupt routing. Shared by the core (virtio.c) and the
 * PCI transports (virtio_pci.c); drivers get them through virtio.h.
 */
#ifndef VIRTIO_VIRTIO_DEVICE_H
#define VIRTIO_VIRTIO_DEVICE_H

#include <stdint.h>

#include "virtio/virtio_pci_layout.h" // struct virtio_pci_layout
#include "virtio/virtqueue.h"         // struct virtqueue

#define VIRTIO_MAX_DEVICES 16
/* Queues a device may have: a virtio-console with CONSOLE_PORTS_MAX (32)
 * ports needs 2 * 32 + 2 (5.3.2). A device with more gets its first 66;
 * a device uses only as many as its transport reports. */
#define VIRTIO_MAX_QUEUES 66
/* Queues whose array sits in the device entry; a device with more gets a
 * page_alloc'd array while its queues are set up. */
#define VIRTIO_INLINE_QUEUES 8
/* One MSI-X vector per queue only up to this many queues: beyond, the
 * queues share one (IDT vectors are few; 4.1.4.5 allows sharing). */
#define VIRTIO_MAX_QUEUE_VECTORS 8

#define VIRTIO_TYPE_BLOCK 2
#define VIRTIO_TYPE_BALLOON 5

/* device status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

struct pci_function;
struct virtio_device;

struct virtio_feature_name {
    unsigned bit;
    const char *name;
};

struct virtio_driver {
    const char *name;
    uint16_t device_type;
    uint64_t features; /* device-specific bits the driver understands */
    const struct virtio_feature_name *feature_names; /* ends with a NULL name */
    int (*probe)(struct virtio_device *device);
    /* the device is gone (it vanished across a resume): give back what
     * the driver held without touching the device */
    void (*remove)(struct virtio_device *device);
    /* hibernation (pm/): freeze stops the device and deletes its queues;
     * thaw brings it back after a failed hibernation, restore after resume
     * from an image. Both start from a device in an unknown state. restore
     * returns ERROR_GONE when the device it finds is not the one it had
     * (the core then removes it and probes the device as new). */
    int (*freeze)(struct virtio_device *device);
    int (*thaw)(struct virtio_device *device);
    int (*restore)(struct virtio_device *device);
    void (*config_changed)(struct virtio_device *device); /* interrupt context */
};

typedef void (*virtio_queue_callback)(struct virtio_device *device, unsigned queue);

struct virtio_queue_request {
    uint16_t size;         /* wanted entries, 0 for the device's maximum (capped at VQ_MAX_SIZE) */
    uint16_t indirect_max; /* table entries per chain when indirect descriptors are negotiated */
    virtio_queue_callback callback; /* interrupt context */
};

struct virtio_transport;

struct virtio_queue {
    struct virtqueue ring;
    int active;
    uint64_t ring_memory, state_memory; /* legacy: page_alloc blocks */
    struct virtio_queue_request request;
    volatile uint16_t *doorbell;        /* modern: checked inside the notify region */
};

#define VIRTIO_IRQ_CONFIG (-1)
#define VIRTIO_IRQ_ALL_QUEUES (-2)

struct virtio_irq {
    struct virtio_device *device;
    int queue; /* a queue, VIRTIO_IRQ_CONFIG or VIRTIO_IRQ_ALL_QUEUES */
};

struct virtio_device {
    unsigned index;
    struct pci_function *pci;
    uint16_t pci_segment;   /* where it sits, to find it again after resume */
    uint8_t pci_bus, pci_device, pci_function;
    int gone;               /* vanished across a resume: dropped */
    int frozen;             /* between freeze and thaw/restore: left alone */
    int probed_after_resume; /* new at this resume: nothing to restore */
    const struct virtio_transport *transport;
    uint16_t type;
    uint64_t device_features;
    uint64_t features; /* negotiated */
    const struct virtio_driver *driver;
    void *driver_data;
    const char *error;  /* why the device is not in use, or NULL */
    unsigned queue_count;
    struct virtio_queue *queues;  /* inline_queues, or page_alloc'd for more */
    struct virtio_queue inline_queues[VIRTIO_INLINE_QUEUES];
    uint64_t queue_array;         /* page_alloc block of queues, or 0 */
    uint64_t queue_memory;        /* modern: one block for every ring and state, or 0 */
    int msix;           /* interrupts through MSI-X; else INTx */
    int msix_per_queue; /* one MSI-X entry per queue, else one shared */
    uint8_t config_vector, queue_vector_base, intx_vector;
    uint8_t queue_vectors; /* how many vectors from queue_vector_base are this device's */
    int intx_gsi;
    struct virtio_irq irqs[VIRTIO_MAX_QUEUE_VECTORS + 1];
    uint64_t interrupts, config_changes;
    /* transport state */
    uint16_t io_base;                    /* legacy: BAR0 */
    uint32_t io_size;                    /* legacy: BAR0's size */
    struct virtio_pci_layout layout;     /* modern: every region, checked */
    volatile uint8_t *common, *isr, *device_config; /* modern: from the layout */
};

#endif
