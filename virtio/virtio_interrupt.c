/*
 * virtio interrupts: MSI-X (one entry for config changes plus one per
 * queue, or one the queues share) or INTx through the IOAPIC, and the
 * dispatch to the driver's queue callbacks and config-change hook.
 */
#include "virtio/virtio_interrupt.h"

#include "arch/x86/interrupt.h" // interrupt_*
#include "pci/pci.h"            // pci_msix_*, pci_intx_*
#include "virtio/virtio_pci.h"  // struct virtio_transport

static void run_queue_callbacks(struct virtio_device *d, int queue)
{
    for (unsigned q = 0; q < d->queue_count; q++) {
        if ((queue == VIRTIO_IRQ_ALL_QUEUES || (unsigned)queue == q) && d->queues[q].active &&
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
    if (irq->queue == VIRTIO_IRQ_CONFIG)
        config_changed(irq->device);
    else
        run_queue_callbacks(irq->device, irq->queue);
}

/* INTx and the tick poll: the ISR says what happened and reading it
 * deasserts the line (4.1.4.5). */
void virtio_service_isr(struct virtio_device *d)
{
    uint8_t isr = d->transport->read_isr(d);

    if (isr & 1)
        run_queue_callbacks(d, VIRTIO_IRQ_ALL_QUEUES);
    if (isr & 2)
        config_changed(d);
}

static void intx_interrupt(struct interrupt_frame *frame, void *context)
{
    struct virtio_device *d = context;

    (void)frame;
    d->interrupts++;
    virtio_service_isr(d);
}


/* Picks MSI-X (one entry for config changes plus one per queue, or one
 * shared by the queues) or INTx. Vectors are allocated once per device
 * and reprogrammed on every call, since resume starts from firmware
 * state. */
int virtio_setup_interrupts(struct virtio_device *d, unsigned queues)
{
    struct pci_function *f = d->pci;

    int per_queue = f->msix_table_size >= queues + 1 && queues <= VIRTIO_MAX_QUEUE_VECTORS;

    d->msix = f->msix_table_size >= 2;
    d->msix_per_queue = 0;
    if (d->msix) {
        if (!d->config_vector) {
            int config = interrupt_alloc_vector();
            int first = interrupt_alloc_vector();
            if (config < 0 || first < 0)
                return -1;
            for (unsigned q = 1; q < queues && per_queue; q++)
                if (interrupt_alloc_vector() < 0)
                    return -1;
            d->config_vector = (uint8_t)config;
            d->queue_vector_base = (uint8_t)first;
            d->queue_vectors = (uint8_t)(per_queue ? queues : 1);
        }
        /* vectors are never given back, and the ones after this device's
         * are other devices': a later setup with more queues (restored
         * into a host whose device has fewer ports, say) shares one */
        d->msix_per_queue = per_queue && queues <= d->queue_vectors;
        if (pci_msix_enable(f) != 0)
            return -1;
        d->irqs[0] = (struct virtio_irq){ d, VIRTIO_IRQ_CONFIG };
        interrupt_set_handler(d->config_vector, msix_interrupt, &d->irqs[0]);
        pci_msix_set_vector(f, 0, d->config_vector);
        unsigned entries = d->msix_per_queue ? queues : 1;
        for (unsigned e = 0; e < entries; e++) {
            d->irqs[1 + e] = (struct virtio_irq){ d, d->msix_per_queue ? (int)e : VIRTIO_IRQ_ALL_QUEUES };
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
