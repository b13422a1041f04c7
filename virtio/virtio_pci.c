/*
 * Modern and legacy virtio PCI transports. Modern: the common, notify, ISR
 * and device config structures found through vendor capabilities (4.1.4);
 * legacy: fixed registers in BAR0 I/O space (4.1.4.10), whose device config
 * moves by 4 bytes when MSI-X is on.
 */
#include "virtio/virtio_pci.h"

#include <stddef.h> // offsetof

#include "arch/x86/cpu.h"         // inb/outb and friends
#include "pci/pci.h"              // pci_*
#include "virtio/virtio_device.h" // struct virtio_device
#include "virtio/virtqueue.h"     // vq_*_area

/* ---- modern ------------------------------------------------------------ */

/* A field of the common configuration, read or written at its own width
 * (4.1.3.1). */
#define COMMON_TYPE(field) __typeof__(((struct virtio_pci_common_cfg *)0)->field)
#define COMMON(d, field) \
    (*(volatile COMMON_TYPE(field) *)((d)->common + offsetof(struct virtio_pci_common_cfg, field)))

/* 64-bit fields are written as two 32-bit halves (4.1.3.1) */
#define COMMON_WRITE64(d, field, value) \
    write64_split((d)->common + offsetof(struct virtio_pci_common_cfg, field), (value))

static void write64_split(volatile uint8_t *p, uint64_t value)
{
    *(volatile uint32_t *)p = (uint32_t)value;
    *(volatile uint32_t *)(p + 4) = (uint32_t)(value >> 32);
}

static uint8_t modern_get_status(struct virtio_device *d) { return COMMON(d, device_status); }
static void modern_set_status(struct virtio_device *d, uint8_t status) { COMMON(d, device_status) = status; }

static void modern_reset(struct virtio_device *d)
{
    COMMON(d, device_status) = 0;
    /* the reset completes when status reads 0 again (4.1.4.3.2) */
    for (unsigned i = 0; i < 1000000 && COMMON(d, device_status) != 0; i++)
        cpu_relax();
}

static uint64_t modern_get_features(struct virtio_device *d)
{
    uint64_t features = 0;

    for (uint32_t word = 0; word < 2; word++) {
        COMMON(d, device_feature_select) = word;
        features |= (uint64_t)COMMON(d, device_feature) << (32 * word);
    }
    return features;
}

static void modern_set_features(struct virtio_device *d, uint64_t features)
{
    for (uint32_t word = 0; word < 2; word++) {
        COMMON(d, driver_feature_select) = word;
        COMMON(d, driver_feature) = (uint32_t)(features >> (32 * word));
    }
}

static uint8_t modern_config_generation(struct virtio_device *d)
{
    return COMMON(d, config_generation);
}

static uint64_t modern_read_config(struct virtio_device *d, unsigned offset, unsigned size)
{
    if (!virtio_pci_region_holds(&d->layout.device, offset, size))
        return 0; /* outside what the device said its config is */
    volatile uint8_t *p = d->device_config + offset;

    switch (size) {
    case 1: return *p;
    case 2: return *(volatile uint16_t *)p;
    case 4: return *(volatile uint32_t *)p;
    default: return *(volatile uint32_t *)p | ((uint64_t)*(volatile uint32_t *)(p + 4) << 32);
    }
}

static void modern_write_config(struct virtio_device *d, unsigned offset, unsigned size, uint64_t value)
{
    if (!virtio_pci_region_holds(&d->layout.device, offset, size))
        return;
    volatile uint8_t *p = d->device_config + offset;

    switch (size) {
    case 1: *p = (uint8_t)value; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)value; break;
    case 4: *(volatile uint32_t *)p = (uint32_t)value; break;
    default:
        *(volatile uint32_t *)p = (uint32_t)value;
        *(volatile uint32_t *)(p + 4) = (uint32_t)(value >> 32);
    }
}

static uint16_t modern_queue_max_size(struct virtio_device *d, unsigned queue)
{
    if (queue >= COMMON(d, num_queues))
        return 0;
    COMMON(d, queue_select) = (uint16_t)queue;
    return COMMON(d, queue_size);
}

static int modern_setup_queue(struct virtio_device *d, unsigned queue, struct virtqueue *ring,
                              uint16_t msix_entry)
{
    COMMON(d, queue_select) = (uint16_t)queue;
    COMMON(d, queue_size) = ring->config.size;
    COMMON(d, queue_msix_vector) = msix_entry;
    if (msix_entry != VIRTIO_MSI_NO_VECTOR && COMMON(d, queue_msix_vector) != msix_entry)
        return -1; /* the device could not take the vector (4.1.5.1.2) */
    COMMON_WRITE64(d, queue_desc, vq_descriptor_area(ring));
    COMMON_WRITE64(d, queue_driver, vq_driver_area(ring));
    COMMON_WRITE64(d, queue_device, vq_device_area(ring));
    /* the doorbell comes from device data: it must lie inside the notify
     * region, or a device could aim our store anywhere (4.1.4.4) */
    uint64_t doorbell = virtio_pci_doorbell(&d->layout, COMMON(d, queue_notify_off));
    if (!doorbell) {
        d->error = "queue doorbell outside the notify region";
        return -1;
    }
    d->queues[queue].doorbell = (volatile uint16_t *)(uintptr_t)doorbell;
    COMMON(d, queue_enable) = 1;
    return 0;
}

