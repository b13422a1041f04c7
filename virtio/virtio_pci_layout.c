/*
 * Checks of a modern virtio PCI device's register layout (see
 * virtio/virtio_pci_layout.h). Every sum is done in 64 bits from 32-bit
 * inputs, so nothing a device says can wrap.
 */
#include "virtio/virtio_pci_layout.h"

int virtio_pci_region_holds(const struct virtio_pci_region *r, uint64_t offset, uint64_t size)
{
    return r->address && size <= r->length && offset <= r->length - size;
}

static uint32_t minimum_length(uint8_t type)
{
    switch (type) {
    case VIRTIO_PCI_CAP_COMMON: return VIRTIO_PCI_COMMON_MIN_LENGTH;
    case VIRTIO_PCI_CAP_NOTIFY: return 2; /* one 16-bit doorbell */
    default: return 1;
    }
}

/* The region a capability names, or 0 when it lies outside its BAR. */
static int region_of(const struct virtio_pci_cap *cap, const struct virtio_pci_bar bars[6],
                     struct virtio_pci_region *region)
{
    /* BARs 0-5 only (4.1.4.1: other values are reserved and ignored) */
    if (cap->bar > 5)
        return 0;
    const struct virtio_pci_bar *bar = &bars[cap->bar];
    if (bar->is_io || !bar->address || !bar->size || cap->length < minimum_length(cap->type) ||
        (uint64_t)cap->offset + cap->length > bar->size)
        return 0;
    region->address = bar->address + cap->offset;
    region->length = cap->length;
    return 1;
}

enum virtio_pci_layout_result virtio_pci_layout_check(const struct virtio_pci_cap *caps, unsigned count,
                                                      const struct virtio_pci_bar bars[6],
                                                      struct virtio_pci_layout *layout,
                                                      const char **reason)
{
    int seen[5] = { 0 }, found[5] = { 0 };

    *layout = (struct virtio_pci_layout){ { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, 0 };
    *reason = 0;
    for (unsigned i = 0; i < count; i++) {
        const struct virtio_pci_cap *cap = &caps[i];
        if (cap->type < VIRTIO_PCI_CAP_COMMON || cap->type > VIRTIO_PCI_CAP_DEVICE)
            continue; /* PCI config access and later types: not used */
        seen[cap->type] = 1;
        if (found[cap->type])
            continue; /* the first usable one of each type counts (4.1.4.1) */
        struct virtio_pci_region region;
        if (!region_of(cap, bars, &region))
            continue;
        found[cap->type] = 1;
        switch (cap->type) {
        case VIRTIO_PCI_CAP_COMMON: layout->common = region; break;
        case VIRTIO_PCI_CAP_NOTIFY:
            layout->notify = region;
            layout->notify_multiplier = cap->notify_multiplier;
            break;
        case VIRTIO_PCI_CAP_ISR: layout->isr = region; break;
        default: layout->device = region; break;
        }
    }
    if (!seen[VIRTIO_PCI_CAP_COMMON] && !seen[VIRTIO_PCI_CAP_NOTIFY] && !seen[VIRTIO_PCI_CAP_ISR])
        return VIRTIO_PCI_LAYOUT_NOT_MODERN;
    /* a device that offers the modern registers must offer them where
     * they can be; one that lies about them is not driven at all */
    for (uint8_t type = VIRTIO_PCI_CAP_COMMON; type <= VIRTIO_PCI_CAP_DEVICE; type++) {
        int required = type != VIRTIO_PCI_CAP_DEVICE;
        if ((required && !found[type]) || (seen[type] && !found[type])) {
            static const char *const missing[] = {
                0, "common config capability missing or outside its BAR",
                "notify capability missing or outside its BAR",
                "isr capability missing or outside its BAR",
                "device config capability outside its BAR",
            };
            *reason = missing[type];
            return VIRTIO_PCI_LAYOUT_REFUSED;
        }
    }
    return VIRTIO_PCI_LAYOUT_OK;
}

uint64_t virtio_pci_doorbell(const struct virtio_pci_layout *layout, uint16_t queue_notify_off)
{
    uint64_t offset = (uint64_t)queue_notify_off * layout->notify_multiplier;

    return virtio_pci_region_holds(&layout->notify, offset, 2) ? layout->notify.address + offset : 0;
}
