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

#include <stdint.h>

#include "virtio/virtqueue.h" // struct virtqueue

#define VIRTIO_MAX_DEVICES 16
#define VIRTIO_MAX_QUEUES 8

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
     * from an image. Both start from a device in an unknown state. */
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
    uint64_t ring_memory, state_memory; /* page_alloc blocks */
    struct virtio_queue_request request;
    uint16_t notify_offset;             /* modern: queue_notify_off */
};

struct virtio_irq {
    struct virtio_device *device;
    int queue; /* -1: config change; VIRTIO_MAX_QUEUES: every queue */
};

struct virtio_device {
    unsigned index;
    struct pci_function *pci;
    uint16_t pci_segment;   /* where it sits, to find it again after resume */
    uint8_t pci_bus, pci_device, pci_function;
    int gone;               /* vanished across a resume: dropped */
    int frozen;             /* between freeze and thaw/restore: left alone */
    const struct virtio_transport *transport;
    uint16_t type;
    uint64_t device_features;
    uint64_t features; /* negotiated */
    const struct virtio_driver *driver;
    void *driver_data;
    const char *error;  /* why the device is not in use, or NULL */
    unsigned queue_count;
    struct virtio_queue queues[VIRTIO_MAX_QUEUES];
    int msix;           /* interrupts through MSI-X; else INTx */
    int msix_per_queue; /* one MSI-X entry per queue, else one shared */
    uint8_t config_vector, queue_vector_base, intx_vector;
    int intx_gsi;
    struct virtio_irq irqs[VIRTIO_MAX_QUEUES + 2];
    uint64_t interrupts, config_changes;
    /* transport state */
    uint16_t io_base;                    /* legacy: BAR0 */
    volatile uint8_t *common, *isr, *device_config, *notify_base; /* modern */
    uint32_t notify_multiplier;
};

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
int virtio_setup_queues(struct virtio_device *device, unsigned count,
                        const struct virtio_queue_request *requests);
void virtio_delete_queues(struct virtio_device *device); /* resets the device first */
void virtio_device_ready(struct virtio_device *device);  /* DRIVER_OK */
/* Resets and negotiates again (thaw/restore start here); 0 or -1. */
int virtio_reinitialize(struct virtio_device *device);
struct virtqueue *virtio_queue(struct virtio_device *device, unsigned queue);
/* Kicks the device if its event suppression asks for it. */
void virtio_notify(struct virtio_device *device, unsigned queue);
/* Device-specific config, natural-width reads (4.1.3.1), consistent under
 * the config generation counter (2.5.1). size is 1, 2, 4 or 8. */
uint64_t virtio_read_config(struct virtio_device *device, unsigned offset, unsigned size);
void virtio_write_config(struct virtio_device *device, unsigned offset, unsigned size, uint64_t value);

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

#endif
