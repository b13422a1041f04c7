/*
 * The virtio core: device discovery on PCI, the status and feature dance
 * (3.1.1), virtqueue memory and interrupt routing, and the freeze/thaw/
 * restore fan-out that hibernation calls. Drivers see only virtio.h.
 */
#include "virtio/virtio.h"

#include "arch/x86/apic.h"      // apic_timer_add_hook
#include "arch/x86/cpu.h"       // interrupts_*
#include "arch/x86/interrupt.h" // interrupt_*
#include "mm/page.h"             // PAGE_SIZE
#include "console/console.h"     // console_printf
#include "console/log.h"         // klog
#include "shell/shell.h"       // shell_register
#include "lib/string.h"         // memset, strcmp
#include "mm/page_alloc.h"      // page_alloc, page_free
#include "pci/pci.h"         // pci_*
#include "virtio/virtio_pci.h"  // struct virtio_transport

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

/* ---- interrupts -------------------------------------------------------- */

static void run_queue_callbacks(struct virtio_device *d, int queue)
{
    for (unsigned q = 0; q < d->queue_count; q++) {
        if ((queue == VIRTIO_MAX_QUEUES || (unsigned)queue == q) && d->queues[q].active &&
            d->queues[q].request.callback)
            d->queues[q].request.callback(d, q);
    }
}

static void config_changed(struct virtio_device *d)
{
    d->config_changes++;
    if (d->driver && d->driver->config_changed)
        d->driver->config_changed(d);
}

static void msix_interrupt(struct interrupt_frame *frame, void *context)
{
    struct virtio_irq *irq = context;

    (void)frame;
    irq->device->interrupts++;
    if (irq->queue < 0)
        config_changed(irq->device);
    else
        run_queue_callbacks(irq->device, irq->queue);
}

/* INTx and the tick poll: the ISR says what happened and reading it
 * deasserts the line (4.1.4.5). */
static void service_isr(struct virtio_device *d)
{
    uint8_t isr = d->transport->read_isr(d);

    if (isr & 1)
        run_queue_callbacks(d, VIRTIO_MAX_QUEUES);
    if (isr & 2)
        config_changed(d);
}

static void intx_interrupt(struct interrupt_frame *frame, void *context)
{
    struct virtio_device *d = context;

    (void)frame;
    d->interrupts++;
    service_isr(d);
}

static void tick_poll(void *context)
{
    (void)context;
    for (unsigned i = 0; i < device_count; i++) {
        struct virtio_device *d = &devices[i];
        /* a frozen device's registers may have moved (resume): never touch them */
        if (d->driver && !d->frozen && !d->msix && d->queue_count)
            service_isr(d);
    }
}

/* Picks MSI-X (one entry for config changes plus one per queue, or one
 * shared by the queues) or INTx. Vectors are allocated once per device
 * and reprogrammed on every call, since resume starts from firmware
 * state. */
