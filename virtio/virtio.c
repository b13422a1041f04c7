/*
 * The virtio core: device discovery on PCI, the status and feature dance
 * (3.1.1), virtqueue memory and interrupt routing, and the freeze/thaw/
 * restore fan-out that hibernation calls. Drivers see only virtio.h.
 */
#include "virtio/virtio.h"

#include "arch/x86/apic.h"           // apic_timer_add_hook
#include "console/log.h"             // klog
#include "lib/error.h"               // ERROR_GONE
#include "lib/string.h"              // memset
#include "mm/page_alloc.h"           // page_alloc, page_free
#include "pci/pci.h"                 // pci_*
#include "virtio/virtio_interrupt.h" // virtio_setup_interrupts, virtio_service_isr
#include "virtio/virtio_pci.h"       // struct virtio_transport

#define VIRTIO_VENDOR 0x1af4
#define MAX_DRIVERS 8

static const struct virtio_driver *drivers[MAX_DRIVERS];
static unsigned driver_count;
static struct virtio_device devices[VIRTIO_MAX_DEVICES];
static unsigned device_count;

static const struct virtio_feature_name generic_feature_names[] = {
    { VIRTIO_RING_F_INDIRECT_DESC, "indirect_desc" },
    { VIRTIO_RING_F_EVENT_IDX, "event_idx" },
    { VIRTIO_F_VERSION_1, "version_1" },
    { VIRTIO_F_ACCESS_PLATFORM, "access_platform" },
    { VIRTIO_F_RING_PACKED, "ring_packed" },
    { 0, 0 },
};

void virtio_register_driver(const struct virtio_driver *driver)
{
    if (driver_count < MAX_DRIVERS)
        drivers[driver_count++] = driver;
}

unsigned virtio_device_count(void)
{
    return device_count;
}

struct virtio_device *virtio_device_get(unsigned index)
{
    return index < device_count ? &devices[index] : 0;
}

const char *virtio_feature_name(const struct virtio_device *d, unsigned bit)
{
    for (const struct virtio_feature_name *n = generic_feature_names; n->name; n++)
        if (n->bit == bit)
            return n->name;
    if (d->driver && d->driver->feature_names)
        for (const struct virtio_feature_name *n = d->driver->feature_names; n->name; n++)
            if (n->bit == bit)
                return n->name;
    return 0;
}

const char *virtio_type_name(uint16_t type)
{
    switch (type) {
    case 1: return "net";
    case VIRTIO_TYPE_BLOCK: return "blk";
    case 3: return "console";
    case 4: return "rng";
    case VIRTIO_TYPE_BALLOON: return "balloon";
    case 8: return "scsi";
    case 9: return "9p";
    case 16: return "gpu";
    case 18: return "input";
    case 19: return "vsock";
    default: return "unknown";
    }
}

/* ---- config space ------------------------------------------------------ */

uint64_t virtio_read_config(struct virtio_device *d, unsigned offset, unsigned size)
{
    if (d->transport->read_config == 0 || (d->transport->fixed_queue_size == 0 && !d->device_config))
        return 0;
    /* re-read until the generation is stable, so a multi-part value is
     * never torn by a concurrent device update (2.5.1); bounded */
    for (int attempt = 0; attempt < 16; attempt++) {
        uint8_t before = d->transport->config_generation(d);
        uint64_t value = d->transport->read_config(d, offset, size);
        if (d->transport->config_generation(d) == before)
            return value;
    }
    return d->transport->read_config(d, offset, size);
}

void virtio_write_config(struct virtio_device *d, unsigned offset, unsigned size, uint64_t value)
{
    if (d->transport->fixed_queue_size == 0 && !d->device_config)
        return;
    d->transport->write_config(d, offset, size, value);
}

/* ---- the tick ---------------------------------------------------------- */

static void tick_poll(void *context)
{
    (void)context;
    for (unsigned i = 0; i < device_count; i++) {
        struct virtio_device *d = &devices[i];
        /* a frozen device's registers may have moved (resume): never touch them */
        if (d->driver && !d->frozen && !d->msix && d->queue_count)
            virtio_service_isr(d);
    }
}

