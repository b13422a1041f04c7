/*
 * Where a modern virtio PCI device's registers are (virtio 1.2, 4.1.4),
 * checked before anything is touched: every region a capability names
 * lies inside an assigned memory BAR and its own length, and every
 * address computed from device data (a queue's doorbell, a config field)
 * lies inside its region. Pure: the host tests feed it devices that lie.
 */
#ifndef VIRTIO_VIRTIO_PCI_LAYOUT_H
#define VIRTIO_VIRTIO_PCI_LAYOUT_H

#include <stdint.h>

/* cfg_type of the vendor capabilities (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

/* A vendor capability in PCI config space (4.1.4); the notify capability
 * goes on with notify_off_multiplier (4.1.4.4). */
struct virtio_pci_cap_wire {
    uint8_t cap_vndr;  /* PCI_CAP_ID_VENDOR */
    uint8_t cap_next;
    uint8_t cap_len;
    uint8_t cfg_type;  /* VIRTIO_PCI_CAP_* */
    uint8_t bar;
    uint8_t id;
    uint8_t padding[2];
    uint32_t offset;   /* within the BAR */
    uint32_t length;
} __attribute__((packed));

struct virtio_pci_notify_cap_wire {
    struct virtio_pci_cap_wire cap;
    uint32_t notify_off_multiplier; /* doorbell stride per queue_notify_off */
} __attribute__((packed));

/* The common configuration structure (4.1.4.3), as far as torpor uses it:
 * queue_notify_data and queue_reset follow only with features torpor does
 * not negotiate. */
struct virtio_pci_common_cfg {
    /* the whole device */
    uint32_t device_feature_select; /* which 32 bits device_feature shows */
    uint32_t device_feature;
    uint32_t driver_feature_select; /* which 32 bits driver_feature takes */
    uint32_t driver_feature;
    uint16_t config_msix_vector;
    uint16_t num_queues;
    uint8_t device_status;
    uint8_t config_generation;
    /* the queue queue_select names */
    uint16_t queue_select;
    uint16_t queue_size;
    uint16_t queue_msix_vector;
    uint16_t queue_enable;
    uint16_t queue_notify_off;      /* the doorbell, in notify_off_multiplier units */
    uint64_t queue_desc;
    uint64_t queue_driver;
    uint64_t queue_device;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_pci_common_cfg) == 0x38, "4.1.4.3: queue_device ends at 0x38");

#define VIRTIO_PCI_COMMON_MIN_LENGTH ((uint32_t)sizeof(struct virtio_pci_common_cfg))

/* One vendor capability as read from config space. */
struct virtio_pci_cap {
    uint8_t type;
    uint8_t bar;
    uint32_t offset, length;
    uint32_t notify_multiplier; /* notify capabilities only */
};

/* A BAR as PCI enumeration sized it. */
struct virtio_pci_bar {
    uint64_t address; /* 0: not assigned */
    uint64_t size;
    int is_io;
};

struct virtio_pci_region {
    uint64_t address; /* 0: absent */
    uint32_t length;
};

struct virtio_pci_layout {
    struct virtio_pci_region common, notify, isr, device;
    uint32_t notify_multiplier;
};

enum virtio_pci_layout_result {
    VIRTIO_PCI_LAYOUT_OK = 0,
    VIRTIO_PCI_LAYOUT_NOT_MODERN, /* no modern capabilities at all: try legacy */
    VIRTIO_PCI_LAYOUT_REFUSED,    /* capabilities that lie: the device is left alone */
};

/* Fills *layout from the capabilities: for each type the first one whose
 * region is valid (4.1.4.1 lets a driver skip one it cannot use). Returns
 * OK, NOT_MODERN, or REFUSED with *reason saying what was wrong. */
enum virtio_pci_layout_result virtio_pci_layout_check(const struct virtio_pci_cap *caps, unsigned count,
                                                      const struct virtio_pci_bar bars[6],
                                                      struct virtio_pci_layout *layout,
                                                      const char **reason);

/* The doorbell of a queue whose queue_notify_off the device gave:
 * notify.address + off * multiplier, if its 2 bytes lie inside the notify
 * region (4.1.4.4); else 0. */
uint64_t virtio_pci_doorbell(const struct virtio_pci_layout *layout, uint16_t queue_notify_off);

/* Whether [offset, offset + size) lies inside the region. */
int virtio_pci_region_holds(const struct virtio_pci_region *region, uint64_t offset, uint64_t size);

#endif