static int setup_interrupts(struct virtio_device *d, unsigned queues)
{
    struct pci_function *f = d->pci;

    d->msix = f->msix_table_size >= 2;
    d->msix_per_queue = f->msix_table_size >= queues + 1;
    if (d->msix) {
        if (!d->config_vector) {
            int config = interrupt_alloc_vector();
            int first = interrupt_alloc_vector();
            if (config < 0 || first < 0)
                return -1;
            for (unsigned q = 1; q < queues && d->msix_per_queue; q++)
                if (interrupt_alloc_vector() < 0)
                    return -1;
            d->config_vector = (uint8_t)config;
            d->queue_vector_base = (uint8_t)first;
        }
        if (pci_msix_enable(f) != 0)
            return -1;
        d->irqs[0] = (struct virtio_irq){ d, -1 };
        interrupt_set_handler(d->config_vector, msix_interrupt, &d->irqs[0]);
        pci_msix_set_vector(f, 0, d->config_vector);
        unsigned entries = d->msix_per_queue ? queues : 1;
        for (unsigned e = 0; e < entries; e++) {
            d->irqs[1 + e] = (struct virtio_irq){ d, d->msix_per_queue ? (int)e : VIRTIO_MAX_QUEUES };
            interrupt_set_handler((uint8_t)(d->queue_vector_base + e), msix_interrupt, &d->irqs[1 + e]);
            pci_msix_set_vector(f, 1 + e, (uint8_t)(d->queue_vector_base + e));
        }
        if (d->transport->set_config_msix(d, 0) != 0)
            return -1;
        return 0;
    }
    if (!d->intx_vector) {
        int vector = interrupt_alloc_vector();
        if (vector < 0)
            return -1;
        d->intx_vector = (uint8_t)vector;
    }
    interrupt_set_handler(d->intx_vector, intx_interrupt, d);
    d->intx_gsi = pci_intx_route(f, d->intx_vector);
    pci_intx_mask(f, 0);
    return 0;
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

/* ---- queues ------------------------------------------------------------ */

static void free_queue_memory(struct virtio_queue *q)
{
    if (q->ring_memory)
        page_free(q->ring_memory);
    if (q->state_memory)
        page_free(q->state_memory);
    q->ring_memory = q->state_memory = 0;
    q->active = 0;
}

int virtio_setup_queues(struct virtio_device *d, unsigned count,
                        const struct virtio_queue_request *requests)
{
    if (count == 0 || count > VIRTIO_MAX_QUEUES)
        return -1;
    d->queue_count = count;
    if (setup_interrupts(d, count) != 0) {
        d->error = "no interrupt vector";
        return -1;
    }
    for (unsigned i = 0; i < count; i++) {
        struct virtio_queue *q = &d->queues[i];
        uint16_t max = d->transport->queue_max_size(d, i);
        if (max == 0) {
            d->error = "the device lacks a queue the driver needs";
            goto fail;
        }
        q->request = requests[i];
        int packed = virtio_has_feature(d, VIRTIO_F_RING_PACKED);
        uint16_t size = max;
        if (!d->transport->fixed_queue_size) {
            if (requests[i].size && requests[i].size < size)
                size = requests[i].size;
            if (size > VQ_MAX_SIZE)
                size = VQ_MAX_SIZE;
            if (!packed) /* split rings are powers of two */
                while (size & (size - 1))
                    size &= (uint16_t)(size - 1);
        } else if (size > VQ_MAX_SIZE || (size & (size - 1))) {
            d->error = "legacy queue size out of range";
            goto fail;
        }
        struct vq_config config = {
            .layout = packed ? VQ_PACKED : VQ_SPLIT,
            .size = size,
            .event_idx = virtio_has_feature(d, VIRTIO_RING_F_EVENT_IDX),
            .indirect_max = virtio_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC) ? requests[i].indirect_max : 0,
        };
        q->ring_memory = page_alloc(page_order_for(vq_ring_bytes(&config)), PAGE_TAG_KERNEL);
        q->state_memory = page_alloc(page_order_for(vq_state_bytes(&config)), PAGE_TAG_KERNEL);
        if (!q->ring_memory || !q->state_memory ||
            vq_init(&q->ring, &config, (void *)(uintptr_t)q->ring_memory,
                    (void *)(uintptr_t)q->state_memory) != 0) {
            d->error = "no memory for a virtqueue";
            goto fail;
        }
        uint16_t entry = !d->msix ? VIRTIO_MSI_NO_VECTOR
                         : (uint16_t)(d->msix_per_queue ? 1 + i : 1);
        if (d->transport->setup_queue(d, i, &q->ring, entry) != 0) {
            d->error = "the device refused a virtqueue";
            goto fail;
        }
        q->active = 1;
    }
    return 0;
fail:
    virtio_delete_queues(d);
    return -1;
}

void virtio_delete_queues(struct virtio_device *d)
{
    /* a reset makes the device forget the rings before we free them */
    d->transport->reset(d);
    for (unsigned i = 0; i < d->queue_count; i++)
        free_queue_memory(&d->queues[i]);
    if (d->msix)
        pci_msix_disable(d->pci);
    else
        pci_intx_mask(d->pci, 1);
    d->msix = 0; /* legacy device config moves back with MSI-X off */
}