/* ---- negotiation ------------------------------------------------------- */

static uint64_t wanted_features(const struct virtio_device *d)
{
    uint64_t wanted = d->driver->features | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                      (1ull << VIRTIO_RING_F_EVENT_IDX);

    if (!d->transport->fixed_queue_size)
        wanted |= (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_PACKED);
    return wanted;
}

int virtio_reinitialize(struct virtio_device *d)
{
    const struct virtio_transport *t = d->transport;

    pci_enable(d->pci, 1, 1, 1);
    /* MSI-X off until the queues are set up: whoever had the device last
     * (the firmware, a boot kernel before a resume) may have left it on,
     * and a legacy device's config moves by 4 bytes with it (4.1.4.10) */
    pci_msix_disable(d->pci);
    d->msix = 0;
    t->reset(d);
    t->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    t->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->device_features = t->get_features(d);
    d->features = d->device_features & wanted_features(d);
    if (!t->fixed_queue_size && !virtio_has_feature(d, VIRTIO_F_VERSION_1)) {
        d->error = "modern transport without VERSION_1";
        t->set_status(d, VIRTIO_STATUS_FAILED);
        return -1;
    }
    t->set_features(d, d->features);
    if (!t->fixed_queue_size) {
        /* FEATURES_OK, then check the device kept it (3.1.1 steps 5-6) */
        t->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK);
        if (!(t->get_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
            d->error = "device refused the negotiated features";
            t->set_status(d, VIRTIO_STATUS_FAILED);
            return -1;
        }
    }
    return 0;
}

void virtio_device_ready(struct virtio_device *d)
{
    d->transport->set_status(d, (uint8_t)(d->transport->get_status(d) | VIRTIO_STATUS_DRIVER_OK));
}

/* ---- discovery --------------------------------------------------------- */

static int virtio_type_of(const struct pci_function *f)
{
    if (f->vendor_id != VIRTIO_VENDOR || f->device_id < 0x1000 || f->device_id > 0x107f)
        return -1;
    /* modern ids are 0x1040 + type; transitional ones carry the type in the
     * subsystem id (4.1.2) */
    return f->device_id >= 0x1040 ? f->device_id - 0x1040 : f->subsystem_id;
}

static void bind(struct virtio_device *d)
{
    for (unsigned i = 0; i < driver_count; i++) {
        if (drivers[i]->device_type != d->type)
            continue;
        d->driver = drivers[i];
        if (virtio_reinitialize(d) != 0 || drivers[i]->probe(d) != 0) {
            klog("virtio: %s at %02x:%02x.%x: %s", drivers[i]->name, d->pci->bus, d->pci->device,
                 d->pci->function, d->error ? d->error : "probe failed");
            d->transport->set_status(d, VIRTIO_STATUS_FAILED);
            d->driver = 0;
            return;
        }
        d->pci->driver_name = drivers[i]->name;
        return;
    }
}

/* A free entry: a never-used one, else one whose device vanished (its
 * driver gave everything back when it was removed). */
static struct virtio_device *free_entry(void)
{
    if (device_count < VIRTIO_MAX_DEVICES) {
        devices[device_count].index = device_count;
        return &devices[device_count++];
    }
    for (unsigned i = 0; i < device_count; i++)
        if (devices[i].gone)
            return &devices[i];
    return 0;
}

static struct virtio_device *add_device(struct pci_function *f, int type)
{
    struct virtio_device *d = free_entry();

    if (!d) {
        klog("virtio: %02x:%02x.%x ignored: more than %u devices", f->bus, f->device, f->function,
             VIRTIO_MAX_DEVICES);
        return 0;
    }
    unsigned index = d->index;
    memset(d, 0, sizeof(*d));
    d->index = index;
    d->pci = f;
    d->pci_segment = f->segment;
    d->pci_bus = f->bus;
    d->pci_device = f->device;
    d->pci_function = f->function;
    d->type = (uint16_t)type;
    d->queues = d->inline_queues;
    if (virtio_pci_attach(d) == 0)
        bind(d);
    return d;
}