static void modern_notify(struct virtio_device *d, unsigned queue)
{
    if (d->queues[queue].doorbell)
        *d->queues[queue].doorbell = (uint16_t)queue;
}

static uint8_t modern_read_isr(struct virtio_device *d)
{
    return *d->isr; /* reading clears it (4.1.4.5) */
}

static uint16_t modern_set_config_msix(struct virtio_device *d, uint16_t entry)
{
    COMMON(d, config_msix_vector) = entry;
    return COMMON(d, config_msix_vector);
}

static const struct virtio_transport modern_transport = {
    .name = "modern",
    .get_status = modern_get_status,
    .set_status = modern_set_status,
    .reset = modern_reset,
    .get_features = modern_get_features,
    .set_features = modern_set_features,
    .config_generation = modern_config_generation,
    .read_config = modern_read_config,
    .write_config = modern_write_config,
    .queue_max_size = modern_queue_max_size,
    .fixed_queue_size = 0,
    .setup_queue = modern_setup_queue,
    .notify = modern_notify,
    .read_isr = modern_read_isr,
    .set_config_msix = modern_set_config_msix,
};

/* ---- legacy ------------------------------------------------------------ */

/* the I/O port of a legacy header field */
#define LEGACY(d, field) ((uint16_t)((d)->io_base + offsetof(struct virtio_pci_legacy_header, field)))

/* The device configuration follows the header, whose two vectors are
 * there only with MSI-X on (4.1.4.10). */
static uint16_t legacy_config_base(struct virtio_device *d)
{
    return (uint16_t)(d->io_base + (d->msix ? sizeof(struct virtio_pci_legacy_header)
                                            : offsetof(struct virtio_pci_legacy_header, config_msix_vector)));
}

static uint8_t legacy_get_status(struct virtio_device *d) { return inb(LEGACY(d, status)); }
static void legacy_set_status(struct virtio_device *d, uint8_t status) { outb(LEGACY(d, status), status); }
static void legacy_reset(struct virtio_device *d) { outb(LEGACY(d, status), 0); (void)inb(LEGACY(d, status)); }
static uint64_t legacy_get_features(struct virtio_device *d) { return inl(LEGACY(d, host_features)); }
static void legacy_set_features(struct virtio_device *d, uint64_t features) { outl(LEGACY(d, guest_features), (uint32_t)features); }
static uint8_t legacy_config_generation(struct virtio_device *d) { (void)d; return 0; }

/* Whether a config access stays inside BAR0. */
static int legacy_config_holds(struct virtio_device *d, unsigned offset, unsigned size)
{
    uint32_t start = (uint32_t)(legacy_config_base(d) - d->io_base) + offset;

    return start + size <= d->io_size;
}

static uint64_t legacy_read_config(struct virtio_device *d, unsigned offset, unsigned size)
{
    uint16_t port = (uint16_t)(legacy_config_base(d) + offset);

    if (!legacy_config_holds(d, offset, size))
        return 0;

    switch (size) {
    case 1: return inb(port);
    case 2: return inw(port);
    case 4: return inl(port);
    default: return inl(port) | ((uint64_t)inl((uint16_t)(port + 4)) << 32);
    }
}

static void legacy_write_config(struct virtio_device *d, unsigned offset, unsigned size, uint64_t value)
{
    uint16_t port = (uint16_t)(legacy_config_base(d) + offset);

    if (!legacy_config_holds(d, offset, size))
        return;

    switch (size) {
    case 1: outb(port, (uint8_t)value); break;
    case 2: outw(port, (uint16_t)value); break;
    case 4: outl(port, (uint32_t)value); break;
    default:
        outl(port, (uint32_t)value);
        outl((uint16_t)(port + 4), (uint32_t)(value >> 32));
    }
}

static uint16_t legacy_queue_max_size(struct virtio_device *d, unsigned queue)
{
    outw(LEGACY(d, queue_select), (uint16_t)queue);
    return inw(LEGACY(d, queue_size));
}