struct virtqueue *virtio_queue(struct virtio_device *d, unsigned queue)
{
    return queue < d->queue_count && d->queues[queue].active ? &d->queues[queue].ring : 0;
}

void virtio_notify(struct virtio_device *d, unsigned queue)
{
    if (vq_kick_prepare(&d->queues[queue].ring))
        d->transport->notify(d, queue);
}

uint16_t virtio_queue_max_size(struct virtio_device *d, unsigned index)
{
    return d->transport->queue_max_size(d, index);
}

int virtio_queue_size_fixed(const struct virtio_device *d)
{
    return d->transport->fixed_queue_size;
}

int virtio_attach_private_queue(struct virtio_device *d, unsigned index, struct virtqueue *ring)
{
    vq_disable_interrupts(ring);
    if (d->transport->setup_queue(d, index, ring, VIRTIO_MSI_NO_VECTOR) != 0)
        return -1;
    virtio_device_ready(d);
    return 0;
}

void virtio_private_notify(struct virtio_device *d, unsigned index, struct virtqueue *ring)
{
    if (vq_kick_prepare(ring))
        d->transport->notify(d, index);
}

void virtio_reset(struct virtio_device *d)
{
    d->transport->reset(d);
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

static void command_virtio(int argc, char **argv);
static const struct shell_command virtio_commands[] = {
    { "virtio", "[freeze|thaw|restore]",
      "virtio devices; test only: run every driver's power hook", 0, 1, command_virtio },
};

static struct virtio_device *add_device(struct pci_function *f, int type)
{
    struct virtio_device *d = &devices[device_count];

    memset(d, 0, sizeof(*d));
    d->index = device_count++;
    d->pci = f;
    d->pci_segment = f->segment;
    d->pci_bus = f->bus;
    d->pci_device = f->device;
    d->pci_function = f->function;
    d->type = (uint16_t)type;
    if (virtio_pci_attach(d) == 0)
        bind(d);
    return d;
}

void virtio_init(void)
{
    for (unsigned i = 0; i < pci_function_count() && device_count < VIRTIO_MAX_DEVICES; i++) {
        struct pci_function *f = pci_function_get(i);
        int type = virtio_type_of(f);
        if (type < 0)
            continue;
        add_device(f, type);
    }
    apic_timer_add_hook(tick_poll, 0);
    shell_register(virtio_commands, sizeof(virtio_commands) / sizeof(virtio_commands[0]));
    klog("virtio: %u devices", device_count);
}

/* ---- hibernation fan-out ----------------------------------------------- */

enum pm_event { PM_FREEZE, PM_THAW, PM_RESTORE };

/* devices from before the resume; those found by virtio_rescan were
 * probed fresh and have nothing to restore */
static unsigned restorable_count = VIRTIO_MAX_DEVICES;

static int call_all(enum pm_event event)
{
    int first_error = 0;

    for (unsigned i = 0; i < device_count; i++) {
        struct virtio_device *d = &devices[i];
        if (!d->driver || d->gone || (event == PM_RESTORE && d->index >= restorable_count))
            continue;
        int (*hook)(struct virtio_device *) = event == PM_FREEZE ? d->driver->freeze
                                              : event == PM_THAW ? d->driver->thaw
                                                                 : d->driver->restore;
        if (hook && hook(d) != 0 && !first_error)
            first_error = -1;
        d->frozen = event == PM_FREEZE;
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

    restorable_count = VIRTIO_MAX_DEVICES;
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
        if (d->driver && d->driver->remove)
            d->driver->remove(d);
        d->gone = 1;
        d->driver = 0;
        d->pci = 0;
        d->queue_count = 0;
        d->error = "gone after resume";
    }
    for (unsigned i = 0; i < pci_function_count() && device_count < VIRTIO_MAX_DEVICES; i++) {
        struct pci_function *f = pci_function_get(i);
        int type = virtio_type_of(f);
        if (type < 0)
            continue;
        int seen = 0;
        for (unsigned k = 0; k < known && !seen; k++)
            seen = devices[k].pci == f;
        if (seen)
            continue;
        struct virtio_device *d = add_device(f, type);
        klog("virtio: new %s at %02x:%02x.%x after resume", virtio_type_name(d->type), f->bus,
             f->device, f->function);
    }
    restorable_count = known;
}

/* ---- console ----------------------------------------------------------- */

static void print_features(const struct virtio_device *d)
{
    const char *separator = "";

    console_printf(" features=");
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!((d->features >> bit) & 1))
            continue;
        const char *name = 0;
        for (const struct virtio_feature_name *n = generic_feature_names; n->name && !name; n++)
            if (n->bit == bit)
                name = n->name;
        if (d->driver && d->driver->feature_names)
            for (const struct virtio_feature_name *n = d->driver->feature_names; n->name && !name; n++)
                if (n->bit == bit)
                    name = n->name;
        if (name)
            console_printf("%s%s", separator, name);
        else
            console_printf("%sbit%u", separator, bit);
        separator = ",";
    }
    if (!*separator)
        console_printf("none");
}