void virtio_init(void)
{
    for (unsigned i = 0; i < pci_function_count(); i++) {
        struct pci_function *f = pci_function_get(i);
        int type = virtio_type_of(f);
        if (type >= 0)
            add_device(f, type);
    }
    apic_timer_add_hook(tick_poll, 0);
    klog("virtio: %u devices", device_count);
}

/* ---- hibernation fan-out ----------------------------------------------- */

enum pm_event { PM_FREEZE, PM_THAW, PM_RESTORE };

/* The device is gone (or was never what the driver thought): the driver
 * gives back what it held, and the entry is free for a new device. */
static void drop(struct virtio_device *d, const char *why)
{
    if (d->driver && d->driver->remove)
        d->driver->remove(d);
    virtio_release_queues(d); /* the device is not touched */
    d->gone = 1;
    d->frozen = 0;
    d->driver = 0;
    d->driver_data = 0;
    d->pci = 0;
    d->transport = 0;
    d->error = why;
}

static int call_all(enum pm_event event)
{
    int first_error = 0;

    for (unsigned i = 0; i < device_count; i++) {
        struct virtio_device *d = &devices[i];
        if (!d->driver || d->gone || (event == PM_RESTORE && d->probed_after_resume))
            continue;
        int (*hook)(struct virtio_device *) = event == PM_FREEZE ? d->driver->freeze
                                              : event == PM_THAW ? d->driver->thaw
                                                                 : d->driver->restore;
        int result = hook ? hook(d) : 0;
        d->frozen = event == PM_FREEZE;
        if (result == ERROR_GONE) {
            /* the driver read the device again and it is another one (a
             * disk with another serial in this slot): the old one is
             * removed, the new one probed like any new device */
            struct pci_function *f = d->pci;
            klog("virtio: %s at %02x:%02x.%x is another device after resume",
                 virtio_type_name(d->type), d->pci_bus, d->pci_device, d->pci_function);
            drop(d, "replaced after resume");
            struct virtio_device *fresh = add_device(f, virtio_type_of(f));
            if (fresh)
                fresh->probed_after_resume = 1;
            continue;
        }
        if (result != 0 && !first_error)
            first_error = -1;
    }
    return first_error;
}

int virtio_freeze_all(void)
{
    return call_all(PM_FREEZE);
}

int virtio_thaw_all(void)
{
    return call_all(PM_THAW);
}

int virtio_restore_all(void)
{
    int result = call_all(PM_RESTORE);

    for (unsigned i = 0; i < device_count; i++)
        devices[i].probed_after_resume = 0;
    return result;
}

void virtio_quiesce_all(void)
{
    for (unsigned i = 0; i < device_count; i++)
        if (!devices[i].gone && devices[i].transport)
            virtio_reset(&devices[i]);
}

void virtio_rescan(void)
{
    unsigned known = device_count;

    /* a device of the image counts as still there when a function of the
     * same type sits at its address; whether it is the same device is
     * its driver's to say at restore (by what it reads from it) */
    for (unsigned i = 0; i < known; i++) {
        struct virtio_device *d = &devices[i];
        if (d->gone)
            continue;
        struct pci_function *f = pci_find(d->pci_segment, d->pci_bus, d->pci_device, d->pci_function);
        if (f && virtio_type_of(f) == d->type) {
            d->pci = f;
            if (virtio_pci_attach(d) == 0) {
                if (d->driver)
                    f->driver_name = d->driver->name;
                continue;
            }
        }
        klog("virtio: %s at %02x:%02x.%x is gone after resume", virtio_type_name(d->type),
             d->pci_bus, d->pci_device, d->pci_function);
        drop(d, "gone after resume");
    }
    for (unsigned i = 0; i < pci_function_count(); i++) {
        struct pci_function *f = pci_function_get(i);
        int type = virtio_type_of(f);
        if (type < 0)
            continue;
        int seen = 0;
        for (unsigned k = 0; k < device_count && !seen; k++)
            seen = !devices[k].gone && devices[k].pci == f;
        if (seen)
            continue;
        struct virtio_device *d = add_device(f, type);
        if (!d)
            continue;
        d->probed_after_resume = 1;
        klog("virtio: new %s at %02x:%02x.%x after resume", virtio_type_name(d->type), f->bus,
             f->device, f->function);
    }
}