static int legacy_setup_queue(struct virtio_device *d, unsigned queue, struct virtqueue *ring,
                              uint16_t msix_entry)
{
    uint64_t address = vq_descriptor_area(ring);

    /* legacy queues are one block addressed by a 32-bit page number, with
     * the used ring at the next 4096 boundary (4.1.4.10) */
    if ((address & 4095) || (address >> 12) > 0xffffffffu)
        return -1;
    outw(LEGACY(d, queue_select), (uint16_t)queue);
    if (d->msix) {
        outw(LEGACY(d, queue_msix_vector), msix_entry);
        if (inw(LEGACY(d, queue_msix_vector)) != msix_entry)
            return -1;
    }
    outl(LEGACY(d, queue_pfn), (uint32_t)(address >> 12));
    return 0;
}

static void legacy_notify(struct virtio_device *d, unsigned queue) { outw(LEGACY(d, queue_notify), (uint16_t)queue); }
static uint8_t legacy_read_isr(struct virtio_device *d) { return inb(LEGACY(d, isr)); }

static uint16_t legacy_set_config_msix(struct virtio_device *d, uint16_t entry)
{
    outw(LEGACY(d, config_msix_vector), entry);
    return inw(LEGACY(d, config_msix_vector));
}

static const struct virtio_transport legacy_transport = {
    .name = "legacy",
    .get_status = legacy_get_status,
    .set_status = legacy_set_status,
    .reset = legacy_reset,
    .get_features = legacy_get_features,
    .set_features = legacy_set_features,
    .config_generation = legacy_config_generation,
    .read_config = legacy_read_config,
    .write_config = legacy_write_config,
    .queue_max_size = legacy_queue_max_size,
    .fixed_queue_size = 1,
    .setup_queue = legacy_setup_queue,
    .notify = legacy_notify,
    .read_isr = legacy_read_isr,
    .set_config_msix = legacy_set_config_msix,
};

/* ---- choosing one ------------------------------------------------------ */

#define MAX_VENDOR_CAPS 16
/* a field's offset in a vendor capability (4.1.4) */
#define CAP(field) offsetof(struct virtio_pci_cap_wire, field)
/* the header a legacy BAR0 must hold, MSI-X vectors aside */
#define LEGACY_HEADER_BYTES offsetof(struct virtio_pci_legacy_header, config_msix_vector)

int virtio_pci_attach(struct virtio_device *d)
{
    struct pci_function *f = d->pci;
    struct virtio_pci_cap caps[MAX_VENDOR_CAPS];
    struct virtio_pci_bar bars[6];
    unsigned count = 0;

    for (uint8_t cap = pci_find_capability(f, PCI_CAP_ID_VENDOR, 0); cap && count < MAX_VENDOR_CAPS;
         cap = pci_find_capability(f, PCI_CAP_ID_VENDOR, cap))
        caps[count++] = (struct virtio_pci_cap){
            .type = pci_read8(f, cap + CAP(cfg_type)),
            .bar = pci_read8(f, cap + CAP(bar)),
            .offset = pci_read32(f, cap + CAP(offset)),
            .length = pci_read32(f, cap + CAP(length)),
            .notify_multiplier = pci_read8(f, cap + CAP(cfg_type)) == VIRTIO_PCI_CAP_NOTIFY
                                     ? pci_read32(f, cap + offsetof(struct virtio_pci_notify_cap_wire,
                                                                    notify_off_multiplier))
                                     : 0,
        };
    /* the capabilities live in memory BARs (4.1.4); the legacy I/O BAR
     * only matters without them */
    pci_size_bars(f, 1, 0);
    for (unsigned i = 0; i < 6; i++)
        bars[i] = (struct virtio_pci_bar){ f->bars[i].address, f->bars[i].size, f->bars[i].is_io };
    const char *reason;
    switch (virtio_pci_layout_check(caps, count, bars, &d->layout, &reason)) {
    case VIRTIO_PCI_LAYOUT_OK:
        d->transport = &modern_transport;
        d->common = (volatile uint8_t *)(uintptr_t)d->layout.common.address;
        d->isr = (volatile uint8_t *)(uintptr_t)d->layout.isr.address;
        d->device_config = (volatile uint8_t *)(uintptr_t)d->layout.device.address;
        return 0;
    case VIRTIO_PCI_LAYOUT_REFUSED:
        d->error = reason;
        return -1;
    case VIRTIO_PCI_LAYOUT_NOT_MODERN:
        break;
    }
    pci_size_bars(f, 0, 1);
    if (f->bars[0].is_io && f->bars[0].address && f->bars[0].size >= LEGACY_HEADER_BYTES &&
        f->bars[0].address + f->bars[0].size <= 0x10000) {
        d->transport = &legacy_transport;
        d->io_base = (uint16_t)f->bars[0].address;
        d->io_size = (uint32_t)f->bars[0].size;
        return 0;
    }
    d->error = "no usable virtio transport (no modern capabilities, no legacy I/O BAR)";
    return -1;
}