static unsigned active_queues(const struct virtio_device *d)
{
    unsigned active = 0;

    for (unsigned q = 0; q < d->queue_count; q++)
        active += d->queues[q].active;
    return active;
}

static void command_virtio(int argc, char **argv)
{
    if (argc == 2) {
        int (*hook)(void) = strcmp(argv[1], "freeze") == 0   ? virtio_freeze_all
                            : strcmp(argv[1], "thaw") == 0    ? virtio_thaw_all
                            : strcmp(argv[1], "restore") == 0 ? virtio_restore_all
                                                              : 0;
        if (!hook) {
            shell_error("virtio: unknown argument '%s' (freeze, thaw or restore)", argv[1]);
            return;
        }
        int result = hook();
        if (result != 0)
            shell_error("virtio: %s failed", argv[1]);
        else
            console_printf("virtio %s ok\n", argv[1]);
        return;
    }
    for (unsigned i = 0; i < device_count; i++) {
        struct virtio_device *d = &devices[i];
        console_printf("virtio dev=%u type=%s pci=%02x:%02x.%x transport=%s driver=%s irq=%s",
                       d->index, virtio_type_name(d->type), d->pci_bus, d->pci_device,
                       d->pci_function, d->transport ? d->transport->name : "none",
                       d->driver ? d->driver->name : "-",
                       !d->driver || !active_queues(d) ? "-"
                       : d->msix ? (d->msix_per_queue ? "msix" : "msix-shared") : "intx");
        print_features(d);
        console_printf(" queues=%u interrupts=%llu", active_queues(d), (unsigned long long)d->interrupts);
        if (d->error)
            console_printf(" error=\"%s\"", d->error);
        console_printf("\n");
        for (unsigned q = 0; q < d->queue_count; q++) {
            const struct virtio_queue *queue = &d->queues[q];
            if (!queue->active)
                continue;
            const struct virtqueue *vq = &queue->ring;
            const struct vq_stats *s = &vq->stats;
            console_printf("virtqueue dev=%u index=%u size=%u layout=%s indirect_max=%u in_flight=%u "
                           "added=%llu completed=%llu kicks=%llu kicks_suppressed=%llu "
                           "bad_id=%llu stale_id=%llu bad_length=%llu bad_index=%llu broken=%d\n",
                           d->index, q, vq->config.size,
                           vq->config.layout == VQ_SPLIT ? "split" : "packed",
                           vq->config.indirect_max, vq_in_flight(vq),
                           (unsigned long long)s->added, (unsigned long long)s->completed,
                           (unsigned long long)s->kicks, (unsigned long long)s->kicks_suppressed,
                           (unsigned long long)s->bad_id, (unsigned long long)s->stale_id,
                           (unsigned long long)s->bad_length, (unsigned long long)s->bad_index,
                           vq->broken);
        }
    }
}
